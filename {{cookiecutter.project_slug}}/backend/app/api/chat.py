"""The chat API: store the user's message, ask Cerebe, store and return the reply."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request
from opentelemetry import trace
from pydantic import BaseModel, Field

from ..cerebe import CerebeClient, CerebeError
from ..db import Message, conversation_messages

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["chat"])

ConversationId = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")


class ChatRequest(BaseModel):
    conversation_id: str = ConversationId
    message: str = Field(min_length=1, max_length=8000)


class Usage(BaseModel):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None


class ChatResponse(BaseModel):
    conversation_id: str
    reply: str
    model: str
    trace_id: str | None
    usage: Usage


class MessageOut(BaseModel):
    role: str
    content: str
    created_at: str
    trace_id: str | None


class ConversationOut(BaseModel):
    conversation_id: str
    messages: list[MessageOut]


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


@router.post("/chat", response_model=ChatResponse)
async def chat(body: ChatRequest, request: Request) -> ChatResponse:
    sessions = request.app.state.sessions
    cerebe: CerebeClient = request.app.state.cerebe
    trace_id = current_trace_id()

    # The user's message is stored first, so a failing LLM call never loses it.
    async with sessions() as session:
        session.add(Message(conversation_id=body.conversation_id, role="user", content=body.message, trace_id=trace_id))
        await session.commit()
        history = await conversation_messages(
            session, body.conversation_id, limit=request.app.state.settings.history_limit
        )

    try:
        reply = await cerebe.chat(
            [{"role": m.role, "content": m.content} for m in history], conversation_id=body.conversation_id
        )
    except CerebeError as exc:
        logger.warning(
            "chat failed: %s", exc, extra={"conversation_id": body.conversation_id, "error_type": exc.error_type}
        )
        raise HTTPException(status_code=exc.status_code, detail=f"{exc}; your message was saved") from None

    async with sessions() as session:
        session.add(
            Message(
                conversation_id=body.conversation_id,
                role="assistant",
                content=reply.content,
                trace_id=trace_id,
                model=reply.model,
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                cost_usd=reply.cost_usd,
            )
        )
        await session.commit()

    logger.info(
        "chat reply stored",
        extra={
            "conversation_id": body.conversation_id,
            "model": reply.model,
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "cost_usd": reply.cost_usd,
        },
    )
    return ChatResponse(
        conversation_id=body.conversation_id,
        reply=reply.content,
        model=reply.model,
        trace_id=trace_id,
        usage=Usage(input_tokens=reply.input_tokens, output_tokens=reply.output_tokens, cost_usd=reply.cost_usd),
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
