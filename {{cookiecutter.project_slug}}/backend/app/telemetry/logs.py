# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Logs: JSON lines on stdout and OTLP log records, both carrying trace_id/span_id; Loki optional.

Every record logged inside a request's span is correlated: the JSON line has "trace_id" and
"span_id" fields, the OTLP record carries the span context, and the Loki line is the same JSON.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback

from opentelemetry import trace
from opentelemetry._logs import Logger, LogRecord
from opentelemetry.context import get_current
from opentelemetry.instrumentation.log_utils import std_to_otel
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
)
from opentelemetry.semconv.attributes.otel_attributes import OTEL_EVENT_NAME
from opentelemetry.trace import format_span_id, format_trace_id

from .config import TelemetrySettings
from .replay import current_session_id
from .scrubbing import ScrubbingLogFilter

# Records from these loggers describe telemetry itself; shipping them over the pipeline that
# failed would loop, so they only go to stdout (throttled).
INTERNAL_LOGGERS = ("opentelemetry", "app.telemetry", "urllib3", "requests")

# Servers configure their own loggers before importing the app; routing them through the root
# logger gives every line the same JSON shape and ships it.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "gunicorn.access")

# Libraries that log every request at INFO; their spans already say it.
QUIET_LOGGERS = ("httpx", "httpcore")

# One line per request that the server span already carries (method, route, status, duration):
# kept on stdout, not shipped. Measured: shipping it cost ~0.3 ms CPU per request (bench/).
STDOUT_ONLY_LOGGERS = ("uvicorn.access", "gunicorn.access")

# The replay session of the request: `session.id` on OTLP records (Loki stores it as structured
# metadata `session_id`), `session_id` in the JSON line.
SESSION_ID = "session.id"
_JSON_NAMES = {SESSION_ID: "session_id"}

_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

# Libraries quote what a client sent in their warnings (the OTel baggage propagator logs a whole
# oversized `baggage` header): their string arguments are cut to this many characters.
MAX_LIBRARY_ARG_CHARS = 256

# Extras that libraries attach for their own console output: uvicorn's `color_message` is the
# message again with ANSI colour escapes. Never shipped, never in a JSON line.
JUNK_EXTRAS = ("color_message",)


def build_logger_provider(
    settings: TelemetrySettings, resource: Resource, exporter: LogRecordExporter | None
) -> LoggerProvider:
    provider = LoggerProvider(resource=resource)
    if exporter is not None:  # None: local development, the store's processor is the only one
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    return provider


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra={...}` fields are kept as top-level keys. Shared by the
    handlers that write the same line (stdout, Loki), it formats a record once: the last record's
    line is kept for the next handler (same thread: logging calls handlers one after another)."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self._service = service_name
        self._last: tuple[logging.LogRecord, trace.SpanContext, str] | None = None

    def format(self, record: logging.LogRecord) -> str:
        context = trace.get_current_span().get_span_context()
        last = self._last
        if last is not None and last[0] is record and last[1] is context:
            return last[2]
        line = self._format(record, context)
        self._last = (record, context, line)
        return line

    def _format(self, record: logging.LogRecord, context: trace.SpanContext) -> str:
        entry = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "service": self._service,
        }
        if context.is_valid:
            entry["trace_id"] = format_trace_id(context.trace_id)
            entry["span_id"] = format_span_id(context.span_id)
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("otel"):
                entry[_JSON_NAMES.get(key, key)] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines for local runs (LOG_JSON=false), still with the trace id."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [trace_id=%(trace_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        context = trace.get_current_span().get_span_context()
        record.trace_id = format_trace_id(context.trace_id) if context.is_valid else "-"
        return super().format(record)


class PrepareRecordFilter(logging.Filter):
    """Readies a record once, whichever handler sees it first: query secrets scrubbed, junk extras
    dropped, the request's replay session added. One instance sits on every handler (handler
    filters are the only ones propagated records pass); it remembers the last record it prepared,
    so the work is done once per record, not once per handler. A race between threads can only
    cause a second, harmless preparation, never a skipped one."""

    def __init__(self) -> None:
        super().__init__()
        self._scrub = ScrubbingLogFilter()
        self._last: logging.LogRecord | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record is self._last:
            return True
        self._last = record
        if record.args and record.name.startswith(INTERNAL_LOGGERS + SERVER_LOGGERS):
            record.args = _truncated(record.args)
        self._scrub.filter(record)
        for key in JUNK_EXTRAS:
            record.__dict__.pop(key, None)
        session = current_session_id()
        if session is not None:
            record.__dict__[SESSION_ID] = session
        return True


def _truncated(args: object) -> object:
    def cut(value: object) -> object:
        if isinstance(value, str) and len(value) > MAX_LIBRARY_ARG_CHARS:
            return f"{value[:MAX_LIBRARY_ARG_CHARS]}... ({len(value) - MAX_LIBRARY_ARG_CHARS} more characters)"
        return value

    if isinstance(args, tuple):
        return tuple(cut(arg) for arg in args)
    if isinstance(args, dict):
        return {key: cut(value) for key, value in args.items()}
    return args


# OTel severity text for Python level names (the logs data model's short names).
_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}
# The deprecated attribute that, like otel.event.name, names a record's event (semconv).
_DEPRECATED_EVENT_NAME = "event.name"


class OtlpLogHandler(logging.Handler):
    """Ships each record as an OTLP log record through `provider` (its processors, its exporter).

    What opentelemetry-instrumentation-logging's LoggingHandler sends, built with less work per
    record: body = the message, attributes = the `extra=` fields, `otel.event.name` (or the
    deprecated `event.name`) as the event name, exception.type/.message/.stacktrace for
    `exc_info`, the current span's context. The SDK Logger of each logger name is looked up once,
    not per record (the provider's lookup takes a lock). That handler's guard against recursive
    logging is not needed: the SDK's own loggers never reach this handler (ShipFilter). Nor is
    its flush(), which forces a provider flush in a thread: Telemetry.shutdown flushes providers.
    """

    def __init__(self, provider: LoggerProvider) -> None:
        super().__init__()
        self._provider = provider
        self._loggers: dict[str, Logger] = {}

    def emit(self, record: logging.LogRecord) -> None:
        logger = self._loggers.get(record.name)
        if logger is None:
            logger = self._loggers.setdefault(record.name, self._provider.get_logger(record.name))
        attributes = {k: v for k, v in record.__dict__.items() if k not in _RECORD_FIELDS}
        event_name = attributes.pop(OTEL_EVENT_NAME, None)
        deprecated_event_name = attributes.pop(_DEPRECATED_EVENT_NAME, None)
        if record.exc_info:
            _add_exception(attributes, record.exc_info)
        logger.emit(
            LogRecord(
                timestamp=int(record.created * 1e9),
                observed_timestamp=time.time_ns(),
                context=get_current(),
                severity_text=_SEVERITY_TEXT.get(record.levelname, record.levelname),
                severity_number=std_to_otel(record.levelno),
                body=record.getMessage(),
                attributes=attributes,
                event_name=deprecated_event_name if event_name is None else event_name,
            )
        )


def _add_exception(attributes: dict, exc_info: tuple) -> None:
    exc_type, value, tb = exc_info
    if exc_type is not None:
        attributes[EXCEPTION_TYPE] = exc_type.__name__
    if value is not None and value.args:
        attributes[EXCEPTION_MESSAGE] = str(value.args[0])
    if tb is not None:
        attributes[EXCEPTION_STACKTRACE] = "".join(traceback.format_exception(*exc_info))


class ShipFilter(logging.Filter):
    """Keeps telemetry's own records, and access lines, off the handlers that ship logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(INTERNAL_LOGGERS) and record.name not in STDOUT_ONLY_LOGGERS


class ThrottleInternalFilter(logging.Filter):
    """One line per distinct telemetry warning per `interval`: an outage is not a log flood."""

    def __init__(self, interval: float = 300.0) -> None:
        super().__init__()
        self._interval = interval
        self._last: dict[tuple[str, object], float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(INTERNAL_LOGGERS) or record.levelno < logging.WARNING:
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                return False
            if len(self._last) > 1000:
                self._last.clear()
            self._last[key] = now
        # The exporters log once per failed batch; a traceback each time helps nobody.
        record.exc_info = None
        record.exc_text = None
        return True


def configure_logging(settings: TelemetrySettings, logger_provider: LoggerProvider | None) -> list[logging.Handler]:
    """Installs the app's handlers on the root logger and returns them (for shutdown)."""
    json_lines = JsonFormatter(settings.service_name)  # stdout and Loki share each record's line
    console = logging.StreamHandler(sys.stdout)
    if settings.log_json_stdout:
        console.setFormatter(json_lines)
    else:
        console.setFormatter(TextFormatter())
    console.addFilter(ThrottleInternalFilter())
    handlers: list[logging.Handler] = [console]
    if logger_provider is not None:
        handlers.append(OtlpLogHandler(logger_provider))
    if settings.loki_url:
        from .loki import build_loki_handler

        handlers.append(build_loki_handler(settings, json_lines))

    prepare, ship_only_app_logs = PrepareRecordFilter(), ShipFilter()
    for handler in handlers:
        handler.addFilter(prepare)
        if handler is not console:
            handler.addFilter(ship_only_app_logs)

    root = logging.getLogger()
    root.setLevel(settings.log_level)
    for handler in handlers:
        root.addHandler(handler)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
    return handlers


def remove_handlers(handlers: list[logging.Handler]) -> None:
    root = logging.getLogger()
    for handler in handlers:
        root.removeHandler(handler)
        handler.close()
