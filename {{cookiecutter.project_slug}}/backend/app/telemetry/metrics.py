"""Metrics: one MeterProvider pushing OTLP on a fixed interval (OTEL_METRIC_EXPORT_INTERVAL, ms)."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from .config import TelemetrySettings
from .traces import signal_url


def build_meter_provider(
    settings: TelemetrySettings, resource: Resource, reader: MetricReader | None = None
) -> MeterProvider:
    """HTTP, DB and LLM instruments all record here; exemplars link histogram buckets to traces."""
    if reader is None:
        reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=signal_url(settings, "metrics")))
    return MeterProvider(resource=resource, metric_readers=[reader])
