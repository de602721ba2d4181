# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Metrics: one MeterProvider pushing OTLP on a fixed interval (OTEL_METRIC_EXPORT_INTERVAL, ms)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.metrics import Meter, MeterProvider, NoOpMeter
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource

from .config import TelemetrySettings

# Instruments the FastAPI and httpx instrumentations record that no dashboard, alert or documented
# query reads (deploy/config/dashboards, prometheus-rules.yaml, the READMEs). They get no-op
# instruments, so nothing is recorded at all: a DropAggregation View would still run each
# measurement through the SDK (~11 µs a measurement, four per request). To turn one back on,
# delete its line. (SQLAlchemy's pool gauge is not recorded either: traces.instrument_sqlalchemy.)
UNREAD_INSTRUMENTS = frozenset(
    {
        "http.server.active_requests",
        "http.server.request.body.size",
        "http.server.response.body.size",
        "http.client.request.duration",
    }
)


def build_meter_provider(
    settings: TelemetrySettings, resource: Resource, reader: MetricReader | None
) -> SdkMeterProvider:
    """HTTP, DB and LLM instruments all record here; exemplars link histogram buckets to traces.
    No reader (local development, nothing exported): the instruments cost next to nothing."""
    return SdkMeterProvider(resource=resource, metric_readers=[reader] if reader is not None else [])


class InstrumentationMeterProvider(MeterProvider):
    """What the instrumentations are given: `provider`'s meters, except that an instrument named in
    UNREAD_INSTRUMENTS is a no-op. Your own code uses `provider` (the global one) unfiltered."""

    def __init__(self, provider: MeterProvider) -> None:
        self._provider = provider

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> Meter:
        meter = self._provider.get_meter(name, version, schema_url, attributes)
        return _SkipUnread(meter, NoOpMeter(name, version, schema_url))  # type: ignore[return-value]


class _SkipUnread:
    """A meter whose `create_*` methods hand out a no-op instrument for an unread name."""

    def __init__(self, meter: Meter, noop: NoOpMeter) -> None:
        self._meter = meter
        self._noop = noop

    def __getattr__(self, attribute: str) -> Any:
        create = getattr(self._meter, attribute)
        if not attribute.startswith("create_"):
            return create
        create_noop: Callable[..., Any] = getattr(self._noop, attribute)

        def create_instrument(*args: Any, **kwargs: Any) -> Any:
            name = kwargs["name"] if "name" in kwargs else args[0]
            return (create_noop if name in UNREAD_INSTRUMENTS else create)(*args, **kwargs)

        return create_instrument
