# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Stack mode: the same answers from Tempo (TraceQL), Loki (LogQL) and Prometheus over their HTTP APIs.

The conventions are the Grafana provisioning's (deploy/config/grafana-datasources.yaml): a span's
logs are `{service_namespace=...} | trace_id="<id>"` (trace_id is Loki structured metadata, never a
label), RED metrics are `http_server_request_duration_seconds_*` by `http_route`. Only GET requests;
every answer is read with a size cap (MAX_RESPONSE_BYTES) and a timeout.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any
from urllib.parse import quote

import anyio
import httpx

from .model import Filters, Log, Since, Span, Trace

MAX_RESPONSE_BYTES = 8 * 1024 * 1024  # one trace or one page of logs
TIMEOUT = httpx.Timeout(10.0, connect=2.0)
MAX_LOG_LINES = 500
FETCH_CONCURRENCY = 4
_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


class StackError(RuntimeError):
    """A backend of the stack did not answer as its API says (one line for the caller)."""


class StackSource:
    kind = "stack"

    def __init__(
        self,
        *,
        tempo_url: str,
        loki_url: str | None,
        prometheus_url: str | None,
        grafana_url: str | None,
        namespace: str,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.tempo_url, self.loki_url, self.prometheus_url = tempo_url, loki_url, prometheus_url
        self.grafana_url, self.namespace = grafana_url, namespace
        self._client = client or httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)

    def describe(self) -> str:
        parts = [f"Tempo {self.tempo_url}"]
        if self.loki_url:
            parts.append(f"Loki {self.loki_url}")
        if self.prometheus_url:
            parts.append(f"Prometheus {self.prometheus_url}")
        return "stack: " + ", ".join(parts)

    async def _get(self, base: str, path: str, params: dict[str, Any] | None = None) -> Any | None:
        """The JSON answer; None for a 404; StackError for anything else that is not JSON 2xx."""
        try:
            async with self._client.stream("GET", base + path, params=params) as response:
                if response.status_code == 404:
                    return None
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise StackError(f"{base} answered more than {MAX_RESPONSE_BYTES} bytes")
                if response.status_code >= 300:
                    raise StackError(f"{base}{path} answered {response.status_code}: {bytes(body[:200])!r}")
        except httpx.HTTPError as exc:
            raise StackError(f"{base} is not reachable ({type(exc).__name__})") from None
        try:
            return json.loads(body)
        except ValueError:
            raise StackError(f"{base}{path} answered something that is not JSON") from None

    async def trace(self, trace_id: str) -> Trace | None:
        body = await self._get(self.tempo_url, f"/api/traces/{trace_id}")
        spans = parse_otlp_trace(body) if body else []
        if not spans:
            return None
        start = min(s.start_ns for s in spans)
        end = max(s.end_ns for s in spans)
        logs = await self._trace_logs(trace_id, start - 300 * 10**9, end + 300 * 10**9)
        return Trace(trace_id, spans, logs)

    async def search(self, filters: Filters) -> list[Trace]:
        now = time.time()
        params = {
            "q": traceql(filters),
            "limit": str(filters.limit),
            "start": str(int(now - filters.since.seconds)),
            "end": str(int(now) + 1),
        }
        body = await self._get(self.tempo_url, "/api/search", params) or {}
        ids = [t.get("traceID", "") for t in body.get("traces") or [] if isinstance(t, dict)]
        ids = [normalise_id(i, 16) for i in ids[: filters.limit]]
        traces: dict[str, Trace] = {}
        limiter = anyio.Semaphore(FETCH_CONCURRENCY)

        async def fetch(trace_id: str) -> None:
            async with limiter:
                trace = await self.trace(trace_id)
            if trace is not None:
                traces[trace_id] = trace

        async with anyio.create_task_group() as group:
            for trace_id in ids:
                if trace_id:
                    group.start_soon(fetch, trace_id)
        # Tempo already filtered; the same check as local mode keeps the two answers alike.
        found = [traces[i] for i in ids if i in traces and filters.matches(traces[i])]
        return sorted(found, key=lambda t: t.summary()["start_ns"], reverse=True)

    async def _loki(self, query: str, start_ns: int, end_ns: int, limit: int) -> list[Log]:
        if not self.loki_url:
            return []
        params = {
            "query": query,
            "start": str(start_ns),
            "end": str(end_ns),
            "limit": str(limit),
            "direction": "forward",
        }
        body = await self._get(self.loki_url, "/loki/api/v1/query_range", params) or {}
        return parse_loki_streams(body)[:limit]

    async def _trace_logs(self, trace_id: str, start_ns: int, end_ns: int) -> list[Log]:
        query = f'{{service_namespace="{_logql_string(self.namespace)}"}} | trace_id="{trace_id}"'
        return await self._loki(query, start_ns, end_ns, MAX_LOG_LINES)

    async def error_logs(self, since: Since, limit: int) -> list[Log]:
        query = f'{{service_namespace="{_logql_string(self.namespace)}"}} | severity_text=~"ERROR|FATAL|CRITICAL"'
        logs = await self._loki(query, since.cutoff_ns, time.time_ns(), limit)
        return sorted(logs, key=lambda log: log.time_ns, reverse=True)

    async def error_rates(self, since: Since) -> list[dict[str, Any]]:
        """5xx answers by route in the window, from the request-duration histogram's count."""
        if not self.prometheus_url:
            return []
        window = f"{max(60, int(since.seconds))}s"
        selector = f'service_namespace="{_logql_string(self.namespace)}", http_response_status_code=~"5.."'
        query = (
            "sum by (service_name, http_route, http_response_status_code) "
            f"(increase(http_server_request_duration_seconds_count{{{selector}}}[{window}]))"
        )
        body = await self._get(self.prometheus_url, "/api/v1/query", {"query": query}) or {}
        rows = []
        for item in (body.get("data") or {}).get("result") or []:
            metric, value = item.get("metric") or {}, item.get("value") or [0, "0"]
            try:
                count = float(value[1])
            except (TypeError, ValueError, IndexError):
                continue
            if count > 0:
                rows.append(
                    {
                        "service": metric.get("service_name"),
                        "route": metric.get("http_route"),
                        "status": metric.get("http_response_status_code"),
                        "count": round(count, 2),
                    }
                )
        return rows

    def grafana_trace_url(self, trace_id: str) -> str | None:
        if not self.grafana_url:
            return None
        pane = {
            "datasource": "tempo",
            "queries": [
                {
                    "refId": "A",
                    "datasource": {"type": "tempo", "uid": "tempo"},
                    "queryType": "traceql",
                    "query": trace_id,
                }
            ],
            "range": {"from": "now-24h", "to": "now"},
        }
        panes = quote(json.dumps({"trace": pane}, separators=(",", ":")), safe="")
        return f"{self.grafana_url.rstrip('/')}/explore?schemaVersion=1&orgId=1&panes={panes}"


def _logql_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def traceql(filters: Filters) -> str:
    """Spanset conditions joined with `&&`: the trace must have a span for each (not one span for all)."""
    parts = []
    if filters.conversation_id:
        parts.append(f'{{ span.gen_ai.conversation.id = "{_logql_string(filters.conversation_id)}" }}')
    if filters.service:
        parts.append(f'{{ resource.service.name = "{_logql_string(filters.service)}" }}')
    if filters.route:
        parts.append(f'{{ span.http.route = "{_logql_string(filters.route)}" }}')
    if filters.status == "error":
        parts.append("{ status = error }")
    if filters.min_duration_ms > 0:
        # A plain decimal: TraceQL durations take no exponent (3.6e+06ms is a parse error).
        parts.append(f"{{ traceDuration >= {f'{filters.min_duration_ms:.3f}'.rstrip('0').rstrip('.')}ms }}")
    return " && ".join(parts) or "{ }"


def normalise_id(value: Any, size: int) -> str:
    """OTLP/JSON ids are hex (the OTLP spec), Tempo's protobuf JSON gives base64: lowercase hex either way."""
    if not isinstance(value, str) or not value:
        return ""
    if len(value) in (size * 2, size * 2 - 1, size * 2 - 2) and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower().rjust(size * 2, "0")  # Tempo's search drops leading zeros
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ""
    return raw.hex().rjust(size * 2, "0") if len(raw) <= size else ""


def any_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return value["intValue"]
    if "doubleValue" in value:
        return value["doubleValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "arrayValue" in value:
        return [any_value(v) for v in (value["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in value:
        return {kv.get("key"): any_value(kv.get("value")) for kv in (value["kvlistValue"] or {}).get("values") or []}
    return None


def _attributes(items: Any) -> dict[str, Any]:
    return {kv["key"]: any_value(kv.get("value")) for kv in items or [] if isinstance(kv, dict) and "key" in kv}


def _enum(value: Any, names: dict[int, str], prefix: str) -> str:
    if isinstance(value, int):
        return names.get(value, "UNSET")
    text = str(value or "")
    return text.removeprefix(prefix) or names[0]


def parse_otlp_trace(body: Any) -> list[Span]:
    """Spans of a trace in OTLP/JSON as Tempo answers /api/traces/<id>: `batches` (v1) or
    `trace.resourceSpans` (v2); `scopeSpans` or the older `instrumentationLibrarySpans`."""
    if not isinstance(body, dict):
        return []
    batches = body.get("batches") or body.get("resourceSpans") or (body.get("trace") or {}).get("resourceSpans") or []
    spans = []
    for batch in batches:
        resource = _attributes((batch.get("resource") or {}).get("attributes"))
        service = str(resource.get("service.name", ""))
        for scope in batch.get("scopeSpans") or batch.get("instrumentationLibrarySpans") or []:
            for raw in scope.get("spans") or []:
                status = raw.get("status") or {}
                parent = normalise_id(raw.get("parentSpanId"), 8)
                spans.append(
                    Span(
                        trace_id=normalise_id(raw.get("traceId"), 16),
                        span_id=normalise_id(raw.get("spanId"), 8),
                        parent_id=parent or None,
                        name=str(raw.get("name", "")),
                        kind=_enum(raw.get("kind"), _KINDS, "SPAN_KIND_"),
                        service=service,
                        start_ns=int(raw.get("startTimeUnixNano") or 0),
                        end_ns=int(raw.get("endTimeUnixNano") or 0),
                        status=_enum(status.get("code"), _STATUS, "STATUS_CODE_"),
                        status_message=status.get("message") or None,
                        attributes=_attributes(raw.get("attributes")),
                        events=[
                            {"name": e.get("name"), "time_ns": int(e.get("timeUnixNano") or 0)}
                            for e in raw.get("events") or []
                        ],
                    )
                )
    return spans


def parse_loki_streams(body: Any) -> list[Log]:
    """Log lines of a `streams` answer; labels and structured metadata come merged in `stream`, or
    (X-Loki-Response-Encoding-Flags: categorize-labels) as a third element of each value."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or data.get("resultType") != "streams":
        return []
    logs = []
    for stream in data.get("result") or []:
        labels = dict(stream.get("stream") or {})
        for value in stream.get("values") or []:
            if not isinstance(value, list) or len(value) < 2:
                continue
            fields = dict(labels)
            if len(value) > 2 and isinstance(value[2], dict):
                for group in value[2].values():
                    if isinstance(group, dict):
                        fields.update(group)
            try:
                time_ns = int(value[0])
            except (TypeError, ValueError):
                continue
            logs.append(
                Log(
                    trace_id=normalise_id(fields.get("trace_id"), 16) or None,
                    span_id=normalise_id(fields.get("span_id"), 8) or None,
                    time_ns=time_ns,
                    severity=str(fields.get("severity_text") or fields.get("detected_level") or "").upper(),
                    scope=str(fields.get("scope_name") or fields.get("logger") or ""),
                    body=str(value[1]),
                    event_name=fields.get("event_name") or None,
                    attributes=fields,
                )
            )
    return sorted(logs, key=lambda log: log.time_ns)
