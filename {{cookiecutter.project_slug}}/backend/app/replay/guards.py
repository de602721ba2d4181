# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Who may upload replay chunks, and how often: origin check, client address, rate limits."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from fastapi import Request


@dataclass
class RateLimiter:
    """At most `per_window` events per key in any `window_seconds` (per worker: a guard, not accounting).

    Keys are kept least-recently-used first and the oldest is forgotten past `max_keys`, so memory is
    bounded and a flood of new keys forgets only the keys idle the longest, never everyone at once.
    """

    per_window: int
    window_seconds: float
    max_keys: int = 10_000
    _seen: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict, init=False, repr=False)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        window = self._seen.get(key)
        if window is None:
            window = self._seen[key] = deque()
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(key)
        while window and now - window[0] >= self.window_seconds:
            window.popleft()
        if len(window) >= self.per_window:
            return False
        window.append(now)
        return True


def client_of(request: Request) -> str:
    """The client's address as uvicorn reports it: X-Forwarded-For's when the peer is a trusted
    proxy (uvicorn's --forwarded-allow-ips, 127.0.0.1 by default: the web app's proxy on this host)."""
    return request.client.host if request.client else "unknown"


def same_origin(request: Request, allowed: tuple[str, ...]) -> bool:
    """Browsers send Origin on POST; it must be this app (or one of REPLAY_ALLOWED_ORIGINS).

    Behind the web app's same-origin proxy "this app" is the host the browser talked to, which the
    proxy passes as X-Forwarded-Host/-Proto. A page elsewhere cannot set those headers on a
    cross-origin request without a CORS preflight, which this API never grants.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("sec-fetch-site", "same-origin") in {"same-origin", "none"}
    headers = request.headers
    host = headers.get("x-forwarded-host") or headers.get("host", "")
    scheme = headers.get("x-forwarded-proto") or request.url.scheme
    return origin in {f"{scheme}://{host}", f"{request.url.scheme}://{headers.get('host', '')}"} or origin in allowed
