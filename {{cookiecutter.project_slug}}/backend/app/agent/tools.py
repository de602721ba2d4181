# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""The tools the agent offers the model. Adding one is adding a function here:

    @TOOLS.tool
    async def my_tool(city: Annotated[str, Field(max_length=80, description="...")], ctx: ToolContext) -> dict:
        \"\"\"What the tool does, for the model: it reads this to decide when to call it.\"\"\"

- an async function (blocking work: `await asyncio.to_thread(...)`); it gets AGENT_TOOL_TIMEOUT seconds;
- its parameters, with type hints (and pydantic `Field` for limits and descriptions), are the
  argument schema the model is offered and the arguments are validated against;
- a `ToolContext` parameter (not offered to the model) gives the conversation id, the database
  sessions and the settings;
- return a string or anything JSON can encode; raise to report a failure: the model reads the
  error and the loop goes on (the tool's span is marked as failed).

The model writes the arguments, and a user's message can steer the model: check them as you would
a request body, and keep what a tool can read or change to what the user may.
"""

from __future__ import annotations

import ast
import operator
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import func, select

from ..db import Message
from .registry import ToolContext, ToolRegistry

TOOLS = ToolRegistry()


@TOOLS.tool
async def conversation_usage(ctx: ToolContext) -> dict[str, Any]:
    """Tokens, cost in USD and LLM calls this conversation has used so far (before this request)."""
    query = select(
        func.coalesce(func.sum(Message.input_tokens), 0),
        func.coalesce(func.sum(Message.output_tokens), 0),
        func.coalesce(func.sum(Message.cost_usd), 0.0),
        func.coalesce(func.sum(func.coalesce(Message.llm_calls, 1)), 0),
        func.count(),
    ).where(Message.conversation_id == ctx.conversation_id, Message.role == "assistant")
    async with ctx.sessions() as session:
        input_tokens, output_tokens, cost, calls, replies = (await session.execute(query)).one()
    return {
        "replies": replies,
        "llm_calls": calls,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": round(float(cost), 8),
    }


@TOOLS.tool
async def calculate(
    expression: Annotated[
        str, Field(min_length=1, max_length=200, description="Arithmetic, e.g. (17.5 - 2) * 3 / 4 or 2 ** 10")
    ],
) -> str:
    """Evaluates an arithmetic expression (+ - * / // % ** and parentheses) exactly; use it for any sum."""
    return str(_evaluate(ast.parse(expression, mode="eval").body))


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_LIMIT = 10**100  # no result (or step) past this: 9 ** 9 ** 9 would hold the event loop for minutes


def _evaluate(node: ast.AST) -> int | float:
    """Numbers and arithmetic operators only: never eval(), which would run any Python the model wrote."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 100 or abs(left) > 10**6):
            raise ValueError("exponent or base too large")
        result = _BINARY[type(node.op)](left, right)
        if isinstance(result, complex) or abs(result) > _LIMIT:
            raise ValueError("result out of range")
        return result
    raise ValueError(f"not arithmetic: {type(node).__name__}")
