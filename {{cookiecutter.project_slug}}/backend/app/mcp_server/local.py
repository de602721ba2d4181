# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Local mode: traces from the store the backend writes under `make run` (app/telemetry/store.py).

The file is opened read-only (SQLite `mode=ro`): this process can never write or delete in it.
Every query is bounded (CANDIDATES traces looked at, MAX_SPANS spans and MAX_LOGS log records of one
trace, MAX_SPANS_PER_SEARCH spans read by one search); SQLite work runs in a worker thread, off the server's event loop.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import anyio

from ..telemetry.store import connect
from .model import Filters, Log, Since, Span, Trace

CANDIDATES = 200
MAX_SPANS = 1000
MAX_LOGS = 500
MAX_SPANS_PER_SEARCH = 20_000


class NoStore(LookupError):
    """The store does not exist yet (or is not a store)."""


class LocalSource:
    kind = "local"

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"local store {self.path}"

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise NoStore(
                f"no local telemetry store at {self.path} yet: start the backend with `make run` "
                "(no OTLP endpoint set, or TELEMETRY_STORE=true) and send it a request"
            )
        try:
            return connect(self.path, read_only=True)
        except sqlite3.Error as exc:
            raise NoStore(f"cannot open the local telemetry store {self.path}: {exc}") from None

    async def _run(self, work, *args):
        def call():
            connection = self._connect()
            try:
                return work(connection, *args)
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    raise NoStore(f"{self.path} holds no telemetry yet") from None
                raise
            finally:
                connection.close()

        return await anyio.to_thread.run_sync(call)

    async def trace(self, trace_id: str) -> Trace | None:
        return await self._run(_trace, trace_id)

    async def search(self, filters: Filters) -> list[Trace]:
        return await self._run(_search, filters)

    async def error_logs(self, since: Since, limit: int) -> list[Log]:
        return await self._run(_error_logs, since.cutoff_ns, limit)

    def grafana_trace_url(self, trace_id: str) -> str | None:
        return None  # no stack known in local mode


def _span(row: tuple) -> Span:
    trace_id, span_id, parent_id, name, kind, service, start, end, status, message, attributes, events = row
    return Span(
        trace_id, span_id, parent_id, name, kind, service, start, end, status, message,
        json.loads(attributes), json.loads(events),
    )  # fmt: skip


def _log(row: tuple) -> Log:
    trace_id, span_id, time_ns, severity, scope, body, event_name, attributes = row
    return Log(trace_id, span_id, time_ns, severity, scope, body, event_name, json.loads(attributes))


_SPAN_COLUMNS = (
    "trace_id, span_id, parent_id, name, kind, service, start_ns, end_ns, status, status_message, attributes, events"
)
_LOG_COLUMNS = "trace_id, span_id, time_ns, severity, scope, body, event_name, attributes"


def _trace(connection: sqlite3.Connection, trace_id: str) -> Trace | None:
    spans = connection.execute(
        f"SELECT {_SPAN_COLUMNS} FROM spans WHERE trace_id = ? ORDER BY start_ns LIMIT ?", (trace_id, MAX_SPANS)
    ).fetchall()
    logs = connection.execute(
        f"SELECT {_LOG_COLUMNS} FROM logs WHERE trace_id = ? ORDER BY time_ns LIMIT ?", (trace_id, MAX_LOGS)
    ).fetchall()
    if not spans and not logs:
        return None
    return Trace(trace_id, [_span(r) for r in spans], [_log(r) for r in logs])


def _search(connection: sqlite3.Connection, filters: Filters) -> list[Trace]:
    where, args = ["end_ns >= ?"], [filters.since.cutoff_ns]
    if filters.conversation_id:
        where.append("trace_id IN (SELECT trace_id FROM spans WHERE conversation_id = ?)")
        args.append(filters.conversation_id)
    if filters.service:
        where.append("service = ?")
        args.append(filters.service)
    if filters.status == "error":
        where.append("trace_id IN (SELECT trace_id FROM spans WHERE status = 'ERROR' AND end_ns >= ?)")
        args.append(filters.since.cutoff_ns)
    rows = connection.execute(
        f"SELECT trace_id, max(end_ns) AS last FROM spans WHERE {' AND '.join(where)} "
        # Statements and calls outside any request (only parentless CLIENT spans) are no search result.
        "GROUP BY trace_id HAVING max(kind != 'CLIENT' OR parent_id IS NOT NULL) = 1 ORDER BY last DESC LIMIT ?",
        (*args, CANDIDATES),
    ).fetchall()
    found, loaded = [], 0
    for trace_id, _ in rows:
        trace = _trace(connection, trace_id)
        if trace is None:
            continue
        loaded += len(trace.spans)
        if filters.matches(trace):
            found.append(trace)
        if len(found) >= filters.limit or loaded >= MAX_SPANS_PER_SEARCH:
            break  # memory stays bounded however large the traces
    return found


def _error_logs(connection: sqlite3.Connection, cutoff_ns: int, limit: int) -> list[Log]:
    rows = connection.execute(
        f"SELECT {_LOG_COLUMNS} FROM logs WHERE time_ns >= ? AND upper(severity) IN ('ERROR', 'FATAL', 'CRITICAL') "
        "ORDER BY time_ns DESC LIMIT ?",
        (cutoff_ns, limit),
    ).fetchall()
    return [_log(r) for r in rows]
