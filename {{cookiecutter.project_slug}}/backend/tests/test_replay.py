"""Built-in session replay: chunk validation, limits, retention, and operator-only reads."""

from __future__ import annotations

import gzip
import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

import app.main
from app.api.replay import ChunkError, RateLimiter, parse_chunk
from app.main import create_app
from app.replay_store import Chunk, SqlReplayStore
from app.telemetry.testing import TelemetryCapture

SESSION = "sess-0123456789"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
EVENTS = [{"type": 4, "timestamp": 1000, "data": {"href": "http://x/"}}, {"type": 2, "timestamp": 1001, "data": {}}]


def body(seq: int = 0, events: list | None = None, trace_ids: list | None = None) -> bytes:
    return json.dumps(
        {"seq": seq, "events": EVENTS if events is None else events, "trace_ids": trace_ids or []}
    ).encode()


@pytest.mark.parametrize(
    ("session_id", "raw", "encoding", "status"),
    [
        ("short", body(), None, 400),
        ("sess/../etc", body(), None, 400),
        (SESSION, b"x" * 2048, None, 413),
        (SESSION, b"not json", None, 400),
        (SESSION, b"[1, 2]", None, 400),
        (SESSION, body(seq=-1), None, 400),
        (SESSION, body(events=[]), None, 400),
        (SESSION, body(events=[{"type": "x", "timestamp": 1}]), None, 400),
        (SESSION, body(trace_ids=["XYZ"]), None, 400),
        (SESSION, b"\x1f\x8b not gzip", "gzip", 400),
        (SESSION, gzip.compress(b"[" + b"0," * 50_000 + b"0]"), "gzip", 413),
        (SESSION, body(), "br", 415),
    ],
    ids=["short-id", "path-chars", "too-big", "not-json", "not-object", "negative-seq", "no-events",
         "bad-event", "bad-trace-id", "bad-gzip", "gzip-bomb", "unknown-encoding"],
)  # fmt: skip
def test_bad_chunks_are_refused_with_a_reason(session_id: str, raw: bytes, encoding: str | None, status: int) -> None:
    """Each malformed upload gets the right 4xx and a one-line reason."""
    with pytest.raises(ChunkError) as error:
        parse_chunk(session_id, raw, encoding, max_bytes=1024)
    assert error.value.status == status
    assert "\n" not in str(error.value)


def test_good_chunk_parses_plain_and_gzipped() -> None:
    """A valid chunk is the same whether it came compressed or not."""
    plain = parse_chunk(SESSION, body(trace_ids=[TRACE]), None, max_bytes=4096)
    zipped = parse_chunk(SESSION, gzip.compress(body(trace_ids=[TRACE])), "gzip", max_bytes=4096)
    assert plain == zipped == Chunk(SESSION, 0, EVENTS, [TRACE])


def test_rate_limiter_allows_a_minute_budget_per_session() -> None:
    """Past the per-minute budget a session is refused until the window moves on."""
    limiter = RateLimiter(per_minute=3)
    assert [limiter.allow("s", now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limiter.allow("other", now=3) is True
    assert limiter.allow("s", now=61) is True


@pytest.fixture(autouse=True)
def builtin_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mount the replay API whatever vendor this project was rendered with."""
    monkeypatch.setattr(app.main, "REPLAY_PROVIDER", "builtin")


@pytest.fixture
def replay_client(settings, telemetry_capture) -> TestClient:
    application = create_app(
        settings.model_copy(
            update=dict(
                replay_viewer_token="op-token",
                replay_max_session_bytes=4096,
                replay_chunks_per_minute=50,
                # The app purges on start-up too; a year keeps it off the chunks these tests plant.
                replay_retention_hours=24 * 365,
            )
        ),
        telemetry_options=telemetry_capture.options(),
    )
    with TestClient(application) as client:
        yield client


def test_ingest_then_read_back_as_operator(replay_client: TestClient) -> None:
    """Chunks are stored in order with their trace ids; the operator reads them back."""
    assert replay_client.post(f"/api/replay/{SESSION}", content=gzip.compress(body(seq=1, trace_ids=[TRACE])),
                              headers={"content-encoding": "gzip"}).status_code == 201  # fmt: skip
    assert replay_client.post(f"/api/replay/{SESSION}", content=body(seq=0)).status_code == 201
    read = replay_client.get(f"/api/replay/{SESSION}", headers={"authorization": "Bearer op-token"})
    assert read.status_code == 200
    data = read.json()
    assert data["chunks"] == 2 and data["trace_ids"] == [TRACE]
    assert [e["timestamp"] for e in data["events"]] == [1000, 1000, 1001, 1001]


def test_a_resent_chunk_is_not_stored_twice(replay_client: TestClient) -> None:
    """Retrying an upload is safe: the same seq is acknowledged, not duplicated."""
    assert replay_client.post(f"/api/replay/{SESSION}", content=body(seq=0)).status_code == 201
    again = replay_client.post(f"/api/replay/{SESSION}", content=body(seq=0))
    assert again.status_code == 200 and again.json() == {"stored": False, "duplicate": True}


def test_a_full_session_stops_recording(replay_client: TestClient) -> None:
    """Past REPLAY_MAX_SESSION_BYTES uploads get 413 and nothing more is stored."""
    # Random text does not compress, so every chunk really adds to the session's stored bytes.
    big = [{"type": 3, "timestamp": i, "data": {"text": os.urandom(32).hex()}} for i in range(10)]
    statuses = [replay_client.post(f"/api/replay/{SESSION}", content=body(seq=i, events=big)).status_code
                for i in range(20)]  # fmt: skip
    assert 413 in statuses and statuses.index(413) > 0
    assert set(statuses[statuses.index(413) :]) == {413}


def test_uploads_from_another_origin_are_refused(replay_client: TestClient) -> None:
    """A page on another origin cannot post into someone's session."""
    response = replay_client.post(f"/api/replay/{SESSION}", content=body(), headers={"origin": "https://evil.example"})
    assert response.status_code == 403
    own = replay_client.post(f"/api/replay/{SESSION}", content=body(seq=5), headers={"origin": "http://testserver"})
    assert own.status_code == 201


def test_reading_needs_the_operator_token(replay_client: TestClient, settings) -> None:
    """No token: 401; wrong token: 401; no token configured at all: 404 (no viewer)."""
    replay_client.post(f"/api/replay/{SESSION}", content=body())
    assert replay_client.get(f"/api/replay/{SESSION}").status_code == 401
    assert replay_client.get(f"/api/replay/{SESSION}", headers={"authorization": "Bearer nope"}).status_code == 401
    application = create_app(settings, telemetry_options=TelemetryCapture().options())
    with TestClient(application) as client:
        assert client.get(f"/api/replay/{SESSION}", headers={"authorization": "Bearer op-token"}).status_code == 404


def test_retention_purges_old_chunks(replay_client: TestClient) -> None:
    """Chunks older than the retention period are deleted; newer ones stay."""
    store: SqlReplayStore = replay_client.app.state.replay_store
    run = replay_client.portal.call  # the app's own event loop
    now = datetime.now(UTC)
    run(store.add, Chunk(SESSION, 0, EVENTS, []), now - timedelta(days=10))
    run(store.add, Chunk(SESSION, 1, EVENTS, []), now)
    assert run(store.purge_before, now - timedelta(days=7)) == 1
    assert run(store.get, SESSION).chunks == 1


def test_uploads_through_the_web_proxy_count_as_same_origin(replay_client: TestClient) -> None:
    """The web app's proxy names the browser's host in X-Forwarded-Host; that origin is accepted."""
    headers = {
        "origin": "https://chat.example.com",
        "x-forwarded-host": "chat.example.com",
        "x-forwarded-proto": "https",
    }
    assert replay_client.post(f"/api/replay/{SESSION}", content=body(seq=9), headers=headers).status_code == 201
    headers["origin"] = "https://evil.example"
    assert replay_client.post(f"/api/replay/{SESSION}", content=body(seq=10), headers=headers).status_code == 403


def test_replay_traffic_makes_no_spans(replay_client: TestClient, telemetry_capture) -> None:
    """Uploads (every few seconds per tab) and reads make no span, server or database; other routes do."""
    telemetry_capture.attach(replay_client.app)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not [s for s in telemetry_capture.spans() if s.name.startswith("DELETE")]:
        time.sleep(0.05)  # the start-up's retention purge, a job of its own, has run
    telemetry_capture.span_exporter.clear()
    assert replay_client.post(f"/api/replay/{SESSION}", content=body(seq=0)).status_code == 201
    assert replay_client.get(f"/api/replay/{SESSION}", headers={"authorization": "Bearer op-token"}).status_code == 200
    # The pool opening a database connection is the engine's business, whichever request made it.
    assert [span.name for span in telemetry_capture.spans() if span.name != "connect"] == []
    assert replay_client.get("/api/not-a-route").status_code == 404
    assert [span.name for span in telemetry_capture.spans()] == ["GET"]
