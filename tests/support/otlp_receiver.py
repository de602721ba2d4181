"""A strict OTLP/HTTP receiver for tests: decodes what an app really sends, like a collector would.

Depends only on the standard library, ``opentelemetry-proto`` and ``protobuf``.

    with OtlpReceiver() as rx:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = rx.endpoint
        ...
        rx.wait_for(lambda r: [s for s in r.spans() if s.kind == "SERVER"])

Strictness: a body that does not decode (bad protobuf, bad JSON, ids of the wrong length, unknown
fields, enum values out of range, duplicate attribute keys, a histogram whose buckets do not add up)
is answered 400 and recorded in ``rx.errors``; nothing from that request is kept.

OTLP/JSON is not protobuf's canonical JSON: ``traceId``/``spanId``/``parentSpanId`` are hex strings,
not base64. They are converted to bytes before ``json_format.ParseDict``; a base64 id is rejected.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

__all__ = [
    "BaseReceiver",
    "LogRecord",
    "Metric",
    "OtlpReceiver",
    "ReceiverRejection",
    "Span",
    "any_value_to_python",
    "attributes_to_dict",
]

T = TypeVar("T")

MAX_BODY_BYTES = 64 * 1024 * 1024
# 0xff starts a field with wire type 7, which does not exist: no protobuf parser accepts this.
GARBAGE_BODY = b"\xff\xff\xffnot a protobuf message\x00"


class ReceiverRejection(Exception):
    """A request the receiver refuses: answered with ``status`` and recorded in ``errors``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------------------------------
# Generic threaded HTTP receiver (shared with loki_receiver.py)
# --------------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # answer at once, not after a ~40 ms delayed ACK
    protocol_version = "HTTP/1.1"
    timeout = 15  # seconds a keep-alive connection may idle or a body may stall
    receiver: BaseReceiver  # set on the per-server subclass

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        self.receiver._handle_post(self)

    def _not_allowed(self) -> None:
        self.receiver._handle_other(self)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _not_allowed  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # keep test output quiet; errors are in receiver.errors


class BaseReceiver:
    """Threaded HTTP server on 127.0.0.1 with request accounting, fault modes and ``wait_for``.

    Subclasses set ``paths`` (the POST paths they serve) and implement ``_process`` and ``_summary``.
    Fault modes can be set at construction or changed later as attributes:
    ``status`` (answer that code, keep nothing), ``delay`` (seconds to sleep before handling),
    ``garbage`` (answer 200 with a body that is not a valid response).
    """

    paths: tuple[str, ...] = ()

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        status: int | None = None,
        delay: float = 0.0,
        garbage: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.status = status
        self.delay = delay
        self.garbage = garbage
        self._cond = threading.Condition()
        self._errors: list[str] = []
        self._requests: Counter[str] = Counter()
        self._content_types: list[str] = []
        self._content_encodings: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        handler = type("Handler", (_Handler,), {"receiver": self})
        self._stopping.clear()
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in delay mode
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43125`` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return f"http://{self.host}:{self.port}"

    # -- accounting --------------------------------------------------------------------------------

    @property
    def errors(self) -> list[str]:
        """One line per rejected request, in arrival order (snapshot)."""
        with self._cond:
            return list(self._errors)

    @property
    def requests(self) -> dict[str, int]:
        """POST count per request path, including rejected and fault-mode requests (snapshot)."""
        with self._cond:
            return dict(self._requests)

    @property
    def content_types(self) -> list[str]:
        """Raw Content-Type header of every POST, in arrival order ("" when absent)."""
        with self._cond:
            return list(self._content_types)

    @property
    def content_encodings(self) -> list[str]:
        """Raw Content-Encoding header of every POST, in arrival order ("" when absent)."""
        with self._cond:
            return list(self._content_encodings)

    def assert_no_errors(self) -> None:
        errors = self.errors
        if errors:
            raise AssertionError(f"{type(self).__name__} rejected {len(errors)} request(s): {errors}")

    def clear(self) -> None:
        with self._cond:
            self._errors.clear()
            self._requests.clear()
            self._content_types.clear()
            self._content_encodings.clear()
            self._clear_data()

    def wait_for(self, predicate: Callable[[Any], T], timeout: float = 10.0, interval: float = 0.05) -> T:
        """Poll ``predicate(self)`` until it returns something truthy and return that.

        Raises AssertionError with a summary of what arrived if ``timeout`` passes first.
        Exceptions raised by the predicate propagate.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{type(self).__name__}.wait_for timed out after {timeout:g}s; {self.summary()}"
                )
            with self._cond:
                self._cond.wait(min(interval, remaining))

    def summary(self) -> str:
        with self._cond:
            parts = [self._summary(), f"requests={dict(self._requests)}"]
            if self._errors:
                parts.append(f"errors={self._errors[-5:]}")
        return "; ".join(parts)

    # -- subclass hooks ----------------------------------------------------------------------------

    def _process(self, path: str, media_type: str, body: bytes) -> tuple[int, str, bytes]:
        """Decode and store one request body; return (status, content type, response body)."""
        raise NotImplementedError

    def _clear_data(self) -> None:
        raise NotImplementedError

    def _summary(self) -> str:
        raise NotImplementedError

    def _garbage_response(self, media_type: str) -> tuple[str, bytes]:
        return media_type, GARBAGE_BODY

    def _store(self, store: Callable[[], None]) -> None:
        """Run ``store`` under the lock and wake ``wait_for`` callers."""
        with self._cond:
            store()
            self._cond.notify_all()

    # -- request handling --------------------------------------------------------------------------

    def _record_error(self, line: str) -> None:
        with self._cond:
            self._errors.append(line)
            self._cond.notify_all()

    def _handle_other(self, h: _Handler) -> None:
        path = h.path.split("?", 1)[0]
        code = 405 if path in self.paths else 404
        self._record_error(f"{h.command} {path}: {code}")
        h.close_connection = True
        _respond(h, code, "text/plain", b"" if h.command == "HEAD" else f"{code}\n".encode())

    def _handle_post(self, h: _Handler) -> None:
        path = h.path.split("?", 1)[0]
        content_type = h.headers.get("Content-Type", "")
        encoding = h.headers.get("Content-Encoding", "")
        with self._cond:
            self._requests[path] += 1
            self._content_types.append(content_type)
            self._content_encodings.append(encoding)
        try:
            raw = _read_body(h)
        except ReceiverRejection as exc:
            h.close_connection = True
            self._reject(h, path, exc)
            return
        if self.delay:
            self._stopping.wait(self.delay)
        status = self.status
        if status is not None:
            _respond(h, status, "text/plain", f"fault mode: status {status}\n".encode())
            return
        try:
            if path not in self.paths:
                raise ReceiverRejection(404, f"unknown path (serving {', '.join(self.paths)})")
            body = _decompress(raw, encoding)
            media_type = content_type.split(";", 1)[0].strip().lower()
            code, resp_type, resp_body = self._process(path, media_type, body)
        except ReceiverRejection as exc:
            self._reject(h, path, exc)
            return
        except Exception as exc:  # a receiver bug must be loud, not a hung or reset connection
            self._reject(h, path, ReceiverRejection(500, f"receiver crashed: {exc!r}"))
            return
        if self.garbage:
            resp_type, resp_body = self._garbage_response(resp_type)
            code = 200
        _respond(h, code, resp_type, resp_body)

    def _reject(self, h: _Handler, path: str, exc: ReceiverRejection) -> None:
        self._record_error(f"POST {path}: {exc.status} {exc.message}")
        _respond(h, exc.status, "text/plain; charset=utf-8", (exc.message + "\n").encode())


def _respond(h: BaseHTTPRequestHandler, code: int, content_type: str, body: bytes) -> None:
    try:
        h.send_response(code)
        if code not in (204, 304):
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if body and code not in (204, 304) and h.command != "HEAD":
            h.wfile.write(body)
        h.wfile.flush()
    except (BrokenPipeError, ConnectionResetError):  # client gave up (e.g. timed out in delay mode)
        h.close_connection = True


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
        chunks: list[bytes] = []
        size = 0
        while True:
            line = h.rfile.readline(1024)
            try:
                n = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise ReceiverRejection(400, f"bad chunk size line {line!r}") from exc
            if n == 0:
                while h.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            size += n
            if size > MAX_BODY_BYTES:
                raise ReceiverRejection(413, "body too large")
            chunks.append(h.rfile.read(n))
            h.rfile.readline(8)  # CRLF after the chunk
    length = h.headers.get("Content-Length")
    if length is None:
        return b""
    try:
        n = int(length)
    except ValueError as exc:
        raise ReceiverRejection(400, f"bad Content-Length {length!r}") from exc
    if n < 0 or n > MAX_BODY_BYTES:
        raise ReceiverRejection(413 if n > 0 else 400, f"bad Content-Length {n}")
    body = h.rfile.read(n)
    if len(body) != n:
        raise ReceiverRejection(400, f"body ended after {len(body)} of {n} bytes")
    return body


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        try:
            return gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise ReceiverRejection(400, f"bad gzip body: {exc}") from exc
    raise ReceiverRejection(415, f"unsupported Content-Encoding {encoding!r}")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def load_json(body: bytes) -> Any:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity. Raises ReceiverRejection(400)."""
    try:
        return json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_reject_duplicate_keys,
            parse_constant=_no_constants,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReceiverRejection(400, f"bad JSON: {exc}") from exc


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# --------------------------------------------------------------------------------------------------
# Flattened OTLP views
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    trace_id: str  # 32 lowercase hex chars
    span_id: str  # 16 lowercase hex chars
    parent_span_id: str  # 16 hex chars, "" for a root span
    name: str
    kind: str  # "SERVER", "CLIENT", "INTERNAL", "PRODUCER", "CONSUMER", "UNSPECIFIED"
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    status_code: str  # "UNSET", "OK", "ERROR"
    status_message: str
    events: list[tuple[str, dict[str, Any]]]
    start_ns: int
    end_ns: int
    links: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (trace_id, span_id, attrs)
    scope_version: str = ""
    trace_state: str = ""

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True)
class LogRecord:
    trace_id: str  # 32 hex chars, "" when the record carries none
    span_id: str  # 16 hex chars, "" when the record carries none
    body: Any  # decoded AnyValue: str for string bodies, None when unset
    severity_text: str
    severity_number: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    time_ns: int = 0
    observed_time_ns: int = 0
    event_name: str = ""
    scope_version: str = ""


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    kind: str  # "histogram", "sum", "gauge", "exponential_histogram", "summary"
    resource: dict[str, Any]
    scope: str
    data_points: list[dict[str, Any]]
    description: str = ""
    temporality: str = ""  # "DELTA" / "CUMULATIVE" for sum and histograms, "" otherwise
    monotonic: bool | None = None  # sums only
    scope_version: str = ""


def any_value_to_python(value: AnyValue) -> Any:
    """AnyValue -> str / bool / int / float / bytes / list / dict / None (empty AnyValue)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value_to_python(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_to_dict(value.kvlist_value.values)
    if kind == "string_value_strindex":
        raise ValueError("string_value_strindex is only valid in profiles")
    return getattr(value, kind)


def attributes_to_dict(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    """Repeated KeyValue -> dict. Duplicate keys and profile-only string indexes are errors."""
    out: dict[str, Any] = {}
    for kv in kvs:
        if kv.key_strindex:
            raise ValueError("key_strindex is only valid in profiles")
        if kv.key in out:
            raise ValueError(f"duplicate attribute key {kv.key!r}")
        out[kv.key] = any_value_to_python(kv.value)
    return out


def _hex_id(raw: bytes, size: int, what: str, *, required: bool) -> str:
    if not raw:
        if required:
            raise ValueError(f"{what} is empty")
        return ""
    if len(raw) != size:
        raise ValueError(f"{what} is {len(raw)} bytes, expected {size}")
    if required and not any(raw):
        raise ValueError(f"{what} is all zeros")
    return raw.hex()


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    try:
        return enum.Name(value).removeprefix(prefix)
    except ValueError as exc:
        raise ValueError(f"{value} is not a valid {prefix.rstrip('_')} value") from exc


def _check_no_unknown_fields(msg: Message, where: str = "") -> None:
    """Reject fields this proto does not define, e.g. a logs request POSTed to /v1/traces parses
    "successfully" as a traces request whose fields all land in the unknown set."""
    where = where or msg.DESCRIPTOR.name
    unknown = UnknownFieldSet(msg)
    if len(unknown):
        numbers = sorted({f.field_number for f in unknown})
        raise ValueError(
            f"unknown field number(s) {numbers} in {msg.DESCRIPTOR.name} at {where} (wrong message type?)"
        )
    for desc, value in msg.ListFields():
        if desc.message_type is None:
            continue
        if desc.is_repeated:
            for i, item in enumerate(value):
                _check_no_unknown_fields(item, f"{where}.{desc.name}[{i}]")
        else:
            _check_no_unknown_fields(value, f"{where}.{desc.name}")


def _flatten_spans(req: ExportTraceServiceRequest) -> list[Span]:
    out = []
    for rs in req.resource_spans:
        resource = attributes_to_dict(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(
                    Span(
                        trace_id=_hex_id(s.trace_id, 16, "span.trace_id", required=True),
                        span_id=_hex_id(s.span_id, 8, "span.span_id", required=True),
                        parent_span_id=_hex_id(s.parent_span_id, 8, "span.parent_span_id", required=False),
                        name=s.name,
                        kind=_enum_name(trace_pb2.Span.SpanKind, s.kind, "SPAN_KIND_"),
                        attributes=attributes_to_dict(s.attributes),
                        resource=resource,
                        scope=ss.scope.name,
                        status_code=_enum_name(trace_pb2.Status.StatusCode, s.status.code, "STATUS_CODE_"),
                        status_message=s.status.message,
                        events=[(e.name, attributes_to_dict(e.attributes)) for e in s.events],
                        start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                        links=[
                            (
                                _hex_id(ln.trace_id, 16, "link.trace_id", required=True),
                                _hex_id(ln.span_id, 8, "link.span_id", required=True),
                                attributes_to_dict(ln.attributes),
                            )
                            for ln in s.links
                        ],
                        scope_version=ss.scope.version,
                        trace_state=s.trace_state,
                    )
                )
    return out


def _flatten_logs(req: ExportLogsServiceRequest) -> list[LogRecord]:
    out = []
    for rl in req.resource_logs:
        resource = attributes_to_dict(rl.resource.attributes)
        for sl in rl.scope_logs:
            for r in sl.log_records:
                out.append(
                    LogRecord(
                        trace_id=_hex_id(r.trace_id, 16, "log.trace_id", required=False),
                        span_id=_hex_id(r.span_id, 8, "log.span_id", required=False),
                        body=any_value_to_python(r.body) if r.HasField("body") else None,
                        severity_text=r.severity_text,
                        severity_number=int(r.severity_number),
                        attributes=attributes_to_dict(r.attributes),
                        resource=resource,
                        scope=sl.scope.name,
                        time_ns=r.time_unix_nano,
                        observed_time_ns=r.observed_time_unix_nano,
                        event_name=r.event_name,
                        scope_version=sl.scope.version,
                    )
                )
    return out


def _exemplars(exemplars: Iterable[metrics_pb2.Exemplar]) -> list[dict[str, Any]]:
    return [
        {
            "value": getattr(e, e.WhichOneof("value")) if e.WhichOneof("value") else None,
            "trace_id": _hex_id(e.trace_id, 16, "exemplar.trace_id", required=False),
            "span_id": _hex_id(e.span_id, 8, "exemplar.span_id", required=False),
            "attributes": attributes_to_dict(e.filtered_attributes),
            "time_ns": e.time_unix_nano,
        }
        for e in exemplars
    ]


def _optional(msg: Message, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


def _number_point(p: metrics_pb2.NumberDataPoint) -> dict[str, Any]:
    kind = p.WhichOneof("value")
    return {
        "attributes": attributes_to_dict(p.attributes),
        "value": getattr(p, kind) if kind else None,
        "start_ns": p.start_time_unix_nano,
        "time_ns": p.time_unix_nano,
        "exemplars": _exemplars(p.exemplars),
    }


def _histogram_point(p: metrics_pb2.HistogramDataPoint, name: str) -> dict[str, Any]:
    buckets = list(p.bucket_counts)
    bounds = list(p.explicit_bounds)
    if buckets and len(buckets) != len(bounds) + 1:
        raise ValueError(f"histogram {name!r}: {len(buckets)} bucket counts for {len(bounds)} bounds")
    if buckets and sum(buckets) != p.count:
        raise ValueError(f"histogram {name!r}: bucket counts add up to {sum(buckets)}, count is {p.count}")
    return {
        "attributes": attributes_to_dict(p.attributes),
        "count": p.count,
        "sum": _optional(p, "sum"),
        "min": _optional(p, "min"),
        "max": _optional(p, "max"),
        "bucket_counts": buckets,
        "explicit_bounds": bounds,
        "start_ns": p.start_time_unix_nano,
        "time_ns": p.time_unix_nano,
        "exemplars": _exemplars(p.exemplars),
    }


def _exp_histogram_point(p: metrics_pb2.ExponentialHistogramDataPoint) -> dict[str, Any]:
    return {
        "attributes": attributes_to_dict(p.attributes),
        "count": p.count,
        "sum": _optional(p, "sum"),
        "min": _optional(p, "min"),
        "max": _optional(p, "max"),
        "scale": p.scale,
        "zero_count": p.zero_count,
        "zero_threshold": p.zero_threshold,
        "positive": {"offset": p.positive.offset, "bucket_counts": list(p.positive.bucket_counts)},
        "negative": {"offset": p.negative.offset, "bucket_counts": list(p.negative.bucket_counts)},
        "start_ns": p.start_time_unix_nano,
        "time_ns": p.time_unix_nano,
        "exemplars": _exemplars(p.exemplars),
    }


def _summary_point(p: metrics_pb2.SummaryDataPoint) -> dict[str, Any]:
    return {
        "attributes": attributes_to_dict(p.attributes),
        "count": p.count,
        "sum": p.sum,
        "quantiles": [(q.quantile, q.value) for q in p.quantile_values],
        "start_ns": p.start_time_unix_nano,
        "time_ns": p.time_unix_nano,
    }


def _temporality(value: int) -> str:
    return _enum_name(metrics_pb2.AggregationTemporality, value, "AGGREGATION_TEMPORALITY_")


def _flatten_metrics(req: ExportMetricsServiceRequest) -> list[Metric]:
    out = []
    for rm in req.resource_metrics:
        resource = attributes_to_dict(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                temporality, monotonic = "", None
                if kind == "gauge":
                    points = [_number_point(p) for p in m.gauge.data_points]
                elif kind == "sum":
                    points = [_number_point(p) for p in m.sum.data_points]
                    temporality, monotonic = _temporality(m.sum.aggregation_temporality), m.sum.is_monotonic
                elif kind == "histogram":
                    points = [_histogram_point(p, m.name) for p in m.histogram.data_points]
                    temporality = _temporality(m.histogram.aggregation_temporality)
                elif kind == "exponential_histogram":
                    points = [_exp_histogram_point(p) for p in m.exponential_histogram.data_points]
                    temporality = _temporality(m.exponential_histogram.aggregation_temporality)
                elif kind == "summary":
                    points = [_summary_point(p) for p in m.summary.data_points]
                else:
                    raise ValueError(f"metric {m.name!r} has no data (no gauge/sum/histogram/...)")
                out.append(
                    Metric(
                        name=m.name,
                        unit=m.unit,
                        kind=kind,
                        resource=resource,
                        scope=sm.scope.name,
                        data_points=points,
                        description=m.description,
                        temporality=temporality,
                        monotonic=monotonic,
                        scope_version=sm.scope.version,
                    )
                )
    return out


# --------------------------------------------------------------------------------------------------
# OTLP/JSON: hex ids -> base64 so that json_format parses them into the right bytes
# --------------------------------------------------------------------------------------------------

_HEX = re.compile(r"[0-9a-fA-F]*")
# summary data points have no exemplars
_METRIC_DATA_KEYS = ("gauge", "sum", "histogram", "exponentialHistogram", "exponential_histogram")


def _items(obj: Any, *keys: str) -> Iterator[Any]:
    """Elements of the list under the first present key (camelCase or snake_case); dicts only."""
    if not isinstance(obj, dict):
        return
    for key in keys:
        if key in obj:
            value = obj[key]
            if isinstance(value, list):
                yield from (v for v in value if isinstance(v, dict))
            return


def _convert_id(obj: dict[str, Any], keys: tuple[str, str], size: int) -> None:
    for key in keys:
        if key not in obj:
            continue
        value = obj[key]
        if not isinstance(value, str):
            raise ReceiverRejection(400, f"OTLP/JSON {key} must be a hex string, got {type(value).__name__}")
        if value and (len(value) != 2 * size or not _HEX.fullmatch(value)):
            raise ReceiverRejection(
                400, f"OTLP/JSON {key} must be {2 * size} hex chars (not base64), got {value!r}"
            )
        obj[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _convert_ids(obj: dict[str, Any]) -> None:
    _convert_id(obj, ("traceId", "trace_id"), 16)
    _convert_id(obj, ("spanId", "span_id"), 8)
    _convert_id(obj, ("parentSpanId", "parent_span_id"), 8)


def otlp_json_hex_ids_to_base64(doc: Any, signal: str) -> None:
    """In place: rewrite the hex ids of spans, span links, log records and exemplars as base64."""
    if signal == "traces":
        for rs in _items(doc, "resourceSpans", "resource_spans"):
            for ss in _items(rs, "scopeSpans", "scope_spans"):
                for span in _items(ss, "spans"):
                    _convert_ids(span)
                    for link in _items(span, "links"):
                        _convert_ids(link)
    elif signal == "logs":
        for rl in _items(doc, "resourceLogs", "resource_logs"):
            for sl in _items(rl, "scopeLogs", "scope_logs"):
                for record in _items(sl, "logRecords", "log_records"):
                    _convert_ids(record)
    elif signal == "metrics":
        for rm in _items(doc, "resourceMetrics", "resource_metrics"):
            for sm in _items(rm, "scopeMetrics", "scope_metrics"):
                for metric in _items(sm, "metrics"):
                    for data_key in _METRIC_DATA_KEYS:
                        data = metric.get(data_key)
                        for point in _items(data, "dataPoints", "data_points"):
                            for exemplar in _items(point, "exemplars"):
                                _convert_ids(exemplar)


# --------------------------------------------------------------------------------------------------
# The receiver
# --------------------------------------------------------------------------------------------------

_SIGNALS: dict[str, tuple[str, type[Message], type[Message]]] = {
    "/v1/traces": ("traces", ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/metrics": ("metrics", ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    "/v1/logs": ("logs", ExportLogsServiceRequest, ExportLogsServiceResponse),
}


class OtlpReceiver(BaseReceiver):
    """OTLP/HTTP receiver (protobuf and JSON, optional gzip) on 127.0.0.1.

    ``allow_unknown_fields=False`` (default) rejects fields the installed opentelemetry-proto does not
    know; set it True if the app's SDK is newer than the proto package and sends new fields.
    """

    paths = tuple(_SIGNALS)

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        status: int | None = None,
        delay: float = 0.0,
        garbage: bool = False,
        allow_unknown_fields: bool = False,
    ) -> None:
        super().__init__(host, port, status=status, delay=delay, garbage=garbage)
        self.allow_unknown_fields = allow_unknown_fields
        self._spans: list[Span] = []
        self._logs: list[LogRecord] = []
        self._metrics: list[Metric] = []
        self._exports: list[tuple[str, Message]] = []

    # -- views -------------------------------------------------------------------------------------

    def spans(self) -> list[Span]:
        with self._cond:
            return list(self._spans)

    def logs(self) -> list[LogRecord]:
        with self._cond:
            return list(self._logs)

    def metrics(self) -> list[Metric]:
        with self._cond:
            return list(self._metrics)

    def exports(self) -> list[tuple[str, Message]]:
        """Every accepted Export*ServiceRequest as decoded, with its path (for deep assertions)."""
        with self._cond:
            return list(self._exports)

    def _clear_data(self) -> None:
        self._spans.clear()
        self._logs.clear()
        self._metrics.clear()
        self._exports.clear()

    def _summary(self) -> str:
        def names(items: Iterable[Any]) -> list[str]:
            uniq = list(dict.fromkeys(i.name for i in items))
            return uniq[:10] + (["..."] if len(uniq) > 10 else [])

        return (
            f"spans={len(self._spans)} {names(self._spans)}, logs={len(self._logs)}, "
            f"metrics={len(self._metrics)} {names(self._metrics)}"
        )

    # -- decoding ----------------------------------------------------------------------------------

    def _process(self, path: str, media_type: str, body: bytes) -> tuple[int, str, bytes]:
        signal, request_cls, response_cls = _SIGNALS[path]
        request = request_cls()
        if media_type == "application/x-protobuf":
            try:
                request.ParseFromString(body)
            except DecodeError as exc:
                raise ReceiverRejection(400, f"bad protobuf {request_cls.__name__}: {exc}") from exc
            response = response_cls().SerializeToString()
        elif media_type == "application/json":
            doc = load_json(body)
            if not isinstance(doc, dict):
                raise ReceiverRejection(400, f"OTLP/JSON body must be an object, got {type(doc).__name__}")
            otlp_json_hex_ids_to_base64(doc, signal)
            try:
                json_format.ParseDict(doc, request, ignore_unknown_fields=self.allow_unknown_fields)
            except json_format.ParseError as exc:
                raise ReceiverRejection(400, f"bad OTLP/JSON {request_cls.__name__}: {exc}") from exc
            response = json_format.MessageToJson(response_cls()).encode()
        else:
            raise ReceiverRejection(
                415, f"unsupported Content-Type {media_type!r} (application/x-protobuf or application/json)"
            )
        try:
            if not self.allow_unknown_fields:
                _check_no_unknown_fields(request)
            if signal == "traces":
                spans, logs, metrics = _flatten_spans(request), [], []
            elif signal == "logs":
                spans, logs, metrics = [], _flatten_logs(request), []
            else:
                spans, logs, metrics = [], [], _flatten_metrics(request)
        except ValueError as exc:
            raise ReceiverRejection(400, f"invalid {request_cls.__name__}: {exc}") from exc

        def store() -> None:
            self._spans.extend(spans)
            self._logs.extend(logs)
            self._metrics.extend(metrics)
            self._exports.append((path, request))

        self._store(store)
        return 200, media_type, response
