"""LLM observability on the booted scaffold: what a collector receives for Cerebe calls.

One uvicorn run against the scaffold's stub LLM process: plain and streamed calls in two
conversations, then 429, 500, timeout and garbage answers; a graceful stop flushes everything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.otlp_receiver import LogRecord, Metric, OtlpReceiver, Span
from tests.support.processes import clean_env, run_backend, run_stub_llm

pytestmark = pytest.mark.boot

FAILURES = {
    "[stub:429]": ("429", 503),
    "[stub:500]": ("500", 502),
    "[stub:garbage]": ("malformed_response", 502),
    "[stub:slow=1.5]": ("timeout", 504),
}


@dataclass
class LLMRun:
    plain: list[dict]
    streamed: list[dict]
    failures: dict[str, int]
    usage_a: dict
    usage_b: dict
    spans: list[Span]
    logs: list[LogRecord]
    metrics: list[Metric]
    errors: list[str]

    def llm_spans(self) -> list[Span]:
        return [s for s in self.spans if s.name == "chat gpt-4o-mini"]


def _sse(client: httpx.Client, conversation_id: str, message: str) -> list[dict]:
    events = []
    with client.stream(
        "POST", "/api/chat/stream", json={"conversation_id": conversation_id, "message": message}
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


@pytest.fixture(scope="module")
def llm_run(default_project: Path, backend_python: Path, tmp_path_factory: pytest.TempPathFactory) -> LLMRun:
    workdir = tmp_path_factory.mktemp("llm")
    with OtlpReceiver() as otlp, run_stub_llm(backend_python, default_project) as llm:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            CEREBE_BASE_URL=llm.url,
            CEREBE_TIMEOUT="1.0",
            DATABASE_URL=f"sqlite:///{workdir / 'llm.db'}",
        )
        with run_backend(backend_python, default_project, env, workdir / "backend.log") as backend:
            with httpx.Client(base_url=backend.url, timeout=10) as client:
                plain = [
                    client.post("/api/chat", json={"conversation_id": "A", "message": m}).json()
                    for m in ("first question", "second question here")
                ]
                streamed = _sse(client, "B", "stream this answer")
                failures = {
                    marker: client.post(
                        "/api/chat", json={"conversation_id": "F", "message": marker}
                    ).status_code
                    for marker in FAILURES
                }
                usage_a = client.get("/api/conversations/A/usage").json()
                usage_b = client.get("/api/conversations/B/usage").json()
        return LLMRun(
            plain,
            streamed,
            failures,
            usage_a,
            usage_b,
            otlp.spans(),
            otlp.logs(),
            otlp.metrics(),
            otlp.errors,
        )


def test_receiver_rejected_nothing(llm_run: LLMRun) -> None:
    """Every export was valid OTLP."""
    assert llm_run.errors == []


def test_plain_and_streamed_calls_are_genai_client_spans(llm_run: LLMRun) -> None:
    """Three successful calls, each a CLIENT `chat <model>` span with semconv attributes and cost."""
    ok = [s for s in llm_run.llm_spans() if s.status_code != "ERROR"]
    assert len(ok) == 3
    for span in ok:
        a = span.attributes
        assert span.kind == "CLIENT"
        assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
        assert a["gen_ai.request.model"] == a["gen_ai.response.model"] == "gpt-4o-mini"
        assert a["gen_ai.response.id"].startswith("chatcmpl-stub-")
        assert a["gen_ai.response.finish_reasons"] == ["stop"]
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert a["gen_ai.usage.cost"] > 0
        assert a["gen_ai.conversation.id"] in {"A", "B"}
    streamed = [s for s in ok if s.attributes.get("gen_ai.request.stream")]
    assert len(streamed) == 1 and streamed[0].attributes["gen_ai.conversation.id"] == "B"


def test_failures_are_error_spans_and_clear_api_errors(llm_run: LLMRun) -> None:
    """429, 500, garbage and timeout: ERROR spans with error.type; the API answers 503/502/502/504."""
    assert llm_run.failures == {marker: status for marker, (_, status) in FAILURES.items()}
    failed = [s for s in llm_run.llm_spans() if s.status_code == "ERROR"]
    assert sorted(s.attributes["error.type"] for s in failed) == sorted(t for t, _ in FAILURES.values())


def test_genai_metrics_and_cost_counter_arrive_without_high_cardinality_labels(llm_run: LLMRun) -> None:
    """Token and duration histograms, TTFC, and the cost counter labelled by model and operation only."""
    names = {m.name: m for m in llm_run.metrics}
    for name in (
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai.client.cost",
    ):
        assert name in names, sorted(names)
    token_types = {
        p["attributes"].get("gen_ai.token.type") for p in names["gen_ai.client.token.usage"].data_points
    }
    assert token_types == {"input", "output"}
    (cost_point,) = names["gen_ai.client.cost"].data_points
    assert set(cost_point["attributes"]) == {"gen_ai.request.model", "gen_ai.operation.name"}
    assert cost_point["value"] == pytest.approx(
        sum(s.attributes.get("gen_ai.usage.cost", 0) for s in llm_run.llm_spans())
    )
    for metric in names.values():
        for point in metric.data_points:
            assert "gen_ai.conversation.id" not in point["attributes"]


def test_each_call_logs_one_llm_call_record_with_its_trace(llm_run: LLMRun) -> None:
    """Seven calls, seven llm.call records, each inside its chat span's trace."""
    records = [r for r in llm_run.logs if r.body == "llm.call"]
    assert len(records) == 7
    spans_by_id = {s.span_id: s for s in llm_run.llm_spans()}
    for record in records:
        span = spans_by_id[record.span_id]
        assert record.trace_id == span.trace_id
        assert record.attributes["event"] == "llm.call" and record.attributes["latency_ms"] > 0


def test_usage_endpoint_adds_up_each_conversation(llm_run: LLMRun) -> None:
    """/api/conversations/{id}/usage: per-conversation totals equal the replies' own usage."""
    a = llm_run.usage_a
    assert a["calls"] == 2 and a["input_tokens"] == sum(r["usage"]["input_tokens"] for r in llm_run.plain)
    assert a["cost_usd"] == pytest.approx(sum(r["usage"]["cost_usd"] for r in llm_run.plain))
    done = llm_run.streamed[-1]
    assert llm_run.usage_b["calls"] == 1 and llm_run.usage_b["output_tokens"] == done["output_tokens"]
