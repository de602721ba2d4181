"""The backend's public endpoints under attack, as a client sends it, against real uvicorn.

Each test boots the rendered backend (default answers: the built-in replay) and sends what an
attacker would: a gzip bomb, a session read back that would fill memory, free session ids by the
thousand, chunks that would break a session's reads, writes into someone else's session, bodies
that never end. Each asserts the answer (status, one-line reason, machine-readable code), the
backend's memory (peak RSS growth, /proc/<pid>/status) and, while the heavy part runs, how long
/healthz takes: the event loop must stay free. Figures are printed (`pytest -s`).
"""

from __future__ import annotations

import gzip
import json
import os
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Backend, clean_env, run_backend

pytestmark = pytest.mark.boot

TOKEN = "attack-operator-token-7f2c-0123456789abcdef"
OPERATOR = {"authorization": f"Bearer {TOKEN}"}
MB = 1024 * 1024
RSS_GROWTH_LIMIT_MB = 100
# Generous: the old code blocked /healthz for 5.8 s; a free event loop answers in milliseconds.
HEALTHZ_LIMIT_S = 1.0


def _kib(status_line: str, pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(status_line):
            return int(line.split()[1])
    raise AssertionError(f"{status_line} not in /proc/{pid}/status")


@dataclass
class Watch:
    """The backend's peak RSS growth and the slowest /healthz answer while the attack ran."""

    rss_before_mb: float
    peak_rss_mb: float = 0.0
    healthz_max_s: float = 0.0
    healthz_count: int = 0
    healthz_failures: list[str] = field(default_factory=list)

    @property
    def rss_growth_mb(self) -> float:
        return self.peak_rss_mb - self.rss_before_mb


@contextmanager
def watched(backend: Backend) -> Iterator[Watch]:
    """Polls /healthz back to back in a thread during the block; reads VmHWM (peak RSS) after it."""
    pid = backend.process.pid
    watch = Watch(rss_before_mb=_kib("VmRSS:", pid) / 1024)
    # Resets the peak to the current RSS, so VmHWM afterwards is this block's peak.
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=backend.url, timeout=30) as client:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    status = client.get("/healthz").status_code
                    if status != 200:
                        watch.healthz_failures.append(str(status))
                except httpx.HTTPError as error:
                    watch.healthz_failures.append(repr(error))
                watch.healthz_max_s = max(watch.healthz_max_s, time.perf_counter() - started)
                watch.healthz_count += 1
                stop.wait(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    _wait_for_probes(watch, 1)
    try:
        yield watch
    finally:
        _wait_for_probes(watch, watch.healthz_count + 1)  # one more, begun once the attack was over
        stop.set()
        poller.join()
        watch.peak_rss_mb = _kib("VmHWM:", pid) / 1024


def _wait_for_probes(watch: Watch, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while watch.healthz_count < count and not watch.healthz_failures and time.monotonic() < deadline:
        time.sleep(0.01)


def _assert_unharmed(watch: Watch, what: str) -> None:
    print(
        f"\n{what}: peak RSS +{watch.rss_growth_mb:.0f} MB, /healthz max {watch.healthz_max_s * 1000:.0f} ms"
        f" over {watch.healthz_count} probes"
    )
    assert watch.healthz_failures == []
    assert watch.healthz_count > 0
    assert watch.rss_growth_mb < RSS_GROWTH_LIMIT_MB, f"{what}: RSS grew {watch.rss_growth_mb:.0f} MB"
    assert watch.healthz_max_s < HEALTHZ_LIMIT_S, f"{what}: /healthz took {watch.healthz_max_s:.2f} s"


def _assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, f"{response.status_code} {response.text[:200]}"
    answer = response.json()
    assert answer["code"] == code, answer
    assert isinstance(answer["detail"], str) and answer["detail"] and "\n" not in answer["detail"]


@pytest.fixture
def boot(default_project: Path, backend_python: Path, tmp_path: Path) -> Callable[..., Backend]:
    """Starts the rendered backend with REPLAY_* overrides; stops it after the test."""
    started: list = []

    def start(**env: str) -> Backend:
        base = clean_env(
            DATABASE_URL=f"sqlite:///{tmp_path / 'attack.db'}",
            OTEL_SDK_DISABLED="true",
            REPLAY_VIEWER_TOKEN=TOKEN,
            **env,
        )
        context = run_backend(backend_python, default_project, base, tmp_path / "backend.log")
        started.append(context)
        return context.__enter__()

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)


def _chunk(seq: int, events: list[dict], trace_ids: list[str] | None = None) -> bytes:
    return json.dumps({"seq": seq, "events": events, "trace_ids": trace_ids or []}).encode()


def _upload(
    client: httpx.Client, session: str, raw: bytes, secret: str, gzipped: bool = False, **headers: str
):
    headers["x-replay-write-secret"] = secret
    if gzipped:
        headers["content-encoding"] = "gzip"
    return client.post(f"/api/replay/{session}", content=raw, headers=headers)


def _session_id() -> str:
    return f"attack-{secrets.token_hex(8)}"


def test_a_gzip_bomb_is_refused_while_inflating(boot) -> None:
    """Four 10 kB gzip chunks that inflate to 10 MiB each: 413 chunk_too_large, nothing stored."""
    backend = boot()
    bomb_json = _chunk(0, [{"type": 3, "timestamp": 1, "data": {"text": "a" * (10 * MB - 100)}}])
    session, secret = _session_id(), secrets.token_urlsafe(32)
    with httpx.Client(base_url=backend.url, timeout=60) as client, watched(backend) as watch:
        answers = []
        for seq in range(4):
            bomb = gzip.compress(bomb_json.replace(b'"seq": 0', f'"seq": {seq}'.encode()), 9)
            assert len(bomb) < 12 * 1024
            answers.append(_upload(client, session, bomb, secret, gzipped=True))
        read = client.get(f"/api/replay/{session}", headers=OPERATOR)
    for answer in answers:
        _assert_refused(answer, 413, "chunk_too_large")
    _assert_refused(read, 404, "no_session")
    _assert_unharmed(watch, "gzip bomb x4")


def test_reading_a_full_session_streams_in_bounded_memory(boot) -> None:
    """A session filled to REPLAY_MAX_SESSION_BYTES (20 MiB of events, ~0.5 MB as sent), then read:
    the GET streams it chunk by chunk, the backend's RSS stays flat and /healthz stays quick."""
    backend = boot()
    session, secret = _session_id(), secrets.token_urlsafe(32)
    # Many small events: the costliest shape for a server that turns the session into objects.
    events = [{"type": 3, "timestamp": i, "data": {"source": 1, "text": "x" * 60}} for i in range(7_000)]
    stored = 0
    with httpx.Client(base_url=backend.url, timeout=120) as client:
        for seq in range(40):
            answer = _upload(client, session, gzip.compress(_chunk(seq, events)), secret, gzipped=True)
            if answer.status_code != 201:
                _assert_refused(answer, 413, "session_full")
                break
            stored += 1
        assert stored >= 15, f"only {stored} chunks stored"
        with (
            watched(backend) as watch,
            client.stream("GET", f"/api/replay/{session}", headers=OPERATOR) as read,
        ):
            assert read.status_code == 200
            raw = b"".join(read.iter_bytes())
    data = json.loads(raw)
    print(
        f"\nsession read back: {stored} chunks, {len(raw) / MB:.1f} MB of JSON, {len(data['events'])} events"
    )
    assert data["chunks"] == stored and len(data["events"]) == stored * len(events)
    _assert_unharmed(watch, "reading a full session")


def test_one_client_cannot_fill_the_storage(boot, tmp_path: Path) -> None:
    """Free session ids from one client: 429 too_many_sessions past the per-client limit. Many
    clients (X-Forwarded-For through the trusted local proxy): 507 storage_full at REPLAY_MAX_TOTAL_BYTES."""
    backend = boot(REPLAY_MAX_TOTAL_BYTES=str(16 * MB), REPLAY_NEW_SESSIONS_PER_CLIENT_PER_HOUR="30")
    # Random text: it does not compress, so the database really holds what is accepted.
    events = [{"type": 3, "timestamp": i, "data": {"text": os.urandom(256).hex()}} for i in range(900)]
    raw = _chunk(0, events)
    one_client, many_clients = [], []
    started = time.monotonic()
    with httpx.Client(base_url=backend.url, timeout=60) as client, watched(backend) as watch:
        for _ in range(60):
            one_client.append(_upload(client, _session_id(), raw, secrets.token_urlsafe(32)))
        for n in range(60):
            forwarded = {"x-forwarded-for": f"198.51.100.{n}"}
            many_clients.append(_upload(client, _session_id(), raw, secrets.token_urlsafe(32), **forwarded))
    elapsed = time.monotonic() - started
    statuses = [a.status_code for a in one_client]
    print(f"\none client, 60 new sessions: {statuses.count(201)} stored, {statuses.count(429)} refused 429")
    assert statuses.count(201) == 30 and statuses[30:] == [429] * 30
    _assert_refused(one_client[-1], 429, "too_many_sessions")
    statuses = [a.status_code for a in many_clients]
    database = Path(tmp_path / "attack.db").stat().st_size / MB
    print(
        f"60 clients: {statuses.count(201)} stored, {statuses.count(507)} refused 507; db {database:.1f} MB"
        f" after {elapsed:.1f} s"
    )
    assert 507 in statuses and set(statuses[statuses.index(507) :]) == {507}
    _assert_refused(many_clients[-1], 507, "storage_full")
    assert database < 16 + 4, f"the database holds {database:.1f} MB"
    _assert_unharmed(watch, "filling the storage")


POISON = {
    "NaN timestamp": b'{"seq": 1, "events": [{"type": 3, "timestamp": NaN}]}',
    "infinite number": b'{"seq": 2, "events": [{"type": 3, "timestamp": 1, "x": 1e999}]}',
    "lone surrogate": b'{"seq": 3, "events": [{"type": 3, "timestamp": 1, "x": "\\ud800"}]}',
    "nested 900 deep": b'{"seq": 4, "events": [{"type": 3, "timestamp": 1, "x": '
    + b"[" * 900
    + b"]" * 900
    + b"}]}",
    "nested 5000 deep": b'{"seq": 5, "events": [{"type": 3, "timestamp": 1, "x": '
    + b"[" * 5000
    + b"]" * 5000
    + b"}]}",
    "invalid UTF-8": b'{"seq": 6, "events": [{"type": 3, "timestamp": 1, "x": "\xff\xfe"}]}',
}


def test_no_chunk_can_poison_a_session(boot) -> None:
    """Chunks that a JSON encoder chokes on are refused (400) or stored so that they read back: the
    session's GET answers 200 with valid JSON after every one of them."""
    backend = boot()
    session, secret = _session_id(), secrets.token_urlsafe(32)
    with httpx.Client(base_url=backend.url, timeout=30) as client:
        assert _upload(client, session, _chunk(0, [{"type": 4, "timestamp": 1}]), secret).status_code == 201
        for name, raw in POISON.items():
            answer = _upload(client, session, raw, secret)
            assert answer.status_code in {201, 400}, f"{name}: {answer.status_code} {answer.text[:200]}"
            if answer.status_code == 400:
                _assert_refused(answer, 400, answer.json().get("code", "?"))
            read = client.get(f"/api/replay/{session}", headers=OPERATOR)
            assert read.status_code == 200, f"after {name}: {read.status_code} {read.text[:200]}"
            json.loads(read.content)  # strict: no NaN, valid UTF-8


def test_only_the_browser_that_started_a_session_can_append(boot) -> None:
    """Knowing a session id (it is on every span) is not enough: without its write secret a chunk is
    refused (400 without one, 403 with a wrong one) and the session is unchanged."""
    backend = boot()
    session, secret = _session_id(), secrets.token_urlsafe(32)
    with httpx.Client(base_url=backend.url, timeout=30) as client:
        assert _upload(client, session, _chunk(0, [{"type": 4, "timestamp": 1}]), secret).status_code == 201
        forged = _chunk(1, [{"type": 3, "timestamp": 2, "data": {"text": "forged"}}])
        without = client.post(f"/api/replay/{session}", content=forged)
        wrong = _upload(client, session, forged, secrets.token_urlsafe(32))
        read = client.get(f"/api/replay/{session}", headers=OPERATOR).json()
    _assert_refused(without, 400, "bad_write_secret")
    _assert_refused(wrong, 403, "wrong_write_secret")
    assert read["chunks"] == 1 and "forged" not in json.dumps(read["events"])


def _stream_until_answered(
    backend: Backend, path: str, headers: dict[str, str], total: int
) -> tuple[int, dict, int]:
    """Sends a chunked body of `total` bytes, 64 kB at a time, and stops as soon as the server answers.

    Returns (status, JSON answer, bytes the client had sent when the answer came)."""
    host, port = backend.url.removeprefix("http://").split(":")
    piece = b" " * 65536
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nhost: {host}\r\ntransfer-encoding: chunked\r\n{head}\r\n".encode()
        )
        try:
            while sent < total and not select.select([sock], [], [], 0)[0]:
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                sent += len(piece)
            if sent >= total:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: read what it said
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            part = sock.recv(65536)
            if not part:
                break
            answer += part
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1] or b"{}"), sent


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30


@pytest.mark.parametrize(
    ("path", "headers", "code"),
    [
        ("/api/chat", {"content-type": "application/json"}, "body_too_large"),
        ("/api/replay/attack-chunked-0001", {"x-replay-write-secret": "s" * 43}, "chunk_too_large"),
    ],
    ids=["chat", "replay"],
)
def test_an_endless_chunked_body_is_refused_while_it_streams(
    boot, path: str, headers: dict, code: str
) -> None:
    """100 MB sent chunked (no Content-Length): 413 as soon as the limit is passed, long before the
    body ends, and the backend never holds it."""
    backend = boot()
    with watched(backend) as watch:
        status, answer, sent = _stream_until_answered(backend, path, headers, 100 * MB)
    print(f"\n{path}: {status} {answer.get('code')} after {sent / MB:.1f} MB sent of 100 MB")
    assert status == 413 and answer["code"] == code and "\n" not in answer["detail"]
    assert sent < 16 * MB, f"the answer came after {sent / MB:.0f} MB"
    _assert_unharmed(watch, f"endless body to {path}")
