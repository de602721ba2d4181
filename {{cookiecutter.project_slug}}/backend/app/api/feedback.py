# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""User feedback on a reply: `POST /api/feedback` records a thumbs up or down inside the reply's trace.

Body: {"trace_id": "<32 lowercase hex, as returned with the reply>", "score": 1 | -1,
       "comment": "optional, at most 1000 characters"}

What it emits, in the trace of the REPLY (its span context is stored with the reply, db.py):
- a `gen_ai.evaluation.result` event (an OTLP log record with that event name) on the reply's span:
  gen_ai.evaluation.name = "user_feedback", gen_ai.evaluation.score.value / .score.label,
  gen_ai.conversation.id, and the comment, scrubbed, as gen_ai.evaluation.explanation;
- a short `feedback` span, child of the reply's span, with `app.feedback.score`: the collector's
  tail sampler keeps every trace that has a span with app.feedback.score = -1;
- the counter `app.feedback` by gen_ai.request.model and app.feedback.score.
The feedback request's own server span gets app.feedback.score too, and a link to the reply's span.

Input is hostile: the body is read with a cap while it streams (413), compressed bodies are
refused (415), anything malformed is a 422 with one line, an unknown trace_id a 404, each client
(ratelimit.client_id: its address, the browser's behind a trusted proxy, FORWARDED_ALLOW_IPS)
gets FEEDBACK_PER_MINUTE requests a minute (429) and one vote per reply (409). The comment is
stripped of control characters and its secrets redacted (telemetry/scrubbing.py clean_free_text).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from opentelemetry import trace
from opentelemetry._logs import NoOpLogger, SeverityNumber
from opentelemetry.metrics import NoOpMeter
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_CONVERSATION_ID,
    GEN_AI_EVALUATION_EXPLANATION,
    GEN_AI_EVALUATION_NAME,
    GEN_AI_EVALUATION_SCORE_LABEL,
    GEN_AI_EVALUATION_SCORE_VALUE,
    GEN_AI_REQUEST_MODEL,
)
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..db import FeedbackVote, Message
from ..limits import read_body
from ..ratelimit import SlidingWindow, client_id, retry_after_header
from ..telemetry.scrubbing import clean_free_text

router = APIRouter(prefix="/api", tags=["feedback"])

# The GenAI semantic conventions name this event; the installed semconv package has no constant.
EVALUATION_RESULT_EVENT = "gen_ai.evaluation.result"
EVALUATION_NAME = "user_feedback"
FEEDBACK_SCORE = "app.feedback.score"
FEEDBACK_METRIC = "app.feedback"

MAX_COMMENT_CHARS = 1000
# A 1000-character comment is at most 6 KB of JSON (\uXXXX escapes); the rest is headroom.
MAX_BODY_BYTES = 8 * 1024
FEEDBACK_PER_MINUTE = 30


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    score: Literal[1, -1]
    comment: Annotated[str, Field(max_length=MAX_COMMENT_CHARS)] | None = None

    @field_validator("score", mode="before")
    @classmethod
    def _an_integer(cls, value: object) -> object:
        # JSON true and 1.0 equal 1 to Python, and would pass the Literal as a thumbs up.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("score must be the integer 1 or -1")
        return value


def parse_feedback(body: bytes) -> FeedbackIn:
    """Strict JSON (no "1" for 1, no true for 1); raises HTTPException(422, one line)."""
    try:
        return FeedbackIn.model_validate_json(body, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise HTTPException(422, f"{where + ': ' if where else ''}{first['msg']}{more}") from None


class FeedbackTelemetry:
    """The event, the `feedback` span and the counter, from the app's providers (no-ops when off)."""

    def __init__(self, app: FastAPI) -> None:
        telemetry = app.state.telemetry
        tracer_provider = telemetry.tracer_provider or trace.NoOpTracerProvider()
        self._tracer = tracer_provider.get_tracer(__name__)
        self._logger = telemetry.logger_provider.get_logger(__name__) if telemetry.logger_provider else NoOpLogger("")
        meter = telemetry.meter_provider.get_meter(__name__) if telemetry.meter_provider else NoOpMeter("")
        self._counter = meter.create_counter(FEEDBACK_METRIC, unit="{feedback}", description="User feedback on replies")

    def record(self, reply: Message, feedback: FeedbackIn) -> None:
        reply_span = SpanContext(
            trace_id=int(reply.trace_id, 16),
            span_id=int(reply.span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(reply.trace_flags or 0),
        )
        reply_context = trace.set_span_in_context(NonRecordingSpan(reply_span))
        request_span = trace.get_current_span()
        request_span.set_attribute(FEEDBACK_SCORE, feedback.score)
        request_span.add_link(reply_span, {"app.link.reason": "feedback on this reply"})

        attributes = {
            GEN_AI_EVALUATION_NAME: EVALUATION_NAME,
            GEN_AI_EVALUATION_SCORE_VALUE: float(feedback.score),
            GEN_AI_EVALUATION_SCORE_LABEL: "positive" if feedback.score > 0 else "negative",
            GEN_AI_CONVERSATION_ID: reply.conversation_id,
        }
        if feedback.comment:
            attributes[GEN_AI_EVALUATION_EXPLANATION] = clean_free_text(feedback.comment)
        # A span of its own in the reply's trace: what the tail sampler sees to keep that trace.
        with self._tracer.start_as_current_span(
            "feedback",
            context=reply_context,
            kind=SpanKind.INTERNAL,
            attributes={FEEDBACK_SCORE: feedback.score, GEN_AI_CONVERSATION_ID: reply.conversation_id},
            links=[Link(request_span.get_span_context())],
        ):
            self._logger.emit(
                event_name=EVALUATION_RESULT_EVENT,
                context=reply_context,
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                body=f"user feedback {feedback.score:+d} on a reply",
                attributes=attributes,
            )
        self._counter.add(1, {GEN_AI_REQUEST_MODEL: reply.model or "unknown", FEEDBACK_SCORE: feedback.score})


def mount(app: FastAPI) -> None:
    """Adds the route and what it keeps for the app's lifetime (call after init_telemetry)."""
    app.state.feedback_telemetry = FeedbackTelemetry(app)
    app.state.feedback_limiter = SlidingWindow(FEEDBACK_PER_MINUTE, 60.0)
    app.include_router(router)


@router.post("/feedback", status_code=204, response_class=Response)
async def feedback(request: Request) -> Response:
    client = client_id(request)
    if wait := request.app.state.feedback_limiter.acquire(client):
        raise HTTPException(429, "too much feedback from this client; retry in a minute", retry_after_header(wait))
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding != "identity":
        raise HTTPException(415, f"Content-Encoding {encoding!r} is not accepted; send plain JSON")
    body = parse_feedback(await read_body(request, MAX_BODY_BYTES))
    query = (
        select(Message)
        .where(Message.trace_id == body.trace_id, Message.role == "assistant", Message.span_id.is_not(None))
        .order_by(Message.id.desc())
        .limit(1)
    )
    async with request.app.state.sessions() as session:
        reply = await session.scalar(query)
        if reply is None:
            raise HTTPException(404, "no reply with that trace_id")
        session.add(FeedbackVote(trace_id=body.trace_id, client=client[:64], score=body.score))
        try:
            await session.commit()
        except IntegrityError:
            raise HTTPException(409, "this client has rated this reply already") from None
    request.app.state.feedback_telemetry.record(reply, body)
    return Response(status_code=204)


__all__ = ["FeedbackIn", "mount", "parse_feedback", "router"]
