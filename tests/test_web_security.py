"""The Next.js server's public edges under attack, sent as a client would, checked where it lands.

One module fixture: the default render, built (cached, shared with tests/test_web_e2e.py), with
the OTLP receiver as the collector, the stub LLM, the backend and the web app
(tests/support/web_stack.py). Each attack goes over real HTTP to the built server (`npm start`);
the tests assert the status and one-line reason, the web process group's RSS growth while the
attack runs (/proc/<pid>/status, sampled), what the receiver got, and that honest requests
still work. A second web app with no collector behind it checks the quiet drop.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import CACHE_DIR, TEMPLATE_DIR, render
from tests.support.browser import ensure_web_build, run_web
from tests.support.otlp_receiver import Span
from tests.support.processes import clean_env, free_port
from tests.support.web_stack import WebStack, web_stack

pytestmark = pytest.mark.boot

WEB_SERVICE = "sage-app-web"
WEB_NAMESPACE = "sage-app"
API_SERVICE = "sage-app-api"
# Of a web app of its own (test_a_client_past_the_rate_limit_gets_429): the client is the socket's
# address, so every test here is one client, and the module's web app keeps the default (120).
RATE_LIMIT = 5
# A setting of its own (the default is the backend's REPLAY_MAX_CHUNK_BYTES, 512 KiB).
API_MAX_BODY_BYTES = 256 * 1024
MIB = 1024 * 1024
RSS_GROWTH_LIMIT = 100 * MIB
SECRET = "s3cretTokenValue"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CHAT = {"conversation_id": "security-test-1", "message": "still here"}


def otlp_traces(service: str, span_name: str, **span_attributes: str) -> dict:
    """An export as the browser's OTLP/JSON exporter sends it."""
    attributes = [{"key": k, "value": {"stringValue": v}} for k, v in span_attributes.items()]
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": service}},
                        {"key": "service.namespace", "value": {"stringValue": WEB_NAMESPACE}},
                        {"key": "telemetry.sdk.language", "value": {"stringValue": "webjs"}},
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "security-test"},
                        "spans": [
                            {
                                "traceId": TRACE_ID,
                                "spanId": hashlib.sha256(span_name.encode()).hexdigest()[:16],
                                "name": span_name,
                                "kind": 3,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000100000000",
                                "attributes": attributes,
                                "status": {"code": 2},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def group_rss(pgid: int) -> int:
    """Resident bytes of every process in the process group (npm, next and its server)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


class RssWatch:
    """Samples a process group's RSS in a thread while an attack runs; `growth` is peak - start."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.start = group_rss(pgid)
        self.peak = self.start
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, group_rss(self.pgid))

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, group_rss(self.pgid))

    @property
    def growth(self) -> int:
        return self.peak - self.start


def lazy_body(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """`total` bytes of a JSON-looking body, made as they are sent (never held whole)."""
    piece = b" " * chunk
    yield b'{"resourceSpans":['
    for _ in range(total // chunk):
        yield piece


def gzip_bomb(inflated: int) -> bytes:
    """A gzip body that inflates to `inflated` bytes of spaces (about 1000:1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * MIB
    parts = [compressor.compress(block) for _ in range(inflated // MIB)]
    return b"".join([*parts, compressor.flush()])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("web-security") / "out")


@pytest.fixture(scope="module")
def app(project: Path) -> Path:
    return ensure_web_build(project / "web", CACHE_DIR)


@pytest.fixture(scope="module")
def stack(project: Path, app: Path, backend_python: Path) -> Iterator[WebStack]:
    workdir = project.parent
    with web_stack(
        project,
        app,
        backend_python,
        workdir,
        web_env={"API_MAX_BODY_BYTES": str(API_MAX_BODY_BYTES)},
    ) as running:
        yield running


@pytest.fixture
def client(stack: WebStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.web.url, timeout=60) as http:
        yield http


def json_exports(stack: WebStack) -> int:
    """Exports the receiver got as OTLP/JSON: the forwarder's (the servers' own are protobuf)."""
    return stack.rx.content_types.count("application/json")


def test_a_200_mb_chunked_export_is_refused_while_it_streams(stack: WebStack, client: httpx.Client) -> None:
    """200 MB chunked to /otel/v1/traces: 413 with its reason, the web process grows < 100 MB."""
    before = json_exports(stack)
    headers = {"content-type": "application/json"}
    with RssWatch(stack.web.process.pid) as rss:
        response = client.post("/otel/v1/traces", content=lazy_body(200 * MIB), headers=headers)
    assert response.status_code == 413, response.text
    assert response.text == "body is over the limit of 4194304 bytes\n"
    assert rss.growth < RSS_GROWTH_LIMIT, f"web RSS grew {rss.growth / MIB:.0f} MB"
    assert json_exports(stack) == before


def test_a_gzip_bomb_is_refused_as_it_inflates(stack: WebStack, client: httpx.Client) -> None:
    """~0.5 MB of gzip inflating to 512 MiB: 413 counted on inflated bytes, RSS growth < 100 MB."""
    bomb = gzip_bomb(512 * MIB)
    assert len(bomb) < MIB
    before = json_exports(stack)
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    with RssWatch(stack.web.process.pid) as rss:
        response = client.post("/otel/v1/traces", content=bomb, headers=headers)
    assert response.status_code == 413, response.text
    assert response.text == "body is over the limit of 4194304 bytes once decompressed\n"
    assert rss.growth < RSS_GROWTH_LIMIT, f"web RSS grew {rss.growth / MIB:.0f} MB"
    assert json_exports(stack) == before


def test_a_span_forged_as_the_backend_never_reaches_the_collector(
    stack: WebStack, client: httpx.Client
) -> None:
    """A resource claiming the backend's service.name: 403 with its reason, nothing forwarded."""
    forged = otlp_traces(API_SERVICE, "POST /api/chat forged")
    response = client.post("/otel/v1/traces", json=forged)
    assert response.status_code == 403, response.text
    assert response.text == (
        f'resource service.name "{API_SERVICE}" is not this web app\'s ("{WEB_SERVICE}"); export refused\n'
    )
    honest = otlp_traces(WEB_SERVICE, "honest browser span")
    assert client.post("/otel/v1/traces", json=honest).status_code == 200
    stack.rx.wait_for(lambda rx: any(s.name == "honest browser span" for s in rx.spans()))
    assert not [s for s in stack.rx.spans() if s.name == "POST /api/chat forged"]


def test_an_honest_export_arrives_bounded_and_scrubbed(stack: WebStack, client: httpx.Client) -> None:
    """The browser's own export arrives as the web app's, its URL secrets redacted, long values cut."""
    export = otlp_traces(
        WEB_SERVICE,
        "HTTP POST",
        **{"url.full": f"{stack.web.url}/api/chat?token={SECRET}", "note": "x" * 10_000},
    )
    del export["resourceSpans"][0]["resource"]["attributes"][1]  # no namespace: the route sets it
    response = client.post("/otel/v1/traces", json=export)
    assert response.status_code == 200, response.text
    span = stack.rx.wait_for(
        lambda rx: next((s for s in rx.spans() if s.name == "HTTP POST" and s.trace_id == TRACE_ID), None)
    )
    assert span.resource["service.name"] == WEB_SERVICE
    assert span.resource["service.namespace"] == WEB_NAMESPACE
    assert span.attributes["url.full"] == f"{stack.web.url}/api/chat?token=[REDACTED]"
    assert len(span.attributes["note"]) == 4096


def test_logs_and_metrics_take_the_same_route(stack: WebStack, client: httpx.Client) -> None:
    """/otel/v1/logs and /otel/v1/metrics forward with the same rules; a forged log is refused."""
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": WEB_SERVICE}}]}
    logs = {
        "resourceLogs": [
            {
                "resource": resource,
                "scopeLogs": [
                    {
                        "scope": {"name": "security-test"},
                        "logRecords": [{"severityText": "ERROR", "body": {"stringValue": "browser boom"}}],
                    }
                ],
            }
        ]
    }
    assert client.post("/otel/v1/logs", json=logs).status_code == 200
    stack.rx.wait_for(lambda rx: any(r.body == "browser boom" for r in rx.logs()))
    forged = json.loads(json.dumps(logs).replace(WEB_SERVICE, API_SERVICE).replace("browser boom", "forged"))
    assert client.post("/otel/v1/logs", json=forged).status_code == 403
    metrics = {
        "resourceMetrics": [
            {
                "resource": resource,
                "scopeMetrics": [
                    {
                        "scope": {"name": "security-test"},
                        "metrics": [
                            {
                                "name": "security_test.vital",
                                "gauge": {
                                    "dataPoints": [{"asDouble": 1.5, "timeUnixNano": "1700000000000000000"}]
                                },
                            }
                        ],
                    }
                ],
            }
        ]
    }
    assert client.post("/otel/v1/metrics", json=metrics).status_code == 200
    stack.rx.wait_for(lambda rx: any(m.name == "security_test.vital" for m in rx.metrics()))
    assert not [r for r in stack.rx.logs() if r.body == "forged"]


def test_protobuf_is_refused_with_415(client: httpx.Client) -> None:
    """The browser sends OTLP/JSON; a protobuf body is not parsed here, so it is refused."""
    headers = {"content-type": "application/x-protobuf"}
    response = client.post("/otel/v1/traces", content=b"\x0a\x00", headers=headers)
    assert response.status_code == 415
    assert response.text == "this route takes OTLP/JSON only (Content-Type: application/json)\n"


def test_a_client_past_the_rate_limit_gets_429(stack: WebStack, app: Path, tmp_path: Path) -> None:
    """OTLP_RATE_LIMIT exports a minute per client address; past it 429, another address unaffected."""
    env = clean_env(
        API_BASE_URL=stack.backend.url,
        OTEL_EXPORTER_OTLP_ENDPOINT=stack.rx.endpoint,
        OTLP_RATE_LIMIT=str(RATE_LIMIT),
        NEXT_TELEMETRY_DISABLED="1",
    )
    export = otlp_traces(WEB_SERVICE, "rate limited")
    # The other client connects from 127.0.0.2 (the whole of 127/8 is loopback).
    other = httpx.HTTPTransport(local_address="127.0.0.2")
    with (
        run_web(app, env, tmp_path / "web.log") as web,
        httpx.Client(base_url=web.url, timeout=30) as http,
        httpx.Client(base_url=web.url, transport=other, timeout=30) as second,
    ):
        statuses = [http.post("/otel/v1/traces", json=export).status_code for _ in range(RATE_LIMIT + 10)]
        other_status = second.post("/otel/v1/traces", json=export).status_code
    # The budget refills at RATE_LIMIT a minute: the 10 extra requests would need 2 minutes to pass.
    assert statuses[:RATE_LIMIT] == [200] * RATE_LIMIT
    assert statuses[-1] == 429 and statuses.count(429) >= 9, statuses
    assert other_status == 200


def test_a_200_mb_chunked_upload_to_the_api_is_refused_while_it_streams(
    stack: WebStack, client: httpx.Client
) -> None:
    """200 MB chunked to /api/*: 413 with its reason from the proxy, the web process grows < 100 MB.

    The upload is one the backend takes (a well-formed write secret, its chunk limit above the
    proxy's), so the proxy's own limit is what refuses it; a backend that refuses first answers
    itself (test_the_backends_early_413_reaches_the_client_through_the_proxy)."""
    headers = {"content-type": "application/json", "x-replay-write-secret": secrets.token_urlsafe(32)}
    with RssWatch(stack.web.process.pid) as rss:
        response = client.post("/api/replay/s-attack-12345678", content=lazy_body(200 * MIB), headers=headers)
    assert response.status_code == 413, response.text
    assert response.text == f"body is over the limit of {API_MAX_BODY_BYTES} bytes\n"
    assert rss.growth < RSS_GROWTH_LIMIT, f"web RSS grew {rss.growth / MIB:.0f} MB"
    reply = client.post("/api/chat", json=CHAT)
    assert reply.status_code == 200, reply.text


class Probe:
    """GETs `url` again and again in a thread while an attack runs: its `statuses` and `slowest` (s)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: list[int] = []
        self.slowest = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._probe, daemon=True)

    def _probe(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self._done.is_set():
                started = time.monotonic()
                self.statuses.append(http.get(self.url).status_code)
                self.slowest = max(self.slowest, time.monotonic() - started)
                self._done.wait(0.05)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def test_the_backends_early_413_reaches_the_client_through_the_proxy(
    stack: WebStack, app: Path, tmp_path: Path
) -> None:
    """200 MB chunked to /api/chat, default limits: the backend's 413 with its code; web RSS grows < 100 MB.

    The backend's limit (64 KiB) is below the proxy's (512 KiB): its answer comes first, and the
    client must get it, not the proxy's own refusal nor a 502."""
    env = clean_env(
        API_BASE_URL=stack.backend.url,
        OTEL_EXPORTER_OTLP_ENDPOINT=stack.rx.endpoint,
        NEXT_TELEMETRY_DISABLED="1",
    )
    with (
        run_web(app, env, tmp_path / "web.log") as web,
        httpx.Client(base_url=web.url, timeout=60) as http,
    ):
        assert http.post("/api/chat", json=CHAT).status_code == 200  # the conversation the probe reads
        headers = {"content-type": "application/json"}
        with (
            Probe(f"{web.url}/api/conversations/{CHAT['conversation_id']}/usage") as through_proxy,
            Probe(f"{stack.backend.url}/healthz") as backend,
            RssWatch(web.process.pid) as rss,
        ):
            response = http.post("/api/chat", content=lazy_body(200 * MIB), headers=headers)
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/json", response.text
        assert response.json()["code"] == "body_too_large"
        assert rss.growth < RSS_GROWTH_LIMIT, f"web RSS grew {rss.growth / MIB:.0f} MB"
        assert through_proxy.statuses and set(through_proxy.statuses) == {200}, through_proxy.statuses
        assert backend.statuses and set(backend.statuses) == {200}, backend.statuses
        assert max(through_proxy.slowest, backend.slowest) < 5, (through_proxy.slowest, backend.slowest)
        reply = http.post("/api/chat", json=CHAT)
        assert reply.status_code == 200, reply.text


def test_the_forward_is_one_client_span_that_the_backend_continues(
    stack: WebStack, client: httpx.Client
) -> None:
    """POST /api/chat: one CLIENT span for the forward, under the SERVER span, parent of the backend's."""
    reply = client.post("/api/chat", json=CHAT)
    assert reply.status_code == 200, reply.text
    trace_id, forward_url = reply.json()["trace_id"], f"{stack.backend.url}/api/chat"

    def arrived(rx):
        spans = list({s.span_id: s for s in rx.spans() if s.trace_id == trace_id}.values())
        forwards = [s for s in spans if s.kind == "CLIENT" and s.attributes.get("http.url") == forward_url]
        backend = [s for s in spans if s.resource.get("service.name") == API_SERVICE and s.kind == "SERVER"]
        server = [s for s in spans if s.resource.get("service.name") == WEB_SERVICE and s.kind == "SERVER"]
        return (spans, forwards, server, backend) if forwards and server and backend else None

    spans, forwards, (server,), (backend,) = stack.rx.wait_for(arrived, timeout=20)
    assert len(forwards) == 1, [(s.name, s.scope) for s in forwards]
    (forward,) = forwards
    by_id = {s.span_id: s for s in spans}
    ancestors, parent = [], forward.parent_span_id
    while parent in by_id:
        ancestors.append(parent)
        parent = by_id[parent].parent_span_id
    assert server.span_id in ancestors
    assert backend.parent_span_id == forward.span_id


def web_server_spans(stack: WebStack) -> list[Span]:
    return [
        s
        for s in stack.rx.spans()
        if s.resource.get("service.name") == WEB_SERVICE
        and s.resource.get("telemetry.sdk.language") != "webjs"
    ]


def test_query_secrets_never_leave_the_web_server(stack: WebStack, client: httpx.Client) -> None:
    """A ?token=... is redacted in every URL attribute and span name of the server, as on the backend."""
    assert client.post(f"/api/chat?token={SECRET}", json=CHAT).status_code == 200
    assert client.get(f"/no-such-page?token={SECRET}").status_code == 404
    stack.rx.wait_for(
        lambda rx: (
            any(
                s.kind == "SERVER" and "/no-such-page" in str(s.attributes.get("http.target"))
                for s in web_server_spans(stack)
            )
            and any(
                s.kind == "CLIENT" and "/api/chat?" in str(s.attributes.get("http.url"))
                for s in web_server_spans(stack)
            )
        ),
        timeout=20,
    )
    spans = web_server_spans(stack)
    leaked = [
        (s.name, k) for s in spans for k, v in [("name", s.name), *s.attributes.items()] if SECRET in str(v)
    ]
    assert leaked == []
    targets = {s.attributes.get("http.target") for s in spans if s.kind == "SERVER"}
    assert "/api/chat?token=[REDACTED]" in targets
    assert "/no-such-page?token=[REDACTED]" in targets


def test_with_no_collector_exports_are_dropped_quietly(stack: WebStack, app: Path, tmp_path: Path) -> None:
    """No collector: the route answers 202 (nothing the browser prints in red) and logs it once."""
    env = clean_env(
        API_BASE_URL=stack.backend.url,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
        NEXT_TELEMETRY_DISABLED="1",
    )
    with run_web(app, env, tmp_path / "web.log") as web, httpx.Client(base_url=web.url, timeout=30) as http:
        statuses = [
            http.post("/otel/v1/traces", json=otlp_traces(WEB_SERVICE, f"dropped {i}")).status_code
            for i in range(3)
        ]
        deadline = time.monotonic() + 10
        while "dropping browser exports" not in web.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = web.output()
    assert statuses == [202, 202, 202]
    assert log.count("browser telemetry: the collector did not take an export") == 1, log[-3000:]


def test_the_shared_sensitive_keys_are_one_list_in_both_images() -> None:
    """The web image's copy of the sensitive keys is byte-equal to the backend's (separate build contexts)."""
    scaffold = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
    source = scaffold / "backend" / "app" / "telemetry" / "sensitive_keys.json"
    copy = scaffold / "web" / "lib" / "server" / "sensitive_keys.json"
    assert copy.read_bytes() == source.read_bytes()
    keys = json.loads(source.read_text())
    assert {"token", "password"} <= set(keys["query_parameters"])
    assert "authorization" in keys["headers"]


SCRUB_CASES = [
    "/api/chat?token=abc&x=1",
    "http://api:8000/a?API_KEY=K&Password=p&ok=yes",
    'GET /p?access_token=zz HTTP/1.1" 200',
    "/a?mytoken=1&tokens=2&sig=s;code=c",
    "no query here",
]
KEY_CASES = [
    "password",
    "user.api_key",
    "http.request.method",
    "session.id",
    "gen_ai.usage.input_tokens",
    "Token",
]


def test_the_backend_and_the_web_server_redact_alike(project: Path, app: Path, backend_python: Path) -> None:
    """The same texts and keys through the backend's scrubbing.py and the web's scrubbing.ts: same results."""
    cases = json.dumps({"texts": SCRUB_CASES, "keys": KEY_CASES})
    backend = subprocess.run(
        [
            str(backend_python),
            "-c",
            "import json, sys; from app.telemetry.scrubbing import scrub_text, is_sensitive_key as k; "
            "c = json.loads(sys.argv[1]); "
            "print(json.dumps([[scrub_text(t) for t in c['texts']], [k(x) for x in c['keys']]]))",
            cases,
        ],
        cwd=project / "backend",
        capture_output=True,
        text=True,
        check=True,
    )
    web = subprocess.run(
        [
            "node",
            "--import",
            "tsx",
            "--eval",
            "const { scrubText, isSensitiveKey } = require('./lib/server/scrubbing.ts');"
            " const c = JSON.parse(process.argv[1]);"
            " console.log(JSON.stringify([c.texts.map(scrubText), c.keys.map(isSensitiveKey)]));",
            cases,
        ],
        cwd=app,
        capture_output=True,
        text=True,
        check=True,
    )
    texts, keys = json.loads(backend.stdout)
    assert json.loads(web.stdout) == [texts, keys]
    assert texts[0] == "/api/chat?token=[REDACTED]&x=1"
    assert keys == [True, True, False, False, False, True]
