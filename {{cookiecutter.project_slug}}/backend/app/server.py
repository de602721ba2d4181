# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""uvicorn's HTTP protocol with the limits it lacks: header size, header and body read time,
connections per client. `python -m app.serve` selects it (`--http app.server:GuardedHttpToolsProtocol`).

uvicorn's default parser (httptools, with uvicorn[standard]) takes request headers of any size:
an 8 MB header was accepted, and four connections each sending an unfinished 32 MB header took the
API from 142 to 345 MB and /healthz to 1.26 s. Nor does uvicorn time out a request whose headers
or body trickle in (slowloris), or bound the connections of one client. Here, per connection:

- the request line and headers may take SERVER_MAX_HEADER_BYTES (16 KiB, like the web tier):
  past it 431 and the connection is closed, so at most one read (256 KiB) over the limit is held;
- they must arrive within SERVER_HEADER_TIMEOUT seconds of the connection (or of the head's first
  byte, for the next request on a kept-alive connection): then 408 and closed;
- a body may go SERVER_BODY_TIMEOUT seconds without a byte (while the app is reading it): closed;
- one address may hold SERVER_CONNECTIONS_PER_CLIENT connections (FORWARDED_ALLOW_IPS proxies,
  which carry many clients, excepted): past it 429 and closed.
The settings are read once per worker process (Settings, settings.py).
"""

from __future__ import annotations

import asyncio
import functools
import http
import ipaddress
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .ratelimit import normalize_client
from .settings import Settings


@functools.cache
def server_settings() -> Settings:
    return Settings.from_env()


@functools.cache
def _trusted_networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in value.split(",") if entry.strip())


def is_trusted_proxy(host: str, settings: Settings) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in _trusted_networks(settings.forwarded_allow_ips))


class HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops and uvicorn answers (send_400_response)."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with header size, read-time and per-client connection limits."""

    # Open connections per client address, in this worker (asyncio: one thread touches it).
    open_per_client: ClassVar[dict[str, int]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = server_settings()
        self._reading_head = True
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._counted_client: str | None = None
        self._head_parsed = 0
        self._head_over_limit = False

    # ---- connection ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        host = self.client[0] if self.client else ""
        if host and not is_trusted_proxy(host, self.guard):
            client = normalize_client(host)
            held = self.open_per_client.get(client, 0)
            if held >= self.guard.server_connections_per_client:
                self._refuse(429, f"over {self.guard.server_connections_per_client} connections from this client")
                return
            self.open_per_client[client] = held + 1
            self._counted_client = client
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._counted_client is not None:
            left = self.open_per_client.get(self._counted_client, 1) - 1
            if left > 0:
                self.open_per_client[self._counted_client] = left
            else:
                self.open_per_client.pop(self._counted_client, None)
            self._counted_client = None
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._reading_head:
            self._head_bytes += len(data)
            if self._head_timer is None:  # the next request's head begins
                self._arm_head_timer()
        elif self._body_timer is not None:
            self._arm_body_timer()
        super().data_received(data)
        if self._reading_head and self._head_bytes > self.guard.server_max_header_bytes:
            self._refuse(431, f"request headers are over {self.guard.server_max_header_bytes} bytes")

    # ---- parser callbacks ------------------------------------------------------------------
    # A head that arrives within one read is complete before data_received can count it: its
    # parts are counted here, and one over the limit stops the parser (send_400_response below).
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_parsed = 0

    def on_url(self, url: bytes) -> None:
        self._head_parsed += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_parsed += len(name) + len(value) + 4
        if self._head_parsed > self.guard.server_max_header_bytes:
            self._head_over_limit = True
            raise HeadTooLarge
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if self._head_over_limit:
            self._refuse(431, f"request headers are over {self.guard.server_max_header_bytes} bytes")
        else:
            super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._arm_body_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._reading_head = True
        self._head_bytes = 0

    # ---- timers and refusals ---------------------------------------------------------------
    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.guard.server_header_timeout, self._head_too_slow)

    def _arm_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = self.loop.call_later(self.guard.server_body_timeout, self._body_too_slow)

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self._reading_head or self.transport.is_closing():
            return
        if self._head_bytes:
            self._refuse(408, f"request headers took over {self.guard.server_header_timeout:g} s")
        else:  # connected and sent nothing: nobody to answer
            self.transport.close()

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if not self.transport.is_reading():  # paused by us (the app has not read what came): not the client's fault
            self._arm_body_timer()
            return
        self.transport.close()  # the app sees http.disconnect; no response can be sent mid-request

    def _refuse(self, status: int, reason: str) -> None:
        """A plain-text answer with a one-line reason, then the connection is closed."""
        self._cancel_timers()
        if self.transport.is_closing():
            return
        body = reason.encode()
        head = (
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
            "content-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\n"
            + ("retry-after: 1\r\n" if status == 429 else "")
            + "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()


__all__ = ["GuardedHttpToolsProtocol", "is_trusted_proxy", "server_settings"]
