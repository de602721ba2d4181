# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""The local telemetry store (app/telemetry/store.py) and what the MCP server makes of it
(app/mcp_server/): bounds on disk, off the request path, scrubbing, the tree with agent and tool steps,
and the parsers of Tempo's and Loki's answers."""

from __future__ import annotations

import base64
import logging
import threading
import time
from pathlib import Path

import anyio
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

from app.mcp_server.local import LocalSource
from app.mcp_server.model import Filters, InvalidInput, parse_since, trace_id_or_error
from app.mcp_server.stack import parse_loki_streams, parse_otlp_trace, traceql
from app.telemetry import store
from app.telemetry.config import TelemetrySettings


def _writer(path: Path, **limits: float) -> store.StoreWriter:
    return store.StoreWriter(
        path, max_bytes=int(limits.get("max_bytes", 8 << 20)), max_age_seconds=limits.get("max_age", 3600)
    )


def _provider(writer: store.StoreWriter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(store.StoreSpanProcessor(writer))
    return provider


def _trace(source: LocalSource, trace_id: int):
    return anyio.run(source.trace, f"{trace_id:032x}")


def test_spans_and_logs_of_a_request_land_in_the_store_scrubbed(tmp_path: Path) -> None:
    """Ended spans and log records are written off the request path, with query secrets redacted."""
    writer = _writer(tmp_path / "store.sqlite3")
    provider = _provider(writer)
    logs = LoggerProvider()
    logs.add_log_record_processor(store.StoreLogProcessor(writer))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(
        "GET /api/x",
        kind=SpanKind.SERVER,
        attributes={"url.query": "api_key=hunter2&page=2", "http.route": "/api/x", "password": "pw"},
    ) as span:
        logs.get_logger("app.test").emit(body="inside the request", severity_text="ERROR")
    assert writer.flush(5)
    found = _trace(LocalSource(writer.path), span.get_span_context().trace_id)
    (stored,) = found.spans
    assert stored.attributes["url.query"] == "api_key=[REDACTED]&page=2"
    assert stored.attributes["password"] == "[REDACTED]"
    (log,) = found.logs
    assert log.body == "inside the request" and log.span_id == f"{span.get_span_context().span_id:016x}"
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"hunter2" not in raw
    writer.close()


def test_on_end_never_waits_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    """With the writer's queue full, ending a span costs microseconds and drops the span (counted)."""
    writer = store.StoreWriter(tmp_path / "s.sqlite3", max_bytes=1 << 20, max_age_seconds=60, queue_size=1)
    stalled = threading.Event()
    writer._write = lambda batch: stalled.wait(10)  # a disk that has stopped answering
    tracer = _provider(writer).get_tracer("test")
    started = time.perf_counter()
    for _ in range(200):
        with tracer.start_as_current_span("work"):
            pass
    per_span = (time.perf_counter() - started) / 200
    assert writer.dropped >= 150, writer.dropped
    assert per_span < 0.002, per_span
    stalled.set()


def test_the_store_stays_within_its_size_limit_keeping_the_newest(tmp_path: Path) -> None:
    """Past TELEMETRY_STORE_MAX_BYTES the oldest rows go; the file (database and WAL) stays bounded."""
    path = tmp_path / "bounded.sqlite3"
    limit = 512 * 1024
    writer = _writer(path, max_bytes=limit)
    tracer = _provider(writer).get_tracer("test")
    ids = []
    for index in range(3000):
        with tracer.start_as_current_span("bulk", attributes={"payload": f"{index:06d}" + "x" * 600}) as span:
            ids.append(span.get_span_context().trace_id)
        if index % 500 == 499:
            assert writer.flush(10)
            writer.prune()
    assert writer.flush(10)
    writer.prune()
    writer.close()
    on_disk = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert on_disk <= limit + store.WAL_BYTES + 64 * 1024, on_disk
    source = LocalSource(path)
    assert _trace(source, ids[-1]) is not None, "the newest trace is kept"
    assert _trace(source, ids[0]) is None, "the oldest trace made room"


def test_rows_past_the_age_limit_are_deleted(tmp_path: Path) -> None:
    """A span that ended longer ago than TELEMETRY_STORE_MAX_AGE_HOURS is gone after the next prune."""
    writer = _writer(tmp_path / "aged.sqlite3", max_age=60)
    tracer = _provider(writer).get_tracer("test")
    old_end = time.time_ns() - 3600 * 10**9
    old = tracer.start_span("old", start_time=old_end - 1000)
    old.end(end_time=old_end)
    with tracer.start_as_current_span("new") as new:
        pass
    assert writer.flush(5)
    writer.prune()
    source = LocalSource(writer.path)
    assert _trace(source, old.get_span_context().trace_id) is None
    assert _trace(source, new.get_span_context().trace_id) is not None
    writer.close()


def test_the_store_is_on_in_local_development_and_off_with_a_collector() -> None:
    """Like the console view: on without an OTLP endpoint, off with one or in Kubernetes; forced by TELEMETRY_STORE."""
    assert TelemetrySettings.from_env({}).store is True
    assert TelemetrySettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}).store is False
    assert TelemetrySettings.from_env({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}).store is False
    assert TelemetrySettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "TELEMETRY_STORE": "true"}).store
    with pytest.raises(ValueError, match="TELEMETRY_STORE_MAX_BYTES"):
        TelemetrySettings.from_env({"TELEMETRY_STORE_MAX_BYTES": "10"})


def test_the_tree_shows_agent_and_tool_steps_from_their_attributes(tmp_path: Path) -> None:
    """invoke_agent / execute_tool / chat spans (GenAI semconv) read as agent, tool and LLM steps."""
    writer = _writer(tmp_path / "agent.sqlite3")
    tracer = _provider(writer).get_tracer("test")
    with tracer.start_as_current_span(
        "POST /api/agent",
        kind=SpanKind.SERVER,
        attributes={"http.route": "/api/agent", "http.response.status_code": 200},
    ) as root:
        with tracer.start_as_current_span(
            "invoke_agent support",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"},
        ):
            with tracer.start_as_current_span(
                "chat gpt-4o-mini",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 12,
                    "gen_ai.usage.output_tokens": 5,
                    "gen_ai.usage.cost": 0.0000048,
                },
            ):
                pass
            with tracer.start_as_current_span(
                "execute_tool lookup_order",
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "lookup_order",
                    "gen_ai.tool.call.id": "call_7",
                    "error.type": "TimeoutError",
                },
            ) as tool:
                tool.set_status(Status(StatusCode.ERROR))
    assert writer.flush(5)
    trace = _trace(LocalSource(writer.path), root.get_span_context().trace_id)
    lines = trace.tree().splitlines()
    assert "POST /api/agent 200" in lines[0]
    assert lines[1].startswith("  └─ agent support  "), lines
    assert lines[2].startswith("     ├─ chat gpt-4o-mini  12 in / 5 out tokens · $0.0000048  "), lines
    assert lines[3].startswith("     └─ tool lookup_order  call call_7 ✗ TimeoutError  "), lines
    summary = trace.summary()
    assert [(s["operation"], s["agent"], s["tool"]) for s in summary["agent_steps"]] == [
        ("invoke_agent", "support", None),
        ("execute_tool", None, "lookup_order"),
    ]
    assert summary["agent_steps"][1]["error_type"] == "TimeoutError"
    assert [c["model"] for c in summary["llm_calls"]] == ["gpt-4o-mini"] and summary["input_tokens"] == 12
    writer.close()


def test_ids_and_windows_are_validated_and_clamped() -> None:
    """A trace id is 32 hex digits, not all zero; `since` is clamped to 7 days; anything else is refused."""
    assert trace_id_or_error(" 4BF92F3577B34DA6A3CE929D0E0E4736 ") == "4bf92f3577b34da6a3ce929d0e0e4736"
    for bad in ("", "0" * 32, "g" * 32, "4bf92f35", "'; DROP TABLE spans; --"):
        with pytest.raises(InvalidInput):
            trace_id_or_error(bad)
    assert parse_since("90m").seconds == 5400
    assert parse_since("10000d").seconds == 7 * 86400 and parse_since("10000d").clamped_from == "10000d"
    for bad in ("", "0m", "-5m", "1y", "soon", "9" * 40 + "d"):
        with pytest.raises(InvalidInput):
            parse_since(bad)


def test_tempo_and_loki_answers_parse_into_the_same_shape() -> None:
    """Tempo's OTLP/JSON (base64 ids, int64 as strings) and Loki's streams (categorized or not)."""
    b64 = lambda hex_id: base64.b64encode(bytes.fromhex(hex_id)).decode()  # noqa: E731
    body = {
        "batches": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": b64("0af7651916cd43dd8448eb211c80319c"),
                                "spanId": b64("b7ad6b7169203331"),
                                "name": "POST /api/chat",
                                "kind": "SPAN_KIND_SERVER",
                                "startTimeUnixNano": "1000",
                                "endTimeUnixNano": "2001000",
                                "attributes": [{"key": "http.response.status_code", "value": {"intValue": "502"}}],
                                "status": {"code": "STATUS_CODE_ERROR"},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    (span,) = parse_otlp_trace(body)
    assert (span.trace_id, span.span_id, span.parent_id) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        None,
    )
    assert span.kind == "SERVER" and span.error and span.attributes["http.response.status_code"] == 502
    assert span.duration_ms == 2.0 and span.service == "api"
    streams = {
        "status": "success",
        "data": {
            "resultType": "streams",
            "result": [
                {
                    "stream": {"service_name": "api"},
                    "values": [
                        ["5", "plain", {"structuredMetadata": {"trace_id": "ab" * 16, "severity_text": "ERROR"}}]
                    ],
                },
                {"stream": {"trace_id": "cd" * 16, "severity_text": "INFO"}, "values": [["3", "merged"]]},
            ],
        },
    }
    merged, plain = parse_loki_streams(streams)
    assert (merged.body, merged.trace_id, merged.error) == ("merged", "cd" * 16, False)
    assert (plain.body, plain.trace_id, plain.error) == ("plain", "ab" * 16, True)
    assert parse_loki_streams({"data": {"resultType": "matrix"}}) == [] and parse_loki_streams("x") == []
    query = traceql(Filters(since=parse_since("1h"), conversation_id='a"b', status="error", min_duration_ms=3_600_000))
    assert query == '{ span.gen_ai.conversation.id = "a\\"b" } && { status = error } && { traceDuration >= 3600000ms }'


def test_stored_log_lines_keep_their_logger_for_python_records(tmp_path: Path) -> None:
    """Records from Python logging (via the app's OTLP handler) are stored under their logger's name."""
    from app.telemetry.logs import OtlpLogHandler

    writer = _writer(tmp_path / "logs.sqlite3")
    provider = _provider(writer)
    logs = LoggerProvider()
    logs.add_log_record_processor(store.StoreLogProcessor(writer))
    logger = logging.getLogger("app.test.store")
    handler = OtlpLogHandler(logs)
    logger.addHandler(handler)
    try:
        with provider.get_tracer("test").start_as_current_span("request") as span:
            logger.error("it broke")
    finally:
        logger.removeHandler(handler)
    assert writer.flush(5)
    found = _trace(LocalSource(writer.path), span.get_span_context().trace_id)
    assert [(g.scope, g.severity, g.body) for g in found.logs] == [("app.test.store", "ERROR", "it broke")]
    writer.close()


def test_recent_errors_groups_error_log_lines_by_logger_and_exception(tmp_path: Path) -> None:
    """Error lines (with their traces) are grouped by logger and exception type; warnings are not errors."""
    from app.mcp_server.server import TelemetryTools
    from app.telemetry.logs import OtlpLogHandler

    writer = _writer(tmp_path / "errors.sqlite3")
    provider = _provider(writer)
    logs = LoggerProvider()
    logs.add_log_record_processor(store.StoreLogProcessor(writer))
    logger = logging.getLogger("app.test.errors")
    handler = OtlpLogHandler(logs)
    logger.addHandler(handler)
    trace_ids = []
    try:
        for attempt in range(2):
            with provider.get_tracer("test").start_as_current_span(f"job {attempt}") as span:
                trace_ids.append(f"{span.get_span_context().trace_id:032x}")
                try:
                    raise ValueError("bad input")
                except ValueError:
                    logger.exception("job failed")
        logger.warning("only a warning")
    finally:
        logger.removeHandler(handler)
    assert writer.flush(5)
    result = anyio.run(TelemetryTools(LocalSource(writer.path)).recent_errors, "1h")
    text = result.content[0].text
    assert "2 error log line(s)" in text, text
    assert f"- log app.test.errors · ValueError: 2 line(s), traces {trace_ids[1]}, {trace_ids[0]}" in text, text
    assert "only a warning" not in text
    writer.close()
