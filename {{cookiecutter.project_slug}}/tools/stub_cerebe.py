#!/usr/bin/env python3
# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""A local stand-in for Cerebe (OpenAI-compatible chat completions), for dev runs and tests.

    python tools/stub_cerebe.py --port 8001      # then CEREBE_BASE_URL=http://127.0.0.1:8001

It answers `POST /v1/chat/completions` (plain and streamed) with an echo of the last user message
and OpenAI-style usage, and keeps the last requests it received (headers included) at
`GET /_stub/requests`, so tests can check that traceparent arrived. Markers in the last user
message make it misbehave on purpose: `[stub:500]`, `[stub:429]`, `[stub:garbage]`,
`[stub:no-usage]`, `[stub:slow=SECONDS]`. While slow, it watches its caller: a caller that closes
the connection is counted at `GET /_stub/abandoned` (tests check that a call is cancelled when the
API's own client goes away). Standard library only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import select
import socket
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SLOW = re.compile(r"\[stub:slow=([0-9.]+)\]")


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


class _Handler(BaseHTTPRequestHandler):
    server: StubServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # or each answer waits ~40 ms for a delayed ACK

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.path == "/_stub/requests":
            with self.server.lock:
                records = list(self.server.received)
            self._send(200, json.dumps(records).encode())
        elif self.path == "/_stub/abandoned":
            with self.server.lock:
                abandoned = self.server.abandoned
            self._send(200, json.dumps({"abandoned": abandoned}).encode())
        elif self.path == "/healthz":
            self._send(200, b'{"status":"ok"}')
        else:
            self._send(404, b'{"error":"not found"}')

    def do_DELETE(self) -> None:  # noqa: N802 - stdlib naming
        if self.path == "/_stub/requests":
            with self.server.lock:
                self.server.received.clear()
            self._send(204, b"")
        else:
            self._send(404, b'{"error":"not found"}')

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        with self.server.lock:
            self.server.received.append(
                {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
            )
        if self.path != "/v1/chat/completions":
            self._send(404, b'{"error":{"message":"not found"}}')
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send(400, b'{"error":{"message":"messages is required"}}')
            return

        last = next((m.get("content", "") for m in reversed(body["messages"]) if m.get("role") == "user"), "")
        last = last if isinstance(last, str) else json.dumps(last)
        if (slow := _SLOW.search(last)) and not self._wait_unless_abandoned(float(slow.group(1))):
            self.close_connection = True
            return
        if "[stub:500]" in last:
            self._send(500, b'{"error":{"message":"stub failure"}}')
            return
        if "[stub:429]" in last:
            self._send(429, b'{"error":{"message":"rate limited"}}')
            return
        if "[stub:garbage]" in last:
            self._send(200, b"this is not json")
            return

        model = body.get("model") or "stub-model"
        reply = f"Echo: {last}"
        prompt_tokens = sum(_tokens(str(m.get("content", ""))) for m in body["messages"])
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": _tokens(reply),
            "total_tokens": prompt_tokens + _tokens(reply),
        }
        response_id = f"chatcmpl-stub-{next(self.server.ids)}"
        if body.get("stream"):
            self._stream(response_id, model, reply, usage, body, with_usage="[stub:no-usage]" not in last)
            return
        answer: dict[str, Any] = {
            "id": response_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
        }
        if "[stub:no-usage]" not in last:
            answer["usage"] = usage
        self._send(200, json.dumps(answer).encode())

    def _wait_unless_abandoned(self, seconds: float) -> bool:
        """Waits `seconds`; False (and counted) as soon as the caller closes the connection."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if select.select([self.connection], [], [], min(left, 0.05))[0]:
                try:
                    closed = self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    closed = True
                if closed:
                    with self.server.lock:
                        self.server.abandoned += 1
                    return False
                time.sleep(min(left, 0.05))  # pipelined bytes: not a close
        return True

    def _stream(self, response_id: str, model: str, reply: str, usage: dict, body: dict, with_usage: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

        def event(payload: dict | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()

        base = {"id": response_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        words = reply.split(" ")
        for index, word in enumerate(words):
            text = word if index == 0 else " " + word
            event({**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
        event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if with_usage and (body.get("stream_options") or {}).get("include_usage"):
            event({**base, "choices": [], "usage": usage})
        event("[DONE]")
        self.close_connection = True


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0, keep: int = 1000) -> None:
        super().__init__((host, port), _Handler)
        self.lock = threading.Lock()
        self.received: deque[dict[str, Any]] = deque(maxlen=keep)
        self.ids = itertools.count(1)
        self.abandoned = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) closes the socket under the answer: not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class StubCerebe:
    """In-process use: `with StubCerebe() as stub: ... stub.url ... stub.requests()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = StubServer(host, port)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def requests(self) -> list[dict[str, Any]]:
        with self.server.lock:
            return list(self.server.received)

    def __enter__(self) -> StubCerebe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    args = parser.parse_args(argv)
    server = StubServer(args.host, args.port)
    print(f"stub Cerebe listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
