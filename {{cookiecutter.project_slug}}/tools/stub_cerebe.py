#!/usr/bin/env python3
# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""A local stand-in for Cerebe (OpenAI-compatible chat completions), for dev runs and tests.

    python tools/stub_cerebe.py --port 8001      # then CEREBE_BASE_URL=http://127.0.0.1:8001

It answers `POST /v1/chat/completions` (plain and streamed) with an echo of the last user message
and OpenAI-style usage, and keeps the last requests it received (headers included) at
`GET /_stub/requests`, so tests can check that traceparent arrived. Markers in the last user
message make it misbehave on purpose: `[stub:500]`, `[stub:429]`, `[stub:garbage]`,
`[stub:no-usage]`, `[stub:slow=SECONDS]` (each round trip of an agent run alike). While slow, it
watches its caller: a caller that closes the connection is counted at `GET /_stub/abandoned`
(tests check that a call is cancelled when the API's own client goes away).

Tools: when the request offers `tools`, each `[tool:NAME]` or `[tool:NAME {"json": "arguments"}]`
in the last user message is one tool call, asked one per round trip in the order written (plain:
`tool_calls` in the message; streamed: tool-call deltas, the arguments in pieces), with ids
`call_<n>` counted across the server's life. Once every marker has a `role: "tool"` answer, the
reply is the echo followed by each tool's result. Without `tools` the markers are just text.
Standard library only.
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
_TOOL = re.compile(r"\[tool:([A-Za-z0-9_-]{1,64})")


def tool_markers(text: str) -> list[tuple[str, str]]:
    """(name, JSON arguments) of each `[tool:NAME]` / `[tool:NAME {...}]` marker, in order."""
    found, decoder = [], json.JSONDecoder()
    for match in _TOOL.finditer(text):
        rest, arguments = text[match.end() :], "{}"
        if rest.startswith(" {"):
            try:
                value, end = decoder.raw_decode(rest[1:])
            except ValueError:
                continue
            if not rest[1 + end :].startswith("]") or not isinstance(value, dict):
                continue
            arguments = json.dumps(value)
        elif not rest.startswith("]"):
            continue
        found.append((match.group(1), arguments))
    return found


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
        calls = self._tool_calls(body, last)
        reply = None if calls else f"Echo: {last}" + self._tool_results(body["messages"])
        completion = _tokens(reply) if reply else sum(_tokens(c["function"]["arguments"]) for c in calls)
        prompt_tokens = sum(_tokens(str(m.get("content", ""))) for m in body["messages"])
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }
        response_id = f"chatcmpl-stub-{next(self.server.ids)}"
        if body.get("stream"):
            self._stream(response_id, model, reply, calls, usage, body, with_usage="[stub:no-usage]" not in last)
            return
        message: dict[str, Any] = {"role": "assistant", "content": reply}
        if calls:
            message["tool_calls"] = calls
        answer: dict[str, Any] = {
            "id": response_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
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

    def _tool_calls(self, body: dict, last: str) -> list[dict[str, Any]]:
        """The next marker's call, when tools are offered and a marker is still unanswered."""
        if not body.get("tools"):
            return []
        messages = body["messages"]
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        asked = sum(len(m.get("tool_calls") or ()) for m in messages[last_user + 1 :] if m.get("role") == "assistant")
        markers = tool_markers(last)
        if asked >= len(markers):
            return []
        name, arguments = markers[asked]
        call_id = f"call_{next(self.server.call_ids)}"
        return [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]

    @staticmethod
    def _tool_results(messages: list[dict[str, Any]]) -> str:
        """` [NAME: result]` for each tool answer after the last user message."""
        names = {}
        for message in messages:
            for call in message.get("tool_calls") or ():
                names[call.get("id")] = (call.get("function") or {}).get("name")
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        return "".join(
            f" [{names.get(m.get('tool_call_id'), '?')}: {m.get('content')}]"
            for m in messages[last_user + 1 :]
            if m.get("role") == "tool"
        )

    def _stream(
        self,
        response_id: str,
        model: str,
        reply: str | None,
        calls: list[dict[str, Any]],
        usage: dict,
        body: dict,
        with_usage: bool,
    ) -> None:
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
        for index, call in enumerate(calls):
            # As OpenAI streams them: id and name first, then the arguments in pieces.
            function = call["function"]
            first = {"index": index, "id": call["id"], "type": "function", "function": {"name": function["name"]}}
            event({**base, "choices": [{"index": 0, "delta": {"tool_calls": [first]}, "finish_reason": None}]})
            arguments = function["arguments"]
            for start in range(0, len(arguments), 8):
                piece = {"index": index, "function": {"arguments": arguments[start : start + 8]}}
                event({**base, "choices": [{"index": 0, "delta": {"tool_calls": [piece]}, "finish_reason": None}]})
        words = reply.split(" ") if reply else []
        for index, word in enumerate(words):
            text = word if index == 0 else " " + word
            event({**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
        reason = "tool_calls" if calls else "stop"
        event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
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
        self.call_ids = itertools.count(1)

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
