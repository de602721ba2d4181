# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The console view: each finished request printed on stderr as a compact span tree, no collector needed.

    11:42:07.318 sage-app-api POST /api/chat 200  14.2 ms  trace 0af7651916cd43dd8448eb211c80319c
      ├─ INSERT app.db  INSERT INTO messages (conversation_id, role, content, ...) VALUES (?, ?, ...)  0.4 ms
      ├─ invoke_agent assistant  2 LLM calls · 19 in / 7 out tokens · $0.0000071  9.8 ms
      │  ├─ chat gpt-4o-mini  5 in / 6 out tokens · $0.0000044  6.1 ms
      │  │  ├─ POST http://127.0.0.1:8001/v1/chat/completions 200  4.9 ms
      │  │  └─ INFO app.llm: llm.call
      │  ├─ execute_tool calculate  call_1 ✗ ZeroDivisionError  0.4 ms
      │  └─ chat gpt-4o-mini  14 in / 1 out tokens · $0.0000027  2.6 ms
      └─ INFO app.api.chat: chat reply stored

What prints: every local root, i.e. a span with no parent or with a remote parent (a browser's or a
gateway's traceparent): the part of the trace this process saw. It prints when that root ends, with
the spans that ended below it and the log records written inside them, in time order.

When: on by default for local development (no OTLP endpoint in the environment, not in
Kubernetes), off otherwise; TELEMETRY_CONSOLE=true|false forces it (config.py). It goes to stderr
because stdout carries the JSON log lines; colours only when stderr is a terminal and NO_COLOR is
unset. The OTLP exporters are unaffected: with no collector they fail quietly, this view still prints.

Cost: off, nothing is installed. On, an ended span of a sampled trace becomes one short summary kept
until its root ends; unsampled spans are skipped. Memory is bounded: at most MAX_TRACES traces wait
(the oldest is evicted), MAX_SPANS spans and MAX_LOG_LINES log lines each, every text cut to MAX_TEXT.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TextIO
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_OPERATION_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_TOOL_CALL_ID,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
)
from opentelemetry.semconv.attributes.db_attributes import DB_QUERY_TEXT, DB_SYSTEM_NAME
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.semconv.attributes.url_attributes import URL_FULL, URL_PATH
from opentelemetry.trace import SpanKind, StatusCode

from .agent import STEPS_ATTRIBUTE
from .llm import GEN_AI_USAGE_COST
from .logs import STDOUT_ONLY_LOGGERS

MAX_TRACES = 64
MAX_SPANS = 200
MAX_LOG_LINES = 50
MAX_TEXT = 160
MAX_STATEMENT = 90  # of a DB statement: enough to tell which query, short enough for one line

_internal = logging.getLogger("app.telemetry.console")


@dataclass(frozen=True, slots=True)
class SpanLine:
    """What the tree shows of one ended span (the span itself is not kept)."""

    span_id: int
    parent_id: int | None
    start_ns: int
    duration_ns: int
    label: str
    detail: str = ""
    error: bool = False
    status: int | None = None


@dataclass(frozen=True, slots=True)
class LogLine:
    """A log record written while span `span_id` was current."""

    span_id: int
    time_ns: int
    level: str
    logger: str
    message: str


@dataclass
class Taken:
    """A local root's part of a trace, taken out of the buffer when the root ended."""

    spans: list[SpanLine] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    dropped_spans: int = 0
    dropped_logs: int = 0


class TraceBuffer:
    """Ended spans and log lines per trace until their local root ends; bounded in every dimension."""

    def __init__(self, max_traces: int = MAX_TRACES, max_spans: int = MAX_SPANS, max_logs: int = MAX_LOG_LINES):
        self._max_traces, self._max_spans, self._max_logs = max_traces, max_spans, max_logs
        self._traces: OrderedDict[int, Taken] = OrderedDict()
        self._lock = threading.Lock()

    def _pending(self, trace_id: int) -> Taken:
        pending = self._traces.get(trace_id)
        if pending is None:
            if len(self._traces) >= self._max_traces:
                self._traces.popitem(last=False)  # a root that never ended locally must not pin memory
            pending = self._traces[trace_id] = Taken()
        return pending

    def add_span(self, trace_id: int, line: SpanLine) -> None:
        with self._lock:
            pending = self._pending(trace_id)
            if len(pending.spans) < self._max_spans:
                pending.spans.append(line)
            else:
                pending.dropped_spans += 1

    def add_log(self, trace_id: int, line: LogLine) -> None:
        with self._lock:
            pending = self._pending(trace_id)
            if len(pending.logs) < self._max_logs:
                pending.logs.append(line)
            else:
                pending.dropped_logs += 1

    def take(self, trace_id: int, root_span_id: int) -> Taken:
        """The spans below `root_span_id` and the logs written in them; the rest of the trace stays
        (two requests of one browser trace are two local roots)."""
        with self._lock:
            pending = self._traces.get(trace_id)
            if pending is None:
                return Taken()
            children: dict[int | None, list[SpanLine]] = {}
            for line in pending.spans:
                children.setdefault(line.parent_id, []).append(line)
            mine, todo = {root_span_id}, [root_span_id]
            while todo:
                for child in children.get(todo.pop(), ()):
                    mine.add(child.span_id)
                    todo.append(child.span_id)
            taken = Taken(
                [s for s in pending.spans if s.span_id in mine],
                [g for g in pending.logs if g.span_id in mine],
                pending.dropped_spans,
                pending.dropped_logs,
            )
            pending.spans = [s for s in pending.spans if s.span_id not in mine]
            pending.logs = [g for g in pending.logs if g.span_id not in mine]
            pending.dropped_spans = pending.dropped_logs = 0
            if not pending.spans and not pending.logs:
                del self._traces[trace_id]
            return taken

    def sizes(self) -> tuple[int, int, int]:
        """(traces, spans, log lines) held right now."""
        with self._lock:
            pending = list(self._traces.values())
        return len(pending), sum(len(p.spans) for p in pending), sum(len(p.logs) for p in pending)


def summarize(span: ReadableSpan) -> SpanLine:
    """One line for a span: HTTP method/route/URL and status, DB statement, LLM model/tokens/cost."""
    attributes = span.attributes or {}
    label, detail = span.name, ""
    status = attributes.get(HTTP_RESPONSE_STATUS_CODE)
    if GEN_AI_OPERATION_NAME in attributes:
        parts = []
        if (steps := attributes.get(STEPS_ATTRIBUTE)) is not None:  # an agent run: its round trips
            parts.append(f"{steps} LLM call{'' if steps == 1 else 's'}")
        if (call_id := attributes.get(GEN_AI_TOOL_CALL_ID)) is not None:  # a tool call: the model's id for it
            parts.append(str(call_id))
        model = attributes.get(GEN_AI_RESPONSE_MODEL)
        if model and model != attributes.get(GEN_AI_REQUEST_MODEL):
            parts.append(f"model {model}")
        tokens_in, tokens_out = attributes.get(GEN_AI_USAGE_INPUT_TOKENS), attributes.get(GEN_AI_USAGE_OUTPUT_TOKENS)
        if tokens_in is not None or tokens_out is not None:
            parts.append(f"{tokens_in} in / {tokens_out} out tokens")
        if (cost := attributes.get(GEN_AI_USAGE_COST)) is not None:
            parts.append(f"${cost:.8f}".rstrip("0").rstrip("."))
        detail = " · ".join(parts)
    elif DB_SYSTEM_NAME in attributes or "db.system" in attributes:
        statement = str(attributes.get(DB_QUERY_TEXT, attributes.get("db.statement", "")))
        detail = _cut(" ".join(statement.split()), MAX_STATEMENT)
    elif span.kind == SpanKind.CLIENT and URL_FULL in attributes:
        label = f"{attributes.get(HTTP_REQUEST_METHOD, 'HTTP')} {_without_query(str(attributes[URL_FULL]))}"
    elif span.kind == SpanKind.SERVER and HTTP_ROUTE not in attributes and URL_PATH in attributes:
        # No route matched (a 404): the span is named by its method alone; the path says which.
        # The client chose it: control characters would write on the terminal, so they print as "?".
        path = "".join(c if c.isprintable() else "?" for c in str(attributes[URL_PATH]))
        label = f"{attributes.get(HTTP_REQUEST_METHOD, span.name)} {path}"
    error = span.status.status_code == StatusCode.ERROR
    if error:
        reason = attributes.get(ERROR_TYPE) or span.status.description
        detail = f"{detail} ✗ {reason}" if reason else f"{detail} ✗"
    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    return SpanLine(
        span.context.span_id,
        span.parent.span_id if span.parent is not None else None,
        start,
        end - start,
        _cut(label),
        _cut(detail.strip()),
        error,
        status if isinstance(status, int) else None,
    )


def render(root: SpanLine, taken: Taken, *, service: str, trace_id: int, colour: bool = False) -> str:
    """The tree as text: the root line (time, service, route, status, duration, trace id), then
    its children and log lines in time order."""
    paint = _Paint(colour)
    rows: dict[int, list[tuple[int, SpanLine | LogLine]]] = {}
    for span in taken.spans:
        if span.parent_id is not None:
            rows.setdefault(span.parent_id, []).append((span.start_ns, span))
    for log in taken.logs:
        rows.setdefault(log.span_id, []).append((log.time_ns, log))
    clock = time.strftime("%H:%M:%S", time.localtime(root.start_ns / 1e9))
    started = f"{clock}.{root.start_ns // 1_000_000 % 1000:03d}"
    lines = [f"{paint.dim(started)} {paint.cyan(service)} {_span_text(root, paint, bold=True)}  trace {trace_id:032x}"]

    def walk(span_id: int, prefix: str) -> None:
        children = sorted(rows.get(span_id, ()), key=lambda row: row[0])
        for index, (_, row) in enumerate(children):
            last = index == len(children) - 1
            branch = "└─ " if last else "├─ "
            if isinstance(row, LogLine):
                lines.append(f"{prefix}{paint.dim(branch)}{_log_text(row, paint)}")
            else:
                lines.append(f"{prefix}{paint.dim(branch)}{_span_text(row, paint)}")
                walk(row.span_id, prefix + ("   " if last else paint.dim("│  ")))

    walk(root.span_id, "  ")
    if taken.dropped_spans or taken.dropped_logs:
        lines.append(
            paint.dim(f"  … {taken.dropped_spans} spans and {taken.dropped_logs} log lines not shown (console limits)")
        )
    return "\n".join(lines) + "\n"


class ConsoleSpanProcessor(SpanProcessor):
    """Keeps ended spans of sampled traces in `buffer`; prints the tree when a local root ends."""

    def __init__(self, buffer: TraceBuffer, stream: TextIO | None = None) -> None:
        self._buffer = buffer
        self._stream = stream
        self._write_lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        try:
            line = summarize(span)
            if span.parent is not None and not span.parent.is_remote:
                self._buffer.add_span(context.trace_id, line)
                return
            service = str((span.resource.attributes if span.resource else {}).get("service.name", ""))
            taken = self._buffer.take(context.trace_id, context.span_id)
            self._write(line, taken, service, context.trace_id)
        except Exception:  # noqa: BLE001 - a local view must never break a request
            _internal.warning("console view could not print a trace", exc_info=True)

    def _write(self, root: SpanLine, taken: Taken, service: str, trace_id: int) -> None:
        stream = self._stream or sys.stderr  # looked up each time: test runners swap sys.stderr
        colour = not os.environ.get("NO_COLOR") and stream.isatty()
        text = render(root, taken, service=service, trace_id=trace_id, colour=colour)
        with self._write_lock:
            stream.write(text)
            stream.flush()


class ConsoleLogHandler(logging.Handler):
    """Keeps each log record written inside a sampled span, for that span's tree."""

    def __init__(self, buffer: TraceBuffer) -> None:
        super().__init__()
        self._buffer = buffer

    def emit(self, record: logging.LogRecord) -> None:
        if record.name in STDOUT_ONLY_LOGGERS:
            return  # the access line: the root's line already says method, route, status, duration
        context = trace.get_current_span().get_span_context()
        if not context.is_valid or not context.trace_flags.sampled:
            return
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the caller's bug, not a crash here
            message = str(record.msg)
        if record.exc_info and record.exc_info[0] is not None:
            message = f"{message} ({record.exc_info[0].__name__})"
        line = LogLine(context.span_id, int(record.created * 1e9), record.levelname, record.name, _cut(message))
        self._buffer.add_log(context.trace_id, line)


def install(tracer_provider: TracerProvider, stream: TextIO | None = None) -> logging.Handler:
    """Adds the console view to `tracer_provider` and the root logger; returns the log handler
    (remove it at shutdown). `stream` defaults to sys.stderr."""
    buffer = TraceBuffer()
    tracer_provider.add_span_processor(ConsoleSpanProcessor(buffer, stream))
    handler = ConsoleLogHandler(buffer)
    logging.getLogger().addHandler(handler)
    return handler


class _Paint:
    """ANSI colours, or plain text when `on` is false."""

    def __init__(self, on: bool) -> None:
        self._on = on

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self._on and text else text

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def cyan(self, text: str) -> str:
        return self._wrap("36", text)

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def level(self, level: str, text: str) -> str:
        return self._wrap({"WARNING": "33", "ERROR": "31", "CRITICAL": "31"}.get(level, "2"), text)

    def status(self, status: int | None, error: bool) -> str:
        if status is None:
            return ""
        code = "31" if error or status >= 500 else "33" if status >= 400 else "32"
        return self._wrap(code, str(status))


def _span_text(span: SpanLine, paint: _Paint, bold: bool = False) -> str:
    label = paint.bold(span.label) if bold else span.label
    parts = [label]
    if span.status is not None:
        parts.append(paint.status(span.status, span.error))
    text = " ".join(parts)
    if span.detail:
        text += "  " + (paint.level("ERROR", span.detail) if span.error else span.detail)
    return f"{text}  {paint.dim(_duration(span.duration_ns))}"


def _log_text(log: LogLine, paint: _Paint) -> str:
    return f"{paint.level(log.level, log.level)} {paint.dim(log.logger + ':')} {log.message}"


def _duration(nanoseconds: int) -> str:
    ms = nanoseconds / 1e6
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms / 1000:.2f} s"


def _without_query(url: str) -> str:
    """Scheme, host, port and path: query strings and user info may carry secrets."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return url.split("?", 1)[0]
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
