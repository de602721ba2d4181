# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Traces: the provider, its sampler and exporter, and the auto-instrumentations that feed it."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import format_span_id, format_trace_id
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.engine import Engine as SqlAlchemyEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import replay
from .config import TelemetrySettings
from .sampling import conversation_sampler
from .scrubbing import ScrubbingSpanExporter, header_sanitize_fields

# FastAPI now ships its own OpenTelemetry middleware; it steps aside when it sees the contrib
# instrumentation, but switching it off outright means one source of HTTP spans, whatever the order.
FASTAPI_NATIVE_TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def build_tracer_provider(
    settings: TelemetrySettings, resource: Resource, exporter: SpanExporter | None
) -> TracerProvider:
    """Parent-based ratio sampling: a sampled caller (browser, gateway) is always followed.
    No exporter (local development): the console view and the store are the only readers."""
    provider = TracerProvider(
        resource=resource,
        sampler=conversation_sampler(settings.trace_sample_ratio),
    )
    # The batch processor exports off the request path and drops spans when its bounded queue
    # is full rather than growing; scrubbing happens in its thread, just before export.
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(ScrubbingSpanExporter(exporter)))
    return provider


def instrument_fastapi(
    app: FastAPI, settings: TelemetrySettings, tracer_provider: TracerProvider, meter_provider: MeterProvider
) -> None:
    """HTTP in: one SERVER span per request; the ASGI receive/send sub-spans are noise and cost.

    settings.excluded_urls is OTEL_PYTHON_FASTAPI_EXCLUDED_URLS when set, else config.EXCLUDED_URLS.
    """
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        excluded_urls=settings.excluded_urls,
        exclude_spans=["receive", "send"],
        server_request_hook=replay.server_request_hook,
        http_capture_headers_sanitize_fields=header_sanitize_fields(settings.header_sanitize_fields),
    )
    # Inside the instrumentation's middleware, so the request's server span is current.
    app.add_middleware(TraceResponseMiddleware)


def traceresponse(context: trace.SpanContext) -> str:
    """The `traceresponse` header value (W3C Trace Context Level 2) naming `context`."""
    return f"00-{format_trace_id(context.trace_id)}-{format_span_id(context.span_id)}-{context.trace_flags:02x}"


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
                    value = traceresponse(context).encode()
                    message = {**message, "headers": [*message.get("headers", ()), (b"traceresponse", value)]}
            await send(message)

        await self.app(scope, receive, send_with_trace)


def instrument_httpx(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
    """HTTP out: every httpx client, ours and the user's, gets CLIENT spans and sends traceparent."""
    HTTPXClientInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)


def instrument_sqlalchemy(engine: Engine, tracer_provider: TracerProvider) -> None:
    """DB: spans per statement on this engine (explicit, so import order cannot silently skip it).

    The instrumentation also wraps `Engine.connect` in a `connect` span per session checkout (two
    or three per request, each as costly as a statement span, read by no dashboard or alert): that
    wrapper is taken off again. Its only metric is the pool gauge `db.client.connections.usage`
    (four updates per request, read by nothing): it gets no meter provider, and the pool listeners
    that would update it are removed, so a checkout or checkin calls into no telemetry at all.
    """
    tracer_provider.add_span_processor(DbSpanNameProcessor())
    SQLAlchemyInstrumentor().instrument(
        engine=engine, tracer_provider=tracer_provider, meter_provider=NoOpMeterProvider(), enable_commenter=False
    )
    unwrap(SqlAlchemyEngine, "connect")
    _remove_pool_listeners(engine)


# The pool events the instrumentation listens to, for `db.client.connections.usage` only.
POOL_GAUGE_EVENTS = frozenset({"connect", "close", "checkin", "checkout"})


def _remove_pool_listeners(engine: Engine) -> None:
    # The instrumentation keeps what it registered, so that uninstrument() can remove it, in
    # EngineTracer's list (no public handle on a listener); removed here from both, so a later
    # uninstrument() does not try to remove them twice. tests/test_telemetry.py checks they are gone.
    registered = EngineTracer._remove_event_listener_params
    for entry in list(registered):
        target, identifier, listener = entry
        if target() is engine and identifier in POOL_GAUGE_EVENTS:
            event.remove(engine, identifier, listener)
            registered.remove(entry)


class DbSpanNameProcessor(SpanProcessor):
    """Names SQLAlchemy's spans `{db.operation.name} {database basename}` (`SELECT app.db`).

    The instrumentation names them `<OPERATION> <url.database>`, for SQLite the file's full path,
    and the span name is a span-metrics label: one series per checkout directory. It has no option
    for the name, and an ended span is read-only, so the name is shortened as the span starts.
    """

    SCOPE = "opentelemetry.instrumentation.sqlalchemy"

    def on_start(self, span: Span, parent_context: object = None) -> None:
        scope = span.instrumentation_scope
        if scope is None or scope.name != self.SCOPE:
            return
        operation, _, target = span.name.partition(" ")
        path = target.replace("\\", "/")
        if "/" in path:
            span.update_name(f"{operation} {path.rsplit('/', 1)[-1]}")


def uninstrument() -> None:
    """Undo the process-wide patches so a later init (tests) binds to its own providers."""
    for instrumentor in (HTTPXClientInstrumentor(), SQLAlchemyInstrumentor()):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
