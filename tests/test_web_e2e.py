"""One click in Debian's Chromium, one trace from the browser to the LLM, checked where it arrives.

Per session-replay vendor (module fixture): render with the web app on, `npm ci && npm run build`
(cached by source hash, see tests/support/browser.py), then start the OTLP receiver (standing in
for the collector behind the app's /otel/v1/traces), the stub LLM, the backend under uvicorn and
the built app with `npm start -- -p PORT`. Chromium types a message and clicks send; after the
reply it waits out the fetch span (it ends ~300 ms after the body) and leaves the page, which
flushes the browser's spans. The assertions read what the receiver decoded and what the stub LLM
and the browser's network log saw. Highlight and Sentry point at an unused loopback port; builtin
records the page meanwhile (tests/test_replay_e2e.py checks the replay itself).
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import CACHE_DIR, render
from tests.support.browser import chromium, ensure_web_build, link_node_modules
from tests.support.otlp_receiver import OtlpReceiver, Span
from tests.support.processes import clean_env, free_port
from tests.support.web_stack import web_stack

pytestmark = pytest.mark.boot

WEB_SERVICE = "sage-app-web"
API_SERVICE = "sage-app-api"
MESSAGE = "hello from chromium"
HIGHLIGHT_PROJECT = "e2eproject"
# Text only each vendor's SDK holds: in a chunk loaded after the page, never in its first-load JS.
VENDOR_MARKERS = {"builtin": "rrweb", "highlight": "highlight.run", "sentry": "__SENTRY__"}
SCRIPT_SRC = re.compile(r'<script[^>]+src="(/_next/static/chunks/[^"]+\.js)"')
SESSION_HEADERS = {
    "none": "x-session-id",
    "highlight": "x-highlight-request",
    "sentry": "baggage",
    "builtin": "x-session-id",
}
# What the page's global OpenTelemetry API holds (a second SDK registering first would show here).
OTEL_GLOBALS = """() => {
  const api = globalThis[Symbol.for("opentelemetry.js.api.1")];
  return { version: api?.version, fields: api?.propagation?.fields?.() ?? null };
}"""
TRACE_HEADERS = ("traceparent", "tracestate", *SESSION_HEADERS.values())
# Every Content-Security-Policy violation of the page, collected before any page script runs.
CSP_LISTENER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__csp.push({ directive: e.effectiveDirective, blocked: e.blockedURI }));
"""


@dataclass
class SeenRequest:
    method: str
    url: str
    headers: dict[str, str]


@dataclass
class BrowserRun:
    vendor: str
    project: Path
    app: Path
    web_url: str
    backend_url: str
    reply: str
    shown_trace_id: str
    stored_session: str | None
    spans: list[Span]
    llm_requests: list[dict]
    requests: list[SeenRequest]
    page_errors: list[str]
    otel_globals: dict
    receiver_errors: list[str]
    content_types: list[str]
    first_load: list[str]
    csp_violations: list[dict]
    page_policy: str
    vendor_env: dict[str, str]

    # -- finding spans -----------------------------------------------------------------------------

    def unique_spans(self) -> list[Span]:
        """OTLP delivery is at least once: an export retried after a lost answer repeats spans."""
        return list({span.span_id: span for span in self.spans}.values())

    def browser_spans(self) -> list[Span]:
        return [s for s in self.spans if s.resource.get("telemetry.sdk.language") == "webjs"]

    def one(self, description: str, predicate) -> Span:
        found = [s for s in self.unique_spans() if predicate(s)]
        assert len(found) == 1, (
            f"{description}: {[(s.name, s.kind, s.resource.get('service.name')) for s in found]}"
        )
        return found[0]

    def browser_fetch(self) -> Span:
        return self.one(
            "browser fetch span",
            lambda s: (
                s in self.browser_spans()
                and s.kind == "CLIENT"
                and s.attributes.get("url.full") == f"{self.web_url}/api/chat"
            ),
        )

    def next_server(self) -> Span:
        return self.one(
            "Next.js server span",
            lambda s: (
                s.resource.get("service.name") == WEB_SERVICE
                and s.kind == "SERVER"
                and s.attributes.get("http.target") == "/api/chat"
            ),
        )

    def next_fetch(self) -> Span:
        return self.one(
            "Next.js fetch span",
            lambda s: (
                s.resource.get("service.name") == WEB_SERVICE
                and s.kind == "CLIENT"
                and s.attributes.get("http.url") == f"{self.backend_url}/api/chat"
            ),
        )

    def backend_server(self) -> Span:
        return self.one(
            "backend server span",
            lambda s: (
                s.resource.get("service.name") == API_SERVICE
                and s.kind == "SERVER"
                and s.name == "POST /api/chat"
            ),
        )

    def chat(self) -> Span:
        return self.one("chat span", lambda s: s.name == "chat gpt-4o-mini")

    def agent(self) -> Span:
        return self.one("agent span", lambda s: s.name == "invoke_agent assistant")

    def llm_http(self) -> Span:
        return self.one(
            "httpx span to the LLM",
            lambda s: (
                s.resource.get("service.name") == API_SERVICE
                and s.kind == "CLIENT"
                and str(s.attributes.get("url.full", "")).endswith("/v1/chat/completions")
            ),
        )

    def ancestors(self, span: Span) -> list[str]:
        by_id = {s.span_id: s for s in self.unique_spans()}
        chain, parent = [], span.parent_span_id
        while parent in by_id:
            chain.append(parent)
            parent = by_id[parent].parent_span_id
        return chain


def _complete(rx: OtlpReceiver, web_url: str, backend_url: str) -> bool:
    spans = rx.spans()
    return (
        any(s.attributes.get("url.full") == f"{web_url}/api/chat" and s.kind == "CLIENT" for s in spans)
        and any(s.attributes.get("http.url") == f"{backend_url}/api/chat" for s in spans)
        and any(s.name == "POST /api/chat" and s.kind == "SERVER" for s in spans)
    )


def _vendor_env(vendor: str) -> dict[str, str]:
    """Replay vendors send to a loopback port where nothing listens: the network is closed here."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    if vendor == "highlight":
        return {"HIGHLIGHT_BACKEND_URL": nowhere, "HIGHLIGHT_OTLP_ENDPOINT": nowhere}
    if vendor == "sentry":
        return {"SENTRY_DSN": nowhere.replace("http://", "http://e2ekey@") + "/1"}
    return {}


@pytest.fixture(scope="module", params=["none", "highlight", "sentry", "builtin"])
def run(
    request: pytest.FixtureRequest, backend_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> BrowserRun:
    vendor = request.param
    workdir = tmp_path_factory.mktemp(f"web-{vendor}")
    project = render(
        workdir / "out",
        session_replay=vendor,
        highlight_project_id=HIGHLIGHT_PROJECT if vendor == "highlight" else "",
    )
    app = ensure_web_build(project / "web", CACHE_DIR)
    seen: list[SeenRequest] = []
    page_errors: list[str] = []
    vendor_env = _vendor_env(vendor)
    with (
        web_stack(project, app, backend_python, workdir, web_env=vendor_env) as stack,
        chromium() as browser,
    ):
        rx, llm, web = stack.rx, stack.llm, stack.web
        page = browser.new_page()
        page.add_init_script(CSP_LISTENER)
        page.on("request", lambda r: seen.append(SeenRequest(r.method, r.url, dict(r.headers))))
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        with urllib.request.urlopen(f"{web.url}/", timeout=20) as response:
            first_load = list(dict.fromkeys(SCRIPT_SRC.findall(response.read().decode())))
        page_policy = page.goto(web.url).headers.get("content-security-policy", "")
        page.wait_for_selector("html[data-telemetry]", timeout=20_000)
        assert page.get_attribute("html", "data-telemetry") == "ready", web.output()
        page.fill("[data-testid=chat-input]", MESSAGE)
        page.click("[data-testid=chat-send]")
        page.wait_for_selector("[data-testid=chat-reply]", timeout=20_000)
        reply = page.text_content("[data-testid=chat-reply]") or ""
        shown = page.text_content("[data-testid=trace-id]") or ""
        stored = page.evaluate("() => sessionStorage.getItem('otel.session.id')")
        otel_globals = page.evaluate(OTEL_GLOBALS)
        csp_violations = page.evaluate("() => window.__csp")
        page.wait_for_timeout(800)  # the fetch span ends ~300 ms after the response body
        page.goto("about:blank")  # pagehide: the ended spans leave in a keepalive request
        rx.wait_for(lambda r: _complete(r, web.url, stack.backend.url), timeout=20)
        llm_requests = llm.requests()
    # Read after the servers stopped: what they flushed on SIGTERM arrived too.
    return BrowserRun(
        vendor=vendor,
        project=project,
        app=app,
        web_url=web.url,
        backend_url=stack.backend.url,
        reply=reply,
        shown_trace_id=shown.strip(),
        stored_session=stored,
        spans=rx.spans(),
        llm_requests=llm_requests,
        requests=seen,
        page_errors=page_errors,
        otel_globals=otel_globals,
        receiver_errors=rx.errors,
        content_types=rx.content_types,
        first_load=first_load,
        csp_violations=csp_violations,
        page_policy=page_policy,
        vendor_env=vendor_env,
    )


def test_the_page_shows_the_reply_and_its_trace_id(run: BrowserRun) -> None:
    """The chat answers through the same-origin proxy and shows the trace it belongs to."""
    assert run.reply == f"Echo: {MESSAGE}"
    assert run.shown_trace_id == run.backend_server().trace_id
    assert run.page_errors == []


def test_the_page_and_its_replay_vendor_run_under_the_pages_policy(run: BrowserRun) -> None:
    """The page's nonce policy lets each vendor reach its endpoint only; no violation in Chromium."""
    directives = dict(d.strip().split(" ", 1) for d in run.page_policy.split(";"))
    assert "'nonce-" in directives["script-src"] and "'unsafe-inline'" not in directives["script-src"]
    endpoints = {f"{u.scheme}://{u.hostname}:{u.port}" for u in map(urlsplit, run.vendor_env.values())}
    assert directives["connect-src"].split() == ["'self'", *sorted(endpoints)]
    assert run.csp_violations == []


def test_every_export_was_well_formed(run: BrowserRun) -> None:
    """The receiver rejected nothing: OTLP/JSON from the browser, protobuf from both servers."""
    assert run.receiver_errors == []
    assert "application/json" in run.content_types
    assert "application/x-protobuf" in run.content_types


def test_one_trace_from_the_click_to_the_llm(run: BrowserRun) -> None:
    """Browser fetch, Next.js, backend, chat span and the LLM's traceparent share one trace id."""
    (llm_request,) = [r for r in run.llm_requests if r["path"] == "/v1/chat/completions"]
    _, llm_trace_id, _, _ = llm_request["headers"]["traceparent"].split("-")
    hops = [
        run.browser_fetch(),
        run.next_server(),
        run.next_fetch(),
        run.backend_server(),
        run.chat(),
        run.llm_http(),
    ]
    assert {span.trace_id for span in hops} == {llm_trace_id}


def test_each_hop_is_the_child_of_the_one_before(run: BrowserRun) -> None:
    """browser fetch -> Next.js server -> its fetch -> backend server -> agent -> chat -> httpx -> LLM."""
    browser, server, forward = run.browser_fetch(), run.next_server(), run.next_fetch()
    backend, agent, chat, http = run.backend_server(), run.agent(), run.chat(), run.llm_http()
    assert server.parent_span_id == browser.span_id
    assert server.span_id in run.ancestors(forward)
    assert backend.parent_span_id == forward.span_id
    assert agent.parent_span_id == backend.span_id
    assert chat.parent_span_id == agent.span_id
    assert http.parent_span_id == chat.span_id
    (llm_request,) = [r for r in run.llm_requests if r["path"] == "/v1/chat/completions"]
    assert llm_request["headers"]["traceparent"].split("-")[2] == http.span_id


def test_the_backend_span_names_the_browser_session(run: BrowserRun) -> None:
    """The replay session id is on every browser span and, through its header, on the backend span.

    (Tracing starts before the replay vendor: with Highlight or Sentry the spans before it ran,
    such as the page load's, carry the tab's session id instead.)"""
    session = run.browser_fetch().attributes.get("session.id")
    assert session
    sessions = {s.attributes.get("session.id") for s in run.browser_spans()}
    if run.vendor in ("none", "builtin"):
        assert sessions == {session}
    else:
        assert sessions <= {session, run.stored_session}
    assert run.backend_server().attributes.get("session.id") == session
    (chat_request,) = [r for r in run.requests if r.url == f"{run.web_url}/api/chat"]
    assert session in chat_request.headers[SESSION_HEADERS[run.vendor]]
    if run.vendor in ("none", "builtin"):
        assert run.stored_session == session
    if run.vendor == "highlight":
        assert run.browser_fetch().attributes["highlight.session_id"] == session
        assert run.backend_server().attributes["highlight.session_id"] == session
    if run.vendor == "sentry":
        assert run.backend_server().attributes["sentry.replay_id"] == session


def test_the_next_server_span_names_the_browser_session(run: BrowserRun) -> None:
    """session.id is on the Next.js SERVER span of the request, not only on its internal spans."""
    session = run.browser_fetch().attributes.get("session.id")
    assert session
    assert run.next_server().attributes.get("session.id") == session


def test_no_framework_span_is_a_root_trace(run: BrowserRun) -> None:
    """Next.js's start-up and module-loading spans never arrive as traces of their own.

    Every span of the Next.js server is a request's SERVER span or in the trace of one."""
    server_spans = [
        s
        for s in run.unique_spans()
        if s.resource.get("service.name") == WEB_SERVICE
        and s.resource.get("telemetry.sdk.language") != "webjs"
    ]
    assert server_spans
    request_traces = {s.trace_id for s in server_spans if s.kind == "SERVER"}
    framework_roots = [(s.name, s.kind) for s in server_spans if s.trace_id not in request_traces]
    assert framework_roots == []


def test_the_fetch_is_traced_once_by_one_provider(run: BrowserRun) -> None:
    """No second tracer provider (a vendor's) adds spans: one fetch span, one resource, no duplicates."""
    lock = json.loads((run.project / "web" / "package-lock.json").read_text())
    assert run.otel_globals["version"] == lock["packages"]["node_modules/@opentelemetry/api"]["version"]
    assert set(run.otel_globals["fields"]) == {"traceparent", "tracestate", *SESSION_HEADERS.values()}
    browser = run.browser_spans()
    assert len({s.span_id for s in browser}) == len(browser), "a browser span arrived twice"
    assert [s for s in browser if s.kind == "CLIENT" and "/api/" in str(s.attributes.get("url.full"))] == [
        run.browser_fetch()
    ]
    assert {s.resource.get("service.name") for s in browser} == {WEB_SERVICE}
    assert not [s for s in run.spans if s.resource.get("telemetry.distro.name")], (
        "a vendor's SDK exported spans"
    )


def test_only_api_requests_carry_trace_context(run: BrowserRun) -> None:
    """traceparent and the session header go to /api/* of the page's origin, and nowhere else."""
    carrying = [r for r in run.requests if any(h in r.headers for h in TRACE_HEADERS)]
    assert carrying, "no request carried trace context"
    assert all(r.url.startswith(f"{run.web_url}/api/") for r in carrying), [r.url for r in carrying]
    assert all("traceparent" in r.headers for r in carrying)


def test_the_exporters_own_requests_are_never_traced(run: BrowserRun) -> None:
    """No span anywhere describes a POST to /otel/v1/traces, and none of those POSTs carries context.

    (The POST sent while leaving the page is often missing from Playwright's log; what it carried
    arrived all the same, which the trace tests show.)"""
    about_exports = [
        s.name
        for s in run.spans
        for key in ("url.full", "http.url", "http.target", "url.path")
        if "/otel/v1/traces" in str(s.attributes.get(key, ""))
    ]
    assert about_exports == []
    exports = [r for r in run.requests if r.url.startswith(f"{run.web_url}/otel/")]
    assert not [r.url for r in exports if any(h in r.headers for h in TRACE_HEADERS)]


def test_the_browser_reaches_no_host_but_the_app(run: BrowserRun) -> None:
    """Every request the page made went to the app's own origin (vendors point at loopback here)."""
    outside = [
        r.url
        for r in run.requests
        if not r.url.startswith((run.web_url, "about:", "blob:", "data:", "http://127.0.0.1:"))
    ]
    assert outside == []


def test_the_replay_vendor_loads_after_the_page(run: BrowserRun) -> None:
    """The vendor's SDK is in a chunk fetched after the page's first-load JS, never in it."""
    marker = VENDOR_MARKERS.get(run.vendor)
    if marker is None:
        assert run.vendor == "none"
        return
    static = run.app / ".next" / "static"
    first = {src.removeprefix("/_next/static/") for src in run.first_load}
    assert first, "the page loads no script"
    assert not [src for src in first if marker in (static / src).read_text(errors="ignore")]
    later = {
        "chunks/" + Path(r.url.split("?", 1)[0]).name
        for r in run.requests
        if "/_next/static/chunks/" in r.url and r.url.endswith(".js")
    } - first
    assert [src for src in later if marker in (static / src).read_text(errors="ignore")], sorted(later)


def test_the_web_unit_tests_pass_in_the_rendered_project(run: BrowserRun) -> None:
    """`npm test` in the rendered web/ (propagation rules, replay switch, proxy, config) passes."""
    web = run.project / "web"
    link_node_modules(run.app, web)
    result = subprocess.run(
        ["npm", "test"], cwd=web, env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "# fail 0" in result.stdout and "# skipped 0" in result.stdout, result.stdout[-1500:]
