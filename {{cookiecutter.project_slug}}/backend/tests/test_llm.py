# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""LLM observability: streamed and plain calls, errors, content opt-in, cost per conversation."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from genai_prices import Usage, calc_price
from opentelemetry.trace import StatusCode

from app.telemetry.testing import TelemetryCapture

LLM_SPAN = "chat gpt-4o-mini"


def stream(client: TestClient, conversation_id: str, message: str) -> list[dict]:
    """POSTs to the SSE endpoint and returns the decoded events (errors as {"error": ...})."""
    events, kind = [], "message"
    with client.stream("POST", "/api/chat/stream", json={"conversation_id": conversation_id, "message": message}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                events.append({"error": data} if kind == "error" else data)
                kind = "message"
    return events


def test_streamed_reply_arrives_in_chunks_and_is_stored(client: TestClient) -> None:
    """The SSE endpoint streams deltas, then a done event with usage; the reply is stored."""
    events = stream(client, "s1", "tell me a story")
    deltas = [e["delta"] for e in events if "delta" in e]
    assert "".join(deltas) == "Echo: tell me a story" and len(deltas) > 1
    done = events[-1]
    assert done["done"] is True and done["input_tokens"] == 4 and done["output_tokens"] == 5
    stored = client.get("/api/conversations/s1").json()["messages"]
    assert stored[-1]["content"] == "Echo: tell me a story"


def test_streamed_span_covers_the_stream_with_usage_and_time_to_first_chunk(
    client: TestClient, telemetry_capture: TelemetryCapture
) -> None:
    """One span for the whole stream; tokens from the final usage chunk; TTFC histogram recorded."""
    stream(client, "s2", "hello stream")
    llm = telemetry_capture.span(name=LLM_SPAN)
    assert llm.attributes["gen_ai.usage.input_tokens"] == 2
    assert llm.attributes["gen_ai.usage.output_tokens"] == 3
    assert llm.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert llm.attributes["gen_ai.request.stream"] is True
    assert telemetry_capture.metric_points("gen_ai.client.operation.time_to_first_chunk")


def test_stream_without_usage_records_no_tokens_rather_than_a_guess(
    client: TestClient, telemetry_capture: TelemetryCapture
) -> None:
    """No usage chunk: no token attributes and no cost."""
    events = stream(client, "s3", "quiet [stub:no-usage]")
    assert events[-1]["input_tokens"] is None
    attributes = telemetry_capture.span(name=LLM_SPAN).attributes
    assert "gen_ai.usage.input_tokens" not in attributes and "gen_ai.usage.cost" not in attributes


@pytest.mark.parametrize(
    ("marker", "error_type"),
    [
        ("[stub:500]", "500"),
        ("[stub:429]", "429"),
        ("[stub:garbage]", "malformed_response"),
        ("[stub:slow=1.5]", "timeout"),
    ],
    ids=["5xx", "rate-limit", "garbage", "timeout"],
)
def test_failed_calls_are_error_spans_with_error_type(
    client: TestClient, telemetry_capture: TelemetryCapture, marker: str, error_type: str
) -> None:
    """Each failure is an ERROR span with a short error.type and an llm.call record saying so."""
    client.post("/api/chat", json={"conversation_id": "e1", "message": marker})
    llm = telemetry_capture.span(name=LLM_SPAN)
    assert llm.status.status_code == StatusCode.ERROR
    assert llm.attributes["error.type"] == error_type
    calls = [r for r in telemetry_capture.logs() if r.log_record.body == "llm.call"]
    assert calls and calls[-1].log_record.attributes["outcome"] == error_type


def test_streamed_failure_is_an_error_event(client: TestClient, telemetry_capture: TelemetryCapture) -> None:
    """A stream that cannot start answers an SSE error event; the span is ERROR."""
    events = stream(client, "e2", "[stub:429]")
    assert events == [
        {"error": {"status": 503, "detail": events[0]["error"]["detail"], "trace_id": events[0]["error"]["trace_id"]}}
    ]
    assert telemetry_capture.span(name=LLM_SPAN).attributes["error.type"] == "429"


def test_every_call_logs_one_llm_call_record_in_its_span(
    client: TestClient, telemetry_capture: TelemetryCapture
) -> None:
    """The llm.call record has tokens, cost and latency, and the chat span's trace and span ids."""
    client.post("/api/chat", json={"conversation_id": "l1", "message": "count me"})
    llm = telemetry_capture.span(name=LLM_SPAN)
    (record,) = [r for r in telemetry_capture.logs() if r.log_record.body == "llm.call"]
    attributes = record.log_record.attributes
    assert attributes["event"] == "llm.call" and attributes["conversation_id"] == "l1"
    assert attributes["input_tokens"] == 2 and attributes["output_tokens"] == 3
    assert attributes["cost_usd"] == llm.attributes["gen_ai.usage.cost"]
    assert attributes["latency_ms"] > 0
    assert record.log_record.trace_id == llm.context.trace_id
    assert record.log_record.span_id == llm.context.span_id


def test_cost_equals_what_genai_prices_computes(client: TestClient, telemetry_capture: TelemetryCapture) -> None:
    """The span's cost is the maintained price table's, for the tokens reported."""
    client.post("/api/chat", json={"conversation_id": "p1", "message": "price check please"})
    attributes = telemetry_capture.span(name=LLM_SPAN).attributes
    usage = Usage(
        input_tokens=attributes["gen_ai.usage.input_tokens"], output_tokens=attributes["gen_ai.usage.output_tokens"]
    )
    expected = calc_price(usage, model_ref="gpt-4o-mini", provider_id="openai").total_price
    assert attributes["gen_ai.usage.cost"] == pytest.approx(float(expected))
    points = telemetry_capture.metric_points("gen_ai.client.cost")
    assert points and set(points[0].attributes) == {"gen_ai.request.model", "gen_ai.operation.name"}


def test_unknown_model_has_no_cost_but_the_call_succeeds(
    client_for: Callable[..., TestClient], settings, telemetry_capture: TelemetryCapture
) -> None:
    """A model the price table does not know: 200, tokens recorded, no cost attribute."""
    from fastapi.testclient import TestClient as Client

    from app.main import create_app

    app = create_app(
        settings.model_copy(update={"cerebe_model": "in-house-model-7b"}), telemetry_options=telemetry_capture.options()
    )
    telemetry_capture.attach(app)
    with Client(app) as client:
        assert client.post("/api/chat", json={"conversation_id": "u1", "message": "hi"}).status_code == 200
        llm = telemetry_capture.span(name="chat in-house-model-7b")
    assert llm.attributes["gen_ai.usage.input_tokens"] == 1
    assert "gen_ai.usage.cost" not in llm.attributes


def test_content_is_recorded_only_when_opted_in(
    client_for: Callable[..., TestClient], telemetry_capture: TelemetryCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY puts messages on the span."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    client = client_for()
    client.post("/api/chat", json={"conversation_id": "c1", "message": "secret plan " + "x" * 6000})
    attributes = telemetry_capture.span(name=LLM_SPAN).attributes
    recorded = json.dumps({k: v for k, v in attributes.items() if "message" in k})
    assert "secret plan" in recorded and "Echo: secret plan" in recorded
    assert "x" * 5000 not in recorded, "each text is cut to MAX_CONTENT_CHARS"


def test_usage_endpoint_sums_tokens_and_cost_per_conversation(client: TestClient) -> None:
    """GET /api/conversations/{id}/usage adds up every call of that conversation only."""
    replies = [
        client.post("/api/chat", json={"conversation_id": cid, "message": msg}).json()
        for cid, msg in [("a", "one two"), ("a", "three"), ("b", "four five six")]
    ]
    usage = client.get("/api/conversations/a/usage").json()
    assert usage["calls"] == 2
    assert usage["input_tokens"] == replies[0]["usage"]["input_tokens"] + replies[1]["usage"]["input_tokens"]
    assert usage["output_tokens"] == replies[0]["usage"]["output_tokens"] + replies[1]["usage"]["output_tokens"]
    assert usage["cost_usd"] == pytest.approx(replies[0]["usage"]["cost_usd"] + replies[1]["usage"]["cost_usd"])
    assert set(usage["by_model"]) == {"gpt-4o-mini"} and usage["by_model"]["gpt-4o-mini"]["calls"] == 2
    assert client.get("/api/conversations/b/usage").json()["calls"] == 1
    assert client.get("/api/conversations/zzz/usage").status_code == 404


def _llm_call_metrics(sampled: bool) -> tuple[dict, list, object]:
    """One plain call through LLMTelemetry under a sampled or unsampled parent: its metric points
    (name -> sorted (attributes, count or sum)), its exported spans, and the span current after it."""
    from opentelemetry import trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased

    from app.telemetry.llm import LLMTelemetry

    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider(sampler=ParentBased(ALWAYS_ON if sampled else ALWAYS_OFF))
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    llm = LLMTelemetry(tracer_provider, MeterProvider(metric_readers=[reader]))
    body = {
        "id": "r1",
        "model": "gpt-4o-mini",
        "choices": [{"finish_reason": "stop", "message": {"content": "hi"}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50},
    }
    with tracer_provider.get_tracer("test").start_as_current_span("server") as server:
        with llm.call(provider="openai", model="gpt-4o-mini", server_address="llm", server_port=443) as call:
            call.record_response(body)
        after = trace.get_current_span()
        assert after is server
    points = {
        metric.name: sorted(
            (tuple(sorted(point.attributes.items())), getattr(point, "count", None) or point.value)
            for point in metric.data.data_points
        )
        for resource in reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    return points, spans.get_finished_spans(), after


def test_unsampled_call_records_the_same_metrics_as_a_sampled_one() -> None:
    """Duration, token and cost points, their attributes and values, do not depend on sampling."""
    sampled, sampled_spans, _ = _llm_call_metrics(sampled=True)
    unsampled, unsampled_spans, _ = _llm_call_metrics(sampled=False)
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage", "gen_ai.client.cost"} <= set(unsampled)
    assert unsampled == sampled
    assert [s.name for s in sampled_spans] == [LLM_SPAN, "server"] and unsampled_spans == ()
