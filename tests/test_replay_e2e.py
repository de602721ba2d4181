"""Built-in session replay, end to end in Debian's Chromium: record, store, play back, link to the trace.

One module fixture: render with session_replay=builtin, build the web app (cached, shared with
tests/test_web_e2e.py), start the receiver, stub LLM, backend (with REPLAY_VIEWER_TOKEN) and web
app (tests/support/web_stack.py). A user types a distinctive message and sends it, then leaves
the page, which flushes the last chunk. An operator, in a browser context of their own, opens
/replay/<session id>: first without the token, then with a wrong one, then with the right one.
Last, a backend and web app without REPLAY_VIEWER_TOKEN, on the same database, show the viewer off.

A second fixture plays a hostile recording, uploaded as an attacker's client would send it: its DOM
points an image, a stylesheet, a font, a nested frame and scripts at a local HTTP server; the viewer
must fetch nothing from it and run none of it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import CACHE_DIR, render
from tests.support.browser import chromium, ensure_web_build, run_web
from tests.support.otlp_receiver import Span
from tests.support.processes import clean_env, run_backend
from tests.support.web_stack import web_stack

pytestmark = pytest.mark.boot

API_SERVICE = "sage-app-api"
TOKEN = "e2e-operator-token-5b1d-0123456789abcdef"
GRAFANA = "http://grafana.e2e.test:3001"
# What the user types: words that appear nowhere else, so finding one means it leaked (no digits:
# those turn up inside timestamps and ids).
MESSAGE = "Pelican quartz zebrafish marmalade"
SECRET_WORDS = tuple(MESSAGE.split())
REPLAY_IFRAME = ".replayer-wrapper iframe"
TRACE_HEADERS = ("traceparent", "tracestate", "x-session-id")


@dataclass
class Upload:
    url: str
    headers: dict[str, str]
    body_bytes: int


@dataclass
class ReplayRun:
    web_url: str
    session_id: str
    shown_trace_id: str
    spans: list[Span]
    uploads: list[Upload]
    page_errors: list[str]
    html_replay_state: str | None
    stored: dict
    api_status: dict[str, int]
    viewer: dict[str, str] = field(default_factory=dict)
    replay_dom: str = ""
    replay_elements: dict[str, int] = field(default_factory=dict)
    replay_message: str = ""
    trace_links: list[tuple[str, str]] = field(default_factory=list)
    viewer_off: str = ""
    api_without_token_config: tuple[int, str] = (0, "")

    def backend_chat_span(self) -> Span:
        (span,) = {
            s.span_id: s
            for s in self.spans
            if s.resource.get("service.name") == API_SERVICE
            and s.kind == "SERVER"
            and s.name == "POST /api/chat"
        }.values()
        return span


def _read_session(base_url: str, session_id: str, token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{base_url}/api/replay/{session_id}", headers=headers, timeout=10)


def _wait_stored(base_url: str, session_id: str, trace_id: str, timeout: float = 20.0) -> dict:
    """The session as the API returns it, once a chunk naming `trace_id` has arrived."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = _read_session(base_url, session_id, TOKEN)
        if last.status_code == 200 and trace_id in last.json()["trace_ids"]:
            return last.json()
        time.sleep(0.2)
    answer = f"{last.status_code} {last.text[:300]}" if last is not None else "nothing"
    raise AssertionError(f"no chunk with trace {trace_id} arrived: {answer}")


def _operator_views(browser, run: ReplayRun) -> None:
    """The viewer, as an operator: asks for the token, refuses a wrong one, then plays the session."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.on("pageerror", lambda error: run.page_errors.append(f"viewer: {error}"))
    page.goto(f"{run.web_url}/replay/{run.session_id}")
    page.wait_for_selector("[data-testid=replay-token-form]", timeout=20_000)
    run.viewer["without token"] = page.text_content("[data-testid=replay-status]") or ""
    page.fill("[data-testid=replay-token]", "not-the-token")
    page.click("[data-testid=replay-token-submit]")
    page.wait_for_selector("[data-testid=replay-token-form] [role=alert]", timeout=10_000)
    run.viewer["wrong token"] = page.text_content("[data-testid=replay-status]") or ""
    page.fill("[data-testid=replay-token]", TOKEN)
    page.click("[data-testid=replay-token-submit]")
    page.wait_for_selector("[data-testid=replay-player][data-ready=true]", state="attached", timeout=20_000)
    run.viewer["token kept"] = page.evaluate("() => sessionStorage.getItem('replay.viewer.token') ?? ''")
    frame = page.frame_locator(REPLAY_IFRAME)
    # The player plays from the start; the reply shows once it has passed the click and the answer.
    frame.locator("[data-testid=chat-reply]").wait_for(timeout=30_000)
    run.replay_message = frame.locator(".message").text_content() or ""
    run.replay_elements = {
        name: frame.locator(f"[data-testid={name}]").count()
        for name in ("chat-input", "chat-send", "chat-reply")
    }
    run.replay_dom = _iframe_html(page)
    run.trace_links = [
        (link.get_attribute("data-trace-id") or "", link.get_attribute("href") or "")
        for link in page.locator("[data-testid=replay-trace-link]").all()
    ]
    context.close()


def _iframe_html(page) -> str:
    """The replay iframe's whole document, inputs' current values included."""
    return page.locator(REPLAY_IFRAME).evaluate(
        """(iframe) => {
            const doc = iframe.contentDocument;
            const values = [...doc.querySelectorAll("input, textarea")].map((el) => el.value);
            return doc.documentElement.outerHTML + "\\n" + values.join("\\n");
        }"""
    )


@pytest.fixture(scope="module")
def run(backend_python: Path, tmp_path_factory: pytest.TempPathFactory) -> ReplayRun:
    workdir = tmp_path_factory.mktemp("replay")
    project = render(workdir / "out", session_replay="builtin")
    app = ensure_web_build(project / "web", CACHE_DIR)
    uploads: list[Upload] = []
    page_errors: list[str] = []
    with (
        web_stack(
            project,
            app,
            backend_python,
            workdir,
            backend_env={"REPLAY_VIEWER_TOKEN": TOKEN},
            web_env={"GRAFANA_URL": GRAFANA},
        ) as stack,
        chromium() as browser,
    ):
        web = stack.web
        user = browser.new_context()
        page = user.new_page()
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.on(
            "request",
            lambda r: (
                uploads.append(Upload(r.url, dict(r.headers), len(r.post_data_buffer or b"")))
                if "/api/replay/" in r.url
                else None
            ),
        )
        page.goto(web.url)
        page.wait_for_selector("html[data-replay]", timeout=20_000)
        replay_state = page.get_attribute("html", "data-replay")
        page.click("[data-testid=chat-input]")
        page.keyboard.type(MESSAGE, delay=15)
        page.click("[data-testid=chat-send]")
        page.wait_for_selector("[data-testid=chat-reply]", timeout=20_000)
        shown = (page.text_content("[data-testid=trace-id]") or "").strip()
        session_id = page.evaluate("() => sessionStorage.getItem('otel.session.id')")
        page.wait_for_timeout(800)  # the browser's fetch span ends ~300 ms after the response body
        page.goto("about:blank")  # pagehide: the last chunk leaves in a keepalive request
        user.close()

        stored = _wait_stored(web.url, session_id, shown)
        stack.rx.wait_for(
            lambda r: [s for s in r.spans() if s.name == "POST /api/chat" and s.kind == "SERVER"], timeout=20
        )
        api_status = {
            "no token": _read_session(web.url, session_id, None).status_code,
            "wrong token": _read_session(web.url, session_id, "nope").status_code,
            "direct, token": _read_session(stack.backend.url, session_id, TOKEN).status_code,
        }
        run = ReplayRun(
            web_url=web.url,
            session_id=session_id,
            shown_trace_id=shown,
            spans=[],
            uploads=uploads,
            page_errors=page_errors,
            html_replay_state=replay_state,
            stored=stored,
            api_status=api_status,
        )
        _operator_views(browser, run)
    run.spans = stack.rx.spans()

    # The same database, no REPLAY_VIEWER_TOKEN: no viewer.
    env = clean_env(DATABASE_URL=stack.database_url, OTEL_SDK_DISABLED="true")
    with run_backend(backend_python, project, env, workdir / "backend-off.log") as backend:
        answer = _read_session(backend.url, run.session_id, TOKEN)
        run.api_without_token_config = (answer.status_code, answer.json().get("detail", ""))
        web_env = clean_env(API_BASE_URL=backend.url, OTEL_SDK_DISABLED="true", NEXT_TELEMETRY_DISABLED="1")
        with run_web(app, web_env, workdir / "web-off.log") as web, chromium() as browser:
            page = browser.new_page()
            page.goto(f"{web.url}/replay/{run.session_id}")
            page.wait_for_selector("[data-testid=replay-status][role=alert]", timeout=20_000)
            run.viewer_off = page.text_content("[data-testid=replay-status]") or ""
    return run


def test_the_chat_page_is_recorded(run: ReplayRun) -> None:
    """The recorder started on the chat page and the page saw no error from it."""
    assert run.html_replay_state == "recording"
    assert run.page_errors == []
    assert run.stored["session_id"] == run.session_id
    assert run.stored["chunks"] >= 1 and len(run.stored["events"]) > 10


def test_the_player_rebuilds_the_chat_page_in_its_iframe(run: ReplayRun) -> None:
    """The operator, with the token, sees the chat's input, send button, message and reply replayed."""
    assert run.viewer["token kept"] == TOKEN
    assert run.replay_elements == {"chat-input": 1, "chat-send": 1, "chat-reply": 1}
    assert run.replay_message.strip(), "the message paragraph is in the replay"


def test_the_typed_text_is_masked_in_the_replay_and_in_storage(run: ReplayRun) -> None:
    """Not one word the user typed is in the replayed DOM or in the stored events; stars stand in."""
    assert set(run.replay_message.strip()) <= {"*", " "}
    assert len(run.replay_message.strip()) == len(MESSAGE)
    stored_text = json.dumps(run.stored["events"])
    for word in SECRET_WORDS:
        assert word.lower() not in run.replay_dom.lower(), f"{word!r} is in the replay's DOM"
        assert word.lower() not in stored_text.lower(), f"{word!r} is in the stored events"


def test_the_listed_trace_is_the_backend_span_of_the_click(run: ReplayRun) -> None:
    """The viewer lists the trace of the backend's SERVER span for the send, linked to Grafana's Tempo."""
    backend = run.backend_chat_span()
    assert run.shown_trace_id == backend.trace_id
    assert backend.trace_id in run.stored["trace_ids"]
    links = dict(run.trace_links)
    assert backend.trace_id in links
    href = httpx.URL(links[backend.trace_id])
    assert str(href).startswith(f"{GRAFANA}/explore?")
    (pane,) = json.loads(href.params["panes"]).values()
    assert pane["datasource"] == "tempo" and pane["queries"][0]["query"] == backend.trace_id


def test_the_session_id_is_on_browser_and_backend_spans(run: ReplayRun) -> None:
    """Every browser span carries a session.id; the click's fetch span and backend span carry the replay's."""
    browser = [s for s in run.spans if s.resource.get("telemetry.sdk.language") == "webjs"]
    assert browser and all(s.attributes.get("session.id") for s in browser)
    (fetch,) = {
        s.span_id: s
        for s in browser
        if s.kind == "CLIENT" and s.attributes.get("url.full") == f"{run.web_url}/api/chat"
    }.values()
    assert fetch.attributes["session.id"] == run.session_id
    assert fetch.trace_id == run.backend_chat_span().trace_id
    assert run.backend_chat_span().attributes.get("session.id") == run.session_id


def test_uploads_are_compressed_same_origin_and_untraced(run: ReplayRun) -> None:
    """Chunks go gzip to this origin's /api/replay/<session>, carry no trace headers, make no spans.

    (Reads make none either; the viewer page's document-load span lists its fetches as resources.)"""
    assert run.uploads, "no upload was seen"
    assert {u.url for u in run.uploads} == {f"{run.web_url}/api/replay/{run.session_id}"}
    assert any(u.headers.get("content-encoding") == "gzip" for u in run.uploads)
    assert not [u.url for u in run.uploads if any(h in u.headers for h in TRACE_HEADERS)]
    keys = ("url.full", "url.path", "http.url", "http.target")
    about_replay = [
        (s.resource.get("service.name"), s.name)
        for s in run.spans
        if s.kind in ("SERVER", "CLIENT")
        and ("/api/replay" in s.name or any("/api/replay" in str(s.attributes.get(k, "")) for k in keys))
    ]
    assert about_replay == []
    # Nor database spans of the uploads and reads (start-up's schema and purge statements are their own).
    keys = ("db.query.text", "db.statement")
    statements = [str(s.attributes.get(k, "")) for s in run.spans for k in keys]
    assert [q for q in statements if "replay_chunks" in q and q.startswith(("INSERT", "SELECT"))] == []


def test_reading_needs_the_operator_token(run: ReplayRun) -> None:
    """The read API answers 401 without the token or with a wrong one; the viewer asks, then refuses."""
    assert run.api_status == {"no token": 401, "wrong token": 401, "direct, token": 200}
    assert "operator token" in run.viewer["without token"]
    assert "not accepted" in run.viewer["wrong token"]


def test_without_a_configured_token_there_is_no_viewer(run: ReplayRun) -> None:
    """No REPLAY_VIEWER_TOKEN: the read API answers 404 even with a token, and the viewer says it is off."""
    status, detail = run.api_without_token_config
    assert status == 404 and "REPLAY_VIEWER_TOKEN" in detail
    assert "viewer is off" in run.viewer_off


class _Watched(BaseHTTPRequestHandler):
    """Answers every GET with something loadable, and notes the path: any request is a leak."""

    requested: list[str]

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.requested.append(self.path)
        body = {"/style.css": b"body { color: red }", "/frame.html": b"<p>attacker</p>"}.get(self.path, b"x")
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def attacker_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server standing in for the attacker's: (its origin, the paths it was asked for)."""
    requested: list[str] = []
    handler = type("Handler", (_Watched,), {"requested": requested})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", requested
    finally:
        server.shutdown()
        server.server_close()


def _element(node_id: int, tag: str, attributes: dict, children: list | None = None) -> dict:
    return {"type": 2, "tagName": tag, "attributes": attributes, "childNodes": children or [], "id": node_id}


def _text(node_id: int, text: str, **extra: object) -> dict:
    return {"type": 3, "textContent": text, "id": node_id, **extra}


def hostile_events(attacker: str) -> list[dict]:
    """An rrweb recording (meta + full snapshot) whose page loads everything from `attacker`."""
    pwn = "window.top.__replayed_script_ran = true"
    css = (
        f"body {{ background: url({attacker}/background.png) }}"
        f" @font-face {{ font-family: x; src: url({attacker}/font.woff) }} p {{ font-family: x }}"
    )
    head = _element(4, "head", {}, [
        _element(5, "link", {"rel": "stylesheet", "href": f"{attacker}/style.css"}),
        _element(6, "style", {}, [_text(7, css, isStyle=True)]),
        _element(8, "script", {"src": f"{attacker}/script.js"}),
    ])  # fmt: skip
    body = _element(9, "body", {}, [
        _element(10, "p", {"id": "hostile-text"}, [_text(11, "hostile page")]),
        _element(12, "img", {"src": f"{attacker}/image.png"}),
        _element(13, "iframe", {"src": f"{attacker}/frame.html"}),
        _element(14, "script", {}, [_text(15, f"{pwn}; new Image().src = '{attacker}/beacon'")]),
        _element(16, "img", {"src": "/no-such-image", "onerror": pwn}),
    ])  # fmt: skip
    document = {
        "type": 0,
        "childNodes": [
            {"type": 1, "name": "html", "publicId": "", "systemId": "", "id": 2},
            _element(3, "html", {}, [head, body]),
        ],
        "id": 1,
    }
    now = int(time.time() * 1000)
    return [
        {"type": 4, "timestamp": now, "data": {"href": f"{attacker}/hostile", "width": 1000, "height": 700}},
        {"type": 2, "timestamp": now + 1, "data": {"node": document, "initialOffset": {"left": 0, "top": 0}}},
        {
            "type": 3,
            "timestamp": now + 2000,
            "data": {"source": 1, "positions": [{"x": 1, "y": 1, "id": 10, "timeOffset": 0}]},
        },
    ]


# How Chromium words each refusal (a frame's names only the origin it would have shown).
REFUSALS = ("image.png", "style.css", "font.woff", "background.png", "Framing 'http://127.0.0.1:")


@dataclass
class HostileRun:
    requested: list[str]
    refused: list[str]
    script_ran: dict[str, object]
    replayed_text: str
    csp: str


@pytest.fixture(scope="module")
def hostile(backend_python: Path, tmp_path_factory: pytest.TempPathFactory) -> HostileRun:
    workdir = tmp_path_factory.mktemp("replay-hostile")
    project = render(workdir / "out", session_replay="builtin")
    app = ensure_web_build(project / "web", CACHE_DIR)
    session_id = f"hostile-{secrets.token_hex(8)}"
    with (
        attacker_server() as (attacker, requested),
        web_stack(project, app, backend_python, workdir, backend_env={"REPLAY_VIEWER_TOKEN": TOKEN}) as stack,
        chromium() as browser,
    ):
        chunk = {"seq": 0, "events": hostile_events(attacker), "trace_ids": []}
        stored = httpx.post(
            f"{stack.backend.url}/api/replay/{session_id}",
            json=chunk,
            headers={"x-replay-write-secret": secrets.token_urlsafe(32)},
            timeout=10,
        )
        assert stored.status_code == 201, stored.text
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        context.add_init_script(f"sessionStorage.setItem('replay.viewer.token', {json.dumps(TOKEN)})")
        page = context.new_page()
        refused: list[str] = []
        page.on(
            "console",
            lambda message: (
                refused.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        response = page.goto(f"{stack.web.url}/replay/{session_id}")
        csp = (response.headers.get("content-security-policy") if response else None) or ""
        page.wait_for_selector(
            "[data-testid=replay-player][data-ready=true]", state="attached", timeout=20_000
        )
        frame = page.frame_locator(REPLAY_IFRAME)
        frame.locator("#hostile-text").wait_for(timeout=30_000)
        replayed_text = frame.locator("#hostile-text").text_content() or ""
        # The browser reports each resource it refused; wait for the image, stylesheet, font and frame.
        deadline = time.monotonic() + 20
        wanted = REFUSALS
        while time.monotonic() < deadline and not all(any(w in r for r in refused) for w in wanted):
            page.wait_for_timeout(100)
        script_ran = {
            "top": page.evaluate("() => window.__replayed_script_ran ?? null"),
            "frame": page.locator(REPLAY_IFRAME).evaluate(
                "(f) => f.contentWindow.__replayed_script_ran ?? null"
            ),
        }
        context.close()
    return HostileRun(requested, refused, script_ran, replayed_text, csp)


def test_a_hostile_replay_loads_nothing_from_elsewhere(hostile: HostileRun) -> None:
    """The replayed DOM's image, stylesheet, font, background and nested frame point at another
    origin: the attacker's server gets no request, and the browser reports each refusal."""
    assert hostile.replayed_text == "hostile page", "the hostile page was replayed"
    assert "default-src 'self'" in hostile.csp
    assert hostile.requested == []
    for resource in REFUSALS:
        assert any(resource in line for line in hostile.refused), (
            f"{resource}: no refusal in {hostile.refused}"
        )


def test_a_hostile_replay_runs_no_script(hostile: HostileRun) -> None:
    """Neither the replayed <script> (inline or from the attacker) nor an onerror handler runs."""
    assert hostile.script_ran == {"top": None, "frame": None}
    assert not [path for path in hostile.requested if path in {"/script.js", "/beacon"}]
