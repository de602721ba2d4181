# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""One shape for a trace, whichever source it came from (local store or Tempo + Loki), and its text.

A trace is its spans and its log records; `summary()` is one line's worth of facts (route, status,
duration, LLM calls, tokens, cost, feedback, replay session), `tree()` the span tree as the console
view prints it (console.py), with agent and tool steps (GenAI semconv `invoke_agent`,
`execute_tool`) shown by their attributes, not by the code that made them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_AGENT_NAME,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_OPERATION_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_TOOL_CALL_ID,
    GEN_AI_TOOL_NAME,
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
from opentelemetry.semconv.attributes.url_attributes import URL_FULL

from ..telemetry.console import _cut, _duration, _without_query
from ..telemetry.llm import GEN_AI_USAGE_COST

FEEDBACK_SCORE = "app.feedback.score"
SESSION_ID = "session.id"
EVALUATION_EVENT = "gen_ai.evaluation.result"

MAX_TREE_LINES = 300
MAX_STATEMENT = 90
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
CONVERSATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # what /api/chat accepts
MAX_SINCE_SECONDS = 7 * 24 * 3600
_SINCE = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,6})?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class InvalidInput(ValueError):
    """An argument the tools refuse, with a one-line reason for the caller."""


def trace_id_or_error(value: str) -> str:
    trace_id = value.strip().lower()
    if not TRACE_ID.match(trace_id) or trace_id == "0" * 32:
        raise InvalidInput(f"invalid trace id {value[:80]!r}: expected 32 hex digits, not all zero")
    return trace_id


def conversation_id_or_error(value: str) -> str:
    if not CONVERSATION_ID.match(value):
        raise InvalidInput(f"invalid conversation id {value[:80]!r}: 1-128 of A-Z a-z 0-9 . _ : -")
    return value


@dataclass(frozen=True)
class Since:
    """A time window ending now: `cutoff_ns`, and what the caller asked for if it was clamped."""

    seconds: float
    clamped_from: str | None = None

    @property
    def cutoff_ns(self) -> int:
        return time.time_ns() - int(self.seconds * 1e9)

    def text(self) -> str:
        label = _window(self.seconds)
        return f"{label} (clamped from {self.clamped_from})" if self.clamped_from else label


def parse_since(value: str) -> Since:
    """`30m`, `2h`, `7d`, `1w` or an ISO 8601 time; longer windows are clamped to MAX_SINCE_SECONDS."""
    match = _SINCE.match(value)
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(f"invalid since {value[:80]!r}: use 30m, 2h, 7d or an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = max(1.0, time.time() - moment.timestamp())
    if seconds <= 0:
        raise InvalidInput(f"invalid since {value[:80]!r}: the window must be longer than 0")
    if seconds > MAX_SINCE_SECONDS:
        return Since(MAX_SINCE_SECONDS, value.strip()[:40])
    return Since(seconds)


def _window(seconds: float) -> str:
    for unit in ("w", "d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str  # SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER
    service: str
    start_ns: int
    end_ns: int
    status: str  # OK, ERROR, UNSET
    status_message: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def error(self) -> bool:
        return self.status == "ERROR"

    @property
    def duration_ms(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e6


@dataclass
class Log:
    trace_id: str | None
    span_id: str | None
    time_ns: int
    severity: str
    scope: str
    body: str
    event_name: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> bool:
        return self.severity.upper() in {"ERROR", "FATAL", "CRITICAL"}

    def text(self) -> str:
        if self.event_name == EVALUATION_EVENT:
            # Loki's OTLP ingest turns the dots of attribute names into underscores.
            a = {key.replace(".", "_"): value for key, value in self.attributes.items()}
            score = a.get("gen_ai_evaluation_score_value")
            comment = a.get("gen_ai_evaluation_explanation")
            label = a.get("gen_ai_evaluation_score_label", "")
            return f"feedback {label} ({score})" + (f": {_cut(str(comment), 120)}" if comment else "")
        return f"{self.severity or 'LOG'} {self.scope + ': ' if self.scope else ''}{_cut(self.body)}"


@dataclass
class Trace:
    trace_id: str
    spans: list[Span]
    logs: list[Log] = field(default_factory=list)

    def roots(self) -> list[Span]:
        """Spans whose parent is not in the trace: the trace's root, or each process's part of it."""
        ids = {span.span_id for span in self.spans}
        return sorted((s for s in self.spans if s.parent_id not in ids), key=lambda s: s.start_ns)

    def root(self) -> Span | None:
        roots = self.roots()
        servers = [s for s in roots if s.kind == "SERVER"]
        return (servers or roots or [None])[0]

    def summary(self) -> dict[str, Any]:
        """The facts one line of a search shows; also the structured answer for a trace."""
        root = self.root()
        start = min((s.start_ns for s in self.spans), default=0)
        end = max((s.end_ns for s in self.spans), default=0)
        llm = [
            s
            for s in self.spans
            if s.attributes.get(GEN_AI_OPERATION_NAME) not in (None, "invoke_agent", "execute_tool")
        ]
        errors = sorted(
            {str(s.attributes.get(ERROR_TYPE) or s.status_message or s.name) for s in self.spans if s.error}
        )
        status = root.attributes.get(HTTP_RESPONSE_STATUS_CODE) if root else None
        conversations = sorted(
            {str(v) for s in self.spans if (v := s.attributes.get(GEN_AI_CONVERSATION_ID)) is not None}
        )
        feedback = [
            s.attributes[FEEDBACK_SCORE] for s in self.spans if s.name == "feedback" and FEEDBACK_SCORE in s.attributes
        ]
        return {
            "trace_id": self.trace_id,
            "service": root.service if root else "",
            "name": root.name if root else "",
            "route": (root.attributes.get(HTTP_ROUTE) if root else None),
            "http_status": status if isinstance(status, int) else None,
            "error": bool(errors) or (isinstance(status, int) and status >= 500),
            "error_types": errors,
            "start": _iso(start),
            "start_ns": start,
            "duration_ms": round(max(0, end - start) / 1e6, 2),
            "spans": len(self.spans),
            "conversation_ids": conversations,
            "session_ids": sorted({str(v) for s in self.spans if (v := s.attributes.get(SESSION_ID))}),
            "llm_calls": [_llm_call(s) for s in sorted(llm, key=lambda s: s.start_ns)],
            "input_tokens": sum(_int(s.attributes.get(GEN_AI_USAGE_INPUT_TOKENS)) for s in llm),
            "output_tokens": sum(_int(s.attributes.get(GEN_AI_USAGE_OUTPUT_TOKENS)) for s in llm),
            "cost_usd": round(sum(_float(s.attributes.get(GEN_AI_USAGE_COST)) for s in llm), 10),
            "feedback": feedback,
            "agent_steps": [
                _step(s) for s in sorted(self.spans, key=lambda s: s.start_ns) if _operation(s) in _AGENT_OPERATIONS
            ],
            "log_errors": sum(1 for log in self.logs if log.error),
        }

    def line(self) -> str:
        """One line: when, service, route, status, duration, LLM usage, errors, trace id."""
        s = self.summary()
        when = s["start"][11:23] if s["start"] else "?"
        parts = [when, s["service"], _root_label(self.root()), _duration(int(s["duration_ms"] * 1e6))]
        if s["llm_calls"]:
            usage = (
                f" {s['input_tokens']} in / {s['output_tokens']} out" if s["input_tokens"] or s["output_tokens"] else ""
            )
            parts.append(
                f"{len(s['llm_calls'])} LLM call(s){usage}" + (f" {usd(s['cost_usd'])}" if s["cost_usd"] else "")
            )
        if s["error"]:
            parts.append("✗ " + ", ".join(s["error_types"] or [str(s["http_status"])]))
        if s["feedback"]:
            parts.append("feedback " + " ".join(f"{score:+g}" for score in s["feedback"]))
        return "  ".join(p for p in parts if p) + f"  trace {self.trace_id}"

    def tree(self) -> str:
        """The span tree, as the console view prints it, with each span's log lines below it."""
        rows: dict[str | None, list[tuple[int, Span | Log]]] = {}
        roots = self.roots()
        root_ids = {s.span_id for s in roots}
        for span in self.spans:
            if span.span_id not in root_ids:
                rows.setdefault(span.parent_id, []).append((span.start_ns, span))
        known = {s.span_id for s in self.spans}
        orphans: list[Log] = []
        for log in self.logs:
            if log.span_id in known:
                rows.setdefault(log.span_id, []).append((log.time_ns, log))
            else:
                orphans.append(log)
        lines: list[str] = []

        def walk(span_id: str, prefix: str) -> None:
            children = sorted(rows.get(span_id, ()), key=lambda row: row[0])
            for index, (_, row) in enumerate(children):
                if len(lines) >= MAX_TREE_LINES:
                    return
                last = index == len(children) - 1
                branch = "└─ " if last else "├─ "
                if isinstance(row, Log):
                    lines.append(f"{prefix}{branch}{row.text()}")
                else:
                    lines.append(f"{prefix}{branch}{span_text(row)}")
                    walk(row.span_id, prefix + ("   " if last else "│  "))

        for root in roots:
            lines.append(f"{_clock(root.start_ns)} {root.service} {span_text(root)}  trace {self.trace_id}")
            walk(root.span_id, "  ")
        for log in orphans[:20]:
            lines.append(f"  · {log.text()}")
        if len(lines) >= MAX_TREE_LINES:
            lines.append(f"  … cut at {MAX_TREE_LINES} lines ({len(self.spans)} spans, {len(self.logs)} log records)")
        return "\n".join(lines)


_AGENT_OPERATIONS = ("invoke_agent", "execute_tool", "create_agent")


def _operation(span: Span) -> str | None:
    value = span.attributes.get(GEN_AI_OPERATION_NAME)
    return str(value) if value is not None else None


def _step(span: Span) -> dict[str, Any]:
    a = span.attributes
    return {
        "operation": _operation(span),
        "agent": a.get(GEN_AI_AGENT_NAME),
        "tool": a.get(GEN_AI_TOOL_NAME),
        "tool_call_id": a.get(GEN_AI_TOOL_CALL_ID),
        "span_id": span.span_id,
        "duration_ms": round(span.duration_ms, 2),
        "error_type": a.get(ERROR_TYPE) if span.error else None,
    }


def _llm_call(span: Span) -> dict[str, Any]:
    a = span.attributes
    return {
        "span_id": span.span_id,
        "operation": _operation(span),
        "model": a.get(GEN_AI_RESPONSE_MODEL) or a.get(GEN_AI_REQUEST_MODEL),
        "input_tokens": a.get(GEN_AI_USAGE_INPUT_TOKENS),
        "output_tokens": a.get(GEN_AI_USAGE_OUTPUT_TOKENS),
        "cost_usd": a.get(GEN_AI_USAGE_COST),
        "duration_ms": round(span.duration_ms, 2),
        "error_type": (a.get(ERROR_TYPE) or span.status_message or "error") if span.error else None,
    }


def _root_label(span: Span | None) -> str:
    if span is None:
        return "(no spans)"
    status = span.attributes.get(HTTP_RESPONSE_STATUS_CODE)
    return f"{span.name} {status}" if status is not None else span.name


def span_text(span: Span) -> str:
    """One span as the console view shows it: what it did, its outcome, its duration."""
    a = span.attributes
    label, detail = span.name, ""
    operation = _operation(span)
    if operation == "invoke_agent":
        label = f"agent {a.get(GEN_AI_AGENT_NAME) or span.name}"
        detail = _usage(a)
    elif operation == "execute_tool":
        label = f"tool {a.get(GEN_AI_TOOL_NAME) or span.name}"
        if a.get(GEN_AI_TOOL_CALL_ID):
            detail = f"call {a[GEN_AI_TOOL_CALL_ID]}"
    elif operation is not None:
        model = a.get(GEN_AI_RESPONSE_MODEL)
        parts = [f"model {model}"] if model and model != a.get(GEN_AI_REQUEST_MODEL) else []
        if usage := _usage(a):
            parts.append(usage)
        detail = " · ".join(parts)
    elif DB_SYSTEM_NAME in a or "db.system" in a:
        statement = str(a.get(DB_QUERY_TEXT, a.get("db.statement", "")))
        detail = _cut(" ".join(statement.split()), MAX_STATEMENT)
    elif span.kind == "CLIENT" and URL_FULL in a:
        label = f"{a.get(HTTP_REQUEST_METHOD, 'HTTP')} {_without_query(str(a[URL_FULL]))}"
    status = a.get(HTTP_RESPONSE_STATUS_CODE)
    text = f"{label} {status}" if status is not None else label
    if span.error:
        reason = a.get(ERROR_TYPE) or span.status_message
        detail = f"{detail} ✗ {reason}".strip() if reason else f"{detail} ✗".strip()
    if detail:
        text += "  " + detail
    return f"{_cut(text, 200)}  {_duration(int(span.duration_ms * 1e6))}"


def _usage(a: dict[str, Any]) -> str:
    tokens_in, tokens_out = a.get(GEN_AI_USAGE_INPUT_TOKENS), a.get(GEN_AI_USAGE_OUTPUT_TOKENS)
    parts = []
    if tokens_in is not None or tokens_out is not None:
        parts.append(f"{tokens_in} in / {tokens_out} out tokens")
    if (cost := a.get(GEN_AI_USAGE_COST)) is not None:
        parts.append(usd(_float(cost)))
    return " · ".join(parts)


def usd(amount: float) -> str:
    """$0.00000135, $1.5, $0: as many decimals as the amount needs, up to 8."""
    return "$" + (f"{amount:.8f}".rstrip("0").rstrip(".") or "0")


def outside_requests(trace: Trace) -> bool:
    """Only parentless CLIENT spans: statements or calls made outside any request (start-up schema,
    purges). Searches leave them out; get_trace still shows them."""
    return bool(trace.spans) and all(s.kind == "CLIENT" and s.parent_id is None for s in trace.spans)


def _clock(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%H:%M:%S.%f")[:-3] if ns else "?"


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if ns else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


@dataclass
class Filters:
    """What search_traces narrows by; every field optional but the window and the cap."""

    since: Since
    limit: int = 20
    conversation_id: str | None = None
    service: str | None = None
    route: str | None = None
    status: str = "any"  # any | error | ok
    min_duration_ms: float = 0.0

    def matches(self, trace: Trace) -> bool:
        if outside_requests(trace):
            return False
        s = trace.summary()
        if self.conversation_id and self.conversation_id not in s["conversation_ids"]:
            return False
        if self.service and self.service not in {span.service for span in trace.spans}:
            return False
        if self.route and self.route not in (s["route"], s["name"]):
            return False
        if self.status == "error" and not s["error"]:
            return False
        if self.status == "ok" and s["error"]:
            return False
        return (
            s["duration_ms"] >= self.min_duration_ms and s["start_ns"] + s["duration_ms"] * 1e6 >= self.since.cutoff_ns
        )
