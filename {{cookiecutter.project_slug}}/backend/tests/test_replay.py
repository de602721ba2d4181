# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""Built-in session replay: chunk validation, limits, write secrets, retention, operator-only reads."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.replay.store import Chunk, NewSession, SqlReplayStore
from app.settings import Settings
from app.telemetry.testing import TelemetryCapture

SESSION = "sess-0123456789"
SECRET = "s" * 43
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
EVENTS = [{"type": 4, "timestamp": 1000, "data": {"href": "http://x/"}}, {"type": 2, "timestamp": 1001, "data": {}}]
OPERATOR_TOKEN = "op-token-for-the-tests-0123456789abcdef"
OPERATOR = {"authorization": f"Bearer {OPERATOR_TOKEN}"}


def body(seq: int = 0, events: list | None = None, trace_ids: list | None = None) -> bytes:
    return json.dumps(
        {"seq": seq, "events": EVENTS if events is None else events, "trace_ids": trace_ids or []}
    ).encode()


def upload(client: TestClient, raw: bytes, session: str = SESSION, secret: str | None = SECRET, **headers: str):
    if secret is not None:
        headers["x-replay-write-secret"] = secret
    return client.post(f"/api/replay/{session}", content=raw, headers=headers)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The app's settings with the built-in replay on, whatever this project's default vendor is."""
    return settings.model_copy(update={"session_replay": "builtin"})


@pytest.fixture(autouse=True)
def builtin_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small limits for the replay API (REPLAY_* variables, read when the app is built)."""
    for name, value in {
        "REPLAY_VIEWER_TOKEN": OPERATOR_TOKEN,
        "REPLAY_MAX_CHUNK_BYTES": "4096",
        "REPLAY_MAX_SESSION_BYTES": "8192",
        "REPLAY_MAX_TOTAL_BYTES": "65536",
        "REPLAY_CHUNKS_PER_MINUTE": "50",
        "REPLAY_NEW_SESSIONS_PER_CLIENT_PER_HOUR": "20",
        # The app purges on start-up too; a year keeps it off the chunks these tests plant.
        "REPLAY_RETENTION_HOURS": str(24 * 365),
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def replay_client(settings, telemetry_capture) -> TestClient:
    application = create_app(settings, telemetry_options=telemetry_capture.options())
    with TestClient(application) as client:
        yield client


def read_back(client: TestClient, session: str = SESSION) -> httpx.Response:
    return client.get(f"/api/replay/{session}", headers=OPERATOR)


def deep(levels: int) -> dict:
    node: dict = {}
    for _ in range(levels):
        node = {"c": [node]}
    return node


@pytest.mark.parametrize(
    ("session_id", "raw", "headers", "status", "code"),
    [
        ("short", body(), {}, 400, "bad_session_id"),
        (SESSION, b"x" * 5000, {}, 413, "chunk_too_large"),
        (SESSION, b"not json", {}, 400, "bad_json"),
        (SESSION, b"\xff\xfe{}", {}, 400, "bad_json"),
        (SESSION, b"[1, 2]", {}, 400, "bad_chunk"),
        (SESSION, body(seq=-1), {}, 400, "bad_seq"),
        (SESSION, body(events=[]), {}, 400, "bad_events"),
        (SESSION, body(events=[{"type": "x", "timestamp": 1}]), {}, 400, "bad_event"),
        (SESSION, body(trace_ids=["XYZ"]), {}, 400, "bad_trace_ids"),
        (SESSION, b'{"seq":0,"events":[{"type":1,"timestamp":NaN}]}', {}, 400, "bad_json"),
        (SESSION, b'{"seq":0,"events":[{"type":1,"timestamp":1e999}]}', {}, 400, "bad_number"),
        (SESSION, body(events=[{"type": 1, "timestamp": 1, "d": deep(300)}]), {}, 400, "too_deep"),
        (SESSION, b'{"seq":0,"events":' + b"[" * 1500 + b"]" * 1500 + b"}", {}, 400, "too_deep"),
        (SESSION, b"\x1f\x8b not gzip", {"content-encoding": "gzip"}, 400, "bad_gzip"),
        (SESSION, gzip.compress(body())[:-8], {"content-encoding": "gzip"}, 400, "bad_gzip"),
        (SESSION, gzip.compress(b"[" + b"0," * 50_000 + b"0]"), {"content-encoding": "gzip"}, 413, "chunk_too_large"),
        (SESSION, body(), {"content-encoding": "br"}, 415, "unsupported_encoding"),
    ],
    ids=["short-id", "too-big", "not-json", "not-utf8", "not-object", "negative-seq", "no-events", "bad-event",
         "bad-trace-id", "nan", "infinite-number", "too-deep", "deeper-than-the-parser", "bad-gzip",
         "truncated-gzip", "gzip-bomb", "unknown-encoding"],
)  # fmt: skip
def test_bad_chunks_are_refused_with_a_reason_and_a_code(
    replay_client: TestClient, session_id: str, raw: bytes, headers: dict, status: int, code: str
) -> None:
    """Each malformed upload gets the right 4xx, a one-line reason and a machine-readable code."""
    response = upload(replay_client, raw, session=session_id, **headers)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert "\n" not in response.json()["detail"]
    assert read_back(replay_client, session_id).status_code == 404, "nothing was stored"


def test_a_gzip_bomb_stops_at_the_decompressed_limit(replay_client: TestClient) -> None:
    """10 kB of gzip that would inflate to 10 MiB is refused (413) once the 4 kB limit is inflated."""
    bomb = gzip.compress(b'{"seq":0,"events":[{"type":1,"timestamp":1,"x":"' + b"a" * 10 * 2**20 + b'"}]}', 9)
    assert len(bomb) < 12_000
    response = upload(replay_client, bomb, **{"content-encoding": "gzip"})
    assert (response.status_code, response.json()["code"]) == (413, "chunk_too_large")


def test_good_chunk_is_the_same_plain_and_gzipped(replay_client: TestClient) -> None:
    """A valid chunk is stored the same whether it came compressed or not."""
    assert upload(replay_client, body(seq=0, trace_ids=[TRACE])).status_code == 201
    zipped = upload(replay_client, gzip.compress(body(seq=1, trace_ids=[TRACE])), **{"content-encoding": "gzip"})
    assert zipped.status_code == 201
    data = read_back(replay_client).json()
    assert data["events"] == EVENTS + EVENTS and data["trace_ids"] == [TRACE]


def test_ingest_then_read_back_as_operator(replay_client: TestClient) -> None:
    """Chunks are stored with their trace ids and read back in seq order, as valid JSON."""
    zipped = upload(replay_client, gzip.compress(body(seq=1, trace_ids=[TRACE])), **{"content-encoding": "gzip"})
    assert zipped.status_code == 201
    assert upload(replay_client, body(seq=0)).status_code == 201
    read = read_back(replay_client)
    assert read.status_code == 200 and read.headers["content-type"] == "application/json"
    data = read.json()
    assert data["session_id"] == SESSION and data["chunks"] == 2 and data["trace_ids"] == [TRACE]
    assert [e["timestamp"] for e in data["events"]] == [1000, 1001, 1000, 1001]
    assert data["bytes"] == 2 * len(json.dumps(EVENTS, separators=(",", ":")))


def test_a_resent_chunk_is_not_stored_twice(replay_client: TestClient) -> None:
    """Retrying an upload is safe: the same seq is acknowledged, not duplicated."""
    assert upload(replay_client, body(seq=0)).status_code == 201
    again = upload(replay_client, body(seq=0))
    assert again.status_code == 200 and again.json() == {"stored": False, "duplicate": True}


def test_a_full_session_stops_recording_counting_decompressed_bytes(replay_client: TestClient) -> None:
    """Past REPLAY_MAX_SESSION_BYTES (decompressed) uploads get 413 session_full, nothing more is stored."""
    # Zeros compress 100-fold: counted as sent, this session would never be full.
    big = [{"type": 3, "timestamp": i, "data": {"text": "0" * 300}} for i in range(10)]
    answers = [upload(replay_client, gzip.compress(body(seq=i, events=big)), **{"content-encoding": "gzip"})
               for i in range(6)]  # fmt: skip
    statuses = [a.status_code for a in answers]
    assert statuses[:2] == [201, 201] and set(statuses[2:]) == {413}
    assert {a.json()["code"] for a in answers[2:]} == {"session_full"}
    assert read_back(replay_client).json()["chunks"] == 2


def test_only_the_browser_that_started_a_session_can_append(replay_client: TestClient) -> None:
    """The first chunk binds the session to its write secret; without it later chunks are refused."""
    assert upload(replay_client, body(seq=0)).status_code == 201
    missing = upload(replay_client, body(seq=1), secret=None)
    assert (missing.status_code, missing.json()["code"]) == (400, "bad_write_secret")
    forged = upload(replay_client, body(seq=1), secret="f" * 43)
    assert (forged.status_code, forged.json()["code"]) == (403, "wrong_write_secret")
    assert upload(replay_client, body(seq=1)).status_code == 201
    assert read_back(replay_client).json()["chunks"] == 2


def test_the_write_secret_is_stored_only_as_its_hash(replay_client: TestClient, settings) -> None:
    """The database holds the secret's SHA-256, never the secret."""
    assert upload(replay_client, body(seq=0)).status_code == 201
    database = settings.database_url.removeprefix("sqlite:///")
    assert SECRET.encode() not in open(database, "rb").read()  # noqa: SIM115


def test_one_client_cannot_start_sessions_without_end(replay_client: TestClient) -> None:
    """Past REPLAY_NEW_SESSIONS_PER_CLIENT_PER_HOUR new sessions are refused (429); started ones go on."""
    statuses = [upload(replay_client, body(), session=f"flood-{n:04d}").status_code for n in range(25)]
    assert statuses == [201] * 20 + [429] * 5
    refused = upload(replay_client, body(), session="flood-9999")
    assert refused.json()["code"] == "too_many_sessions" and refused.headers["retry-after"] == "3600"
    assert upload(replay_client, body(seq=1), session="flood-0000").status_code == 201


def test_the_global_storage_budget_refuses_with_507(replay_client: TestClient) -> None:
    """Past REPLAY_MAX_TOTAL_BYTES every chunk gets 507 storage_full; what is stored stays readable."""
    events = [{"type": 3, "timestamp": i, "data": {"text": os.urandom(64).hex()}} for i in range(20)]
    size = len(json.dumps(events, separators=(",", ":")))
    answers = [upload(replay_client, body(seq=seq, events=events), session=f"budget-{n:04d}")
               for n in range(15) for seq in range(2)]  # fmt: skip
    statuses = [a.status_code for a in answers]
    assert 507 in statuses and set(statuses) == {201, 507}
    assert set(statuses[statuses.index(507) :]) == {507}
    assert {a.json()["code"] for a in answers if a.status_code == 507} == {"storage_full"}
    total = replay_client.portal.call(replay_client.app.state.replay.store.total_bytes)
    assert 65536 - size < total <= 65536
    assert read_back(replay_client, "budget-0000").json()["chunks"] == 2


def test_uploads_from_another_origin_are_refused(replay_client: TestClient) -> None:
    """A page on another origin cannot post into someone's session."""
    response = upload(replay_client, body(), origin="https://evil.example")
    assert (response.status_code, response.json()["code"]) == (403, "cross_origin")
    assert upload(replay_client, body(seq=5), origin="http://testserver").status_code == 201


def test_reading_needs_the_operator_token(replay_client: TestClient, settings, monkeypatch) -> None:
    """No token: 401; wrong token: 401; no token configured at all: 404 (no viewer)."""
    upload(replay_client, body())
    assert replay_client.get(f"/api/replay/{SESSION}").status_code == 401
    assert replay_client.get(f"/api/replay/{SESSION}", headers={"authorization": "Bearer nope"}).status_code == 401
    monkeypatch.delenv("REPLAY_VIEWER_TOKEN")
    application = create_app(settings, telemetry_options=TelemetryCapture().options())
    with TestClient(application) as client:
        answer = read_back(client)
        assert (answer.status_code, answer.json()["code"]) == (404, "viewer_off")


def test_retention_purges_old_chunks_and_empty_sessions(replay_client: TestClient) -> None:
    """Chunks older than the retention period are deleted, and so are sessions left without chunks."""
    store: SqlReplayStore = replay_client.app.state.replay.store
    run = replay_client.portal.call  # the app's own event loop
    now = datetime.now(UTC)
    events = json.dumps(EVENTS).encode()
    run(store.add, Chunk(SESSION, 0, events, []), now - timedelta(days=10), NewSession("0" * 64, "test"))
    run(store.add, Chunk(SESSION, 1, events, []), now)
    run(store.add, Chunk("old-session", 0, events, []), now - timedelta(days=9), NewSession("0" * 64, "test"))
    assert run(store.purge_before, now - timedelta(days=7)) == 2
    assert run(store.summary, SESSION).chunks == 1
    assert run(store.session, SESSION).bytes == len(events)
    assert run(store.session, "old-session") is None


def test_uploads_through_the_web_proxy_count_as_same_origin(replay_client: TestClient) -> None:
    """The web app's proxy names the browser's host in X-Forwarded-Host; that origin is accepted."""
    headers = {
        "origin": "https://chat.example.com",
        "x-forwarded-host": "chat.example.com",
        "x-forwarded-proto": "https",
    }
    assert upload(replay_client, body(seq=9), **headers).status_code == 201
    headers["origin"] = "https://evil.example"
    assert upload(replay_client, body(seq=10), **headers).status_code == 403


def test_replay_traffic_makes_no_spans(replay_client: TestClient, telemetry_capture) -> None:
    """Uploads (every few seconds per tab) and reads make no span, server or database; other routes do."""
    telemetry_capture.attach(replay_client.app)
    # Start-up (the schema) is over once the client is up; its retention purge makes no spans.
    telemetry_capture.flush()
    telemetry_capture.span_exporter.clear()
    assert upload(replay_client, body(seq=0)).status_code == 201
    assert read_back(replay_client).status_code == 200
    # The pool opening a database connection is the engine's business, whichever request made it.
    assert [span.name for span in telemetry_capture.spans() if span.name != "connect"] == []
    assert replay_client.get("/api/not-a-route").status_code == 404
    assert [span.name for span in telemetry_capture.spans()] == ["GET"]


@pytest.mark.parametrize("vendor", ["none", "highlight", "sentry"])
def test_another_vendor_mounts_no_replay_routes(settings: Settings, vendor: str) -> None:
    """SESSION_REPLAY other than builtin: /api/replay/... does not exist, nothing is stored."""
    application = create_app(
        settings.model_copy(update={"session_replay": vendor}), telemetry_options=TelemetryCapture().options()
    )
    with TestClient(application) as client:
        assert upload(client, body()).status_code == 404
        assert read_back(client).status_code == 404
    assert not any(getattr(route, "path", "").startswith("/api/replay") for route in application.routes)
