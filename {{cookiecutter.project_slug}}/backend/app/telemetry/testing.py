# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""In-memory telemetry for tests: build the app with `capture.options()`, assert on what it emitted.

    capture = TelemetryCapture()
    app = capture.attach(create_app(settings, telemetry_options=capture.options()))
    ... drive the app ...
    server = capture.span(kind=SpanKind.SERVER)
    assert capture.logs_of_trace(server.context.trace_id)

The same fixture is available to your tests as `telemetry_capture` (see tests/conftest.py).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from .config import TelemetrySettings
from .setup import Telemetry


class TelemetryCapture:
    def __init__(self) -> None:
        self.span_exporter = InMemorySpanExporter()
        self.log_exporter = InMemoryLogRecordExporter()
        self.metric_reader = InMemoryMetricReader()
        self.telemetry: Telemetry | None = None

    def options(self, **settings: Any) -> dict[str, Any]:
        """Keyword arguments for init_telemetry; ignores OTEL_* in the environment (tests disable
        the SDK there for the module-level app) and never touches the global providers.
        `settings` override TelemetrySettings fields. The console view and the local store are off
        (the spans go here)."""
        return {
            "settings": TelemetrySettings.from_env({}, **{"console": False, "store": False, **settings}),
            "span_exporter": self.span_exporter,
            "log_exporter": self.log_exporter,
            "metric_reader": self.metric_reader,
            "set_global": False,
        }

    def attach(self, app: Any) -> Any:
        self.telemetry = app.state.telemetry
        return app

    def flush(self) -> None:
        if self.telemetry is None:
            raise RuntimeError("call capture.attach(app) after building the app")
        for provider in (self.telemetry.tracer_provider, self.telemetry.logger_provider):
            if provider is not None:
                provider.force_flush()

    def spans(self) -> list[ReadableSpan]:
        self.flush()
        return list(self.span_exporter.get_finished_spans())

    def span(self, *, name: str | None = None, kind: SpanKind | None = None) -> ReadableSpan:
        """The one finished span matching name/kind; fails loudly when there are none or several."""
        found = [s for s in self.spans() if (name is None or s.name == name) and (kind is None or s.kind == kind)]
        if len(found) != 1:
            names = [(s.name, s.kind.name) for s in self.spans()]
            raise AssertionError(f"expected one span name={name!r} kind={kind}, got {len(found)} among {names}")
        return found[0]

    def descendants(self, root: ReadableSpan) -> list[ReadableSpan]:
        spans = [s for s in self.spans() if s.context.trace_id == root.context.trace_id]
        children: dict[int, list[ReadableSpan]] = {}
        for span in spans:
            if span.parent is not None:
                children.setdefault(span.parent.span_id, []).append(span)
        found, todo = [], [root.context.span_id]
        while todo:
            for child in children.get(todo.pop(), ()):
                found.append(child)
                todo.append(child.context.span_id)
        return found

    def logs(self) -> list[ReadableLogRecord]:
        self.flush()
        return list(self.log_exporter.get_finished_logs())

    def logs_of_trace(self, trace_id: int) -> list[ReadableLogRecord]:
        return [r for r in self.logs() if r.log_record.trace_id == trace_id]

    def metric_points(self, name: str) -> list[Any]:
        """Data points of the metric `name` collected so far (all scopes)."""
        data = self.metric_reader.get_metrics_data()
        return [
            point
            for resource_metrics in (data.resource_metrics if data else ())
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def clear(self) -> None:
        """Forgets everything emitted so far (start-up spans included)."""
        self.flush()
        self.span_exporter.clear()
        self.log_exporter.clear()


__all__ = ["TelemetryCapture", "SpanKind"]
