# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Session-replay correlation, backend side: the one file to change with the replay vendor.

Its twin in the web app is `web/lib/observability.ts`. The browser's replay SDK sends a header
naming the replay session; the server span gets that session as attributes, so a trace leads to
the replay and the replay to its traces. No vendor SDK runs here: the Highlight Python SDK pins an
old OpenTelemetry and replaces the global providers, so plain span attributes do the job.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from opentelemetry.trace import Span

PROVIDER = "{{ cookiecutter.session_replay }}"

# `x-highlight-request: <session_secure_id>/<request_id>`, sent by highlight.run to tracingOrigins.
HIGHLIGHT_HEADER = b"x-highlight-request"
# Sentry puts the replay id in the W3C baggage it sends with its sentry-trace header.
BAGGAGE_HEADER = b"baggage"
# Our own header, for the built-in replay or any vendor whose session id the browser can read.
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


def session_attributes(headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]) -> dict[str, str]:
    """Span attributes naming the replay session a request belongs to (empty when there is none)."""
    attributes: dict[str, str] = {}
    for name, raw in headers:
        if name == HIGHLIGHT_HEADER:
            session, _, request = raw.decode("latin-1").partition("/")
            if session := _clean(session):
                attributes["highlight.session_id"] = session
                attributes["session.id"] = session
            if request := _clean(request):
                attributes["highlight.trace_id"] = request
        elif name == SESSION_HEADER:
            if session := _clean(raw.decode("latin-1")):
                attributes.setdefault("session.id", session)
        elif name == BAGGAGE_HEADER and b"sentry-replay_id=" in raw:
            for member in raw.decode("latin-1").split(","):
                key, _, value = member.strip().partition("=")
                if key == "sentry-replay_id" and (replay_id := _clean(value.split(";")[0])):
                    attributes["sentry.replay_id"] = replay_id
                    attributes.setdefault("session.id", replay_id)
    return attributes


def server_request_hook(span: Span, scope: dict[str, Any]) -> None:
    """Called by the FastAPI instrumentation with each server span and its ASGI scope."""
    attributes = session_attributes(scope.get("headers") or ())
    # Set for every request (None without a session), sampled or not: its logs ship either way.
    _request_session.set(attributes.get("session.id"))
    if attributes and span is not None and span.is_recording():
        span.set_attributes(attributes)
