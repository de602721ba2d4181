"""Small pieces of the telemetry wiring: scrubbing, replay headers, prices, JSON logs, Loki."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.sdk.trace import TracerProvider

from app.telemetry.config import TelemetrySettings
from app.telemetry.llm import PriceTable
from app.telemetry.logs import JsonFormatter
from app.telemetry.loki import LokiBatchHandler
from app.telemetry.replay import session_attributes
from app.telemetry.scrubbing import REDACTED, scrub_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/a?token=abc&x=1", f"/a?token={REDACTED}&x=1"),
        ("api_key=K&Password=p", f"api_key={REDACTED}&Password={REDACTED}"),
        ('GET /p?access_token=zz HTTP/1.1" 200', f'GET /p?access_token={REDACTED} HTTP/1.1" 200'),
        ("monkey=1&keyboard=2", "monkey=1&keyboard=2"),
        ("no query", "no query"),
    ],
    ids=["token", "two-keys-any-case", "access-log-line", "lookalike-names", "plain"],
)
def test_scrub_text_redacts_only_secret_parameters(text: str, expected: str) -> None:
    """It redacts the values of credential-like query parameters and nothing else."""
    assert scrub_text(text) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            [(b"x-highlight-request", b"s1/r1")],
            {"highlight.session_id": "s1", "highlight.trace_id": "r1", "session.id": "s1"},
        ),
        ([(b"x-session-id", b"abc")], {"session.id": "abc"}),
        (
            [(b"baggage", b"sentry-trace_id=1,sentry-replay_id=rep9")],
            {"sentry.replay_id": "rep9", "session.id": "rep9"},
        ),
        ([(b"x-highlight-request", b"/")], {}),
        ([(b"x-session-id", b"x" * 500)], {}),
        ([], {}),
    ],
    ids=["highlight", "own-header", "sentry-baggage", "empty-highlight", "too-long", "none"],
)
def test_session_attributes_from_replay_headers(headers, expected) -> None:
    """It reads the replay session from each vendor's header and ignores junk."""
    assert session_attributes(headers) == expected


def test_unknown_model_has_no_cost_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    """An unknown model costs None and one warning, never an exception."""
    prices = PriceTable(overrides={})
    with caplog.at_level(logging.WARNING, logger="app.telemetry.llm"):
        assert prices.cost_usd("openai", "no-such-model-xyz", 10, 10) is None
        assert prices.cost_usd("openai", "no-such-model-xyz", 10, 10) is None
    assert len([r for r in caplog.records if "no-such-model-xyz" in r.getMessage()]) == 1


def test_price_overrides_win() -> None:
    """Your own prices (USD per million tokens) replace the table's."""
    prices = PriceTable(overrides={"my-model": (1.0, 2.0)})
    assert prices.cost_usd("openai", "my-model", 1_000_000, 500_000) == pytest.approx(2.0)


def test_json_log_line_carries_the_active_span_ids() -> None:
    """Inside a span the JSON line has trace_id and span_id; outside it has neither."""
    formatter = JsonFormatter("svc")
    record = logging.LogRecord("app.x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.conversation_id = "c9"
    tracer = TracerProvider().get_tracer(__name__)
    with tracer.start_as_current_span("work") as span:
        inside = json.loads(formatter.format(record))
    outside = json.loads(formatter.format(record))
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")
    assert inside["message"] == "hello world" and inside["conversation_id"] == "c9"
    assert "trace_id" not in outside


class _LokiSink(BaseHTTPRequestHandler):
    pushes: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).pushes.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_loki_handler_batches_and_keeps_trace_id_out_of_labels() -> None:
    """Many records go out in few pushes; labels are service/env/level only."""
    _LokiSink.pushes = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LokiSink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handler = LokiBatchHandler(
        f"http://127.0.0.1:{server.server_address[1]}/loki/api/v1/push",
        {"service": "svc", "env": "test"},
        flush_interval=0.05,
    )
    handler.setFormatter(JsonFormatter("svc"))
    tracer = TracerProvider().get_tracer(__name__)
    with tracer.start_as_current_span("work") as span:
        for i in range(200):
            record = logging.LogRecord("app", logging.INFO, __file__, 1, "line %d", (i,), None)
            record.tags = {"trace_id": "must-not-become-a-label"}
            handler.handle(record)
    handler.close()
    server.shutdown()

    streams = [stream for push in _LokiSink.pushes for stream in push["streams"]]
    lines = [json.loads(line) for stream in streams for _, line in stream["values"]]
    assert len(lines) == 200
    assert len(_LokiSink.pushes) < 20
    assert all(stream["stream"] == {"service": "svc", "env": "test", "level": "info"} for stream in streams)
    assert {line["trace_id"] for line in lines} == {format(span.get_span_context().trace_id, "032x")}


def test_loki_handler_drops_instead_of_growing_when_loki_is_down() -> None:
    """With nothing listening, the queue stays bounded and emit never raises."""
    handler = LokiBatchHandler("http://127.0.0.1:9/loki/api/v1/push", {"service": "s"}, max_queue=50, timeout=0.2)
    handler.setFormatter(JsonFormatter("svc"))
    for i in range(5000):
        handler.handle(logging.LogRecord("app", logging.INFO, __file__, 1, "x %d", (i,), None))
    assert handler._queue.qsize() <= 50
    assert handler.dropped > 0
    handler.close()


def test_settings_reject_a_bad_sample_ratio() -> None:
    """A ratio outside [0, 1] fails at start-up with the variable's name."""
    with pytest.raises(ValueError, match="OTEL_TRACES_SAMPLER_ARG"):
        TelemetrySettings.from_env({"OTEL_TRACES_SAMPLER_ARG": "1.5"})


def test_otel_service_name_wins_over_the_argument() -> None:
    """A deployment renames the service with OTEL_SERVICE_NAME."""
    assert TelemetrySettings.from_env({"OTEL_SERVICE_NAME": "renamed"}, service_name="coded").service_name == "renamed"
    assert TelemetrySettings.from_env({}, service_name="coded").service_name == "coded"
