"""Hostile clients, round 3, at the Next.js server: nobody names their own identity, forges the
backend's telemetry, floods the TSDB with series, or frames and injects into the pages.

One module fixture: the default render, built (cached, shared with tests/test_web_security.py),
with the OTLP receiver as the collector, the stub LLM, the real backend and the web app
(tests/support/web_stack.py). Attacks go over real HTTP to the production server (`npm start`).
What the /api/* proxy sends upstream is read by a loopback recorder standing in for the backend;
the backend's own per-client limit shows the same end to end. Forged exports are checked as the
receiver decoded them from the wire. Chromium loads the page under its policy and reports every
violation. Settings with small limits get a web app of their own (run_web), so no test spends
another's budget.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import CACHE_DIR, render
from tests.support.browser import WebApp, chromium, ensure_web_build, run_web
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import clean_env
from tests.support.web_stack import WebStack, web_stack

pytestmark = pytest.mark.boot

WEB_SERVICE = "sage-app-web"
API_SERVICE = "sage-app-api"
TRACE_ID = "5bf92f3577b34da6a3ce929d0e0e4737"
SPOOFING = ("x-forwarded-for", "x-real-ip", "forwarded", "x-forwarded-host", "x-forwarded-proto")
# What Chromium reports when the page's policy blocks something, collected before any page script runs.
CSP_LISTENER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__csp.push({ directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample }));
"""


def spoofed(i: int) -> dict[str, str]:
    """Forwarding headers a client makes up, a new identity each time."""
    address = f"198.51.{i // 250}.{i % 250 + 1}"
    return {
        "x-forwarded-for": address,
        "x-real-ip": address,
        "forwarded": f"for={address};proto=https",
        "x-forwarded-host": "attacker.example",
        "x-forwarded-proto": "https",
    }


def kv(key: str, value: str) -> dict:
    return {"key": key, "value": {"stringValue": value}}


def traces(resource: list[dict], span_name: str, attributes: list[dict] | None = None) -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": resource},
                "scopeSpans": [
                    {
                        "scope": {"name": "hostile-test", "attributes": [kv("service.name", API_SERVICE)]},
                        "spans": [
                            {
                                "traceId": TRACE_ID,
                                "spanId": secrets.token_hex(8),
                                "name": span_name,
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000100000000",
                                "attributes": attributes or [],
                                "status": {"code": 2},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def metrics(name: str, points: list[dict], resource: list[dict] | None = None) -> dict:
    return {
        "resourceMetrics": [
            {
                "resource": {"attributes": resource or [kv("service.name", WEB_SERVICE)]},
                "scopeMetrics": [
                    {
                        "scope": {"name": "hostile-test"},
                        "metrics": [
                            {
                                "name": name,
                                "unit": "1",
                                "sum": {
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                    "dataPoints": points,
                                },
                            }
                        ],
                    }
                ],
            }
        ]
    }


def point(value: float, **attributes: str) -> dict:
    return {
        "asDouble": value,
        "startTimeUnixNano": "1700000000000000000",
        "timeUnixNano": "1700000001000000000",
        "attributes": [kv(k.replace("__", "."), v) for k, v in attributes.items()],
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("web-hostile") / "out")


@pytest.fixture(scope="module")
def app(project: Path) -> Path:
    return ensure_web_build(project / "web", CACHE_DIR)


@pytest.fixture(scope="module")
def stack(project: Path, app: Path, backend_python: Path) -> Iterator[WebStack]:
    with web_stack(project, app, backend_python, project.parent) as running:
        yield running


@pytest.fixture
def client(stack: WebStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.web.url, timeout=60) as http:
        yield http


@contextmanager
def own_web(app: Path, tmp_path: Path, rx: OtlpReceiver, api: str, **settings: str) -> Iterator[WebApp]:
    """A web app of its own, with `settings`, forwarding to `api` and exporting to `rx`."""
    env = clean_env(
        API_BASE_URL=api, OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint, NEXT_TELEMETRY_DISABLED="1", **settings
    )
    with run_web(app, env, tmp_path / "web.log") as web:
        yield web


@dataclass
class Recorder:
    """A loopback HTTP server standing in for the backend: it keeps the headers of every request."""

    url: str = ""
    seen: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def recorder() -> Iterator[Recorder]:
    record = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            record.seen.append({k.lower(): v for k, v in self.headers.items()})
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer  # noqa: N815 (http.server naming)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()


# -- identity ----------------------------------------------------------------------------------------


def test_the_api_proxy_sends_the_address_it_saw_whatever_the_client_claims(
    stack: WebStack, app: Path, tmp_path: Path
) -> None:
    """20 requests, each naming another address, host and scheme: the backend is told 127.0.0.1 every time."""
    with recorder() as backend, own_web(app, tmp_path, stack.rx, backend.url) as web:
        with httpx.Client(base_url=web.url, timeout=30) as http:
            for i in range(20):
                method = http.get if i % 2 else http.post
                kwargs = {} if i % 2 else {"json": {"n": i}}
                response = method(f"/api/echo/{i}", headers=spoofed(i), **kwargs)
                assert response.status_code == 200, response.text
        host = web.url.removeprefix("http://")
    assert len(backend.seen) == 20
    assert {h.get("x-forwarded-for") for h in backend.seen} == {"127.0.0.1"}
    assert {h.get("x-forwarded-host") for h in backend.seen} == {host}
    assert {h.get("x-forwarded-proto") for h in backend.seen} == {"http"}
    assert not [h for h in backend.seen if "x-real-ip" in h or "forwarded" in h]


def test_rotating_x_forwarded_for_does_not_reset_the_backends_limit(client: httpx.Client) -> None:
    """/api/feedback through the web, a made-up address each time: the backend's limit still holds."""
    statuses = [
        client.post(
            "/api/feedback", json={"trace_id": secrets.token_hex(16), "score": 1}, headers=spoofed(i)
        ).status_code
        for i in range(60)
    ]
    assert 429 in statuses, statuses
    first = statuses.index(429)
    assert set(statuses[first:]) == {429}, statuses
    assert set(statuses[:first]) <= {404}, statuses


def test_rotating_x_forwarded_for_does_not_reset_the_otlp_rate_limit(
    stack: WebStack, app: Path, tmp_path: Path
) -> None:
    """OTLP_RATE_LIMIT=5: ten exports, each from a made-up address, are five 200s and five 429s."""
    export = traces([kv("service.name", WEB_SERVICE)], "rate limited, rotating")
    with own_web(app, tmp_path, stack.rx, stack.backend.url, OTLP_RATE_LIMIT="5") as web:
        with httpx.Client(base_url=web.url, timeout=30) as http:
            statuses = [
                http.post("/otel/v1/traces", json=export, headers=spoofed(i)).status_code for i in range(10)
            ]
    assert statuses == [200] * 5 + [429] * 5, statuses


# -- forged telemetry --------------------------------------------------------------------------------


def decoded_resources(rx: OtlpReceiver, span_name: str) -> list[list[tuple[str, str]]]:
    """The resource attributes, as listed on the wire (duplicates kept), of exports holding `span_name`."""
    found = []
    for path, request in rx.exports():
        if path != "/v1/traces":
            continue
        for block in request.resource_spans:
            if any(s.name == span_name for scope in block.scope_spans for s in scope.spans):
                found.append([(a.key, a.value.string_value) for a in block.resource.attributes])
    return found


def test_a_resource_naming_the_web_app_twice_arrives_with_one_identity_its_own(
    stack: WebStack, client: httpx.Client
) -> None:
    """service.name twice, a made-up environment, identity keys on the span: one service.name arrives."""
    resource = [
        kv("service.name", WEB_SERVICE),
        kv("service.name", WEB_SERVICE),
        kv("deployment.environment.name", "production"),
        kv("service.instance.id", "api-0"),
        kv("telemetry.sdk.language", "webjs"),
    ]
    claims = [kv("service.name", API_SERVICE), kv("service_name", API_SERVICE), kv("job", API_SERVICE)]
    export = traces(resource, "twice named", [*claims, kv("page", "/")])
    assert client.post("/otel/v1/traces", json=export).status_code == 200
    span = stack.rx.wait_for(lambda rx: next((s for s in rx.spans() if s.name == "twice named"), None))
    (attributes,) = decoded_resources(stack.rx, "twice named")
    assert [v for k, v in attributes if k == "service.name"] == [WEB_SERVICE], attributes
    assert dict(attributes)["deployment.environment.name"] == "local"
    assert "service.instance.id" not in dict(attributes)
    assert span.attributes == {"page": "/"}
    assert span.resource["service.name"] == WEB_SERVICE


def test_a_resource_naming_the_web_app_then_the_backend_never_arrives(
    stack: WebStack, client: httpx.Client
) -> None:
    """[web, api] as service.name (Tempo would keep the last): 403 with its reason, nothing forwarded."""
    export = traces([kv("service.name", WEB_SERVICE), kv("service.name", API_SERVICE)], "web then api")
    response = client.post("/otel/v1/traces", json=export)
    assert response.status_code == 403, response.text
    assert response.text.startswith(f'resource service.name "{API_SERVICE}" is not this web app\'s')
    honest = traces([kv("service.name", WEB_SERVICE)], "after web then api")
    assert client.post("/otel/v1/traces", json=honest).status_code == 200
    stack.rx.wait_for(lambda rx: any(s.name == "after web then api" for s in rx.spans()))
    assert not [s for s in stack.rx.spans() if s.name == "web then api"]


def test_forged_cost_and_5xx_metrics_never_reach_the_collector(stack: WebStack, client: httpx.Client) -> None:
    """A 99,999 USD gen_ai.client.cost, 5xx counts as the backend: 403; a browser metric loses its claims."""
    forged = [
        metrics(
            "gen_ai.client.cost", [point(99_999, service__name=API_SERVICE, gen_ai__request__model="gpt-4o")]
        ),
        metrics(
            "http.server.request.duration",
            [point(1000, service__name=API_SERVICE, http__response__status_code="500")],
        ),
        metrics("app.feedback", [point(500, app__feedback__score="-1")]),
    ]
    for export in forged:
        response = client.post("/otel/v1/metrics", json=export)
        assert response.status_code == 403, response.text
        assert response.text.endswith("is named like the backend's; export refused\n")
    browser = metrics("browser.clicks", [point(3, service__name=API_SERVICE, job=API_SERVICE, page="/")])
    assert client.post("/otel/v1/metrics", json=browser).status_code == 200
    (metric,) = stack.rx.wait_for(lambda rx: [m for m in rx.metrics() if m.name == "browser.clicks"] or None)
    assert metric.resource["service.name"] == WEB_SERVICE
    assert [p["attributes"] for p in metric.data_points] == [{"page": "/"}]
    names = {m.name for m in stack.rx.metrics()}
    assert not names & {"gen_ai.client.cost", "http.server.request.duration", "app.feedback"}


def test_feedback_shaped_browser_logs_never_arrive(stack: WebStack, client: httpx.Client) -> None:
    """The backend's feedback event (gen_ai.evaluation.result) from a browser: 403, nothing arrives."""
    record = {
        "eventName": "gen_ai.evaluation.result",
        "severityText": "INFO",
        "traceId": TRACE_ID,
        "body": {"stringValue": "forged feedback"},
        "attributes": [
            kv("gen_ai.evaluation.name", "user_feedback"),
            {"key": "gen_ai.evaluation.score.value", "value": {"doubleValue": -1}},
        ],
    }
    logs = {
        "resourceLogs": [
            {
                "resource": {"attributes": [kv("service.name", WEB_SERVICE)]},
                "scopeLogs": [{"scope": {"name": "hostile-test"}, "logRecords": [record]}],
            }
        ]
    }
    response = client.post("/otel/v1/logs", json=logs)
    assert response.status_code == 403, response.text
    assert "is a feedback event" in response.text
    del record["eventName"]
    assert client.post("/otel/v1/logs", json=logs).status_code == 403  # its attributes alone
    honest = json.loads(json.dumps(logs).replace("forged feedback", "honest log"))
    honest["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["attributes"] = [kv("page", "/")]
    assert client.post("/otel/v1/logs", json=honest).status_code == 200
    stack.rx.wait_for(lambda rx: any(r.body == "honest log" for r in rx.logs()))
    assert not [r for r in stack.rx.logs() if r.body == "forged feedback"]


def test_five_exports_cannot_make_five_thousand_series(stack: WebStack, app: Path, tmp_path: Path) -> None:
    """5 exports of 1,000 points, each point a new attribute value: at most OTLP_MAX_SERIES (200) arrive."""
    with (
        own_web(app, tmp_path, stack.rx, stack.backend.url) as web,
        httpx.Client(base_url=web.url, timeout=30) as http,
    ):
        for batch in range(5):
            points = [point(1, item=f"value-{batch}-{i}") for i in range(1000)]
            response = http.post("/otel/v1/metrics", json=metrics("browser.cardinality", points))
            assert response.status_code == 200, response.text
        # An honest export after the flood: its one series is new too, and is dropped as well.
        assert http.post("/otel/v1/metrics", json=metrics("browser.after", [point(1)])).status_code == 200
        honest = traces([kv("service.name", WEB_SERVICE)], "span after the flood")
        assert http.post("/otel/v1/traces", json=honest).status_code == 200
    arrived = [p for m in stack.rx.metrics() if m.name == "browser.cardinality" for p in m.data_points]
    series = {tuple(sorted(p["attributes"].items())) for p in arrived}
    assert 0 < len(series) <= 200, len(series)
    assert not [m for m in stack.rx.metrics() if m.name == "browser.after"]
    assert not [s for s in stack.rx.spans() if s.name == "span after the flood"]


# -- the pages -----------------------------------------------------------------------------------------


def test_pages_carry_security_headers_and_work_under_their_policy_in_chromium(stack: WebStack) -> None:
    """CSP with a fresh nonce, no framing, nosniff, a referrer policy; a chat in Chromium: no violation."""
    first = httpx.get(f"{stack.web.url}/", timeout=30)
    second = httpx.get(f"{stack.web.url}/", timeout=30)
    policy = first.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    nonce = directives["script-src"].split("'nonce-")[1].split("'")[0]
    assert nonce and nonce not in second.headers["content-security-policy"]
    assert f'nonce="{nonce}"' in first.text  # Next.js put it on its inline scripts
    assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in policy
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    for response in (first, httpx.get(f"{stack.web.url}/otel/config", timeout=30)):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"

    console: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        page.add_init_script(CSP_LISTENER)
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        page.goto(stack.web.url)
        page.wait_for_selector("html[data-telemetry]", timeout=20_000)
        assert page.get_attribute("html", "data-telemetry") == "ready", console
        page.fill("[data-testid=chat-input]", "hello under a policy")
        page.click("[data-testid=chat-send]")
        page.wait_for_selector("[data-testid=chat-reply]", timeout=20_000)
        trace_id = (page.text_content("[data-testid=trace-id]") or "").strip()
        page.wait_for_timeout(800)  # the fetch span ends ~300 ms after the body; then flush by leaving
        violations = page.evaluate("() => window.__csp")
        console_before = list(console)
        # The listener works and the policy holds: markup injected the way an XSS does (an inline
        # handler) does not run, and nothing loads from another origin.
        page.evaluate(
            """() => { const d = document.createElement("div");
                       d.innerHTML = '<img src="/nowhere.png" onerror="window.__ran = 1"><img src="http://127.0.0.2:9/x.png">';
                       document.body.appendChild(d); }"""
        )
        page.wait_for_function("() => window.__csp.length >= 2", timeout=10_000)
        injected = page.evaluate("() => [window.__ran ?? null, window.__csp.map((v) => v.directive).sort()]")
        page.goto("about:blank")
    assert violations == [], violations
    assert not [line for line in console_before if "Content Security Policy" in line], console_before
    assert injected == [None, ["img-src", "script-src-attr"]], injected
    stack.rx.wait_for(
        lambda rx: any(
            s.trace_id == trace_id and s.resource.get("telemetry.sdk.language") == "webjs" for s in rx.spans()
        ),
        timeout=20,
    )
