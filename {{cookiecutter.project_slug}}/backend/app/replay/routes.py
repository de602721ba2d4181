# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Built-in session replay's HTTP API: the browser uploads rrweb chunks; operators read them back.

POST /api/replay/{session_id}   ingest one chunk (JSON, optionally gzip) with the session's write
                                secret in `X-Replay-Write-Secret`. A chunk is stored whole or not at
                                all; every refusal is a 4xx `{"detail": one line, "code": ...}`.
GET  /api/replay/{session_id}   the session's events and trace ids, for the viewer, streamed chunk by
                                chunk; needs `Authorization: Bearer $REPLAY_VIEWER_TOKEN`. No token
                                configured: 404, there is no viewer.

The write secret: the browser makes one per session (32 random bytes) and sends it with every chunk.
The first chunk creates the session and binds it to the secret's SHA-256 (the secret itself is
never stored); later chunks without it are refused (403), so knowing a session id (it is on every
span) is not enough to write into the session. The browser makes it, rather than the server
issuing it, so that a retried first chunk and the chunks a leaving page fires at once all carry it.

Neither route is traced (no server span: telemetry/config.py EXCLUDED_URLS; no database spans:
suppressed below): a browser tab uploads every few seconds; replay traffic is not what a trace is about.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy.ext.asyncio import AsyncEngine

from ..limits import Refused, read_body
from ..ratelimit import SlidingWindow, client_id, retry_after_header
from .guards import same_origin
from .parsing import parse_chunk
from .purge import purging
from .settings import ReplaySettings
from .store import Added, Chunk, NewSession, ReplayStore

router = APIRouter(prefix="/api/replay", tags=["replay"], lifespan=purging)

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
WRITE_SECRET = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
WRITE_SECRET_HEADER = "x-replay-write-secret"
# Bodies parsed at once per worker: each may cost some tens of MB while JSON becomes objects.
PARSE_SLOTS = 2


class ReplayState:
    """What the routes share, kept on `app.state.replay` by mount()."""

    def __init__(self, settings: ReplaySettings, store: ReplayStore, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine
        self.chunk_limiter = SlidingWindow(settings.chunks_per_minute, 60.0)
        self.session_limiter = SlidingWindow(settings.new_sessions_per_client_per_hour, 3600.0)
        self.viewer_failures = SlidingWindow(settings.viewer_failures_per_minute, 60.0)
        self.parse_slots = asyncio.Semaphore(PARSE_SLOTS)


def _state(request: Request) -> ReplayState:
    return request.app.state.replay


@router.post("/{session_id}", status_code=201)
async def ingest(session_id: str, request: Request) -> JSONResponse:
    replay = _state(request)
    settings = replay.settings
    if not same_origin(request, settings.allowed_origins):
        raise Refused(403, "cross_origin", "replay chunks are accepted from the app's own origin only")
    if not SESSION_ID.match(session_id):
        raise Refused(400, "bad_session_id", "session_id must be 8 to 128 characters of A-Z, a-z, 0-9, '_' or '-'")
    secret = request.headers.get(WRITE_SECRET_HEADER, "")
    if not WRITE_SECRET.match(secret):
        raise Refused(400, "bad_write_secret", f"{WRITE_SECRET_HEADER} must be 32 to 128 characters of base64url")
    # Per session and client: uploads from elsewhere cannot use up a session's budget.
    if wait := replay.chunk_limiter.acquire(f"{client_id(request)} {session_id}"):
        raise Refused(429, "rate_limited", "too many chunks for this session; retry later", retry_after_header(wait))
    body = await read_body(request, settings.max_chunk_bytes, code="chunk_too_large", inflate=True)
    async with replay.parse_slots:
        seq, events_json, trace_ids = await asyncio.to_thread(parse_chunk, body)
    del body
    chunk = Chunk(session_id=session_id, seq=seq, events_json=events_json, trace_ids=trace_ids)
    secret_sha256 = hashlib.sha256(secret.encode()).hexdigest()
    with suppress_instrumentation():
        added = await _store(request, replay, chunk, secret_sha256)
        if added is Added.TAKEN:  # another upload created the session meanwhile: check its secret
            added = await _store(request, replay, chunk, secret_sha256)
    if added is Added.TAKEN:
        raise Refused(409, "session_taken", "the session was created by another upload at the same time")
    stored = added is Added.STORED
    return JSONResponse({"stored": stored, "duplicate": not stored}, status_code=201 if stored else 200)


async def _store(request: Request, replay: ReplayState, chunk: Chunk, secret_sha256: str) -> Added:
    """Checks the secret and the budgets, then stores; creates the session on its first chunk."""
    settings = replay.settings
    session = await replay.store.session(chunk.session_id)
    if session is not None:
        if not hmac.compare_digest(session.secret_sha256, secret_sha256):
            raise Refused(403, "wrong_write_secret", "this session was started by another browser; send its secret")
        if session.bytes + chunk.size > settings.max_session_bytes:
            raise Refused(413, "session_full", f"session is over {settings.max_session_bytes} bytes; recording stops")
    if await replay.store.total_bytes() + chunk.size > settings.max_total_bytes:
        raise Refused(507, "storage_full", f"replay storage is full ({settings.max_total_bytes} bytes); nothing stored")
    new_session = None
    if session is None:
        client = client_id(request)
        if wait := replay.session_limiter.acquire(client):
            raise Refused(429, "too_many_sessions", "too many new replay sessions from this client; retry later",
                          retry_after_header(wait))  # fmt: skip
        new_session = NewSession(secret_sha256=secret_sha256, client=client)
    return await replay.store.add(chunk, datetime.now(UTC), new_session)


@router.get("/{session_id}")
async def read(session_id: str, request: Request) -> StreamingResponse:
    replay = _state(request)
    _authorize(request, replay)
    if not SESSION_ID.match(session_id):
        raise Refused(404, "no_session", "no such session")
    with suppress_instrumentation():
        summary = await replay.store.summary(session_id)
    if summary is None:
        raise Refused(404, "no_session", "no such session")
    head = {
        "session_id": session_id,
        "chunks": summary.chunks,
        "bytes": summary.bytes,
        "first_seen": summary.first_seen.isoformat(),
        "last_seen": summary.last_seen.isoformat(),
    }
    return StreamingResponse(_session_json(replay.store, session_id, head), media_type="application/json")


async def _session_json(store: ReplayStore, session_id: str, head: dict) -> AsyncIterator[bytes]:
    """`{...head, "events": [...], "trace_ids": [...]}`, one stored chunk in memory at a time.

    Each chunk's events were validated and serialized as a JSON array at ingest, so they are spliced
    in as they are. Events come in chunk order (seq); the player orders them by timestamp."""
    yield json.dumps(head)[:-1].encode() + b', "events": ['
    trace_ids: dict[str, None] = {}
    seq, separator = -1, b""
    while True:
        with suppress_instrumentation():
            chunk = await store.chunk_after(session_id, seq)
        if chunk is None:
            break
        yield separator + chunk.events_json[1:-1]
        seq, separator = chunk.seq, b","
        trace_ids.update(dict.fromkeys(chunk.trace_ids))
    yield b'], "trace_ids": ' + json.dumps(list(trace_ids)).encode() + b"}"


def _authorize(request: Request, replay: ReplayState) -> None:
    """The operator token, or 401; a client past REPLAY_VIEWER_FAILURES_PER_MINUTE wrong tries is
    refused (429) before its token is even compared, so guessing runs at that rate at most."""
    settings = replay.settings
    if settings.viewer_token is None:
        raise Refused(404, "viewer_off", "the replay viewer is off: set REPLAY_VIEWER_TOKEN to turn it on")
    client = client_id(request)
    if wait := replay.viewer_failures.retry_after(client, 1):
        raise Refused(429, "too_many_failures", "too many wrong operator tokens from this client; retry later",
                      retry_after_header(wait))  # fmt: skip
    token = settings.viewer_token.get_secret_value()
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        replay.viewer_failures.charge(client, 1)
        raise Refused(401, "operator_token_required", "operator token required", {"WWW-Authenticate": "Bearer"})


__all__ = ["ReplayState", "router"]
