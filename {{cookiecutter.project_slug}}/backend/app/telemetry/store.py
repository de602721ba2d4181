# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The local telemetry store: recent finished spans and log records in a small SQLite file.

What reads it: the telemetry MCP server (`app/mcp_server/`, `make mcp`), so a coding agent can ask
"what happened in trace X?" with no collector and no containers. It is fed by the same span
pipeline as the console view (console.py): every ended span of a sampled trace, and every log record
the app emits (Python logging through logs.OtlpLogHandler, and OTLP events such as user feedback).

Off the request path: `on_end` / `on_emit` only put the finished item on a bounded queue (full: the
item is dropped and counted, never waited for); one writer thread turns a batch into rows, scrubbed
as the exporters scrub (scrubbing.scrub_span), and writes it in one transaction.

Bounded on disk: TELEMETRY_STORE_MAX_BYTES caps the database's used pages (oldest rows go first,
and the freed pages go back to the file system: auto_vacuum=INCREMENTAL), rows older than
TELEMETRY_STORE_MAX_AGE_HOURS are deleted, and the WAL is truncated after each checkpoint
(journal_size_limit). Strings are cut to MAX_VALUE_CHARS, attributes to MAX_ATTRIBUTES a span.

Content: prompts and replies are in a span only when OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
recorded them there; the store keeps what the span carries after scrubbing, nothing more.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GEN_AI_CONVERSATION_ID
from opentelemetry.trace import format_span_id, format_trace_id

from .scrubbing import REDACTED, is_sensitive_key, scrub_span, scrub_text

SCHEMA_VERSION = 1
MAX_VALUE_CHARS = 4096
MAX_ATTRIBUTES = 128
MAX_EVENTS = 16
QUEUE_SIZE = 10_000
BATCH_SIZE = 500
FLUSH_INTERVAL = 0.5  # seconds a finished item waits at most before it is written
PRUNE_INTERVAL = 5.0  # seconds between checks of the size and age limits
WAL_BYTES = 1 << 20  # the WAL is checkpointed and truncated back to this size

_internal = logging.getLogger("app.telemetry.store")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_id TEXT, parent_remote INTEGER NOT NULL,
    name TEXT NOT NULL, kind TEXT NOT NULL, service TEXT NOT NULL,
    start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
    status TEXT NOT NULL, status_message TEXT, conversation_id TEXT,
    attributes TEXT NOT NULL, events TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id);
CREATE INDEX IF NOT EXISTS spans_end ON spans (end_ns);
CREATE INDEX IF NOT EXISTS spans_conversation ON spans (conversation_id) WHERE conversation_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS logs (
    trace_id TEXT, span_id TEXT, time_ns INTEGER NOT NULL, severity TEXT NOT NULL,
    scope TEXT NOT NULL, body TEXT NOT NULL, event_name TEXT, conversation_id TEXT, attributes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_trace ON logs (trace_id);
CREATE INDEX IF NOT EXISTS logs_time ON logs (time_ns);
PRAGMA user_version = {SCHEMA_VERSION};
"""


def default_path() -> Path:
    """`<project>/.cache/telemetry/store.sqlite3`: beside the code, whatever the working directory
    (`make run` serves from backend/, the MCP server starts from the project root)."""
    return Path(__file__).resolve().parents[3] / ".cache" / "telemetry" / "store.sqlite3"


def connect(path: Path, *, read_only: bool = False, busy_timeout_ms: int = 1000) -> sqlite3.Connection:
    """A connection to the store; read-only ones cannot write even by mistake (mode=ro)."""
    if read_only:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # Set before the first table exists: auto_vacuum cannot be switched on later without VACUUM.
        connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute(f"PRAGMA journal_size_limit = {WAL_BYTES}")
        connection.execute(f"PRAGMA wal_autocheckpoint = {WAL_BYTES // 4096}")
        connection.executescript(SCHEMA)
    connection.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    return connection


def _value(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {str(k): _value(v) for k, v in list(value.items())[:MAX_ATTRIBUTES]}
    if isinstance(value, Iterable):
        return [_value(v) for v in list(value)[:MAX_ATTRIBUTES]]
    return _value(str(value))


def _attributes(attributes: Mapping[str, Any] | None, *, redact: bool = True) -> dict[str, Any]:
    """JSON-ready, bounded, and with credential-named keys redacted (as every exported record is);
    `redact=False` for a span that scrub_span has already redacted."""
    out: dict[str, Any] = {}
    for key, value in list((attributes or {}).items())[:MAX_ATTRIBUTES]:
        out[key] = REDACTED if redact and is_sensitive_key(key) else _value(value)
    return out


def span_row(span: ReadableSpan) -> tuple:
    span = scrub_span(span)
    context = span.context
    attributes = _attributes(span.attributes, redact=False)
    events = [
        {"name": event.name, "time_ns": event.timestamp, "attributes": _attributes(event.attributes)}
        for event in list(span.events)[:MAX_EVENTS]
    ]
    parent = span.parent
    conversation = attributes.get(GEN_AI_CONVERSATION_ID)
    return (
        format_trace_id(context.trace_id),
        format_span_id(context.span_id),
        format_span_id(parent.span_id) if parent is not None else None,
        int(bool(parent is not None and parent.is_remote)),
        span.name,
        span.kind.name,
        str((span.resource.attributes if span.resource else {}).get("service.name", "")),
        span.start_time or 0,
        span.end_time or span.start_time or 0,
        span.status.status_code.name,
        _value(span.status.description) if span.status.description else None,
        conversation if isinstance(conversation, str) else None,
        json.dumps(attributes, ensure_ascii=False),
        json.dumps(events, ensure_ascii=False) if events else "[]",
    )


def log_row(item: tuple) -> tuple:
    trace_id, span_id, time_ns, severity, scope, body, event_name, raw_attributes = item
    attributes = _attributes(raw_attributes)
    conversation = attributes.get(GEN_AI_CONVERSATION_ID, attributes.get("conversation_id"))
    return (
        format_trace_id(trace_id) if trace_id else None,
        format_span_id(span_id) if span_id else None,
        time_ns,
        severity,
        scope,
        scrub_text(_value(body if isinstance(body, str) else json.dumps(_value(body), default=str))),
        event_name,
        conversation if isinstance(conversation, str) else None,
        json.dumps(attributes, ensure_ascii=False, default=str),
    )


class StoreWriter:
    """The one thread that writes to the store, from a bounded queue of finished spans and log records."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        max_age_seconds: float,
        queue_size: int = QUEUE_SIZE,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        self.path, self.max_bytes, self.max_age_seconds = path, max_bytes, max_age_seconds
        self.dropped = 0
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue(queue_size)
        self._flush_interval = flush_interval
        self._flushed = threading.Condition()
        self._written = self._enqueued = 0
        self._last_prune = 0.0
        self._failing = False
        self._connection: sqlite3.Connection | None = None
        self._db = threading.Lock()  # one connection: the writer thread and a prune() from elsewhere take turns
        self._thread = threading.Thread(target=self._run, name="telemetry-store", daemon=True)
        self._thread.start()
        # A forked worker (gunicorn, uvicorn --workers) has no thread: it starts its own.
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._queue = queue.Queue(self._queue.maxsize)
        self._connection = None
        self._db = threading.Lock()
        self._written = self._enqueued = 0
        self._flushed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="telemetry-store", daemon=True)
        self._thread.start()

    def put(self, kind: str, item: Any) -> None:
        """Never blocks: a full queue drops the item (and counts it)."""
        try:
            self._queue.put_nowait((kind, item))
            self._enqueued += 1
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until what was queued so far is written (tests, shutdown)."""
        target = self._enqueued
        deadline = time.monotonic() + timeout
        with self._flushed:
            while self._written < target and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._flushed.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self._flush_interval)
            except queue.Empty:
                first = ()
            batch = [] if first in ((), None) else [first]
            # One transaction per FLUSH_INTERVAL rather than per request: a commit costs more than a row.
            deadline = time.monotonic() + self._flush_interval
            while batch and len(batch) < BATCH_SIZE:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    first = None
                    break
                batch.append(item)
            if batch:
                self._write(batch)
            if time.monotonic() - self._last_prune > PRUNE_INTERVAL:
                self._guarded(self.prune)
            if first is None:
                if self._connection is not None:
                    self._connection.close()
                return

    def _guarded(self, work: Any, *args: Any) -> None:
        try:
            work(*args)
            if self._failing:
                self._failing = False
                _internal.warning("Writing the local telemetry store %s again", self.path)
        except Exception as exc:  # noqa: BLE001 - the store is a convenience; the app goes on
            if not self._failing:
                self._failing = True
                _internal.warning("Cannot write the local telemetry store %s (%s); dropping", self.path, exc)
            self._connection = None

    def _write(self, batch: list[tuple[str, Any]]) -> None:
        def write() -> None:
            spans, logs = [], []
            for kind, item in batch:
                try:
                    (spans if kind == "span" else logs).append(span_row(item) if kind == "span" else log_row(item))
                except Exception:  # noqa: BLE001 - one odd record must not lose the batch
                    self.dropped += 1
            with self._db:
                connection = self._connect()
                with connection:
                    connection.execute("BEGIN")
                    connection.executemany(f"INSERT INTO spans VALUES ({', '.join('?' * 14)})", spans)
                    connection.executemany(f"INSERT INTO logs VALUES ({', '.join('?' * 9)})", logs)

        self._guarded(write)
        with self._flushed:
            self._written += len(batch)
            self._flushed.notify_all()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = connect(self.path)
        return self._connection

    def prune(self) -> None:
        """Deletes rows past the age limit, then the oldest until the used pages fit max_bytes."""
        with self._db:
            self._prune()

    def _prune(self) -> None:
        self._last_prune = time.monotonic()
        connection = self._connect()
        cutoff = time.time_ns() - int(self.max_age_seconds * 1e9)
        connection.execute("DELETE FROM spans WHERE end_ns < ?", (cutoff,))
        connection.execute("DELETE FROM logs WHERE time_ns < ?", (cutoff,))
        for _ in range(8):
            if used_bytes(connection) <= self.max_bytes * 0.9:
                break
            # A fifth of the spans, oldest first, and the log lines of the same age.
            (count,) = connection.execute("SELECT count(*) FROM spans").fetchone()
            row = connection.execute(
                "SELECT end_ns FROM spans ORDER BY end_ns LIMIT 1 OFFSET ?", (max(count // 5, 1),)
            ).fetchone()
            if row is None:  # spans are few; logs take the room
                (newest,) = connection.execute("SELECT max(time_ns) FROM logs").fetchone()
                if newest is None:
                    break
                row = connection.execute(
                    "SELECT time_ns FROM logs ORDER BY time_ns LIMIT 1 OFFSET (SELECT count(*) / 5 FROM logs)"
                ).fetchone()
            connection.execute("DELETE FROM spans WHERE end_ns <= ?", row)
            connection.execute("DELETE FROM logs WHERE time_ns <= ?", row)
        # Each step of this pragma frees pages: fetch every row, or only the first page goes back.
        connection.execute("PRAGMA incremental_vacuum").fetchall()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def used_bytes(connection: sqlite3.Connection) -> int:
    """Pages in use (freed pages not counted): what the size limit applies to."""
    (pages,) = connection.execute("PRAGMA page_count").fetchone()
    (free,) = connection.execute("PRAGMA freelist_count").fetchone()
    (size,) = connection.execute("PRAGMA page_size").fetchone()
    return (pages - free) * size


class StoreSpanProcessor(SpanProcessor):
    """Queues each ended span of a sampled trace for the store (the writer thread does the rest)."""

    def __init__(self, writer: StoreWriter) -> None:
        self._writer = writer

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is not None and context.trace_flags.sampled:
            self._writer.put("span", span)

    def shutdown(self) -> None:
        self._writer.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._writer.flush(timeout_millis / 1000)


class StoreLogProcessor(LogRecordProcessor):
    """Queues each emitted log record (its fields, read now: the record object is reused) for the store."""

    def __init__(self, writer: StoreWriter) -> None:
        self._writer = writer

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        scope = log_record.instrumentation_scope
        self._writer.put(
            "log",
            (
                record.trace_id or None,
                record.span_id or None,
                record.timestamp or record.observed_timestamp or time.time_ns(),
                record.severity_text or "",
                scope.name if scope else "",
                record.body,
                record.event_name,
                dict(record.attributes or {}),
            ),
        )

    def shutdown(self) -> None:
        self._writer.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._writer.flush(timeout_millis / 1000)


def install(tracer_provider: TracerProvider, logger_provider: Any, settings: Any) -> StoreWriter:
    """Feeds `settings.store_path` from both providers; shut down with them (the last close wins)."""
    writer = StoreWriter(
        settings.store_path or default_path(),
        max_bytes=settings.store_max_bytes,
        max_age_seconds=settings.store_max_age_hours * 3600,
    )
    tracer_provider.add_span_processor(StoreSpanProcessor(writer))
    if logger_provider is not None:
        logger_provider.add_log_record_processor(StoreLogProcessor(writer))
    return writer
