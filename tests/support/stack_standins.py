"""Loopback stand-ins for Tempo, Loki and Prometheus, answering their HTTP query APIs with real data.

Stand-ins because Tempo and Loki are AGPL (not to be built or vendored here) and no container engine
exists on the test machines. They serve what an OtlpReceiver received from a booted backend, in the
shapes the APIs document:

- Tempo `GET /api/search?q=<TraceQL>&limit&start&end` -> {"traces": [{"traceID", "rootServiceName",
  "rootTraceName", "startTimeUnixNano", "durationMs", "spanSets": [...]}], "metrics": {...}}, and
  `GET /api/traces/<id>` -> OTLP/JSON {"batches": [{"resource", "scopeSpans": [{"scope", "spans"}]}]}
  with ids in base64 and int64 values as strings (protobuf JSON, as Tempo marshals it); 404 unknown.
- Loki `GET /loki/api/v1/query_range?query&start&end&limit&direction` -> {"status": "success", "data":
  {"resultType": "streams", "result": [{"stream": {labels and structured metadata}, "values":
  [["<ns>", "<line>"]]}]}}; a log record's attributes are structured metadata with dots as
  underscores; `service_name`, `service_namespace` are labels. A selector with trace_id as a label
  gets no lines (it is structured metadata, as in the rendered loki-config.yaml).
- Prometheus `GET /api/v1/query?query=` -> {"status": "success", "data": {"resultType": "vector",
  "result": [{"metric": {...}, "value": [<ts>, "<value>"]}]}}.

Only the TraceQL and LogQL forms the MCP server sends are understood; anything else is a 400 with
the reason, as the real servers refuse what they cannot parse. Every query is recorded.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.otlp_receiver import LogRecord, Span

_CONDITION = re.compile(
    r'^\{\s*(?:(?P<attr>(?:span|resource)\.[\w.]+)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"'
    r"|status\s*=\s*(?P<status>error|ok|unset)"
    r"|traceDuration\s*>=\s*(?P<ms>[\d.]+)ms)?\s*\}$"
)
_SELECTOR = re.compile(r'^\{service_namespace="(?P<ns>[^"]*)"\}\s*(?P<pipeline>.*)$')
_TRACE_FILTER = re.compile(r'^\|\s*trace_id="(?P<id>[0-9a-f]{32})"$')
_ERROR_FILTER = re.compile(r'^\|\s*severity_text=~"(?P<levels>[A-Z|]+)"$')


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode() if hex_id else ""


def tempo_trace_json(spans: list[Span]) -> dict[str, Any]:
    batches: dict[str, dict[str, Any]] = {}
    for span in spans:
        key = json.dumps(span.resource, sort_keys=True, default=str)
        batch = batches.setdefault(
            key,
            {
                "resource": {
                    "attributes": [{"key": k, "value": _any_value(v)} for k, v in span.resource.items()]
                },
                "scopeSpans": [],
            },
        )
        batch["scopeSpans"].append(
            {
                "scope": {"name": span.scope},
                "spans": [
                    {
                        "traceId": _b64(span.trace_id),
                        "spanId": _b64(span.span_id),
                        **({"parentSpanId": _b64(span.parent_span_id)} if span.parent_span_id else {}),
                        "name": span.name,
                        "kind": f"SPAN_KIND_{span.kind}",
                        "startTimeUnixNano": str(span.start_ns),
                        "endTimeUnixNano": str(span.end_ns),
                        "attributes": [
                            {"key": k, "value": _any_value(v)} for k, v in span.attributes.items()
                        ],
                        "status": {"code": f"STATUS_CODE_{span.status_code}", "message": span.status_message}
                        if span.status_code != "UNSET"
                        else {},
                    }
                ],
            }
        )
    return {"batches": list(batches.values())}


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class StackStandIns:
    """Tempo, Loki and Prometheus on three loopback ports, over the spans and logs given."""

    def __init__(self, spans: list[Span], logs: list[LogRecord], namespace: str) -> None:
        self.spans, self.logs, self.namespace = spans, logs, namespace
        self.queries: dict[str, list[str]] = {"tempo": [], "loki": [], "prometheus": []}
        self._servers: list[_Server] = []

    def __enter__(self) -> StackStandIns:
        for name in ("tempo", "loki", "prometheus"):
            handler = type(f"{name}Handler", (_Handler,), {"standins": self, "component": name})
            server = _Server(("127.0.0.1", 0), handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._servers.append(server)
            setattr(self, f"{name}_url", f"http://127.0.0.1:{server.server_address[1]}")
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    # -- Tempo ---------------------------------------------------------------------------------------
    def traces(self) -> dict[str, list[Span]]:
        out: dict[str, list[Span]] = {}
        for span in self.spans:
            out.setdefault(span.trace_id, []).append(span)
        return out

    def tempo_search(self, q: str, limit: int, start: int, end: int) -> dict[str, Any]:
        conditions = []
        for part in q.split("&&"):
            match = _CONDITION.match(part.strip())
            if match is None:
                raise ValueError(f"parse error: unexpected {part.strip()!r}")
            conditions.append(match)
        found = []
        for trace_id, spans in self.traces().items():
            first, last = min(s.start_ns for s in spans), max(s.end_ns for s in spans)
            if not (start * 10**9 <= first and last <= end * 10**9):
                continue
            if all(self._holds(condition, spans, (last - first) / 1e6) for condition in conditions):
                roots = [s for s in spans if not s.parent_span_id] or spans
                found.append(
                    {
                        "traceID": trace_id.lstrip("0"),  # Tempo's search drops leading zeros
                        "rootServiceName": roots[0].resource.get("service.name", ""),
                        "rootTraceName": roots[0].name,
                        "startTimeUnixNano": str(first),
                        "durationMs": int((last - first) / 1e6),
                        "spanSets": [{"spans": [{"spanID": roots[0].span_id}], "matched": 1}],
                    }
                )
        found.sort(key=lambda t: int(t["startTimeUnixNano"]), reverse=True)
        return {
            "traces": found[:limit],
            "metrics": {"inspectedTraces": len(self.traces()), "inspectedBytes": "0"},
        }

    @staticmethod
    def _holds(condition: re.Match, spans: list[Span], duration_ms: float) -> bool:
        if condition.group("attr"):
            scope, _, key = condition.group("attr").partition(".")
            value = json.loads(f'"{condition.group("value")}"')
            return any(
                str((s.resource if scope == "resource" else s.attributes).get(key)) == value for s in spans
            )
        if condition.group("status"):
            return any(s.status_code == condition.group("status").upper() for s in spans)
        if condition.group("ms"):
            return duration_ms >= float(condition.group("ms"))
        return True  # `{ }`: every trace

    # -- Loki ----------------------------------------------------------------------------------------
    def loki_query(self, query: str, start: int, end: int, limit: int) -> dict[str, Any]:
        match = _SELECTOR.match(query.strip())
        if match is None:
            raise ValueError(f"parse error: {query!r} is not a selector on service_namespace")
        wanted = match.group("ns")
        trace_filter = _TRACE_FILTER.match(match.group("pipeline").strip())
        error_filter = _ERROR_FILTER.match(match.group("pipeline").strip())
        if not (trace_filter or error_filter):
            raise ValueError(f"parse error: unexpected pipeline {match.group('pipeline')!r}")
        streams: dict[str, dict[str, Any]] = {}
        count = 0
        for log in sorted(self.logs, key=lambda g: g.time_ns):
            labels = {
                "service_name": str(log.resource.get("service.name", "")),
                "service_namespace": str(log.resource.get("service.namespace", "")),
            }
            if labels["service_namespace"] != wanted or not (start <= log.time_ns <= end):
                continue
            metadata = {k.replace(".", "_"): str(v) for k, v in log.attributes.items()}
            metadata.update(
                trace_id=log.trace_id,
                span_id=log.span_id,
                severity_text=log.severity_text,
                scope_name=log.scope,
            )
            if log.event_name:
                metadata["event_name"] = log.event_name
            if trace_filter and metadata["trace_id"] != trace_filter.group("id"):
                continue
            if error_filter and metadata["severity_text"] not in error_filter.group("levels").split("|"):
                continue
            stream = {**labels, **metadata}
            key = json.dumps(stream, sort_keys=True)
            streams.setdefault(key, {"stream": stream, "values": []})["values"].append(
                [str(log.time_ns), str(log.body)]
            )
            count += 1
            if count >= limit:
                break
        return {
            "status": "success",
            "data": {"resultType": "streams", "result": list(streams.values()), "stats": {}},
        }

    # -- Prometheus ----------------------------------------------------------------------------------
    def prometheus_query(self, query: str) -> dict[str, Any]:
        if "http_server_request_duration_seconds_count" not in query:
            raise ValueError(f"unknown metric in {query!r}")
        counts: dict[tuple[str, str, str], int] = {}
        for span in self.spans:
            status = span.attributes.get("http.response.status_code")
            if span.kind == "SERVER" and isinstance(status, int) and status >= 500:
                key = (
                    str(span.resource.get("service.name")),
                    str(span.attributes.get("http.route")),
                    str(status),
                )
                counts[key] = counts.get(key, 0) + 1
        result = [
            {
                "metric": {"service_name": s, "http_route": r, "http_response_status_code": c},
                "value": [time.time(), str(float(n))],
            }
            for (s, r, c), n in counts.items()
        ]
        return {"status": "success", "data": {"resultType": "vector", "result": result}}


class _Handler(BaseHTTPRequestHandler):
    standins: StackStandIns
    component: str

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status < 300 else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        url = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        s = self.standins
        try:
            if self.component == "tempo" and url.path == "/api/search":
                s.queries["tempo"].append(params["q"])
                self._send(
                    200,
                    s.tempo_search(
                        params["q"], int(params["limit"]), int(params["start"]), int(params["end"])
                    ),
                )
            elif self.component == "tempo" and url.path.startswith("/api/traces/"):
                spans = s.traces().get(url.path.rsplit("/", 1)[1])
                self._send(200, tempo_trace_json(spans)) if spans else self._send(404, b"trace not found")
            elif self.component == "loki" and url.path == "/loki/api/v1/query_range":
                s.queries["loki"].append(params["query"])
                self._send(
                    200,
                    s.loki_query(
                        params["query"], int(params["start"]), int(params["end"]), int(params["limit"])
                    ),
                )
            elif self.component == "prometheus" and url.path == "/api/v1/query":
                s.queries["prometheus"].append(params["query"])
                self._send(200, s.prometheus_query(params["query"]))
            else:
                self._send(404, b"404 page not found")
        except (KeyError, ValueError) as exc:
            self._send(400, str(exc).encode())
