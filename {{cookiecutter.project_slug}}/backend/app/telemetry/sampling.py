# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Conversation-consistent sampling: at a ratio below 1, all traces of one conversation are kept
or dropped together, here and in the browser (web/lib/sampling.ts decides the same way).

The rule, for a new trace (no parent) whose context carries W3C baggage `gen_ai.conversation.id`:

    hash = the first 8 bytes of SHA-256(UTF-8 conversation id), as an unsigned big-endian integer
    keep  <=>  hash < floor(ratio * 2**64)

ratio * 2**64 is exact in IEEE doubles (a power-of-two scaling), so both languages get the same
threshold. Without a conversation id the trace id decides (OpenTelemetry's TraceIdRatioBased);
a parent's decision is always followed (ParentBased). testdata/sampling-vectors.json holds ids
and the decisions at several ratios; the Python and the TypeScript tests both check them.

A client chooses its baggage: it can pick a conversation id that is kept. That buys a trace of
its own requests, nothing more.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GEN_AI_CONVERSATION_ID
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

CONVERSATION_BAGGAGE_KEY = GEN_AI_CONVERSATION_ID


def conversation_hash(conversation_id: str) -> int:
    """The first 8 bytes of SHA-256 of the id, as an unsigned integer below 2**64."""
    return int.from_bytes(hashlib.sha256(conversation_id.encode()).digest()[:8], "big")


def conversation_threshold(ratio: float) -> int:
    """Hashes below this are kept: 0 keeps none, 2**64 (ratio 1) keeps all."""
    return math.floor(min(max(ratio, 0.0), 1.0) * 2**64)


def keeps_conversation(conversation_id: str, ratio: float) -> bool:
    return conversation_hash(conversation_id) < conversation_threshold(ratio)


class ConversationRatioSampler(Sampler):
    """Root sampler: the conversation id in baggage decides; without one, the trace id does."""

    def __init__(self, ratio: float) -> None:
        self._ratio = ratio
        self._threshold = conversation_threshold(ratio)
        self._by_trace_id = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        conversation = baggage.get_baggage(CONVERSATION_BAGGAGE_KEY, parent_context)
        if not isinstance(conversation, str) or not conversation:
            return self._by_trace_id.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        if conversation_hash(conversation) < self._threshold:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)
        return SamplingResult(Decision.DROP, None, trace_state)

    def get_description(self) -> str:
        return f"ConversationRatioSampler(ratio={self._ratio})"


def conversation_sampler(ratio: float) -> Sampler:
    """Follows a parent's decision; a new trace is kept by its conversation, else its trace id."""
    return ParentBased(ConversationRatioSampler(ratio))
