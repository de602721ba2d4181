# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The telemetry MCP server: four read-only tools over stdio (official `mcp` SDK, MCPServer).

Every tool answers text a person can read and the same facts as structured content. Bad input is
an answer too ("invalid ...", is_error), never a crash; a missing trace is "not found". Bounds:
ids validated (model.py), windows clamped to 7 days, at most MAX_RESULTS traces and
MAX_ERROR_LOGS log lines, MAX_TEXT characters of text, CONCURRENCY tool calls at a time and
CALL_TIMEOUT seconds each.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from ..settings import McpSettings
from ..telemetry.config import SettingsError, TelemetrySettings
from ..telemetry.store import default_path
from .local import LocalSource, NoStore
from .model import (
    MAX_SINCE_SECONDS,
    Filters,
    InvalidInput,
    Since,
    Trace,
    conversation_id_or_error,
    parse_since,
    trace_id_or_error,
    usd,
)
from .stack import StackError, StackSource

NAME = "{{ cookiecutter.project_slug }}-telemetry"
MAX_RESULTS = 50
MAX_ERROR_LOGS = 200
MAX_TEXT = 30_000
MAX_SPANS_SHOWN = 300
CONCURRENCY = 4
CALL_TIMEOUT = 20.0
# The local stack's ports (docker-compose.yaml / k3d: reach them with `kubectl port-forward`).
DEFAULT_TEMPO, DEFAULT_LOKI, DEFAULT_PROMETHEUS = (
    "http://localhost:3200",
    "http://localhost:3100",
    "http://localhost:9090",
)
DEFAULT_GRAFANA = "http://localhost:3001"

INSTRUCTIONS = """Telemetry of this app (traces, logs, LLM calls, feedback, replay sessions), read-only.
Start from a trace id (every API answer has `trace_id` and a `traceresponse` header) with get_trace,
from a conversation id with get_conversation, or from recent_errors; search_traces narrows by
conversation, service, route, status, duration and time window."""

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def _port_open(url: str) -> bool:
    host, _, port = url.removeprefix("http://").partition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.3):
            return True
    except OSError:
        return False


def build_source(settings: McpSettings, telemetry: TelemetrySettings) -> LocalSource | StackSource:
    """Stack when asked, when TEMPO_URL is set, or (auto) when Tempo answers on its default port."""
    local = LocalSource(telemetry.store_path or default_path())
    if settings.source == "local":
        return local
    tempo = settings.tempo_url
    if tempo is None and (settings.source == "stack" or _port_open(DEFAULT_TEMPO)):
        tempo = DEFAULT_TEMPO
        defaults = True
    else:
        defaults = False
    if tempo is None:
        return local
    return StackSource(
        tempo_url=tempo,
        loki_url=settings.loki_url or (DEFAULT_LOKI if defaults else None),
        prometheus_url=settings.prometheus_url or (DEFAULT_PROMETHEUS if defaults else None),
        grafana_url=settings.grafana_url or (DEFAULT_GRAFANA if defaults else None),
        namespace=telemetry.service_namespace,
    )


def _answer(text: str, structured: dict[str, Any], *, error: bool = False) -> CallToolResult:
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 40] + f"\n… cut at {MAX_TEXT} characters"
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured, is_error=error)


def _refusal(reason: str) -> CallToolResult:
    return _answer(reason, {"error": reason}, error=True)


class TelemetryTools:
    """The tools' logic, apart from the MCP wiring (tests call it directly too)."""

    def __init__(self, source: LocalSource | StackSource, replay_url_prefix: str | None = None) -> None:
        self.source = source
        self.replay_url_prefix = replay_url_prefix
        self._limiter = anyio.Semaphore(CONCURRENCY)

    async def guarded(self, work: Callable[[], Awaitable[CallToolResult]]) -> CallToolResult:
        """One call: at most CONCURRENCY at a time, CALL_TIMEOUT each, every failure one readable line."""
        try:
            async with self._limiter:
                with anyio.fail_after(CALL_TIMEOUT):
                    return await work()
        except InvalidInput as exc:
            return _refusal(str(exc))
        except NoStore as exc:
            return _answer(str(exc), {"source": self.source.kind, "error": str(exc)}, error=True)
        except StackError as exc:
            return _answer(
                f"the stack did not answer: {exc}", {"source": self.source.kind, "error": str(exc)}, error=True
            )
        except TimeoutError:
            return _refusal(f"no answer within {CALL_TIMEOUT:g} s from {self.source.describe()}")

    def _replays(self, trace: Trace) -> list[dict[str, str | None]]:
        prefix = self.replay_url_prefix
        return [{"session_id": s, "url": f"{prefix}{s}" if prefix else None} for s in trace.summary()["session_ids"]]

    async def get_trace(self, trace_id: str) -> CallToolResult:
        trace_id = trace_id_or_error(trace_id)
        trace = await self.source.trace(trace_id)
        if trace is None:
            text = (
                f"trace {trace_id} not found in {self.source.describe()} "
                "(kept traces expire; unsampled ones never arrive)"
            )
            return _answer(text, {"source": self.source.kind, "found": False, "trace_id": trace_id})
        summary = trace.summary()
        replays = self._replays(trace)
        grafana = self.source.grafana_trace_url(trace_id)
        lines = [f"Trace {trace_id} ({self.source.describe()}): {trace.line()}", "", trace.tree()]
        for replay in replays:
            lines.append(f"Replay session {replay['session_id']}" + (f": {replay['url']}" if replay["url"] else ""))
        if grafana:
            lines.append(f"Grafana: {grafana}")
        return _answer(
            "\n".join(lines),
            {
                "source": self.source.kind,
                "found": True,
                "trace": summary,
                "spans": [_span_dict(s) for s in sorted(trace.spans, key=lambda s: s.start_ns)[:MAX_SPANS_SHOWN]],
                "logs": [_log_dict(g) for g in trace.logs[:MAX_SPANS_SHOWN]],
                "replays": replays,
                "grafana_url": grafana,
            },
        )

    async def search_traces(
        self,
        *,
        conversation_id: str | None,
        service: str | None,
        route: str | None,
        status: str,
        min_duration_ms: float,
        since: str,
        limit: int,
    ) -> CallToolResult:
        for name, value in (("service", service), ("route", route)):
            if value is not None and not value.isprintable():
                raise InvalidInput(f"invalid {name} {value[:80]!r}: control characters")
        filters = Filters(
            since=parse_since(since),
            limit=max(1, min(limit, MAX_RESULTS)),
            conversation_id=conversation_id_or_error(conversation_id) if conversation_id else None,
            service=service or None,
            route=route or None,
            status=status,
            min_duration_ms=max(0.0, min_duration_ms),
        )
        traces = await self.source.search(filters)
        header = f"{len(traces)} trace(s) in the last {filters.since.text()} ({self.source.describe()})"
        lines = [header + (":" if traces else "")] + [t.line() for t in traces]
        return _answer(
            "\n".join(lines),
            {
                "source": self.source.kind,
                "since": filters.since.text(),
                "traces": [t.summary() for t in traces],
            },
        )

    async def get_conversation(self, conversation_id: str) -> CallToolResult:
        conversation_id = conversation_id_or_error(conversation_id)
        filters = Filters(since=Since(MAX_SINCE_SECONDS), limit=MAX_RESULTS, conversation_id=conversation_id)
        traces = sorted(await self.source.search(filters), key=lambda t: t.summary()["start_ns"])
        if not traces:
            text = f"conversation {conversation_id} not found in {self.source.describe()} (last 7 days)"
            return _answer(text, {"source": self.source.kind, "found": False, "conversation_id": conversation_id})
        summaries = [t.summary() for t in traces]
        calls = [call for s in summaries for call in s["llm_calls"]]
        failed = [call for call in calls if call["error_type"]]
        totals = {
            "traces": len(traces),
            "error_traces": sum(1 for s in summaries if s["error"]),
            "llm_calls": len(calls),
            "failed_llm_calls": len(failed),
            "input_tokens": sum(s["input_tokens"] for s in summaries),
            "output_tokens": sum(s["output_tokens"] for s in summaries),
            "cost_usd": round(sum(s["cost_usd"] for s in summaries), 10),
            "feedback": [score for s in summaries for score in s["feedback"]],
            "replay_sessions": sorted({sid for s in summaries for sid in s["session_ids"]}),
        }
        lines = [
            f"Conversation {conversation_id} ({self.source.describe()}): {totals['traces']} trace(s), "
            f"{totals['error_traces']} with errors; "
            f"{totals['llm_calls']} LLM call(s), {totals['failed_llm_calls']} failed; "
            f"{totals['input_tokens']} in / {totals['output_tokens']} out tokens, {usd(totals['cost_usd'])}"
            + f"; feedback {' '.join(f'{x:+g}' for x in totals['feedback']) or 'none'}"
            + f"; replay sessions {', '.join(totals['replay_sessions']) or 'none'}"
        ]
        for index, (trace, summary) in enumerate(zip(traces, summaries, strict=True), 1):
            lines.append(f"{index}. {trace.line()}")
            for call in summary["llm_calls"]:
                outcome = (
                    f"✗ {call['error_type']}"
                    if call["error_type"]
                    else (
                        f"{call['input_tokens']} in / {call['output_tokens']} out tokens"
                        + (f" · {usd(call['cost_usd'])}" if call["cost_usd"] else "")
                    )
                )
                lines.append(f"   LLM {call['operation']} {call['model']}: {outcome}  {call['duration_ms']:g} ms")
            for step in summary["agent_steps"]:
                what = f"agent {step['agent']}" if step["operation"] == "invoke_agent" else f"tool {step['tool']}"
                lines.append(
                    f"   {what}"
                    + (f" ✗ {step['error_type']}" if step["error_type"] else "")
                    + f"  {step['duration_ms']:g} ms"
                )
            for log in trace.logs:
                if log.error or log.severity.upper() in {"WARN", "WARNING"}:
                    lines.append(f"   {log.text()}")
        return _answer(
            "\n".join(lines),
            {
                "source": self.source.kind,
                "found": True,
                "conversation_id": conversation_id,
                **totals,
                "trace_list": summaries,
            },
        )

    async def recent_errors(self, since: str) -> CallToolResult:
        window = parse_since(since)
        traces = await self.source.search(Filters(since=window, limit=MAX_RESULTS, status="error"))
        logs = await self.source.error_logs(window, MAX_ERROR_LOGS)
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for trace in traces:
            summary = trace.summary()
            route = summary["route"] or summary["name"] or "(no route)"
            root = trace.root()
            method = root.attributes.get("http.request.method") if root else None
            key = (
                f"{method} {route}" if method and not route.startswith(method) else route,
                ", ".join(summary["error_types"]) or str(summary["http_status"]),
            )
            groups[key].append(summary)
        log_groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for log in logs:
            kind = str(log.attributes.get("exception.type") or log.attributes.get("exception_type") or log.body[:80])
            log_groups[(log.scope or "(no logger)", kind)].append(_log_dict(log))
        rates = await self.source.error_rates(window) if isinstance(self.source, StackSource) else []
        lines = [
            f"Errors in the last {window.text()} ({self.source.describe()}): {len(traces)} error trace(s), "
            f"{len(logs)} error log line(s)"
        ]
        for (route, error_type), items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            ids = ", ".join(item["trace_id"] for item in items[:5])
            lines.append(f"- {route} · {error_type}: {len(items)} trace(s), latest {items[0]['start']}: {ids}")
        for (scope, kind), items in sorted(log_groups.items(), key=lambda kv: -len(kv[1])):
            traced = [item["trace_id"] for item in items if item["trace_id"]][:5]
            lines.append(
                f"- log {scope} · {kind}: {len(items)} line(s)" + (f", traces {', '.join(traced)}" if traced else "")
            )
        for rate in rates:
            lines.append(f"- metrics: {rate['service']} {rate['route']} {rate['status']}: {rate['count']:g} answers")
        return _answer(
            "\n".join(lines),
            {
                "source": self.source.kind,
                "since": window.text(),
                "error_traces": [
                    {"route": route, "error_type": error_type, "count": len(items), "traces": items}
                    for (route, error_type), items in groups.items()
                ],
                "error_logs": [
                    {"logger": scope, "kind": kind, "count": len(items), "lines": items[:20]}
                    for (scope, kind), items in log_groups.items()
                ],
                "error_rates": rates,
            },
        )


def _span_dict(span: Any) -> dict[str, Any]:
    return {
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "name": span.name,
        "kind": span.kind,
        "service": span.service,
        "status": span.status,
        "status_message": span.status_message,
        "duration_ms": round(span.duration_ms, 3),
        "attributes": span.attributes,
    }


def _log_dict(log: Any) -> dict[str, Any]:
    return {
        "trace_id": log.trace_id,
        "span_id": log.span_id,
        "time_ns": log.time_ns,
        "severity": log.severity,
        "logger": log.scope,
        "body": log.body,
        "event_name": log.event_name,
    }


Id = Annotated[str, Field(max_length=200, description="32 hex digits, as in an API answer's trace_id")]
ConversationArg = Annotated[str, Field(max_length=200, description="The conversation id the chat was sent with")]
SinceArg = Annotated[
    str, Field(max_length=64, description="Window ending now: 30m, 2h, 7d (at most 7d) or an ISO 8601 time")
]
Text = Annotated[str | None, Field(max_length=200)]


def build_server(tools: TelemetryTools) -> MCPServer:
    server = MCPServer(NAME, instructions=INSTRUCTIONS)

    @server.tool(annotations=READ_ONLY)
    async def get_trace(trace_id: Id) -> CallToolResult:
        """One trace as a span tree (service, route, status, duration; DB, HTTP out, LLM calls with model,
        tokens and cost; agent and tool steps), its log lines, its replay session and Grafana link."""
        return await tools.guarded(lambda: tools.get_trace(trace_id))

    @server.tool(annotations=READ_ONLY)
    async def search_traces(
        conversation_id: Text = None,
        service: Text = None,
        route: Annotated[str | None, Field(max_length=200, description="http.route, e.g. /api/chat")] = None,
        status: Literal["any", "error", "ok"] = "any",
        min_duration_ms: Annotated[float, Field(ge=0, le=86_400_000)] = 0,
        since: SinceArg = "24h",
        limit: Annotated[int, Field(ge=1, le=MAX_RESULTS)] = 20,
    ) -> CallToolResult:
        """Recent traces, newest first, one line each with its trace id; every filter optional."""
        return await tools.guarded(
            lambda: tools.search_traces(
                conversation_id=conversation_id,
                service=service,
                route=route,
                status=status,
                min_duration_ms=min_duration_ms,
                since=since,
                limit=limit,
            )
        )

    @server.tool(annotations=READ_ONLY)
    async def get_conversation(conversation_id: ConversationArg) -> CallToolResult:
        """A conversation's traces in order, its LLM calls (failed ones with their error), tokens, cost,
        user feedback and replay sessions."""
        return await tools.guarded(lambda: tools.get_conversation(conversation_id))

    @server.tool(annotations=READ_ONLY)
    async def recent_errors(since: SinceArg = "1h") -> CallToolResult:
        """Error traces and error log lines of the window, grouped by route and error type."""
        return await tools.guarded(lambda: tools.recent_errors(since))

    return server


def main() -> None:
    try:
        settings, telemetry = McpSettings.from_env(), TelemetrySettings.from_env()
    except SettingsError as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per stack query is noise in an editor's log
    source = build_source(settings, telemetry)
    print(f"{NAME}: answering from {source.describe()}", file=sys.stderr)  # stdout is the protocol
    build_server(TelemetryTools(source, settings.replay_url_prefix)).run("stdio")
