# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The tool contract: a name, a description, an argument schema from type hints, an async function.

    TOOLS = ToolRegistry()

    @TOOLS.tool
    async def calculate(expression: Annotated[str, Field(max_length=200, description="e.g. 2 * (3 + 4)")]) -> str:
        \"\"\"Evaluates arithmetic.\"\"\"          # the docstring is the description the model reads
        ...

The function's parameters become a pydantic model: its JSON schema is what the model is offered
(OpenAI `tools`, type "function"), and the arguments the model writes are validated against it
before the function runs (unknown keys refused). A parameter annotated `ToolContext` is not
offered: the loop passes the request's context there (conversation id, database sessions, settings).
The return value goes back to the model as text (a string as it is, anything else as JSON).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, create_model
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..settings import Settings

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI-compatible APIs accept as a function name


@dataclass(frozen=True)
class ToolContext:
    """What a tool may need beyond its arguments: the request's conversation, the app's database, settings."""

    conversation_id: str
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings


class InvalidArguments(ValueError):
    """The model's arguments are not JSON or do not fit the tool's schema."""

    error_type = "invalid_arguments"


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    function: Callable[..., Awaitable[Any]]
    arguments: type[BaseModel]
    context_parameter: str | None = None

    def definition(self) -> dict[str, Any]:
        """The OpenAI-compatible function definition offered to the model."""
        schema = self.arguments.model_json_schema()
        schema.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": schema},
        }

    def parse(self, raw_arguments: str) -> BaseModel:
        try:
            return self.arguments.model_validate_json(raw_arguments or "{}")
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise InvalidArguments(_one_line(exc)) from None

    async def call(self, arguments: BaseModel, context: ToolContext) -> Any:
        values = {name: getattr(arguments, name) for name in type(arguments).model_fields}
        if self.context_parameter:
            values[self.context_parameter] = context
        return await self.function(**values)


def make_tool(
    function: Callable[..., Awaitable[Any]], *, name: str | None = None, description: str | None = None
) -> Tool:
    """A Tool from an async function: parameters (type hints, defaults, pydantic Field) -> schema."""
    if not inspect.iscoroutinefunction(function):
        raise TypeError(
            f"tool {function.__name__!r} must be an async function (run blocking work in asyncio.to_thread)"
        )
    name = name or function.__name__
    if not NAME.match(name):
        raise ValueError(f"tool name {name!r} must match {NAME.pattern}")
    description = description or inspect.getdoc(function) or ""
    if not description:
        raise ValueError(f"tool {name!r} needs a description (a docstring): it is what the model reads")
    hints = get_type_hints(function, include_extras=True)
    fields: dict[str, Any] = {}
    context_parameter = None
    for parameter in inspect.signature(function).parameters.values():
        annotation = hints.get(parameter.name, Any)
        if annotation is ToolContext:
            context_parameter = parameter.name
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"tool {name!r}: *args / **kwargs cannot be described to a model")
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
    model = create_model(f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    return Tool(name, description, function, model, context_parameter)


class ToolRegistry:
    """The tools the agent offers, by name. `@registry.tool` (or `@registry.tool(name=...)`) adds one."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        self._definitions: list[dict[str, Any]] | None = None
        for tool in tools or ():
            self.add(tool)

    def add(self, tool: Tool) -> Tool:
        if tool.name in self._tools:
            raise ValueError(f"two tools are named {tool.name!r}")
        self._tools[tool.name] = tool
        self._definitions = None
        return tool

    def tool(
        self,
        function: Callable[..., Awaitable[Any]] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> Any:
        def register(fn: Callable[..., Awaitable[Any]]) -> Tool:
            return self.add(make_tool(fn, name=name, description=description))

        return register(function) if function is not None else register

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def definitions(self) -> list[dict[str, Any]]:
        """What every request offers the model; built once (a JSON schema costs ~0.1 ms to generate)."""
        if self._definitions is None:
            self._definitions = [tool.definition() for tool in self._tools.values()]
        return self._definitions

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)


def as_text(value: Any) -> str:
    """A tool's return value as the text the model reads."""
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


def _one_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors(include_url=False)[0] if errors(include_url=False) else {}
        where = ".".join(str(part) for part in first.get("loc", ())) or "arguments"
        return f"{where}: {first.get('msg', 'invalid')}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
