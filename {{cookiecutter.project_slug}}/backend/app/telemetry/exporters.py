# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The OTLP/HTTP exporters, and what they do while the collector is down.

The SDK's exporters log every failed batch (a WARNING per retry, then an ERROR); here each signal
says one quiet line when its exports start failing and one when they get through again, and a
shutdown does not wait for a collector that refuses connections.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from .config import TelemetrySettings

# How long shutdown tries to connect to a collector it has not heard from; only a refused
# connection (or an unknown host) skips the flush, a slow one still gets the bounded flush.
PROBE_TIMEOUT = 1.0

Result = TypeVar("Result")


def signal_url(settings: TelemetrySettings, signal: str) -> str:
    """OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT as given, else {OTEL_EXPORTER_OTLP_ENDPOINT}/v1/<signal>."""
    per_signal = {
        "traces": settings.otlp_traces_endpoint,
        "metrics": settings.otlp_metrics_endpoint,
        "logs": settings.otlp_logs_endpoint,
    }[signal]
    return per_signal or f"{settings.otlp_endpoint}/v1/{signal}"


class ExportHealth(logging.Filter):
    """One signal's exports: says once when they fail and once when they recover.

    As a filter on the SDK exporter's logger it keeps the exporter's own per-batch lines (logged
    during an export) to itself, remembering the last one as the reason it reports.
    """

    def __init__(self, signal: str, url: str, sdk_logger: str) -> None:
        super().__init__()
        self.signal, self.url = signal, url
        self.failing = False
        self.skip = False
        self._sdk_logger = logging.getLogger(sdk_logger)
        self._sdk_logger.addFilter(self)
        self._exporting = threading.local()
        self._reason: str | None = None
        # A logger per signal: the internal-log throttle (logs.py) keys on logger and message.
        self._say = logging.getLogger(f"app.telemetry.export.{signal}")

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.skip and not getattr(self._exporting, "active", False):
            return True  # not about an export (and not an abandoned exporter): the SDK says it
        if self._reason is None:  # the first line says why (the last only says it gave up)
            self._reason = record.getMessage()[:300]
        return False

    def run(self, export: Callable[[], Result], failure: Result) -> Result:
        if self.skip:
            return failure
        self._exporting.active, self._reason = True, None
        try:
            result = export()
        finally:
            self._exporting.active = False
        self.observe(result != failure)
        return result

    def observe(self, ok: bool, reason: str | None = None) -> None:
        if ok and self.failing:
            self.failing = False
            self._say.warning("Exporting %s to %s again", self.signal, self.url)
        elif not ok and not self.failing:
            self.failing = True
            self._say.warning(
                "Cannot export %s to %s (%s); dropping them until it answers",
                self.signal,
                self.url,
                reason or self._reason or "export failed",
            )

    def gives_up_at_shutdown(self, refuses_connections: Callable[[str], bool]) -> bool:
        """True (and said once) when the last export failed or the collector refuses connections
        now: flushing would only retry until the deadline."""
        if not self.failing and not refuses_connections(self.url):
            return False
        self.observe(False, "not reachable at shutdown")
        self.skip = True
        return True

    def detach(self) -> None:
        self._sdk_logger.removeFilter(self)


def _refuses_connections(url: str) -> bool:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "localhost", port), timeout=PROBE_TIMEOUT):
            return False
    except (ConnectionRefusedError, socket.gaierror, ValueError):
        return True
    except OSError:  # slow, filtered or timed out: let the bounded flush try
        return False


class HealthSpanExporter(OTLPSpanExporter):
    def __init__(self, health: ExportHealth, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.health = health

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.health.run(partial(super().export, spans), SpanExportResult.FAILURE)


class HealthLogExporter(OTLPLogExporter):
    def __init__(self, health: ExportHealth, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.health = health

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return self.health.run(partial(super().export, batch), LogRecordExportResult.FAILURE)


class HealthMetricExporter(OTLPMetricExporter):
    def __init__(self, health: ExportHealth, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.health = health

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        export = partial(super().export, metrics_data, timeout_millis, **kwargs)
        return self.health.run(export, MetricExportResult.FAILURE)


@dataclass
class OtlpExporters:
    """The OTLP exporters init_telemetry built (None where the caller passed its own)."""

    spans: HealthSpanExporter | None = None
    logs: HealthLogExporter | None = None
    metrics: HealthMetricExporter | None = None

    @classmethod
    def build(cls, settings: TelemetrySettings, *, spans: bool, logs: bool, metrics: bool) -> OtlpExporters:
        def health(signal: str, exporter_class: type) -> ExportHealth:
            return ExportHealth(signal, signal_url(settings, signal), exporter_class.__module__)

        built = cls()
        if spans:
            built.spans = HealthSpanExporter(
                health("traces", OTLPSpanExporter), endpoint=signal_url(settings, "traces")
            )
        if logs:
            built.logs = HealthLogExporter(health("logs", OTLPLogExporter), endpoint=signal_url(settings, "logs"))
        if metrics:
            built.metrics = HealthMetricExporter(
                health("metrics", OTLPMetricExporter), endpoint=signal_url(settings, "metrics")
            )
        return built

    def all(self) -> list[HealthSpanExporter | HealthLogExporter | HealthMetricExporter]:
        return [exporter for exporter in (self.spans, self.logs, self.metrics) if exporter is not None]

    def prepare_shutdown(self) -> None:
        """Exporters of an unreachable collector stop now, an export in progress included."""
        probed: dict[str, bool] = {}  # one probe per host:port (the signals usually share one)

        def refuses_connections(url: str) -> bool:
            netloc = urlsplit(url).netloc
            if netloc not in probed:
                probed[netloc] = _refuses_connections(url)
            return probed[netloc]

        for exporter in self.all():
            if exporter.health.gives_up_at_shutdown(refuses_connections):
                _quietly_shut_down(exporter)

    def abort(self) -> None:
        """Past the shutdown deadline: stop the exporters' retries."""
        for exporter in self.all():
            exporter.health.skip = True
            _quietly_shut_down(exporter)

    def detach(self) -> None:
        for exporter in self.all():
            exporter.health.detach()


def _quietly_shut_down(exporter: Any) -> None:
    try:
        exporter.shutdown()
    except Exception:  # noqa: BLE001 - shutting down; nothing left to protect but the exit
        pass
