# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""The console view's tree builder, its bounds, and when it is on (app/telemetry/console.py)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from app.telemetry import console
from app.telemetry.config import TelemetrySettings

REMOTE_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
REMOTE_PARENT = SpanContext(
    REMOTE_TRACE_ID, 0xB7AD6B7169203331, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
)


class View:
    """A tracer provider with only the console view on it, printing into a string."""

    def __init__(self, buffer: console.TraceBuffer, sampler: Sampler | None = None) -> None:
        self.buffer = buffer
        self.out = io.StringIO()
        self.provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
        self.provider.add_span_processor(console.ConsoleSpanProcessor(buffer, self.out))
        self.tracer = self.provider.get_tracer("test")
        self.logger = logging.getLogger("test.console")
        self.logger.setLevel(logging.INFO)
        self.handler = console.ConsoleLogHandler(buffer)
        self.logger.addHandler(self.handler)

    def text(self) -> str:
        return self.out.getvalue()


@pytest.fixture
def view() -> Iterator[View]:
    made = View(console.TraceBuffer())
    yield made
    made.logger.removeHandler(made.handler)


def remote_parent() -> object:
    return trace.set_span_in_context(NonRecordingSpan(REMOTE_PARENT))


def test_tree_shows_route_status_children_logs_and_trace_id(view: View) -> None:
    """A request under a browser's traceparent prints as one tree: route, status, DB, HTTP out, LLM, logs."""
    with view.tracer.start_as_current_span(
        "POST /api/chat",
        context=remote_parent(),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "POST", "http.route": "/api/chat", "http.response.status_code": 200},
    ):
        with view.tracer.start_as_current_span(
            "INSERT app.db",
            kind=SpanKind.CLIENT,
            attributes={"db.system.name": "sqlite", "db.query.text": "INSERT INTO messages (a)\n VALUES (?)"},
        ):
            pass
        with view.tracer.start_as_current_span(
            "chat gpt-4o-mini",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 7,
                "gen_ai.usage.cost": 0.0000123,
            },
        ):
            with view.tracer.start_as_current_span(
                "POST",
                kind=SpanKind.CLIENT,
                attributes={
                    "http.request.method": "POST",
                    "url.full": "http://user:pw@llm.local:8001/v1/chat/completions?key=secret",
                    "http.response.status_code": 200,
                },
            ):
                pass
            view.logger.info("llm.call")
        view.logger.warning("reply stored for %s", "demo")

    lines = view.text().splitlines()
    assert "POST /api/chat 200" in lines[0] and f"trace {REMOTE_TRACE_ID:032x}" in lines[0], lines
    assert lines[1].startswith("  ├─ INSERT app.db  INSERT INTO messages (a) VALUES (?)  "), lines
    assert lines[2].startswith("  ├─ chat gpt-4o-mini  12 in / 7 out tokens · $0.0000123  "), lines
    assert lines[3].startswith("  │  ├─ POST http://llm.local:8001/v1/chat/completions 200  "), lines
    assert lines[4] == "  │  └─ INFO test.console: llm.call", lines
    assert lines[5] == "  └─ WARNING test.console: reply stored for demo", lines
    assert len(lines) == 6 and "secret" not in view.text() and "\x1b[" not in view.text()
    assert view.buffer.sizes() == (0, 0, 0)


def test_an_error_span_says_why(view: View) -> None:
    """A failed child is marked with its error.type."""
    with view.tracer.start_as_current_span("GET /x", context=remote_parent(), kind=SpanKind.SERVER):
        with view.tracer.start_as_current_span("chat m", attributes={"gen_ai.operation.name": "chat"}) as span:
            span.set_attribute("error.type", "timeout")
            span.set_status(Status(StatusCode.ERROR))
    assert "chat m  ✗ timeout" in view.text()


def test_two_local_roots_of_one_trace_print_apart(view: View) -> None:
    """Two requests under one browser trace are two trees, each with only its own children."""
    parent = remote_parent()
    first = view.tracer.start_span("GET /a", context=parent, kind=SpanKind.SERVER)
    second = view.tracer.start_span("GET /b", context=parent, kind=SpanKind.SERVER)
    view.tracer.start_span("child of b", context=trace.set_span_in_context(second)).end()
    view.tracer.start_span("child of a", context=trace.set_span_in_context(first)).end()
    first.end()
    assert "child of a" in view.text() and "child of b" not in view.text()
    second.end()
    assert view.text().count("child of b") == 1 and view.buffer.sizes() == (0, 0, 0)


def test_more_spans_than_the_cap_are_counted_not_kept() -> None:
    """Past MAX_SPANS / MAX_LOG_LINES a trace keeps nothing more; the tree says how much it left out."""
    made = View(console.TraceBuffer(max_traces=4, max_spans=10, max_logs=3))
    try:
        with made.tracer.start_as_current_span("GET /many", context=remote_parent(), kind=SpanKind.SERVER):
            for i in range(500):
                with made.tracer.start_as_current_span(f"step {i}"):
                    made.logger.info("line %d", i)
            assert made.buffer.sizes() == (1, 10, 3)
        lines = made.text().splitlines()
    finally:
        made.logger.removeHandler(made.handler)
    assert len(lines) == 1 + 10 + 3 + 1, lines
    assert lines[-1].endswith("… 490 spans and 497 log lines not shown (console limits)")
    assert made.buffer.sizes() == (0, 0, 0)


def test_roots_that_never_end_evict_the_oldest_trace() -> None:
    """Traces whose root never ends here are held up to max_traces; the oldest goes first."""
    made = View(console.TraceBuffer(max_traces=5, max_spans=10, max_logs=10))
    roots = []
    for _ in range(50):
        root = made.tracer.start_span("never ends")
        made.tracer.start_span("child", context=trace.set_span_in_context(root)).end()
        roots.append(root)
    assert made.buffer.sizes() == (5, 5, 0)
    roots[0].end()  # evicted long ago: prints alone
    roots[-1].end()  # still held: prints with its child
    trees = made.text().split("never ends")
    assert len(trees) == 3 and "child" not in trees[1] and "child" in trees[2]
    made.logger.removeHandler(made.handler)


def test_install_prints_to_stderr_not_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """stdout carries the JSON log lines; the tree goes to stderr, without colours when not a terminal."""
    provider = TracerProvider()
    handler = console.install(provider)
    try:
        with provider.get_tracer("test").start_as_current_span("GET /stderr", context=remote_parent()):
            logging.getLogger("test.console").warning("inside")
    finally:
        logging.getLogger().removeHandler(handler)
    captured = capsys.readouterr()
    assert "GET /stderr" in captured.err and "WARNING test.console: inside" in captured.err
    assert "GET /stderr" not in captured.out and "\x1b[" not in captured.err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("no_color", "coloured"), [(None, True), ("1", False)])
def test_colours_only_on_a_terminal_without_no_color(
    monkeypatch: pytest.MonkeyPatch, no_color: str | None, coloured: bool
) -> None:
    """ANSI colours when the stream is a terminal, unless NO_COLOR is set."""
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    terminal = _Terminal()
    provider = TracerProvider()
    provider.add_span_processor(console.ConsoleSpanProcessor(console.TraceBuffer(), terminal))
    provider.get_tracer("test").start_span("GET /tty", context=remote_parent()).end()
    assert "GET /tty" in terminal.getvalue()
    assert ("\x1b[" in terminal.getvalue()) is coloured


class _RecordOnly(Sampler):
    def should_sample(self, *args: object, **kwargs: object) -> SamplingResult:
        return SamplingResult(Decision.RECORD_ONLY)

    def get_description(self) -> str:
        return "record only"


def test_unsampled_spans_and_their_logs_cost_nothing() -> None:
    """A recorded but unsampled trace is neither buffered nor printed."""
    made = View(console.TraceBuffer(), sampler=_RecordOnly())
    with made.tracer.start_as_current_span("GET /quiet"):
        with made.tracer.start_as_current_span("child"):
            made.logger.info("not kept")
        assert made.buffer.sizes() == (0, 0, 0)
    made.logger.removeHandler(made.handler)
    assert made.text() == ""


def test_an_unmatched_route_prints_its_path_without_control_characters(view: View) -> None:
    """No http.route (a 404): the path names the request, `GET /nope 404`; the client wrote it, so a
    control character (a terminal escape, a newline) prints as "?"."""
    with view.tracer.start_as_current_span(
        "GET",
        context=remote_parent(),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "url.path": "/nope\x1b[2J\nX", "http.response.status_code": 404},
    ):
        pass
    first = view.text().splitlines()[0]
    assert " GET /nope?[2J?X 404 " in first and "\x1b" not in view.text(), view.text()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, False),
        ({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://collector:4318/v1/logs"}, False),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "TELEMETRY_CONSOLE": "true"}, True),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "TELEMETRY_CONSOLE": "1"}, True),
        ({"TELEMETRY_CONSOLE": "false"}, False),
    ],
    ids=[
        "local",
        "otlp-endpoint",
        "traces-endpoint",
        "logs-endpoint",
        "kubernetes",
        "forced-on",
        "forced-on-k8s",
        "forced-off",
    ],
)
def test_console_is_on_only_for_local_development_unless_forced(environ: dict[str, str], expected: bool) -> None:
    """On with no collector configured and outside Kubernetes; TELEMETRY_CONSOLE decides when set."""
    assert TelemetrySettings.from_env(environ).console is expected


def test_otlp_export_only_where_an_endpoint_was_configured() -> None:
    """The console view's opposite: no OTLP export in local development (nobody runs a collector at
    the default endpoint), on with an endpoint or in Kubernetes; TELEMETRY_OTLP_EXPORT decides when set."""
    assert TelemetrySettings.from_env({}).otlp_export is False
    assert TelemetrySettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}).otlp_export is True
    assert TelemetrySettings.from_env({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://c:4318/v1/logs"}).otlp_export
    assert TelemetrySettings.from_env({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}).otlp_export is True
    assert TelemetrySettings.from_env({"TELEMETRY_OTLP_EXPORT": "true"}).otlp_export is True
