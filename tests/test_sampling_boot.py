"""Conversation-consistent sampling on the wire: at ratio 0.5, a conversation is traced whole or not at all.

Real uvicorn with OTEL_TRACES_SAMPLER_ARG=0.5; every request carries only
`baggage: gen_ai.conversation.id=<id>` (no traceparent), so the backend's root sampler decides.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.otlp_receiver import OtlpReceiver, Span
from tests.support.processes import clean_env, run_backend

pytestmark = pytest.mark.boot

CONVERSATIONS = 40
REQUESTS_EACH = 3
WITHOUT_BAGGAGE = 40


@dataclass
class SamplingRun:
    spans: list[Span]
    statuses: list[int]

    def server_spans_by_path(self, prefix: str) -> Counter[str]:
        return Counter(
            s.attributes["url.path"]
            for s in self.spans
            if s.kind == "SERVER" and s.attributes.get("url.path", "").startswith(prefix)
        )


def _hash(conversation_id: str) -> int:
    return int.from_bytes(hashlib.sha256(conversation_id.encode()).digest()[:8], "big")


@pytest.fixture(scope="module")
def sampled(
    default_project: Path, backend_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> SamplingRun:
    workdir = tmp_path_factory.mktemp("sampling")
    with OtlpReceiver() as otlp:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            OTEL_TRACES_SAMPLER_ARG="0.5",
            CEREBE_BASE_URL="http://127.0.0.1:9",
            DATABASE_URL=f"sqlite:///{workdir / 'sampling.db'}",
        )
        statuses = []
        with run_backend(backend_python, default_project, env, workdir / "backend.log") as backend:
            with httpx.Client(base_url=backend.url, timeout=10) as client:
                for n in range(CONVERSATIONS):
                    for _ in range(REQUESTS_EACH):
                        response = client.get(
                            f"/api/conversations/sampled-{n}",
                            headers={"baggage": f"gen_ai.conversation.id=sampled-{n}"},
                        )
                        statuses.append(response.status_code)
                for n in range(WITHOUT_BAGGAGE):
                    statuses.append(client.get(f"/api/conversations/loose-{n}").status_code)
        # Stopped gracefully: every span it kept has been flushed.
        return SamplingRun(spans=otlp.spans(), statuses=statuses)


def test_each_conversation_is_traced_whole_or_not_at_all(sampled: SamplingRun) -> None:
    """Every conversation has all 3 server spans or none, and both outcomes occur at ratio 0.5."""
    assert set(sampled.statuses) == {404}
    counts = sampled.server_spans_by_path("/api/conversations/sampled-")
    per_conversation = {n: counts.get(f"/api/conversations/sampled-{n}", 0) for n in range(CONVERSATIONS)}
    assert set(per_conversation.values()) == {0, REQUESTS_EACH}, per_conversation


def test_the_kept_conversations_are_those_the_shared_rule_keeps(sampled: SamplingRun) -> None:
    """Kept exactly when SHA-256(id)'s first 8 bytes < 0.5 * 2^64: the rule web/lib/sampling.ts applies."""
    counts = sampled.server_spans_by_path("/api/conversations/sampled-")
    kept = {n for n in range(CONVERSATIONS) if counts.get(f"/api/conversations/sampled-{n}")}
    by_rule = {n for n in range(CONVERSATIONS) if _hash(f"sampled-{n}") < 2**63}
    assert kept == by_rule


def test_without_a_conversation_the_trace_id_still_samples_at_the_ratio(sampled: SamplingRun) -> None:
    """Requests with no baggage fall back to the trace id rule: some kept, some dropped."""
    kept = sum(sampled.server_spans_by_path("/api/conversations/loose-").values())
    assert 0 < kept < WITHOUT_BAGGAGE
