"""A strict Loki push receiver for tests (JSON push API, optional gzip), answering 204 like Loki.

    with LokiReceiver() as rx:
        env["LOKI_URL"] = rx.url            # the app appends /loki/api/v1/push
        # or rx.push_url for clients that take the full push URL (python-logging-loki)
        rx.wait_for(lambda r: [e for e in r.entries() if "hello" in e.line])

Accepted body: {"streams": [{"stream": {label: value}, "values": [[ts, line] | [ts, line, {k: v}]]}]}
with ts a decimal string of Unix nanoseconds. Anything else (including the pre-0.4 "labels"/"entries"
format, non-string label values, bad label names, empty label sets) is answered 400 and recorded in
``rx.errors``. Protobuf (snappy) pushes are answered 415 and recorded: this receiver speaks JSON only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .otlp_receiver import BaseReceiver, ReceiverRejection, load_json

__all__ = ["LOKI_PUSH_PATH", "LokiEntry", "LokiReceiver"]

LOKI_PUSH_PATH = "/loki/api/v1/push"
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_DECIMAL = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class LokiEntry:
    labels: dict[str, str]
    ts_ns: int
    line: str
    metadata: dict[str, str]


class LokiReceiver(BaseReceiver):
    """Loki push endpoint on 127.0.0.1. Fault modes: ``status``, ``delay`` (and ``garbage``)."""

    paths = (LOKI_PUSH_PATH,)

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        status: int | None = None,
        delay: float = 0.0,
        garbage: bool = False,
    ) -> None:
        super().__init__(host, port, status=status, delay=delay, garbage=garbage)
        self._entries: list[LokiEntry] = []

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43125``."""
        return self.endpoint

    @property
    def push_url(self) -> str:
        """The full push URL, ``{url}/loki/api/v1/push``."""
        return self.endpoint + LOKI_PUSH_PATH

    @property
    def pushes(self) -> int:
        """POSTs to the push path (accepted, rejected or faulted): tells batching from one POST per record."""
        return self.requests.get(LOKI_PUSH_PATH, 0)

    def entries(self) -> list[LokiEntry]:
        with self._cond:
            return list(self._entries)

    def _clear_data(self) -> None:
        self._entries.clear()

    def _summary(self) -> str:
        lines = [e.line[:60] for e in self._entries[-5:]]
        return f"entries={len(self._entries)} last={lines}"

    def _garbage_response(self, media_type: str) -> tuple[str, bytes]:
        return "text/plain", b"\xff\xfenot what Loki answers"

    def _process(self, path: str, media_type: str, body: bytes) -> tuple[int, str, bytes]:
        if media_type == "application/x-protobuf":
            raise ReceiverRejection(415, "protobuf (snappy) Loki pushes are not supported here; send JSON")
        if media_type != "application/json":
            raise ReceiverRejection(415, f"unsupported Content-Type {media_type!r} (application/json)")
        entries = parse_push(load_json(body))
        self._store(lambda: self._entries.extend(entries))
        return 204, "", b""


def _fail(message: str) -> ReceiverRejection:
    return ReceiverRejection(400, message)


def _check_keys(obj: dict[str, Any], allowed: Iterable[str], where: str) -> None:
    extra = sorted(set(obj) - set(allowed))
    if extra:
        raise _fail(f"{where}: unexpected key(s) {extra}")


def _string_map(obj: Any, where: str) -> dict[str, str]:
    if not isinstance(obj, dict):
        raise _fail(f"{where} must be an object, got {type(obj).__name__}")
    for key, value in obj.items():
        if not isinstance(value, str):
            raise _fail(f"{where}[{key!r}] must be a string, got {type(value).__name__} {value!r}")
    return dict(obj)


def parse_push(doc: Any) -> list[LokiEntry]:
    """Validate a decoded Loki JSON push body and flatten it. Raises ReceiverRejection(400)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("streams"), list):
        raise _fail('push body must be {"streams": [...]}')
    _check_keys(doc, ("streams",), "push body")
    out: list[LokiEntry] = []
    for i, stream in enumerate(doc["streams"]):
        where = f"streams[{i}]"
        if not isinstance(stream, dict):
            raise _fail(f"{where} must be an object")
        _check_keys(stream, ("stream", "values"), where)
        if "stream" not in stream or "values" not in stream:
            raise _fail(f'{where} needs "stream" and "values" (pre-0.4 "labels"/"entries" is not accepted)')
        labels = _string_map(stream["stream"], f"{where}.stream")
        if not labels:
            raise _fail(f"{where}.stream: at least one label is required")
        for name in labels:
            if not _LABEL_NAME.fullmatch(name):
                raise _fail(f"{where}.stream: invalid label name {name!r}")
        values = stream["values"]
        if not isinstance(values, list):
            raise _fail(f"{where}.values must be a list")
        for j, value in enumerate(values):
            vwhere = f"{where}.values[{j}]"
            if not isinstance(value, list) or len(value) not in (2, 3):
                raise _fail(f"{vwhere} must be [ts, line] or [ts, line, {{metadata}}], got {value!r}")
            ts, line = value[0], value[1]
            if not isinstance(ts, str) or not _DECIMAL.fullmatch(ts) or int(ts) >= 2**63:
                raise _fail(f"{vwhere}: timestamp must be a decimal string of Unix ns, got {ts!r}")
            if not isinstance(line, str):
                raise _fail(f"{vwhere}: line must be a string, got {type(line).__name__}")
            metadata = _string_map(value[2], f"{vwhere} metadata") if len(value) == 3 else {}
            out.append(LokiEntry(labels=dict(labels), ts_ns=int(ts), line=line, metadata=metadata))
    return out
