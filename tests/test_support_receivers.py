"""The test oracles (OTLP and Loki receivers) decode the real wire formats and reject bad ones."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.loki_receiver import LokiReceiver
from tests.support.otlp_receiver import OtlpReceiver

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}

# Runs in the rendered backend's venv: the real SDK and OTLP/HTTP exporters, aimed at the receiver (argv[1]).
OTEL_SDK_SCRIPT = r"""
import json, logging, sys
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

endpoint = sys.argv[1]
resource = Resource.create({"service.name": "oracle-check", "deployment.environment": "test"})
tp = TracerProvider(resource=resource)
tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint + "/v1/traces")))
reader = PeriodicExportingMetricReader(
    OTLPMetricExporter(endpoint=endpoint + "/v1/metrics"), export_interval_millis=60_000
)
mp = MeterProvider(resource=resource, metric_readers=[reader])
lp = LoggerProvider(resource=resource)
lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint + "/v1/logs")))
log = logging.getLogger("oracle.app")
log.propagate = False
log.setLevel(logging.INFO)
log.addHandler(LoggingHandler(logger_provider=lp))

tracer = tp.get_tracer("oracle.tracer", "1.2.3")
latency = mp.get_meter("oracle.meter").create_histogram("app.latency", unit="ms")
with tracer.start_as_current_span("GET /chat", kind=SpanKind.SERVER) as parent:
    parent.set_attributes({
        "http.route": "/chat", "http.status_code": 200, "ratio": 0.25, "cached": False,
        "tags": ["a", "b"], "sizes": [1, 2, 3],
    })
    with tracer.start_as_current_span("llm call", kind=SpanKind.CLIENT) as child:
        child.add_event("retry", {"attempt": 2})
        child.set_status(Status(StatusCode.ERROR, "upstream 502"))
        log.warning("hello from the span", extra={"user.id": 42})
        latency.record(12.5, {"route": "/chat"})
        latency.record(7.5, {"route": "/chat"})
ids = {
    "trace_id": format(parent.get_span_context().trace_id, "032x"),
    "parent_span_id": format(parent.get_span_context().span_id, "016x"),
    "child_span_id": format(child.get_span_context().span_id, "016x"),
}
tp.shutdown(); lp.shutdown(); mp.shutdown()
print(json.dumps(ids))
"""

# Runs in the rendered backend (cwd backend/): its own Loki pusher, both records in one push.
LOKI_SCRIPT = r"""
import logging, sys
from app.telemetry.loki import LokiHandler, LokiPusher
handler = LokiHandler(LokiPusher(sys.argv[1], {"app": "sage"}, batch_size=2, flush_interval=3600))
log = logging.getLogger("oracle.loki")
log.propagate = False
log.addHandler(handler)
log.warning("hello loki %s", "world")
log.error("second line")
handler.close()
"""


def run_in_backend_venv(
    python: Path, script: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    proc = subprocess.run(
        [str(python), "-c", script, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr  # logging handlers report failed sends this way
    return proc.stdout


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_otlp_receiver_decodes_sdk_spans_logs_and_histogram(compression: str, backend_python: Path) -> None:
    """Spans, a correlated log and a histogram exported by the real SDK decode with matching ids."""
    with OtlpReceiver() as rx:
        out = run_in_backend_venv(
            backend_python, OTEL_SDK_SCRIPT, rx.endpoint, env={"OTEL_EXPORTER_OTLP_COMPRESSION": compression}
        )
        ids = json.loads(out)
        rx.assert_no_errors()

        spans = {s.name: s for s in rx.spans()}
        parent, child = spans["GET /chat"], spans["llm call"]
        assert parent.trace_id == child.trace_id == ids["trace_id"]
        assert (parent.span_id, child.span_id) == (ids["parent_span_id"], ids["child_span_id"])
        assert (parent.parent_span_id, child.parent_span_id) == ("", parent.span_id)
        assert (parent.kind, child.kind) == ("SERVER", "CLIENT")
        assert parent.attributes == {
            "http.route": "/chat",
            "http.status_code": 200,
            "ratio": 0.25,
            "cached": False,
            "tags": ["a", "b"],
            "sizes": [1, 2, 3],
        }
        assert (child.status_code, child.status_message) == ("ERROR", "upstream 502")
        assert child.events == [("retry", {"attempt": 2})]
        assert parent.resource["service.name"] == "oracle-check"
        assert parent.scope == "oracle.tracer" and parent.scope_version == "1.2.3"
        assert 0 < parent.start_ns <= child.start_ns <= child.end_ns <= parent.end_ns

        [record] = rx.logs()
        assert record.body == "hello from the span"
        assert (record.trace_id, record.span_id) == (ids["trace_id"], ids["child_span_id"])
        assert (record.severity_text, record.severity_number) == ("WARN", 13)
        assert record.attributes["user.id"] == 42
        assert record.resource["service.name"] == "oracle-check"

        [metric] = [m for m in rx.metrics() if m.name == "app.latency"]
        assert (metric.kind, metric.unit, metric.scope) == ("histogram", "ms", "oracle.meter")
        [point] = metric.data_points
        assert point["attributes"] == {"route": "/chat"}
        assert (point["count"], point["sum"], point["min"], point["max"]) == (2, 20.0, 7.5, 12.5)

        assert rx.requests == {"/v1/traces": 1, "/v1/logs": 1, "/v1/metrics": 1}
        assert set(rx.content_types) == {"application/x-protobuf"}
        assert set(rx.content_encodings) == ({"gzip"} if compression == "gzip" else {""})


def test_otlp_json_hex_ids_decode_to_the_same_ids() -> None:
    """OTLP/JSON hex trace/span ids (spans, links, logs, exemplars) decode to the same hex, not base64."""
    trace_id, span_id, parent_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "eee19b7ec3c1b173"
    span = {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent_id,
        "name": "browser fetch",
        "kind": 3,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000500000000",
        "attributes": [
            {"key": "http.url", "value": {"stringValue": "/api/chat"}},
            {"key": "http.status_code", "value": {"intValue": "200"}},
            {"key": "ok", "value": {"boolValue": True}},
            {"key": "ms", "value": {"doubleValue": 1.5}},
            {"key": "ids", "value": {"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "x"}]}}},
            {
                "key": "kv",
                "value": {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}},
            },
            {"key": "raw", "value": {"bytesValue": "AAE="}},
        ],
        "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"}],
        "status": {"code": 2, "message": "boom"},
    }
    traces = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}
    logs = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {"logRecords": [{"traceId": trace_id, "spanId": span_id, "body": {"stringValue": "hi"}}]}
                ]
            }
        ]
    }
    exemplar = {
        "asDouble": 3.0,
        "traceId": trace_id,
        "spanId": span_id,
        "timeUnixNano": "1700000000000000000",
    }
    point = {"asDouble": 3.0, "timeUnixNano": "1700000000000000000", "exemplars": [exemplar]}
    metrics = {
        "resourceMetrics": [
            {"scopeMetrics": [{"metrics": [{"name": "g", "gauge": {"dataPoints": [point]}}]}]}
        ]
    }

    # What a naive receiver gets: json_format base64-decodes the hex into a 24-byte "trace id".
    naive = json_format.ParseDict(traces, ExportTraceServiceRequest())
    assert len(naive.resource_spans[0].scope_spans[0].spans[0].trace_id) == 24

    with OtlpReceiver() as rx, httpx.Client(base_url=rx.endpoint) as client:
        for path, doc in (("/v1/traces", traces), ("/v1/logs", logs), ("/v1/metrics", metrics)):
            resp = client.post(path, json=doc)
            assert (resp.status_code, resp.headers["content-type"], resp.json()) == (
                200,
                "application/json",
                {},
            )
        rx.assert_no_errors()
        [got] = rx.spans()
        assert (got.trace_id, got.span_id, got.parent_span_id) == (trace_id, span_id, parent_id)
        assert (got.kind, got.status_code, got.status_message) == ("CLIENT", "ERROR", "boom")
        assert got.attributes == {
            "http.url": "/api/chat",
            "http.status_code": 200,
            "ok": True,
            "ms": 1.5,
            "ids": [1, "x"],
            "kv": {"k": "v"},
            "raw": b"\x00\x01",
        }
        assert got.links == [("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", {})]
        [record] = rx.logs()
        assert (record.trace_id, record.span_id, record.body) == (trace_id, span_id, "hi")
        [metric] = rx.metrics()
        assert metric.data_points[0]["exemplars"][0]["trace_id"] == trace_id


def test_otlp_json_base64_ids_are_rejected() -> None:
    """An OTLP/JSON span with base64 ids (protobuf's canonical JSON) is answered 400 and recorded."""
    canonical = json_format.MessageToDict(_one_span_request())  # ids come out base64
    with OtlpReceiver() as rx:
        resp = httpx.post(rx.endpoint + "/v1/traces", json=canonical)
        assert resp.status_code == 400
        assert rx.spans() == []
        assert len(rx.errors) == 1 and "hex" in rx.errors[0]


def _one_span_request() -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes(range(1, 17)), bytes(range(1, 9)), "s"
    return req


def _one_log_request() -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    record = req.resource_logs.add().scope_logs.add().log_records.add()
    record.time_unix_nano, record.body.string_value = 1700000000000000000, "hi"
    return req


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/v1/traces", b"\xff\xfe not protobuf", PROTOBUF),
        ("/v1/traces", b"\x98\x06\x01", PROTOBUF),  # field 99 = 1: not in ExportTraceServiceRequest
        ("/v1/traces", b"{not json", JSON),
        ("/v1/traces", b"\x1f\x8b truncated gzip", {**PROTOBUF, "Content-Encoding": "gzip"}),
        ("/v1/logs", _one_span_request().SerializeToString(), PROTOBUF),
        ("/v1/traces", _one_log_request().SerializeToString(), PROTOBUF),  # parses, all fields unknown
    ],
    ids=[
        "garbage-protobuf",
        "unknown-field",
        "bad-json",
        "bad-gzip",
        "traces-sent-to-logs",
        "logs-sent-to-traces",
    ],
)
def test_otlp_malformed_body_answers_400_and_is_recorded(path: str, body: bytes, headers: dict) -> None:
    """A body that does not decode as the path's request is answered 400, recorded, and nothing is kept."""
    with OtlpReceiver() as rx:
        resp = httpx.post(rx.endpoint + path, content=body, headers=headers)
        assert resp.status_code == 400, resp.text
        assert len(rx.errors) == 1 and rx.errors[0].startswith(f"POST {path}: 400")
        assert (rx.spans(), rx.logs(), rx.metrics()) == ([], [], [])
        assert rx.requests == {path: 1}


def test_otlp_unknown_path_404_and_unsupported_type_415() -> None:
    """Unknown paths answer 404 and unsupported content types 415, both recorded as errors."""
    with OtlpReceiver() as rx:
        assert (
            httpx.post(rx.endpoint + "/v1/traces/v1/traces", content=b"", headers=PROTOBUF).status_code == 404
        )
        assert (
            httpx.post(
                rx.endpoint + "/v1/traces", content=b"x", headers={"Content-Type": "text/plain"}
            ).status_code
            == 415
        )
        assert len(rx.errors) == 2


def test_otlp_protobuf_answer_is_an_empty_export_response() -> None:
    """An accepted protobuf export is answered 200 with an empty ExportTraceServiceResponse."""
    with OtlpReceiver() as rx:
        resp = httpx.post(
            rx.endpoint + "/v1/traces", content=_one_span_request().SerializeToString(), headers=PROTOBUF
        )
        assert (resp.status_code, resp.headers["content-type"]) == (200, "application/x-protobuf")
        assert ExportTraceServiceResponse.FromString(resp.content) == ExportTraceServiceResponse()
        assert [s.span_id for s in rx.spans()] == ["0102030405060708"]


def test_otlp_fault_modes_status_garbage_and_delay_keep_counting() -> None:
    """status=500 answers 500 and keeps nothing; garbage answers 200 junk; delay holds the answer."""
    body = _one_span_request().SerializeToString()
    with OtlpReceiver(status=500) as rx:
        assert httpx.post(rx.endpoint + "/v1/traces", content=body, headers=PROTOBUF).status_code == 500
        assert (rx.requests, rx.spans()) == ({"/v1/traces": 1}, [])
        rx.status, rx.garbage = None, True
        resp = httpx.post(rx.endpoint + "/v1/traces", content=body, headers=PROTOBUF)
        assert resp.status_code == 200
        with pytest.raises(Exception, match="parsing"):
            ExportTraceServiceResponse.FromString(resp.content)
        rx.garbage, rx.delay = False, 0.3
        started = time.monotonic()
        assert httpx.post(rx.endpoint + "/v1/traces", content=body, headers=PROTOBUF).status_code == 200
        assert time.monotonic() - started >= 0.3
        assert rx.requests == {"/v1/traces": 3} and len(rx.spans()) == 2


def test_wait_for_returns_the_value_or_fails_with_a_summary() -> None:
    """wait_for returns the predicate's truthy value, and on timeout says what did arrive."""
    with OtlpReceiver() as rx:
        httpx.post(
            rx.endpoint + "/v1/traces", content=_one_span_request().SerializeToString(), headers=PROTOBUF
        )
        assert rx.wait_for(lambda r: [s.name for s in r.spans()]) == ["s"]
        with pytest.raises(AssertionError, match=r"spans=1 \['s'\]"):
            rx.wait_for(lambda r: r.logs(), timeout=0.2)
        rx.clear()
        assert (rx.spans(), rx.requests) == ([], {})


def test_otlp_concurrent_exports_are_all_counted_and_kept() -> None:
    """Concurrent exports from many threads are each counted once and all their spans kept."""
    body = _one_span_request().SerializeToString()

    def post_ten(_: int) -> list[int]:
        with httpx.Client(base_url=rx.endpoint, headers=PROTOBUF) as client:
            return [client.post("/v1/traces", content=body).status_code for _ in range(10)]

    with OtlpReceiver() as rx, ThreadPoolExecutor(8) as pool:
        codes = [code for batch in pool.map(post_ten, range(8)) for code in batch]
        assert codes == [200] * 80
        assert (rx.requests, len(rx.spans()), len(rx.exports()), rx.errors) == (
            {"/v1/traces": 80},
            80,
            80,
            [],
        )


def test_loki_receiver_decodes_the_backends_own_pushes(backend_python: Path, default_project: Path) -> None:
    """The rendered backend's Loki pusher (telemetry/loki.py): labelled entries, both in one POST."""
    with LokiReceiver() as rx:
        before = time.time_ns()
        run_in_backend_venv(backend_python, LOKI_SCRIPT, rx.push_url, cwd=default_project / "backend")
        rx.assert_no_errors()
        first, second = sorted(rx.entries(), key=lambda entry: entry.ts_ns)
        assert first.labels == {"app": "sage", "level": "warning"}
        assert (first.line, first.metadata) == ("hello loki world", {})
        assert before <= first.ts_ns <= second.ts_ns <= time.time_ns()
        assert (second.labels["level"], second.line) == ("error", "second line")
        assert rx.pushes == 1  # batched: one POST for both records


def test_loki_push_with_structured_metadata_and_gzip_decodes() -> None:
    """A gzip JSON push to the base URL's push path decodes labels, ns timestamps and structured metadata."""
    push = {
        "streams": [
            {
                "stream": {"service_name": "api", "level": "info"},
                "values": [
                    ["1700000000000000001", "plain line"],
                    ["1700000000000000002", "with meta", {"trace_id": "5b8efff798038103d269b633813fc60c"}],
                ],
            }
        ]
    }
    with LokiReceiver() as rx:
        resp = httpx.post(
            rx.url + "/loki/api/v1/push",
            content=gzip.compress(json.dumps(push).encode()),
            headers={**JSON, "Content-Encoding": "gzip"},
        )
        assert (resp.status_code, resp.content) == (204, b"")
        plain, meta = rx.entries()
        assert (plain.ts_ns, plain.line, plain.metadata) == (1700000000000000001, "plain line", {})
        assert meta.metadata == {"trace_id": "5b8efff798038103d269b633813fc60c"}
        assert plain.labels == meta.labels == {"service_name": "api", "level": "info"}


def _stream(**overrides: object) -> dict:
    return {"streams": [{"stream": {"app": "x"}, "values": [["1700000000000000000", "line"]], **overrides}]}


@pytest.mark.parametrize(
    "push",
    [
        _stream(values=[["1700000000000000000"]]),
        _stream(values=[[1700000000000000000, "line"]]),
        _stream(values=[["2023-11-14T22:13:20Z", "line"]]),
        _stream(values=[["1700000000000000000", {"msg": "line"}]]),
        _stream(values=[["1700000000000000000", "line", {"k": 1}]]),
        _stream(stream={"port": 8000}),
        _stream(stream={"service.name": "x"}),
        _stream(stream={}),
        {"streams": [{"labels": '{app="x"}', "entries": [{"ts": "2023-11-14T22:13:20Z", "line": "l"}]}]},
        [],
    ],
    ids=[
        "short-value",
        "numeric-ts",
        "rfc3339-ts",
        "non-string-line",
        "non-string-metadata",
        "non-string-label",
        "bad-label-name",
        "no-labels",
        "v0-format",
        "not-an-object",
    ],
)
def test_loki_malformed_push_answers_400_and_is_recorded(push: object) -> None:
    """A push that Loki would refuse is answered 400, recorded, and keeps no entries."""
    with LokiReceiver() as rx:
        resp = httpx.post(rx.push_url, json=push)
        assert resp.status_code == 400, resp.text
        assert rx.entries() == [] and len(rx.errors) == 1 and rx.pushes == 1


def test_loki_protobuf_push_415_and_fault_status() -> None:
    """Protobuf pushes are refused with 415 (recorded); status=500 answers 500 and keeps nothing."""
    with LokiReceiver() as rx:
        resp = httpx.post(
            rx.push_url, content=b"\x00snappy", headers={"Content-Type": "application/x-protobuf"}
        )
        assert resp.status_code == 415 and "protobuf" in rx.errors[0]
        rx.status = 500
        assert httpx.post(rx.push_url, json=_stream()).status_code == 500
        assert (rx.entries(), rx.pushes) == ([], 2)
