# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""The chat API: store the user's message, run the agent (Cerebe and the tools it asks for), store and
return the reply with the tool steps it took."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from opentelemetry import trace
from opentelemetry.trace import format_trace_id
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import func, select, update

from .. import chat_limits
from ..agent import Agent, AgentReply, Finished, TextDelta, ToolDone, ToolRequested, ToolStep
from ..cerebe import CerebeError
from ..db import Message, conversation_messages
from ..limits import read_body

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["chat"])

ConversationId = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")


class ChatRequest(BaseModel):
    conversation_id: str = ConversationId
    message: str = Field(min_length=1, max_length=8000)


# 8,000 characters of message, up to 6 bytes each when \u-escaped, and the rest of the object.
MAX_CHAT_BODY_BYTES = 64 * 1024


async def chat_request(request: Request) -> ChatRequest:
    """The body as a ChatRequest, read at most MAX_CHAT_BODY_BYTES as it streams in (413 past it)."""
    raw = await read_body(request, MAX_CHAT_BODY_BYTES, code="body_too_large")
    try:
        return ChatRequest.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


class Usage(BaseModel):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    llm_calls: int | None = None


class ToolStepOut(BaseModel):
    """One tool call of the reply: what the model asked and what the tool answered."""

    id: str
    name: str
    arguments: str
    ok: bool
    output: str
    error_type: str | None
    duration_ms: float


class ChatResponse(BaseModel):
    conversation_id: str
    reply: str
    model: str
    trace_id: str | None
    usage: Usage
    steps: list[ToolStepOut] = []


class ModelUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    cost_usd: float
    calls: int


class ConversationUsage(ModelUsage):
    """`calls` counts every LLM call, failed ones too (`failed_calls`: they have no model, tokens
    or cost to count; `by_model` has the calls that answered)."""

    conversation_id: str
    failed_calls: int
    by_model: dict[str, ModelUsage]


class MessageOut(BaseModel):
    role: str
    content: str
    created_at: str
    trace_id: str | None


class ConversationOut(BaseModel):
    conversation_id: str
    messages: list[MessageOut]


def current_trace_id(context: trace.SpanContext | None = None) -> str | None:
    context = context or trace.get_current_span().get_span_context()
    return format_trace_id(context.trace_id) if context.is_valid else None


async def _store_question(
    request: Request, body: ChatRequest, trace_id: str | None
) -> tuple[list[dict[str, str]], int]:
    """Stores the user's message first, so a failing LLM call never loses it; returns the history
    and the message's id (`_store_failure` marks it)."""
    async with request.app.state.sessions() as session:
        question = Message(conversation_id=body.conversation_id, role="user", content=body.message, trace_id=trace_id)
        session.add(question)
        await session.commit()
        history = await conversation_messages(
            session, body.conversation_id, limit=request.app.state.settings.history_limit
        )
    return [{"role": m.role, "content": m.content} for m in history], question.id


async def _store_failure(request: Request, question_id: int, error: CerebeError) -> None:
    """The question's reply failed: /usage counts the call (its error.type on the question's row)."""
    async with request.app.state.sessions() as session:
        await session.execute(update(Message).where(Message.id == question_id).values(error_type=error.error_type[:64]))
        await session.commit()


async def _store_reply(request: Request, conversation_id: str, reply: AgentReply, span: trace.SpanContext) -> None:
    """Stores the reply with the span it was made in (feedback on it is recorded in that trace)."""
    async with request.app.state.sessions() as session:
        session.add(
            Message(
                conversation_id=conversation_id,
                role="assistant",
                content=reply.content,
                trace_id=current_trace_id(span),
                span_id=format(span.span_id, "016x") if span.is_valid else None,
                trace_flags=int(span.trace_flags) if span.is_valid else None,
                model=reply.model,
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                cost_usd=reply.cost_usd,
                llm_calls=reply.llm_calls,
            )
        )
        await session.commit()
    logger.info(
        "chat reply stored",
        extra={"conversation_id": conversation_id, "model": reply.model, "cost_usd": reply.cost_usd},
    )


def _usage(reply: AgentReply) -> Usage:
    return Usage(
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        cost_usd=reply.cost_usd,
        llm_calls=reply.llm_calls,
    )


MAX_STEP_OUTPUT_SHOWN = 2000  # characters of a tool's result sent to the browser (the model got it all)


def _step(step: ToolStep) -> ToolStepOut:
    output = step.output if len(step.output) <= MAX_STEP_OUTPUT_SHOWN else step.output[:MAX_STEP_OUTPUT_SHOWN] + "…"
    return ToolStepOut(
        id=step.id,
        name=step.name,
        arguments=step.arguments[:MAX_STEP_OUTPUT_SHOWN],
        ok=step.ok,
        output=output,
        error_type=step.error_type,
        duration_ms=round(step.duration_ms, 2),
    )


@router.post("/chat", response_model=ChatResponse)
async def chat(request: Request, body: Annotated[ChatRequest, Depends(chat_request)]) -> ChatResponse:
    agent: Agent = request.app.state.agent
    span = trace.get_current_span().get_span_context()
    trace_id = current_trace_id(span)
    admission = chat_limits.admit(request)  # LLM spend limits (chat_limits.py): 429/503 before storing
    try:
        history, question_id = await _store_question(request, body, trace_id)
        admission.reserve(history)
        try:
            run = agent.reply(history, conversation_id=body.conversation_id)
            reply = await chat_limits.unless_disconnected(request, run)
        except CerebeError as exc:
            await _store_failure(request, question_id, exc)
            logger.warning(
                "chat failed: %s", exc, extra={"conversation_id": body.conversation_id, "error_type": exc.error_type}
            )
            detail = {"detail": f"{exc}; your message was saved", "code": getattr(exc, "code", None)}
            raise HTTPException(
                status_code=exc.status_code, detail=detail if detail["code"] else detail["detail"]
            ) from None
        admission.settle(reply.input_tokens, reply.output_tokens)  # every round trip of the run
    finally:
        admission.release()
    await _store_reply(request, body.conversation_id, reply, span)
    return ChatResponse(
        conversation_id=body.conversation_id,
        reply=reply.content,
        model=reply.model,
        trace_id=trace_id,
        usage=_usage(reply),
        steps=[_step(step) for step in reply.steps],
    )


@router.post("/chat/stream")
async def chat_stream(request: Request, body: Annotated[ChatRequest, Depends(chat_request)]) -> StreamingResponse:
    """Server-sent events: `{"delta": text}` per chunk, `{"tool_call": {id, name, arguments}}` when the
    model asks for a tool and `{"tool_result": {id, name, ok, output, ...}}` when it has run, then
    `{"done": true, ...}` or an `error` event."""
    agent: Agent = request.app.state.agent
    span = trace.get_current_span().get_span_context()
    trace_id = current_trace_id(span)
    admission = chat_limits.admit(request)  # LLM spend limits (chat_limits.py): 429/503 before storing
    try:
        history, question_id = await _store_question(request, body, trace_id)
    except BaseException:
        admission.release()
        raise
    admission.reserve(history)

    async def events() -> AsyncIterator[str]:
        reply: AgentReply | None = None
        run = agent.run(history, conversation_id=body.conversation_id, stream=True)
        try:
            # aclosing: when the client leaves, the run's spans end now, in this task, not at garbage collection
            async with aclosing(run):
                async for event in run:
                    if isinstance(event, TextDelta):
                        yield f"data: {json.dumps({'delta': event.text})}\n\n"
                    elif isinstance(event, ToolRequested):
                        call = {"id": event.call.id, "name": event.call.name, "arguments": event.call.arguments}
                        yield f"data: {json.dumps({'tool_call': call})}\n\n"
                    elif isinstance(event, ToolDone):
                        yield f"data: {json.dumps({'tool_result': _step(event.step).model_dump()})}\n\n"
                    elif isinstance(event, Finished):
                        reply = event.reply
        except CerebeError as exc:
            await _store_failure(request, question_id, exc)
            logger.warning(
                "chat failed: %s", exc, extra={"conversation_id": body.conversation_id, "error_type": exc.error_type}
            )
            detail = {"status": exc.status_code, "detail": f"{exc}; your message was saved", "trace_id": trace_id}
            if code := getattr(exc, "code", None):
                detail["code"] = code
            yield f"event: error\ndata: {json.dumps(detail)}\n\n"
            return
        assert reply is not None  # a run ends with Finished or raises
        admission.settle(reply.input_tokens, reply.output_tokens)  # every round trip of the run
        await _store_reply(request, body.conversation_id, reply, span)
        done = {"done": True, "trace_id": trace_id, "model": reply.model, **_usage(reply).model_dump()}
        yield f"data: {json.dumps(done)}\n\n"

    # Releases the admission when the stream ends, however it ends; cancelled if the client goes.
    return chat_limits.LimitedStreamingResponse(
        events(), admission=admission, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get("/conversations/{conversation_id}/usage", response_model=ConversationUsage)
async def conversation_usage(request: Request, conversation_id: str) -> ConversationUsage:
    """Tokens, cost and LLM calls of a conversation, summed from the stored replies (each counts the
    round trips of its agent run), in total and per model; `calls` also counts the failed ones."""
    query = (
        select(
            Message.model,
            func.coalesce(func.sum(Message.input_tokens), 0),
            func.coalesce(func.sum(Message.output_tokens), 0),
            func.coalesce(func.sum(Message.cost_usd), 0.0),
            func.coalesce(func.sum(func.coalesce(Message.llm_calls, 1)), 0),
        )
        .where(Message.conversation_id == conversation_id, Message.role == "assistant")
        .group_by(Message.model)
    )
    failed = select(func.count()).where(
        Message.conversation_id == conversation_id, Message.role == "user", Message.error_type.is_not(None)
    )
    async with request.app.state.sessions() as session:
        rows = (await session.execute(query)).all()
        failed_calls = await session.scalar(failed) or 0
        known = rows or await session.scalar(select(func.count()).where(Message.conversation_id == conversation_id))
    if not known:
        raise HTTPException(status_code=404, detail="no such conversation")
    by_model = {
        model or "unknown": ModelUsage(input_tokens=i, output_tokens=o, cost_usd=float(c), calls=n)
        for model, i, o, c, n in rows
    }
    return ConversationUsage(
        conversation_id=conversation_id,
        input_tokens=sum(u.input_tokens for u in by_model.values()),
        output_tokens=sum(u.output_tokens for u in by_model.values()),
        cost_usd=sum(u.cost_usd for u in by_model.values()),
        calls=sum(u.calls for u in by_model.values()) + failed_calls,
        failed_calls=failed_calls,
        by_model=by_model,
    )


@router.get("/conversations/{conversation_id}", response_model=ConversationOut)
async def get_conversation(request: Request, conversation_id: str) -> ConversationOut:
    async with request.app.state.sessions() as session:
        messages = await conversation_messages(session, conversation_id)
    if not messages:
        raise HTTPException(status_code=404, detail="no such conversation")
    return ConversationOut(
        conversation_id=conversation_id,
        messages=[
            MessageOut(role=m.role, content=m.content, created_at=m.created_at.isoformat(), trace_id=m.trace_id)
            for m in messages
        ],
    )
