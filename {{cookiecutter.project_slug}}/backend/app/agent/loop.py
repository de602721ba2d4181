# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The agent loop: offer the tools, run what the model asks for, send the results back, until it answers.

    messages -> LLM (tools offered) -> tool_calls? -> run each tool -> role "tool" messages -> LLM -> ...

Bounded: at most AGENT_MAX_STEPS round trips and AGENT_MAX_TOOL_CALLS tool calls per request, each
tool at most AGENT_TOOL_TIMEOUT seconds (settings.py). Past a bound the run stops with an AgentError
(the API answers it with its status and the trace id; the agent span's error.type says which bound).
A tool that raises is not a stop: its error goes back to the model as the tool's result, the tool's
span ends as ERROR, and the loop goes on. Tools run one after the other, in the order asked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..cerebe import CerebeClient, CerebeError, ChatReply, StreamedReply, ToolCall
from ..settings import Settings
from ..telemetry.agent import AgentRun, AgentTelemetry
from .registry import Tool, ToolContext, ToolRegistry, as_text

# What one tool's result may add to the conversation (and to the next round trip's input tokens).
MAX_TOOL_OUTPUT_CHARS = 16_000

logger = logging.getLogger("app.agent")


class AgentError(CerebeError):
    """The run stopped at one of its bounds: `code` for programs, the message for people."""

    def __init__(self, message: str, *, status_code: int, error_type: str) -> None:
        super().__init__(message, status_code=status_code, error_type=error_type)
        self.code = error_type


class UnknownTool(LookupError):
    error_type = "unknown_tool"


@dataclass
class ToolStep:
    """One tool call as it ran: what the model asked (id, name, arguments) and what it got back."""

    id: str
    name: str
    arguments: str
    ok: bool
    output: str
    error_type: str | None
    duration_ms: float


@dataclass
class AgentReply:
    """The answer of a run, with usage summed over its round trips (None when a call reported none)."""

    content: str
    model: str
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    llm_calls: int
    steps: list[ToolStep] = field(default_factory=list)


@dataclass
class TextDelta:
    text: str


@dataclass
class ToolRequested:
    call: ToolCall


@dataclass
class ToolDone:
    step: ToolStep


@dataclass
class Finished:
    reply: AgentReply


Event = TextDelta | ToolRequested | ToolDone | Finished


class Agent:
    def __init__(
        self,
        cerebe: CerebeClient,
        tools: ToolRegistry,
        telemetry: AgentTelemetry,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        self.cerebe = cerebe
        self.tools = tools
        self.telemetry = telemetry
        self.settings = settings
        self.sessions = sessions

    async def reply(self, history: list[dict[str, Any]], *, conversation_id: str) -> AgentReply:
        """The whole run, plain (no streaming): the final reply."""
        async with aclosing(self.run(history, conversation_id=conversation_id, stream=False)) as run:
            async for event in run:
                if isinstance(event, Finished):
                    return event.reply
        raise AssertionError("an agent run always finishes or raises")  # pragma: no cover

    async def run(self, history: list[dict[str, Any]], *, conversation_id: str, stream: bool) -> AsyncIterator[Event]:
        """The run as events: text as it streams (stream=True), each tool call asked and done, then Finished."""
        settings = self.settings
        messages = list(history)
        definitions = self.tools.definitions() or None
        context = ToolContext(conversation_id, self.sessions, settings)
        texts: list[str] = []
        steps: list[ToolStep] = []
        with self.telemetry.run(
            agent_name=settings.agent_name,
            provider=settings.cerebe_provider,
            model=settings.cerebe_model,
            conversation_id=conversation_id,
        ) as run:
            while True:
                if stream:
                    result, separated = StreamedReply(), not texts
                    chunks = self.cerebe.chat_stream(
                        messages, result, conversation_id=conversation_id, tools=definitions
                    )
                    # aclosing: a client that leaves mid-stream ends the chat span now, in this task
                    async with aclosing(chunks):
                        async for text in chunks:
                            if not separated:  # text of an earlier round trip was shown: start a paragraph
                                separated = True
                                yield TextDelta("\n\n")
                            yield TextDelta(text)
                    reply: ChatReply = result.reply  # type: ignore[assignment]
                else:
                    reply = await self.cerebe.chat(messages, conversation_id=conversation_id, tools=definitions)
                run.add_round_trip(reply.input_tokens, reply.output_tokens, reply.cost_usd)
                if reply.content:
                    texts.append(reply.content)
                if not reply.tool_calls:
                    break
                self._check_bounds(run, len(steps) + len(reply.tool_calls))
                messages.append(
                    {
                        "role": "assistant",
                        "content": reply.content or None,
                        "tool_calls": [call.message() for call in reply.tool_calls],
                    }
                )
                for call in reply.tool_calls:
                    yield ToolRequested(call)
                    step = await self._execute(run, call, context)
                    steps.append(step)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": step.output})
                    yield ToolDone(step)
            answer = AgentReply(
                content="\n\n".join(texts),
                model=reply.model,
                input_tokens=run.input_tokens,
                output_tokens=run.output_tokens,
                cost_usd=run.cost_usd,
                llm_calls=run.steps,
                steps=steps,
            )
        yield Finished(answer)

    def _check_bounds(self, run: AgentRun, tool_calls: int) -> None:
        """The model asks for more tools: allowed unless that would need a round trip past the limit."""
        settings = self.settings
        if run.steps >= settings.agent_max_steps:
            raise AgentError(
                f"the agent stopped after {run.steps} LLM round trips without an answer (AGENT_MAX_STEPS)",
                status_code=502,
                error_type="max_steps",
            )
        if tool_calls > settings.agent_max_tool_calls:
            raise AgentError(
                f"the model asked for more than {settings.agent_max_tool_calls} tool calls (AGENT_MAX_TOOL_CALLS)",
                status_code=502,
                error_type="max_tool_calls",
            )

    async def _execute(self, run: AgentRun, call: ToolCall, context: ToolContext) -> ToolStep:
        tool: Tool | None = self.tools.get(call.name)
        timeout = self.settings.agent_tool_timeout
        started = time.perf_counter()
        error_type: str | None = None
        with run.tool(
            call.name,
            call_id=call.id,
            known=tool is not None,
            description=tool.description if tool else None,
            arguments=call.arguments,
        ) as span:
            deadline = asyncio.timeout(timeout)
            try:
                if tool is None:
                    raise UnknownTool(f"there is no tool named {call.name[:64]!r}")
                arguments = tool.parse(call.arguments)
                async with deadline:
                    output = _cut(as_text(await tool.call(arguments, context)))
            except TimeoutError as exc:
                if not deadline.expired():
                    error_type, output = _failed(span, exc)
                else:
                    span.fail("timeout", f"{call.name} did not finish within {timeout:g} s")
                    self._log(call, tool, "timeout", started, context)
                    raise AgentError(
                        f"the tool {call.name!r} did not finish within {timeout:g} s (AGENT_TOOL_TIMEOUT)",
                        status_code=504,
                        error_type="tool_timeout",
                    ) from None
            except Exception as exc:  # noqa: BLE001 - a failing tool is the model's to handle, not a 500
                error_type, output = _failed(span, exc)
            span.result(output)
            self._log(call, tool, error_type or "ok", started, context)
        return ToolStep(call.id, call.name, call.arguments, error_type is None, output, error_type, _ms(started))

    @staticmethod
    def _log(call: ToolCall, tool: Tool | None, outcome: str, started: float, context: ToolContext) -> None:
        """One `tool.call` record per call, inside the tool's span (so Loki has it with its trace id)."""
        logger.log(
            logging.INFO if outcome == "ok" else logging.WARNING,
            "tool.call",
            extra={
                "event": "tool.call",
                "conversation_id": context.conversation_id,
                "tool": tool.name if tool else "unknown",
                "outcome": outcome,
                "latency_ms": round(_ms(started), 2),
            },
        )


def _failed(span: Any, exc: Exception) -> tuple[str, str]:
    """A tool's exception: the span fails with its type; the model reads the type and message."""
    error_type = getattr(exc, "error_type", None) or type(exc).__qualname__
    span.fail(error_type, str(exc))
    return error_type, _cut(json.dumps({"error": f"{error_type}: {exc}"}, ensure_ascii=False))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TOOL_OUTPUT_CHARS else text[:MAX_TOOL_OUTPUT_CHARS] + "…"


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
