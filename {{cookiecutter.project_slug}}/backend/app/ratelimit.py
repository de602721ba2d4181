# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The one rate limiter every route uses, and the one notion of who the client is.

Who: `client_id(request)` is the peer address as uvicorn reports it. uvicorn replaces the peer by
the last untrusted `X-Forwarded-For` entry only when the peer is a trusted proxy: the addresses in
FORWARDED_ALLOW_IPS (Settings.forwarded_allow_ips; default loopback, where the web app's proxy
runs). `python -m app.serve` passes that setting to uvicorn, so a client elsewhere cannot name
itself. An IPv6 client is its /64: one host gets a whole /64, so single addresses would be free.

How often: `SlidingWindow(limit, window_seconds)` counts a cost per key over the last window
(requests count 1, LLM tokens count tokens). `acquire` answers 0.0 (taken) or the seconds until
the cost would fit (the `Retry-After`); `charge` adds a cost unconditionally (a refund is a
negative charge: an estimate settled against what was used). Per worker process: a guard, not
accounting. Keys are kept least-recently-used first and the oldest is forgotten past `max_keys`,
so a flood of new keys costs bounded memory and forgets only the idlest clients.

Written here rather than taken from the `limits` package: the budgets need refunds (a token
estimate settled after the LLM answers) and a bound on the number of keys.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from fastapi import Request

IPV6_CLIENT_PREFIX = 64


def client_id(request: Request) -> str:
    """The client a limit counts: its address (X-Forwarded-For's only from a trusted proxy)."""
    host = request.client.host if request.client else ""
    return normalize_client(host)


def normalize_client(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64] or "unknown"  # a unix socket or a test client: at most 64 characters
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


@dataclass
class _Window:
    events: deque[tuple[float, float]] = field(default_factory=deque)
    total: float = 0.0


@dataclass
class SlidingWindow:
    """At most `limit` cost per key in any `window_seconds` (per worker)."""

    limit: float
    window_seconds: float
    max_keys: int = 10_000
    _keys: OrderedDict[str, _Window] = field(default_factory=OrderedDict, init=False, repr=False)

    def _window(self, key: str, now: float) -> _Window:
        window = self._keys.get(key)
        if window is None:
            window = self._keys[key] = _Window()
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key)
        while window.events and now - window.events[0][0] >= self.window_seconds:
            window.total -= window.events.popleft()[1]
        return window

    def acquire(self, key: str, cost: float = 1.0, now: float | None = None) -> float:
        """Takes `cost` if it fits (returns 0.0); else the seconds until it would fit, taking nothing."""
        now = time.monotonic() if now is None else now
        window = self._window(key, now)
        if window.total + cost <= self.limit:
            window.events.append((now, cost))
            window.total += cost
            return 0.0
        return self._wait(window, cost, now)

    def used(self, key: str, now: float | None = None) -> float:
        return self._window(key, time.monotonic() if now is None else now).total

    def charge(self, key: str, cost: float, now: float | None = None) -> None:
        """Adds `cost` whether it fits or not (negative: gives back part of an earlier charge)."""
        now = time.monotonic() if now is None else now
        window = self._window(key, now)
        window.events.append((now, cost))
        window.total += cost

    def retry_after(self, key: str, cost: float = 0.0, now: float | None = None) -> float:
        """Seconds until `cost` more fits (0.0: it fits now)."""
        now = time.monotonic() if now is None else now
        window = self._window(key, now)
        return 0.0 if window.total + cost <= self.limit else self._wait(window, cost, now)

    def allow(self, key: str, now: float | None = None) -> bool:
        return self.acquire(key, 1.0, now) == 0.0

    def _wait(self, window: _Window, cost: float, now: float) -> float:
        remaining = window.total
        for moment, spent in window.events:
            remaining -= spent
            if remaining + cost <= self.limit:
                return max(0.0, moment + self.window_seconds - now)
        return self.window_seconds


def retry_after_header(seconds: float) -> dict[str, str]:
    """`Retry-After` in whole seconds, at least 1."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


__all__ = ["SlidingWindow", "client_id", "normalize_client", "retry_after_header"]
