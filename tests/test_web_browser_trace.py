"""The browser half of one trace, in Debian's Chromium against the built app (default render).

Browser telemetry starts before hydration (web/instrumentation-client.ts), so a click right
after `load` is traced from the browser, with no wait for `data-telemetry="ready"`; the page load
joins the trace of its server render (`<meta name="traceparent">`); uncaught errors, unhandled
rejections and Core Web Vitals arrive as spans of that trace with the session id; the streaming
chat path puts the click-to-first-token time on its browser span. Every wait polls the OTLP
receiver (or a page condition) with a deadline. Last, the cost: the first-load JS of `/` with
telemetry against the same app built without web/instrumentation-client.ts.
"""

from __future__ import annotations

import re
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CACHE_DIR, render
from tests.support.browser import chromium, ensure_web_build, gzip_size, run_web
from tests.support.otlp_receiver import OtlpReceiver, Span
from tests.support.processes import clean_env
from tests.support.web_stack import WebStack, web_stack

pytestmark = pytest.mark.boot

WEB_SERVICE = "sage-app-web"
API_SERVICE = "sage-app-api"
ARRIVAL_TIMEOUT = 20
# The increase of the first-load JS of / that telemetry may cost (issue 14).
FIRST_LOAD_BUDGET_GZIP = 45_000
SCRIPT_SRC = re.compile(r'<script[^>]+src="(/_next/static/chunks/[^"]+\.js)"')
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$")
# Resolves `delay` ms after the page's load event ended (at once if that moment has passed).
AFTER_LOAD = """(delay) => new Promise((resolve) => {
  const loaded = performance.getEntriesByType("navigation")[0].loadEventEnd;
  setTimeout(resolve, Math.max(0, loaded + delay - performance.now()));
})"""

# Resolves in the second idle period from now: idle callbacks queued before it have run.
IDLE_TWICE = "() => new Promise((resolve) => requestIdleCallback(() => requestIdleCallback(() => resolve())))"


@dataclass
class Stack:
    web: WebStack
    browser: object
    app: Path

    @property
    def rx(self) -> OtlpReceiver:
        return self.web.rx

    @property
    def url(self) -> str:
        return self.web.web.url


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("browser-trace") / "out")


@pytest.fixture(scope="module")
def app(project: Path) -> Path:
    return ensure_web_build(project / "web", CACHE_DIR)


@pytest.fixture(scope="module")
def stack(
    project: Path, app: Path, backend_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("browser-trace-stack")
    with web_stack(project, app, backend_python, workdir) as web, chromium() as browser:
        yield Stack(web, browser, app)


@pytest.fixture
def page(stack: Stack) -> Iterator[object]:
    """A fresh tab (its own sessionStorage, so its own session id) on the app's home page, loaded."""
    context = stack.browser.new_context()
    page = context.new_page()
    page.goto(stack.url, wait_until="load")
    yield page
    context.close()


def page_traceparent(page) -> tuple[str, str]:
    """The trace id and span id of the server render, from the page's <meta name="traceparent">."""
    content = page.get_attribute('meta[name="traceparent"]', "content") or ""
    match = TRACEPARENT.fullmatch(content)
    assert match, f"no traceparent meta: {content!r}"
    return match.group(1), match.group(2)


def session_of(page) -> str:
    session = page.evaluate("() => sessionStorage.getItem('otel.session.id')")
    assert session
    return session


def browser_spans(rx: OtlpReceiver) -> list[Span]:
    return [s for s in rx.spans() if s.resource.get("telemetry.sdk.language") == "webjs"]


def in_trace(rx: OtlpReceiver, trace_id: str) -> list[Span]:
    return list({s.span_id: s for s in rx.spans() if s.trace_id == trace_id}.values())


def send(page, message: str, *, stream: bool = False) -> str:
    """Types `message`, clicks send, waits for the shown trace id and returns it."""
    if stream:
        page.check("[data-testid=chat-stream]")
    page.fill("[data-testid=chat-input]", message)
    page.click("[data-testid=chat-send]")
    page.wait_for_selector("[data-testid=trace-id]", timeout=ARRIVAL_TIMEOUT * 1000)
    return (page.text_content("[data-testid=trace-id]") or "").strip()


@pytest.mark.parametrize("delay_ms", [0, 100, 250])
def test_a_click_right_after_load_is_one_trace_rooted_at_the_browser_fetch(stack: Stack, page, delay_ms: int):
    """A click 0, 100 or 250 ms after load: the browser fetch span is the root; session.id on the backend."""
    page.evaluate(AFTER_LOAD, delay_ms)
    trace_id = send(page, f"click {delay_ms} ms after load")
    session = session_of(page)
    url = f"{stack.url}/api/chat"

    def arrived(rx: OtlpReceiver):
        spans = in_trace(rx, trace_id)
        fetches = [s for s in spans if s.kind == "CLIENT" and s.attributes.get("url.full") == url]
        backend = [s for s in spans if s.resource.get("service.name") == API_SERVICE and s.kind == "SERVER"]
        return (spans, fetches, backend) if fetches and backend else None

    spans, (fetch,), (backend,) = stack.rx.wait_for(arrived, timeout=ARRIVAL_TIMEOUT)
    assert fetch.resource.get("telemetry.sdk.language") == "webjs"
    assert fetch.parent_span_id == ""
    assert [s.name for s in spans if s.parent_span_id == ""] == [fetch.name]
    assert fetch.attributes.get("session.id") == session
    assert backend.attributes.get("session.id") == session


def test_the_page_load_joins_the_trace_of_its_server_render(stack: Stack, page):
    """documentLoad and the page's resource spans are in the trace of the SSR span that rendered the page."""
    trace_id, render_span_id = page_traceparent(page)

    def arrived(rx: OtlpReceiver):
        spans = in_trace(rx, trace_id)
        ssr = [s for s in spans if s.resource.get("service.name") == WEB_SERVICE and s.kind == "SERVER"]
        load = [s for s in spans if s.name == "documentLoad"]
        return (spans, ssr, load) if ssr and load else None

    spans, (ssr,), (load,) = stack.rx.wait_for(arrived, timeout=ARRIVAL_TIMEOUT)
    assert ssr.attributes.get("http.target", ssr.attributes.get("url.path")) == "/"
    assert load.resource.get("telemetry.sdk.language") == "webjs"
    assert load.parent_span_id == render_span_id
    by_id = {s.span_id: s for s in spans}
    chain, parent = [], load.parent_span_id
    while parent in by_id:
        chain.append(parent)
        parent = by_id[parent].parent_span_id
    assert ssr.span_id in chain, "documentLoad does not descend from the SSR span"
    assert [s for s in spans if s.name == "resourceFetch" and s.parent_span_id == load.span_id]


def test_uncaught_errors_and_rejections_arrive_in_the_page_trace_with_the_session(stack: Stack, page):
    """A thrown error and an unhandled rejection arrive as exception spans with the trace and session ids."""
    trace_id, _ = page_traceparent(page)
    session = session_of(page)
    page.evaluate(
        """() => {
          setTimeout(() => { throw new TypeError("e2e thrown"); });
          Promise.reject(new RangeError("e2e rejected"));
        }"""
    )

    def exceptions(rx: OtlpReceiver):
        found = {
            attributes.get("exception.message"): span
            for span in browser_spans(rx)
            for name, attributes in span.events
            if span.name == "exception" and name == "exception"
        }
        return found if {"e2e thrown", "e2e rejected"} <= found.keys() else None

    found = stack.rx.wait_for(exceptions, timeout=ARRIVAL_TIMEOUT)
    for message, kind, error_type in [
        ("e2e thrown", "error", "TypeError"),
        ("e2e rejected", "unhandledrejection", "RangeError"),
    ]:
        span = found[message]
        assert span.trace_id == trace_id
        assert span.attributes.get("session.id") == session
        assert span.attributes.get("app.error.kind") == kind
        assert span.attributes.get("error.type") == error_type
        assert span.status_code == "ERROR"
        (event,) = [a for n, a in span.events if n == "exception"]
        assert event.get("exception.type") == error_type and event.get("exception.stacktrace")


def test_the_core_web_vitals_arrive_per_route_in_the_page_trace_with_the_session(stack: Stack, page):
    """LCP, INP, CLS and TTFB of a page arrive as web-vital spans with http.route, trace and session ids."""
    trace_id, _ = page_traceparent(page)
    session = session_of(page)
    page.click("[data-testid=chat-input]")  # an interaction: INP has something to measure
    # The browser queues the interaction's timing entry after the next paint, and web-vitals reads
    # it in an idle callback: INP exists once the page has been idle after that entry.
    page.wait_for_function("() => performance.getEntriesByType('first-input').length > 0")
    page.evaluate(IDLE_TWICE)
    page.goto("about:blank")  # hidden, then left: LCP, CLS and INP become final and are flushed

    def vitals(rx: OtlpReceiver):
        spans = in_trace(rx, trace_id)
        found = {s.attributes.get("web_vital.name"): s for s in spans if s.name.startswith("web-vital ")}
        return found if {"LCP", "INP", "CLS", "TTFB"} <= found.keys() else None

    try:
        found = stack.rx.wait_for(vitals, timeout=ARRIVAL_TIMEOUT)
    except AssertionError:
        arrived = sorted({s.name for s in browser_spans(stack.rx) if s.trace_id == trace_id})
        raise AssertionError(f"the page's trace holds only {arrived}") from None
    for name, span in found.items():
        assert span.name == f"web-vital {name}"
        assert span.attributes.get("http.route") == "/"
        assert span.attributes.get("session.id") == session
        assert span.attributes.get("web_vital.rating") in {"good", "needs-improvement", "poor"}
        value = span.attributes.get("web_vital.value")
        assert isinstance(value, int | float) and value >= 0
        if name != "CLS":
            assert abs(span.duration_ns / 1e6 - value) < 1, (name, span.duration_ns, value)


def test_the_streamed_reply_records_click_to_first_token_no_less_than_the_servers_ttft(stack: Stack, page):
    """POST /api/chat/stream: app.click_to_first_token_ms on the browser fetch span >= the server's TTFT."""
    trace_id = send(page, "stream me a reply", stream=True)
    assert (page.text_content("[data-testid=chat-reply]") or "").startswith("Echo:")
    url = f"{stack.url}/api/chat/stream"

    def arrived(rx: OtlpReceiver):
        spans = in_trace(rx, trace_id)
        fetches = [s for s in spans if s.kind == "CLIENT" and s.attributes.get("url.full") == url]
        llm = [s for s in spans if "gen_ai.response.time_to_first_chunk" in s.attributes]
        first = [s for s in spans if s.name == "chat first token"]
        return (fetches, llm, first) if fetches and llm and first else None

    (fetch,), (llm,), (first,) = stack.rx.wait_for(arrived, timeout=ARRIVAL_TIMEOUT)
    assert fetch.parent_span_id == ""
    click_to_first_token_ms = fetch.attributes.get("app.click_to_first_token_ms")
    assert isinstance(click_to_first_token_ms, int | float)
    assert click_to_first_token_ms >= llm.attributes["gen_ai.response.time_to_first_chunk"] * 1000
    assert first.parent_span_id == fetch.span_id
    assert first.attributes.get("app.click_to_first_token_ms") == click_to_first_token_ms
    assert abs(first.duration_ns / 1e6 - click_to_first_token_ms) < 1


# -- first-load JS ----------------------------------------------------------------------------------


def first_load_js(app: Path, url: str) -> dict[str, int]:
    """The scripts the served `/` loads before hydration (its <script src> tags), with gzip sizes."""
    with urllib.request.urlopen(f"{url}/", timeout=20) as response:
        html = response.read().decode()
    return {
        src: gzip_size(app / ".next" / "static" / src.removeprefix("/_next/static/"))
        for src in dict.fromkeys(SCRIPT_SRC.findall(html))
    }


@pytest.fixture(scope="module")
def app_without_telemetry(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same web app built without the client instrumentation, the baseline of the bundle check."""
    web = tmp_path_factory.mktemp("no-telemetry") / "web"
    shutil.copytree(project / "web", web, ignore=shutil.ignore_patterns("node_modules", ".next"))
    (web / "instrumentation-client.ts").unlink()
    return ensure_web_build(web, CACHE_DIR)


def test_telemetry_adds_under_45_kb_gzip_to_the_first_load_js(
    stack: Stack, app_without_telemetry: Path, tmp_path_factory: pytest.TempPathFactory
):
    """First-load JS of / (gzip): telemetry is in it and adds at most 45 kB to the app without it."""
    with_telemetry = first_load_js(stack.app, stack.url)
    env = clean_env(API_BASE_URL=stack.web.backend.url, NEXT_TELEMETRY_DISABLED="1")
    log = tmp_path_factory.mktemp("no-telemetry-web") / "web.log"
    with run_web(app_without_telemetry, env, log) as web:
        without = first_load_js(app_without_telemetry, web.url)
    increase = sum(with_telemetry.values()) - sum(without.values())
    print(
        f"first-load JS of / (gzip): {sum(with_telemetry.values())} B with telemetry, "
        f"{sum(without.values())} B without, +{increase} B"
    )
    static = stack.app / ".next" / "static"
    texts = [(static / src.removeprefix("/_next/static/")).read_text() for src in with_telemetry]
    assert any("telemetry-config" in text for text in texts), "telemetry is not in the first-load JS"
    assert 0 < increase <= FIRST_LOAD_BUDGET_GZIP, f"+{increase} B gzip"
