# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""Conversation-consistent sampling: the shared test vectors, and the sampler's three paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from app.telemetry.sampling import (
    CONVERSATION_BAGGAGE_KEY,
    conversation_hash,
    conversation_sampler,
    conversation_threshold,
    keeps_conversation,
)

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "testdata" / "sampling-vectors.json").read_text())
CASES = [
    (case["id"], ratio, keep)
    for case in VECTORS["cases"]
    for ratio, keep in zip(VECTORS["ratios"], case["keep"], strict=True)
]


@pytest.mark.parametrize(("conversation_id", "ratio", "keep"), CASES)
def test_decisions_match_the_shared_vectors(conversation_id: str, ratio: float, keep: bool) -> None:
    """Python decides every (id, ratio) of testdata/sampling-vectors.json as listed (so does web/)."""
    assert keeps_conversation(conversation_id, ratio) is keep


def test_hash_and_thresholds_match_the_shared_vectors() -> None:
    """The hash is the listed SHA-256 prefix; the thresholds are the listed integers."""
    for case in VECTORS["cases"]:
        assert conversation_hash(case["id"]) == int(case["sha256_prefix"], 16)
    assert [str(conversation_threshold(r)) for r in VECTORS["ratios"]] == VECTORS["thresholds"]


def _decide(ratio: float, context, trace_id: int = 1) -> Decision:
    return conversation_sampler(ratio).should_sample(context, trace_id, "span").decision


def test_a_conversation_in_baggage_decides_whatever_the_trace_id() -> None:
    """Every trace id of a conversation gets the conversation's decision."""
    kept = next(c["id"] for c in VECTORS["cases"] if c["keep"][VECTORS["ratios"].index(0.5)])
    dropped = next(c["id"] for c in VECTORS["cases"] if not c["keep"][VECTORS["ratios"].index(0.5)])
    for trace_id in (1, 2**64 - 1, 2**127 + 12345, 2**128 - 1):
        assert _decide(0.5, baggage.set_baggage(CONVERSATION_BAGGAGE_KEY, kept), trace_id).is_sampled()
        assert not _decide(0.5, baggage.set_baggage(CONVERSATION_BAGGAGE_KEY, dropped), trace_id).is_sampled()


def test_without_a_conversation_the_trace_id_decides() -> None:
    """No baggage: OpenTelemetry's trace id rule (low 64 bits against the ratio)."""
    assert _decide(0.5, None, trace_id=1).is_sampled()
    assert not _decide(0.5, None, trace_id=2**64 - 1).is_sampled()


def test_a_parents_decision_wins_over_the_conversation() -> None:
    """A sampled parent is followed even when the conversation would be dropped, and vice versa."""
    dropped = next(c["id"] for c in VECTORS["cases"] if not c["keep"][VECTORS["ratios"].index(0.5)])
    parent = SpanContext(trace_id=5, span_id=6, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    in_conversation = baggage.set_baggage(CONVERSATION_BAGGAGE_KEY, dropped)
    context = trace.set_span_in_context(NonRecordingSpan(parent), in_conversation)
    assert _decide(0.5, context).is_sampled()
    unsampled = SpanContext(trace_id=5, span_id=6, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    assert not _decide(1.0, trace.set_span_in_context(NonRecordingSpan(unsampled))).is_sampled()
