"""Built-in session replay: the browser uploads rrweb chunks here; operators read them back.

POST /api/replay/{session_id}   ingest one chunk (JSON, optionally gzip): size, rate and origin
                                limits; a chunk is stored whole or not at all (4xx says why).
GET  /api/replay/{session_id}   events and trace ids of a session, for the viewer; needs
                                `Authorization: Bearer $REPLAY_VIEWER_TOKEN`. No token configured:
                                404, there is no viewer.
Mounted only when telemetry/replay.py says PROVIDER = "builtin". Neither route is traced (no server
span: telemetry/config.py EXCLUDED_URLS; no database spans: suppressed below): a browser tab
uploads every few seconds, and replay traffic is not what a trace should be about.
"""

from __future__ import annotations

import hmac
import json
import re
import time
import zlib
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.utils import suppress_instrumentation

from ..replay_store import Chunk, ReplayStore
from ..settings import Settings

router = APIRouter(prefix="/api/replay", tags=["replay"])

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_EVENTS_PER_CHUNK = 10_000
MAX_TRACE_IDS_PER_CHUNK = 500
INFLATION_LIMIT = 20  # a gzip body may grow this many times its size, no more (zip bombs)


class ChunkError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_chunk(session_id: str, body: bytes, content_encoding: str | None, max_bytes: int) -> Chunk:
    """Validates one upload; raises ChunkError(status, one-line reason)."""
    if not SESSION_ID.match(session_id):
        raise ChunkError(400, "session_id must be 8 to 128 characters of A-Z, a-z, 0-9, '_' or '-'")
    if len(body) > max_bytes:
        raise ChunkError(413, f"chunk is {len(body)} bytes; the limit is {max_bytes}")
    if (content_encoding or "").lower() == "gzip":
        inflater = zlib.decompressobj(wbits=31)
        try:
            body = inflater.decompress(body, max_bytes * INFLATION_LIMIT)
        except zlib.error:
            raise ChunkError(400, "body is not valid gzip") from None
        if inflater.unconsumed_tail:
            raise ChunkError(413, f"chunk inflates beyond {max_bytes * INFLATION_LIMIT} bytes")
    elif content_encoding and content_encoding.lower() != "identity":
        raise ChunkError(415, f"Content-Encoding {content_encoding!r} is not supported (gzip or none)")
    try:
        payload = json.loads(body)
    except ValueError:
        raise ChunkError(400, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise ChunkError(400, "body must be a JSON object with seq, events and trace_ids")
    seq, events, trace_ids = payload.get("seq"), payload.get("events"), payload.get("trace_ids", [])
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= 1_000_000:
        raise ChunkError(400, "seq must be an integer from 0 to 1000000")
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS_PER_CHUNK:
        raise ChunkError(400, f"events must be a list of 1 to {MAX_EVENTS_PER_CHUNK} rrweb events")
    for event in events:
        if (
            not isinstance(event, dict)
            or not isinstance(event.get("type"), int)
            or not isinstance(event.get("timestamp"), (int, float))
        ):
            raise ChunkError(400, "every event needs an integer type and a numeric timestamp")
    if not isinstance(trace_ids, list) or len(trace_ids) > MAX_TRACE_IDS_PER_CHUNK:
        raise ChunkError(400, f"trace_ids must be a list of at most {MAX_TRACE_IDS_PER_CHUNK} ids")
    if not all(isinstance(t, str) and TRACE_ID.match(t) for t in trace_ids):
        raise ChunkError(400, "each trace id must be 32 lowercase hex characters")
    return Chunk(session_id=session_id, seq=seq, events=events, trace_ids=trace_ids)


@dataclass
class RateLimiter:
    """At most `per_minute` chunks per session per minute (per worker: a guard, not accounting)."""

    per_minute: int
    max_sessions: int = 10_000

    def __post_init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}

    def allow(self, session_id: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        window = self._seen.get(session_id)
        if window is None:
            if len(self._seen) >= self.max_sessions:
                self._seen.clear()  # bounded memory beats perfect fairness
            window = self._seen[session_id] = deque()
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) >= self.per_minute:
            return False
        window.append(now)
        return True


def _same_origin(request: Request, allowed: tuple[str, ...]) -> bool:
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


@router.post("/{session_id}", status_code=201)
async def ingest(session_id: str, request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    store: ReplayStore = request.app.state.replay_store
    if not _same_origin(request, settings.replay_allowed_origins):
        raise HTTPException(403, "replay chunks are accepted from the app's own origin only")
    body = await _read_limited(request, settings.replay_max_chunk_bytes)
    try:
        chunk = parse_chunk(session_id, body, request.headers.get("content-encoding"), settings.replay_max_chunk_bytes)
    except ChunkError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    if not request.app.state.replay_limiter.allow(session_id):
        raise HTTPException(429, "too many chunks for this session; retry later", headers={"Retry-After": "60"})
    with suppress_instrumentation():
        if await store.session_bytes(session_id) + len(body) > settings.replay_max_session_bytes:
            raise HTTPException(413, f"session is over {settings.replay_max_session_bytes} bytes; recording stops here")
        stored = await store.add(chunk, datetime.now(UTC))
    return JSONResponse({"stored": stored, "duplicate": not stored}, status_code=201 if stored else 200)


@router.get("/{session_id}")
async def read(session_id: str, request: Request) -> dict:
    _authorize(request)
    if not SESSION_ID.match(session_id):
        raise HTTPException(404, "no such session")
    with suppress_instrumentation():
        stored = await request.app.state.replay_store.get(session_id)
    if stored is None:
        raise HTTPException(404, "no such session")
    return {
        "session_id": stored.session_id,
        "events": stored.events,
        "trace_ids": stored.trace_ids,
        "chunks": stored.chunks,
        "bytes": stored.bytes,
        "first_seen": stored.first_seen.isoformat(),
        "last_seen": stored.last_seen.isoformat(),
    }


def _authorize(request: Request) -> None:
    token = request.app.state.settings.replay_viewer_token
    if not token:
        raise HTTPException(404, "the replay viewer is off: set REPLAY_VIEWER_TOKEN to turn it on")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "operator token required", headers={"WWW-Authenticate": "Bearer"})


async def _read_limited(request: Request, max_bytes: int) -> bytes:
    """Reads at most max_bytes + 1, so an oversized upload is refused without buffering it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"chunk is {declared} bytes; the limit is {max_bytes}")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > max_bytes:
            raise HTTPException(413, f"chunk is over {max_bytes} bytes")
    return bytes(body)


__all__ = ["ChunkError", "RateLimiter", "parse_chunk", "router"]
