# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Metrics: one MeterProvider pushing OTLP on a fixed interval (OTEL_METRIC_EXPORT_INTERVAL, ms)."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.metrics.view import DropAggregation, View
from opentelemetry.sdk.resources import Resource

from .config import TelemetrySettings

# Instruments recorded by the instrumentations that no dashboard, alert or documented query reads
# (deploy/config/dashboards, prometheus-rules.yaml, the READMEs); dropping them here costs nothing
# to turn back on (delete the line) and saves a histogram update per request each. (SQLAlchemy's
# pool gauge is not even recorded: traces.instrument_sqlalchemy.)
DROPPED_INSTRUMENTS = (
    "http.server.request.body.size",
    "http.server.response.body.size",
)


def build_meter_provider(settings: TelemetrySettings, resource: Resource, reader: MetricReader) -> MeterProvider:
    """HTTP, DB and LLM instruments all record here; exemplars link histogram buckets to traces."""
    views = [View(instrument_name=name, aggregation=DropAggregation()) for name in DROPPED_INSTRUMENTS]
    return MeterProvider(resource=resource, metric_readers=[reader], views=views)
