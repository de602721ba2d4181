"""Traces: the provider, its sampler and exporter, and the auto-instrumentations that feed it."""

from __future__ import annotations

import os

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import replay
from .config import EXCLUDED_URLS, TelemetrySettings
from .sampling import conversation_sampler
from .scrubbing import ScrubbingSpanExporter, header_sanitize_fields

# FastAPI now ships its own OpenTelemetry middleware; it steps aside when it sees the contrib
# instrumentation, but switching it off outright means one source of HTTP spans, whatever the order.
FASTAPI_NATIVE_TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def build_tracer_provider(
    settings: TelemetrySettings, resource: Resource, exporter: SpanExporter | None = None
) -> TracerProvider:
    """Parent-based ratio sampling: a sampled caller (browser, gateway) is always followed."""
    provider = TracerProvider(
        resource=resource,
        sampler=conversation_sampler(settings.trace_sample_ratio),
    )
    # The batch processor exports off the request path and drops spans when its bounded queue
    # is full rather than growing; scrubbing happens in its thread, just before export.
    exporter = exporter or OTLPSpanExporter(endpoint=signal_url(settings, "traces"))
    provider.add_span_processor(BatchSpanProcessor(ScrubbingSpanExporter(exporter)))
    return provider


def instrument_fastapi(app: FastAPI, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
    """HTTP in: one SERVER span per request; the ASGI receive/send sub-spans are noise and cost."""
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        excluded_urls=",".join(EXCLUDED_URLS),
        exclude_spans=["receive", "send"],
        server_request_hook=replay.server_request_hook,
        http_capture_headers_sanitize_fields=header_sanitize_fields(),
    )
    # Inside the instrumentation's middleware, so the request's server span is current.
    app.add_middleware(TraceResponseMiddleware)


class TraceResponseMiddleware:
    """Adds `traceresponse: 00-<trace id>-<span id>-<flags>` (W3C Trace Context Level 2) to every
    response, errors included, so a client can always name the trace to open."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                context = trace.get_current_span().get_span_context()
                if context.is_valid:
                    value = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
                    message = {**message, "headers": [*message.get("headers", ()), (b"traceresponse", value.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_trace)


def instrument_httpx(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
    """HTTP out: every httpx client, ours and the user's, gets CLIENT spans and sends traceparent."""
    HTTPXClientInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)


def instrument_sqlalchemy(engine: Engine, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
    """DB: spans per statement on this engine (explicit, so import order cannot silently skip it)."""
    SQLAlchemyInstrumentor().instrument(
        engine=engine, tracer_provider=tracer_provider, meter_provider=meter_provider, enable_commenter=False
    )


def uninstrument() -> None:
    """Undo the process-wide patches so a later init (tests) binds to its own providers."""
    for instrumentor in (HTTPXClientInstrumentor(), SQLAlchemyInstrumentor()):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


def signal_url(settings: TelemetrySettings, signal: str) -> str | None:
    """None lets the exporter honour OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT when that is set."""
    if os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"):
        return None
    return f"{settings.otlp_endpoint}/v1/{signal}"
