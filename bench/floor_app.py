"""Variant (d), the floor: the scaffold's app, its SDK creating every span, metric point and log
record as usual, but nothing exported (the least any OpenTelemetry setup of this app can cost).

Built only through create_app's public `telemetry_options` (init_telemetry's span_exporter=,
log_exporter=, metric_reader=), so it survives a rewrite of app.telemetry's internals.
`uvicorn --app-dir bench floor_app:app` from backend/.
"""

from app.main import create_app
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class DiscardSpans(SpanExporter):
    """Accepts every batch and sends nothing: no encoding, no HTTP."""

    def export(self, spans):
        return SpanExportResult.SUCCESS


class DiscardLogs(LogRecordExporter):
    """Accepts every batch and sends nothing: no encoding, no HTTP."""

    def export(self, batch):
        return LogRecordExportResult.SUCCESS

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=0):
        return True


# A reader nobody calls collect() on: instruments aggregate on the request path as usual, and
# no collection or export ever runs.
app = create_app(
    telemetry_options={
        "span_exporter": DiscardSpans(),
        "log_exporter": DiscardLogs(),
        "metric_reader": InMemoryMetricReader(),
    }
)
