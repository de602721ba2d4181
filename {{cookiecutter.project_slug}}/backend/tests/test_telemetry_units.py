# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""Small pieces of the telemetry wiring: scrubbing, replay headers, prices, JSON logs, Loki."""

from __future__ import annotations

import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.sdk.trace import TracerProvider

from app.settings import Settings
from app.telemetry.config import SettingsError, TelemetrySettings
from app.telemetry.llm import PriceTable
from app.telemetry.logs import JsonFormatter
from app.telemetry.loki import LokiHandler, LokiPusher
from app.telemetry.replay import DEFAULT_VENDOR, VENDORS, session_attributes
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
    ("vendor", "headers", "expected"),
    [
        (
            "highlight",
            [(b"x-highlight-request", b"s1/r1")],
            {"highlight.session_id": "s1", "highlight.trace_id": "r1", "session.id": "s1"},
        ),
        ("builtin", [(b"x-session-id", b"abc")], {"session.id": "abc"}),
        ("highlight", [(b"x-session-id", b"abc")], {"session.id": "abc"}),
        (
            "sentry",
            [(b"baggage", b"sentry-trace_id=1,sentry-replay_id=rep9")],
            {"sentry.replay_id": "rep9", "session.id": "rep9"},
        ),
        ("none", [(b"x-highlight-request", b"s1/r1"), (b"baggage", b"sentry-replay_id=rep9")], {}),
        ("sentry", [(b"x-highlight-request", b"s1/r1")], {}),
        ("highlight", [(b"x-highlight-request", b"/")], {}),
        ("builtin", [(b"x-session-id", b"x" * 500)], {}),
        ("builtin", [], {}),
    ],
    ids=[
        "highlight",
        "own-header",
        "own-header-before-the-vendor-has-a-session",
        "sentry-baggage",
        "other-vendors-headers-unread",
        "highlight-header-unread-under-sentry",
        "empty-highlight",
        "too-long",
        "none",
    ],
)
def test_session_attributes_from_replay_headers(vendor, headers, expected) -> None:
    """It reads the session from the chosen vendor's header or x-session-id, and ignores the rest and junk."""
    assert session_attributes(headers, vendor) == expected


def test_session_replay_names_the_valid_vendors_when_wrong() -> None:
    """SESSION_REPLAY=<unknown> fails the settings in one line that names every vendor of the registry."""
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"SESSION_REPLAY": "fullstory"})
    message = str(error.value)
    assert "\n" not in message and message.startswith("SESSION_REPLAY='fullstory'")
    assert all(f"'{name}'" in message for name in VENDORS)
    assert Settings.from_env({"SESSION_REPLAY": "sentry"}).session_replay == "sentry"
    assert Settings.from_env({}).session_replay == DEFAULT_VENDOR


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


def test_cost_equals_genai_prices_for_every_model() -> None:
    """The cached, linear price form gives exactly genai-prices' cost, tiered models included."""
    from genai_prices import Usage, calc_price
    from genai_prices.data_snapshot import get_snapshot

    prices = PriceTable(overrides={})
    checked = 0
    for provider in get_snapshot().providers:
        for model in provider.models:
            # Below and above the usual tier thresholds (128k and 200k input tokens).
            for input_tokens, output_tokens in ((0, 0), (1_234, 567), (300_000, 20_000)):
                usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
                try:
                    expected = float(calc_price(usage, model_ref=model.id, provider_id=provider.id).total_price)
                except Exception:  # noqa: BLE001 - models genai-prices itself cannot price this way
                    continue
                assert prices.cost_usd(provider.id, model.id, input_tokens, output_tokens) == expected, model.id
                checked += 1
    assert checked > 1000


def _otlp_log_request(make_handler) -> object:
    """The OTLP request a handler's records encode to (timestamps and ids zeroed: they differ per run)."""
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("app.test.otlp_handler")
    logger.handlers[:], logger.propagate, logger.level = [make_handler(provider)], False, logging.DEBUG
    try:
        with TracerProvider().get_tracer("test").start_as_current_span("request"):
            extra = {"order_id": 7, "cost_usd": None, "tags": ["a", "b"], "nested": {"k": 1}, "session.id": "s1"}
            logger.info("order %s shipped", "o-7", extra=extra)
            logger.warning("deprecated event", extra={"event.name": "old.event"})
            logger.critical("event", extra={"otel.event.name": "new.event", "event.name": "old.event"})
            try:
                raise ValueError("bad input")
            except ValueError:
                logger.exception("failed %d", 3)
            logger.debug("debug line")
        logger.error("outside any span")
    finally:
        logger.handlers.clear()
        logger.propagate = True
    request = encode_logs(exporter.get_finished_logs())
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                record.time_unix_nano = record.observed_time_unix_nano = 0
                record.trace_id = bytes(16) if record.trace_id else b""
                record.span_id = bytes(8) if record.span_id else b""
    return request


def test_otlp_log_handler_sends_what_the_logging_instrumentation_sends() -> None:
    """Body, severity, attributes, event names, exception fields and span context: the same protobuf."""
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    from app.telemetry.logs import OtlpLogHandler

    ours = _otlp_log_request(OtlpLogHandler)
    assert len(ours.resource_logs[0].scope_logs[0].log_records) == 6
    assert ours == _otlp_log_request(lambda provider: LoggingHandler(logger_provider=provider))


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
    entered = threading.Event()  # set when a push arrives
    release = threading.Event()  # a push is answered only once this is set

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).entered.set()
        type(self).release.wait(30)
        type(self).pushes.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def loki_sink():
    """A Loki push endpoint that answers every push at once (unless a test clears `release`)."""
    _LokiSink.pushes = []
    _LokiSink.entered.clear()
    _LokiSink.release.set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LokiSink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/loki/api/v1/push"
    _LokiSink.release.set()
    server.shutdown()


def _loki_handler(url: str, *, batch_size: int, max_queue: int = 10_000, labels=None) -> LokiHandler:
    # An hour: a batch goes out only when full or at close, whatever the machine's speed.
    # Generous timeouts: a push held back by the test, or a slow machine, must not fail one.
    pusher = LokiPusher(
        url, labels or {"service": "svc", "env": "test"}, batch_size=batch_size, flush_interval=3600, timeout=30
    )
    handler = LokiHandler(pusher, max_queue=max_queue, timeout=30)
    handler.setFormatter(JsonFormatter("svc"))
    return handler


def _record(i: int, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("app", level, __file__, 1, "line %d", (i,), None)


def test_loki_handler_batches_and_keeps_trace_id_out_of_labels(loki_sink: str) -> None:
    """200 records with a batch size of 50 are exactly 4 pushes; labels are service/env/level only."""
    handler = _loki_handler(loki_sink, batch_size=50)
    tracer = TracerProvider().get_tracer(__name__)
    with tracer.start_as_current_span("work") as span:
        for i in range(200):
            record = _record(i)
            record.tags = {"trace_id": "must-not-become-a-label"}
            handler.handle(record)
    handler.close()

    streams = [stream for push in _LokiSink.pushes for stream in push["streams"]]
    lines = [json.loads(line) for stream in streams for _, line in stream["values"]]
    assert [line["message"] for line in lines] == [f"line {i}" for i in range(200)]
    assert len(_LokiSink.pushes) == 4
    assert all(stream["stream"] == {"service": "svc", "env": "test", "level": "info"} for stream in streams)
    assert {line["trace_id"] for line in lines} == {format(span.get_span_context().trace_id, "032x")}


def test_loki_pusher_blocked_by_a_slow_loki_queues_boundedly_then_pushes_in_batches(loki_sink: str) -> None:
    """While a push hangs, logging never blocks: the queue fills to its bound, the rest is counted
    as dropped, and once Loki answers the queued records go out in full batches."""
    _LokiSink.release.clear()
    handler = _loki_handler(loki_sink, batch_size=10, max_queue=100)
    for i in range(10):
        handler.handle(_record(i))
    assert _LokiSink.entered.wait(10), "the first full batch is pushed"
    for i in range(10, 160):  # the listener is stuck in the first push: 100 fit, 50 do not
        handler.handle(_record(i))
    assert (handler.queue.qsize(), handler.dropped) == (100, 50)
    _LokiSink.release.set()
    handler.close()

    lines = [
        json.loads(line)["message"] for push in _LokiSink.pushes for s in push["streams"] for _, line in s["values"]
    ]
    assert lines == [f"line {i}" for i in range(110)]
    assert [sum(len(s["values"]) for s in push["streams"]) for push in _LokiSink.pushes] == [10] * 11
    assert handler.pusher.pushes == 11 and handler.pusher.dropped == 0


def test_loki_push_puts_each_level_in_its_own_stream(loki_sink: str) -> None:
    """One push carries one stream per level, labelled service, env and level."""
    handler = _loki_handler(loki_sink, batch_size=1000)
    handler.handle(_record(1, logging.INFO))
    handler.handle(_record(2, logging.ERROR))
    handler.close()
    ((push),) = _LokiSink.pushes
    assert sorted(s["stream"]["level"] for s in push["streams"]) == ["error", "info"]
    assert all(set(s["stream"]) == {"service", "env", "level"} for s in push["streams"])


def test_loki_handler_drops_instead_of_growing_when_loki_is_down(caplog: pytest.LogCaptureFixture) -> None:
    """With nothing listening, the queue stays bounded, emit never raises, every record is counted
    as dropped, and the outage is said once, not once per batch."""
    handler = _loki_handler("http://127.0.0.1:9/loki/api/v1/push", batch_size=10, max_queue=50)
    with caplog.at_level(logging.WARNING, logger="app.telemetry.loki"):
        for i in range(5000):
            handler.handle(_record(i))
            assert handler.queue.qsize() <= 50
        handler.close()
    assert handler.dropped == 5000
    assert handler.pusher.pushes == 0
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "Cannot push logs to Loki at http://127.0.0.1:9/loki/api/v1/push"
    ]


def test_a_forked_child_pushes_its_own_records(loki_sink: str) -> None:
    """After fork (gunicorn --preload), the child gets its own queue, thread and connections."""
    handler = _loki_handler(loki_sink, batch_size=1000)
    handler.handle(_record(0))
    child = os.fork()
    if child == 0:  # the child: log, push at close, leave without running the parent's cleanup
        try:
            handler.handle(_record(1))
            handler.close()
        finally:
            os._exit(0)
    assert os.waitpid(child, 0)[1] == 0
    handler.close()
    pushed = sorted(
        json.loads(line)["message"] for push in _LokiSink.pushes for s in push["streams"] for _, line in s["values"]
    )
    assert pushed == ["line 0", "line 1"], "the child pushes only its own record, the parent its own"


def test_loki_handler_close_twice_is_harmless(loki_sink: str) -> None:
    """logging.shutdown() closes every handler again at interpreter exit: the second close is a no-op."""
    handler = _loki_handler(loki_sink, batch_size=1000)
    handler.handle(_record(1))
    handler.close()
    handler.close()
    handler.pusher.close()
    assert len(_LokiSink.pushes) == 1


def test_settings_reject_a_bad_sample_ratio() -> None:
    """A ratio outside [0, 1] fails at start-up with the variable's name."""
    with pytest.raises(ValueError, match="OTEL_TRACES_SAMPLER_ARG"):
        TelemetrySettings.from_env({"OTEL_TRACES_SAMPLER_ARG": "1.5"})


def test_otel_service_name_wins_over_the_argument() -> None:
    """A deployment renames the service with OTEL_SERVICE_NAME."""
    assert TelemetrySettings.from_env({"OTEL_SERVICE_NAME": "renamed"}, service_name="coded").service_name == "renamed"
    assert TelemetrySettings.from_env({}, service_name="coded").service_name == "coded"


def test_bad_settings_fail_with_one_line_naming_the_variable() -> None:
    """Each bad value is named by its environment variable, on one line, with the rule it broke."""
    with pytest.raises(SettingsError) as error:
        TelemetrySettings.from_env({"LOKI_BATCH_SIZE": "lots", "OTEL_SDK_DISABLED": "maybe", "LOG_LEVEL": "LOUD"})
    message = str(error.value)
    assert "\n" not in message
    assert (
        "LOKI_BATCH_SIZE='lots'" in message and "OTEL_SDK_DISABLED='maybe'" in message and "LOG_LEVEL='LOUD'" in message
    )
    with pytest.raises(SettingsError, match=r"^CEREBE_TIMEOUT='-1': Input should be greater than 0$"):
        Settings.from_env({"CEREBE_TIMEOUT": "-1"})


def test_settings_read_the_environment_and_ignore_empty_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Variables set in the process environment are read; an empty one means "use the default"."""
    monkeypatch.setenv("CHAT_HISTORY_LIMIT", "7")
    monkeypatch.setenv("CEREBE_BASE_URL", "http://llm.local/")
    monkeypatch.setenv("CEREBE_MODEL", "")
    settings = Settings.from_env()
    assert settings.history_limit == 7
    assert settings.cerebe_base_url == "http://llm.local"
    assert settings.cerebe_model == Settings.model_fields["cerebe_model"].default
    assert Settings.from_env({}).history_limit == 20, "a given mapping replaces the environment"


def test_every_setting_documents_its_environment_variable() -> None:
    """Each field's description (its docstring) names the variable(s) it is read from."""
    for settings_class in (Settings, TelemetrySettings):
        for name in settings_class.model_fields:
            description = settings_class.model_fields[name].description or ""
            for env_name in settings_class._env_names(name):
                assert env_name in description, f"{settings_class.__name__}.{name}: {env_name} not in its docstring"


def test_per_signal_endpoint_wins_over_the_base_endpoint() -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as given; the others get /v1/<signal> appended."""
    from app.telemetry.exporters import signal_url

    settings = TelemetrySettings.from_env(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/x"}
    )
    assert signal_url(settings, "traces") == "http://t:4318/x"
    assert signal_url(settings, "logs") == "http://c:4318/v1/logs"


class _Collector(BaseHTTPRequestHandler):
    status = 400

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_failing_collector_is_said_once_per_outage_and_its_recovery_once(caplog: pytest.LogCaptureFixture) -> None:
    """Three failed exports: one WARNING naming the signal and the SDK's reason, none of the SDK's
    own lines; the first export that gets through again says so, once."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    from app.telemetry.exporters import OtlpExporters

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Collector.status = 400
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    otlp = OtlpExporters.build(
        TelemetrySettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}), spans=True, logs=False, metrics=False
    )
    try:
        with caplog.at_level(logging.INFO):
            assert [otlp.spans.export([]) for _ in range(3)] == [SpanExportResult.FAILURE] * 3
            _Collector.status = 200
            assert otlp.spans.export([]) == otlp.spans.export([]) == SpanExportResult.SUCCESS
    finally:
        otlp.detach()
        server.shutdown()
    said = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert [(name, level) for name, level, _ in said] == [("app.telemetry.export.traces", "WARNING")] * 2, said
    assert (
        said[0][2].startswith(f"Cannot export traces to {endpoint}/v1/traces (Failed to export") and "400" in said[0][2]
    )
    assert said[1][2] == f"Exporting traces to {endpoint}/v1/traces again"


DROPPING = "dropping them until it answers"


def test_shutdown_skips_the_flush_of_a_collector_that_refuses_connections(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listens at the endpoint: shutdown says so once per signal and exports fail at once."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    from app.telemetry.exporters import OtlpExporters

    otlp = OtlpExporters.build(
        TelemetrySettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}),
        spans=True,
        logs=True,
        metrics=False,
    )
    with caplog.at_level(logging.WARNING):
        otlp.prepare_shutdown()
        assert otlp.spans.export([]) == SpanExportResult.FAILURE
    otlp.detach()
    assert sorted(r.getMessage() for r in caplog.records) == [
        f"Cannot export {signal} to http://127.0.0.1:9/v1/{signal} (not reachable at shutdown); {DROPPING}"
        for signal in ("logs", "traces")
    ]
