"""SESSION_REPLAY switches the replay vendor at run time: the render-time answer is only its default.

Two real stacks (tests/support/web_stack.py), each on a web app built once (`next build`, cached and
shared with tests/test_replay_e2e.py and tests/test_web_e2e.py), then started with another value:
- the default render (builtin) started with SESSION_REPLAY=none: the browser is told none, records
  nothing and uploads nothing; the backend has no replay routes (404) and stores nothing;
- a session_replay=none render started with SESSION_REPLAY=builtin: a chat in Chromium is recorded,
  stored by the backend and read back by the operator, with the backend span's trace in it.
A value naming no vendor stops each server at start-up with one line naming the valid ones.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import CACHE_DIR, TEMPLATE_DIR, render
from tests.support.browser import chromium, ensure_web_build
from tests.support.processes import clean_env, free_port
from tests.support.web_stack import web_stack
from tests.test_replay_e2e import TOKEN, _read_session, _wait_stored

pytestmark = pytest.mark.boot

VENDORS = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())["session_replay"]
MESSAGE = "Switch the vendor without a rebuild"


@dataclass
class SwitchRun:
    config: dict
    html_replay: str | None
    telemetry_state: str | None
    shown_trace_id: str
    session_id: str
    replay_requests: list[str]
    upload_status: int
    read_status: int
    stored: dict | None
    backend_session_ids: list[str]


def _chat_and_leave(stack, browser, recording: bool) -> tuple[str | None, str | None, str, str, list[str]]:
    """One chat in a fresh tab, then leave (pagehide flushes a recorder's last chunk)."""
    replay_requests: list[str] = []
    context = browser.new_context()
    page = context.new_page()
    page.on("request", lambda r: replay_requests.append(r.url) if "/api/replay/" in r.url else None)
    page.goto(stack.web.url)
    page.wait_for_selector("html[data-telemetry]", timeout=20_000)
    telemetry_state = page.get_attribute("html", "data-telemetry")
    if recording:
        page.wait_for_selector("html[data-replay]", timeout=20_000)
    html_replay = page.get_attribute("html", "data-replay")
    page.fill("[data-testid=chat-input]", MESSAGE)
    page.click("[data-testid=chat-send]")
    page.wait_for_selector("[data-testid=chat-reply]", timeout=20_000)
    shown = (page.text_content("[data-testid=trace-id]") or "").strip()
    session_id = page.evaluate("() => sessionStorage.getItem('otel.session.id')") or ""
    deadline = time.monotonic() + 20
    while recording and not replay_requests and time.monotonic() < deadline:
        page.wait_for_timeout(100)  # a recorder's first chunk leaves a second after it starts
    page.goto("about:blank")
    context.close()
    return telemetry_state, html_replay, shown, session_id, replay_requests


def _boot(project: Path, backend_python: Path, workdir: Path, vendor: str) -> SwitchRun:
    app = ensure_web_build(project / "web", CACHE_DIR)
    env = {"SESSION_REPLAY": vendor}
    with (
        web_stack(
            project,
            app,
            backend_python,
            workdir,
            backend_env={**env, "REPLAY_VIEWER_TOKEN": TOKEN},
            web_env=env,
        ) as stack,
        chromium() as browser,
    ):
        config = httpx.get(f"{stack.web.url}/otel/config", timeout=10).json()
        telemetry_state, html_replay, shown, session_id, replay_requests = _chat_and_leave(
            stack, browser, vendor == "builtin"
        )
        stored = _wait_stored(stack.web.url, session_id, shown) if vendor == "builtin" else None
        probe = f"probe-{secrets.token_hex(8)}"
        upload = httpx.post(
            f"{stack.backend.url}/api/replay/{probe}",
            json={"seq": 0, "events": [{"type": 4, "timestamp": 1, "data": {}}], "trace_ids": []},
            headers={"x-replay-write-secret": secrets.token_urlsafe(32)},
            timeout=10,
        )
        read = _read_session(stack.backend.url, session_id, TOKEN)
        stack.rx.wait_for(
            lambda r: [s for s in r.spans() if s.name == "POST /api/chat" and s.kind == "SERVER"], timeout=20
        )
        backend_session_ids = [
            s.attributes.get("session.id", "")
            for s in stack.rx.spans()
            if s.name == "POST /api/chat" and s.kind == "SERVER"
        ]
    return SwitchRun(
        config=config,
        html_replay=html_replay,
        telemetry_state=telemetry_state,
        shown_trace_id=shown,
        session_id=session_id,
        replay_requests=replay_requests,
        upload_status=upload.status_code,
        read_status=read.status_code,
        stored=stored,
        backend_session_ids=backend_session_ids,
    )


@pytest.fixture(scope="module")
def builtin_started_as_none(
    backend_python: Path, default_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> SwitchRun:
    return _boot(default_project, backend_python, tmp_path_factory.mktemp("switch-to-none"), "none")


@pytest.fixture(scope="module")
def none_started_as_builtin(backend_python: Path, tmp_path_factory: pytest.TempPathFactory) -> SwitchRun:
    workdir = tmp_path_factory.mktemp("switch-to-builtin")
    return _boot(render(workdir / "out", session_replay="none"), backend_python, workdir, "builtin")


def test_a_builtin_render_started_with_none_records_and_mounts_nothing(builtin_started_as_none) -> None:
    """SESSION_REPLAY=none on a builtin render: /otel/config says none, the page records and uploads
    nothing, the backend's replay routes answer 404; the tab's session id still reaches the backend."""
    run = builtin_started_as_none
    assert run.config["replayVendor"] == "none"
    assert run.telemetry_state == "ready"
    assert run.html_replay is None, "the built-in recorder did not start"
    assert run.replay_requests == []
    assert (run.upload_status, run.read_status) == (404, 404)
    assert run.backend_session_ids == [run.session_id]


def test_a_none_render_started_with_builtin_stores_the_replay_end_to_end(none_started_as_builtin) -> None:
    """SESSION_REPLAY=builtin on a none render, same build: the chat is recorded, uploaded through the
    web app, stored by the backend and read back by the operator, naming the backend span's trace."""
    run = none_started_as_builtin
    assert run.config["replayVendor"] == "builtin"
    assert run.html_replay == "recording"
    assert run.replay_requests and all(f"/api/replay/{run.session_id}" in url for url in run.replay_requests)
    assert run.stored is not None and run.stored["session_id"] == run.session_id
    assert run.shown_trace_id in run.stored["trace_ids"] and len(run.stored["events"]) > 10
    assert (run.upload_status, run.read_status) == (201, 200)
    assert run.backend_session_ids == [run.session_id]


def _one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if "SESSION_REPLAY=" in line]
    assert lines, output[-3000:]
    return lines[-1]


def test_a_backend_started_with_an_unknown_vendor_stops_naming_the_valid_ones(
    backend_python: Path, default_project: Path
) -> None:
    """SESSION_REPLAY=fullstory: uvicorn exits non-zero, its error line names every vendor."""
    env = clean_env(SESSION_REPLAY="fullstory", OTEL_SDK_DISABLED="true")
    command = [str(backend_python), "-m", "uvicorn", "app.main:app", "--port", str(free_port())]
    result = subprocess.run(
        command, cwd=default_project / "backend", env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    line = _one_line_error(result.stdout + result.stderr)
    assert "SESSION_REPLAY='fullstory'" in line
    assert all(f"'{name}'" in line for name in VENDORS), line


def test_a_web_app_started_with_an_unknown_vendor_stops_naming_the_valid_ones(default_project: Path) -> None:
    """SESSION_REPLAY=fullstory: `next start` exits non-zero, its error line names every vendor."""
    app = ensure_web_build(default_project / "web", CACHE_DIR)
    env = clean_env(SESSION_REPLAY="fullstory", NEXT_TELEMETRY_DISABLED="1", OTEL_SDK_DISABLED="true")
    command = ["npm", "start", "--", "-p", str(free_port()), "-H", "127.0.0.1"]
    result = subprocess.run(command, cwd=app, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    line = _one_line_error(result.stdout + result.stderr)
    assert 'SESSION_REPLAY="fullstory": must be one of ' in line
    assert all(name in line.split("must be one of ", 1)[1] for name in VENDORS), line
