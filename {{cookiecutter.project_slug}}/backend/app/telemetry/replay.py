# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Session-replay correlation, backend side: which replay vendor names the session of a request.

Its twin in the web app is `web/lib/observability.ts`; both read SESSION_REPLAY at run time (the
render-time answer is the default, DEFAULT_VENDOR). The browser's replay SDK sends a header naming
the replay session; the server span gets that session as attributes, so a trace leads to the replay
and the replay to its traces. No vendor SDK runs here: the Highlight Python SDK pins an old
OpenTelemetry and replaces the global providers, so plain span attributes do the job.

A new vendor is one entry in VENDORS (its header reader, or None when it sends only our own
`x-session-id`), one in web/lib/observability.ts, and its choice in the template's cookiecutter.json.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, Literal

from fastapi import FastAPI
from opentelemetry.trace import Span

DEFAULT_VENDOR = "{{ cookiecutter.session_replay }}"

# `x-highlight-request: <session_secure_id>/<request_id>`, sent by highlight.run to tracingOrigins.
HIGHLIGHT_HEADER = b"x-highlight-request"
# Sentry puts the replay id in the W3C baggage it sends with its sentry-trace header.
BAGGAGE_HEADER = b"baggage"
# Our own header: the built-in replay's and "none"'s session, and any vendor's until it has one of its own.
SESSION_HEADER = b"x-session-id"

_MAX_ID_LENGTH = 128

# The session of the request being served, for its log records (logs.PrepareRecordFilter). The server runs
# each request in a task of its own (a copy of the context), so the value ends with the request.
_request_session: ContextVar[str | None] = ContextVar("request_session", default=None)


def current_session_id() -> str | None:
    """The replay session of the request being served; None outside a request or without one."""
    return _request_session.get()


def _clean(value: str) -> str | None:
    value = value.strip()
    if not value or len(value) > _MAX_ID_LENGTH or not value.isprintable():
        return None
    return value


Headers = Sequence[tuple[bytes, bytes]]


def _highlight(name: bytes, raw: bytes) -> dict[str, str]:
    if name != HIGHLIGHT_HEADER:
        return {}
    session, _, request = raw.decode("latin-1").partition("/")
    attributes = {}
    if session := _clean(session):
        attributes["highlight.session_id"] = attributes["session.id"] = session
    if request := _clean(request):
        attributes["highlight.trace_id"] = request
    return attributes


def _sentry(name: bytes, raw: bytes) -> dict[str, str]:
    if name != BAGGAGE_HEADER or b"sentry-replay_id=" not in raw:
        return {}
    for member in raw.decode("latin-1").split(","):
        key, _, value = member.strip().partition("=")
        if key == "sentry-replay_id" and (replay_id := _clean(value.split(";")[0])):
            return {"sentry.replay_id": replay_id, "session.id": replay_id}
    return {}


# The vendor registry: each name and the reader of its own header (None: `x-session-id` only).
VENDORS: dict[str, Callable[[bytes, bytes], dict[str, str]] | None] = {
    "builtin": None,
    "none": None,
    "highlight": _highlight,
    "sentry": _sentry,
}
# The registry's names as a type: Settings.session_replay accepts these and nothing else.
ReplayVendorName = Literal[tuple(VENDORS)]


def session_attributes(headers: Headers, vendor: str = DEFAULT_VENDOR) -> dict[str, str]:
    """Span attributes naming the replay session a request belongs to (empty when there is none):
    from `vendor`'s own header, else from `x-session-id`; other vendors' headers are not read."""
    read_vendor_header = VENDORS[vendor]
    attributes: dict[str, str] = {}
    for name, raw in headers:
        if read_vendor_header is not None and (found := read_vendor_header(name, raw)):
            attributes.update(found)
        elif name == SESSION_HEADER and (session := _clean(raw.decode("latin-1"))):
            attributes.setdefault("session.id", session)
    return attributes


def use_vendor(app: FastAPI, vendor: str) -> None:
    """Makes `app`'s server spans read `vendor`'s session header (Settings.session_replay)."""
    app.state.session_replay = vendor


def server_request_hook(span: Span, scope: dict[str, Any]) -> None:
    """Called by the FastAPI instrumentation with each server span and its ASGI scope."""
    app = scope.get("app")
    vendor = getattr(getattr(app, "state", None), "session_replay", DEFAULT_VENDOR)
    attributes = session_attributes(scope.get("headers") or (), vendor)
    # Set for every request (None without a session), sampled or not: its logs ship either way.
    _request_session.set(attributes.get("session.id"))
    if attributes and span is not None and span.is_recording():
        span.set_attributes(attributes)
