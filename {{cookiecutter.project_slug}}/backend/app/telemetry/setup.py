# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""`init_telemetry`: the one call that wires traces, metrics, logs, LLM and replay for an app."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import FastAPI
from opentelemetry import _logs, metrics, trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import NoOpTracerProvider
from sqlalchemy.engine import Engine

from . import console, logs, propagation, store, traces
from .config import OTEL_SEMCONV_STABILITY_OPT_IN, TelemetrySettings
from .exporters import OtlpExporters
from .llm import LLMTelemetry
from .metrics import InstrumentationMeterProvider, build_meter_provider
from .resource import build_resource

_internal = logging.getLogger("app.telemetry")
# Not app.telemetry: that logger's lines are the exporters' health (export failing, back again).
_startup = logging.getLogger("app.startup")


@dataclass
class Telemetry:
    """What `init_telemetry` built; `app.state.telemetry` holds it."""

    settings: TelemetrySettings
    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None
    logger_provider: LoggerProvider | None
    llm: LLMTelemetry
    exporters: OtlpExporters = field(default_factory=OtlpExporters)
    log_handlers: list[logging.Handler] = field(default_factory=list)
    store: store.StoreWriter | None = None
    _shutdown_once: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _is_shut_down: bool = field(default=False, repr=False)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flushes and stops every provider, in parallel, within `timeout` seconds in total.

        With the collector down the exporters would retry each batch for up to
        OTEL_EXPORTER_OTLP_TIMEOUT; a stopping pod cannot wait that long. A signal whose last
        export failed, or whose collector refuses connections, is not flushed at all; past the
        deadline the others are told to give up.
        """
        with self._shutdown_once:
            if self._is_shut_down:
                return
            self._is_shut_down = True
        traces.uninstrument()
        self.exporters.prepare_shutdown()
        providers = [p for p in (self.tracer_provider, self.meter_provider, self.logger_provider) if p]
        workers = [threading.Thread(target=p.shutdown, name="otel-shutdown", daemon=True) for p in providers]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        if any(worker.is_alive() for worker in workers):
            _internal.warning("Telemetry not flushed within %.1fs; dropping what is left", timeout)
            self.exporters.abort()
            for worker in workers:
                worker.join(1.0)
        self.exporters.detach()
        logs.remove_handlers(self.log_handlers)


def init_telemetry(
    app: FastAPI,
    service_name: str | None = None,
    *,
    engine: Engine | None = None,
    settings: TelemetrySettings | None = None,
    span_exporter: SpanExporter | None = None,
    log_exporter: LogRecordExporter | None = None,
    metric_reader: MetricReader | None = None,
    set_global: bool = True,
) -> Telemetry:
    """Wires OpenTelemetry into `app` and returns what it built.

    service_name: service.name (OTEL_SERVICE_NAME wins, so a deployment can rename).
    engine: the SQLAlchemy engine whose statements become DB spans.
    span_exporter / log_exporter / metric_reader: replace the OTLP ones (tests: in-memory).
    set_global: also install the providers as the process-wide OpenTelemetry globals, so
        `trace.get_tracer(__name__)` in your own code exports too. Tests pass False.
    The providers are flushed and shut down when the app's lifespan ends.
    """
    settings = settings or TelemetrySettings.from_env(service_name=service_name)
    if settings.sdk_disabled:
        telemetry = Telemetry(settings, None, None, None, LLMTelemetry(NoOpTracerProvider(), NoOpMeterProvider()))
        telemetry.log_handlers = logs.configure_logging(settings, None)
        app.state.telemetry = telemetry
        return telemetry

    # The instrumentations read this from the environment only, once, on first use.
    os.environ[OTEL_SEMCONV_STABILITY_OPT_IN] = settings.semconv_stability_opt_in
    propagation.install(settings.propagators)
    # OTLP only where an endpoint was configured (or in Kubernetes): in local development nobody runs
    # a collector at the default one, and every export would fail with a warning.
    export = settings.otlp_export
    own_exporters = span_exporter is None and log_exporter is None and metric_reader is None  # not a test's
    otlp = OtlpExporters.build(
        settings,
        spans=export and span_exporter is None,
        logs=export and log_exporter is None,
        metrics=export and metric_reader is None,
    )
    resource = build_resource(settings)
    tracer_provider = traces.build_tracer_provider(settings, resource, span_exporter or otlp.spans)
    tracer_provider.add_span_processor(propagation.ConversationOnServerSpan())
    tracer_provider.add_span_processor(propagation.LinkUnsampledCaller())
    if metric_reader is None and otlp.metrics is not None:
        metric_reader = PeriodicExportingMetricReader(otlp.metrics)
    meter_provider = build_meter_provider(settings, resource, metric_reader)
    logger_provider = logs.build_logger_provider(settings, resource, log_exporter or otlp.logs)
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        _logs.set_logger_provider(logger_provider)

    instrumentation_meters = InstrumentationMeterProvider(meter_provider)
    traces.instrument_fastapi(app, settings, tracer_provider, instrumentation_meters)
    traces.instrument_httpx(tracer_provider, instrumentation_meters)
    if engine is not None:
        traces.instrument_sqlalchemy(engine, tracer_provider)

    telemetry = Telemetry(
        settings,
        tracer_provider,
        meter_provider,
        logger_provider,
        LLMTelemetry(tracer_provider, meter_provider),
        otlp,
    )
    telemetry.log_handlers = logs.configure_logging(settings, logger_provider)
    if settings.console:
        telemetry.log_handlers.append(console.install(tracer_provider))
    if settings.store:
        telemetry.store = store.install(tracer_provider, logger_provider, settings)
    _shutdown_with_lifespan(app, telemetry)
    atexit.register(telemetry.shutdown)
    app.state.telemetry = telemetry
    if own_exporters:
        _startup.info("%s", where_telemetry_goes(telemetry))
    return telemetry


def where_telemetry_goes(telemetry: Telemetry) -> str:
    """The start-up line: every place this process sends or keeps its telemetry."""
    settings, places = telemetry.settings, []
    urls = [exporter.health.url for exporter in telemetry.exporters.all()]
    if urls:
        places.append(f"OTLP/HTTP to {', '.join(urls)}")
    if settings.loki_url:
        places.append(f"logs also to Loki at {settings.loki_url}")
    if settings.console:
        places.append("console view on stderr")
    if telemetry.store is not None:
        places.append(f"local store {telemetry.store.path} (`make mcp` reads it)")
    if not settings.otlp_export:
        places.append("not exported (no OTLP endpoint set; OTEL_EXPORTER_OTLP_ENDPOINT names a collector)")
    return "Telemetry: " + "; ".join(places or ["kept nowhere"])


def _shutdown_with_lifespan(app: FastAPI, telemetry: Telemetry) -> None:
    """Runs after the app's own lifespan, so the spans of its shutdown are flushed too."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        try:
            async with inner(app_) as state:
                yield state
        finally:
            # Off the event loop: flushing does blocking HTTP.
            await anyio.to_thread.run_sync(telemetry.shutdown)

    app.router.lifespan_context = lifespan
