"""What a newcomer meets in the first hour with the rendered project (issue 29): its `make` targets
run as a person runs them, with the cached backend venv (VENV=)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import CACHE_DIR
from tests.support.browser import SKIPPED, _link_tree, _stop_group, ensure_web_build
from tests.support.processes import (
    LOAD_TEST_LIMITS,
    clean_env,
    free_port,
    run_backend,
    run_stub_llm,
    wait_until_serving,
)

pytestmark = pytest.mark.boot

# A bad setting's line comes within the API's import time; a hung `--reload` parent never exits.
STOP_SECONDS = 60


def _make(
    project: Path, target: str, venv: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess:
    """`make <target>` in its own process group; a run past `timeout` is killed (group and all)
    and fails the test."""
    command = [shutil.which("make"), "-C", str(project), target, f"VENV={venv}", f"API_PORT={free_port()}"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"`make {target}` still running after {timeout}s:\n{stderr[-3000:]}")
    finally:
        leftover = _group_alive(process.pid)
        if leftover:
            os.killpg(process.pid, signal.SIGKILL)
    assert not leftover, f"`make {target}` exited but left processes of its group running"
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SESSION_REPLAY", "bogus"),  # the app's settings (settings.py)
        ("LOG_LEVEL", "loud"),  # telemetry's (telemetry/config.py)
        ("REPLAY_VIEWER_TOKEN", "short"),  # the built-in replay's (replay/settings.py)
    ],
)
def test_a_bad_setting_stops_make_run_with_one_line(
    default_project: Path, backend_python: Path, name: str, value: str
) -> None:
    """`make run` (uvicorn --reload) with a bad value: exits non-zero at once, every process of it
    gone, and the API says one line naming the variable and its rule (no traceback). make adds
    its own `make: *** ... Error 1` line, which is not the app's."""
    run = _make(default_project, "run", backend_python.parents[1], clean_env(**{name: value}), STOP_SECONDS)
    assert run.returncode != 0, run.stdout + run.stderr
    said = [line for line in run.stderr.splitlines() if line.strip() and not line.startswith("make")]
    assert len(said) == 1, run.stderr
    assert said[0].startswith(f"error: {name}") and "Traceback" not in run.stderr, said
    assert "Value error" not in said[0], said  # pydantic's label, not the rule


def _listening(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port` (/proc/net/tcp and tcp6, state 0A)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


# 127.0.0.1 as /proc/net/tcp writes it, and ::1 and ::ffff:127.0.0.1 as tcp6 does.
LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}
TELEMETRY_NOTICE = "collects completely anonymous telemetry"


def test_make_web_dev_listens_on_loopback_only_and_sends_no_nextjs_telemetry(
    default_project: Path, tmp_path: Path
) -> None:
    """`make web-dev` serves this machine only, as `make run` does, and a first run of Next.js (a
    fresh HOME: it shows its notice once per user) neither announces nor sends its anonymous
    telemetry. The rendered Makefile, over a copy of the installed web app (node_modules linked)."""
    build = ensure_web_build(default_project / "web", CACHE_DIR)
    project = tmp_path / "project"
    (project / "web").mkdir(parents=True)
    shutil.copy(default_project / "Makefile", project / "Makefile")
    for item in build.iterdir():
        if item.name in SKIPPED or item.name in {".ready", ".lock"}:
            continue
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, project / "web" / item.name)
    _link_tree(build / "node_modules", project / "web" / "node_modules")
    home = tmp_path / "home"
    home.mkdir()
    port, log_path = free_port(), tmp_path / "web-dev.log"
    env = clean_env(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [shutil.which("make"), "-C", str(project), "web-dev", f"WEB_PORT={port}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # Serving, and its first route compiled: start-up, and what Next.js says at start, are done.
        wait_until_serving(
            "make web-dev", process, f"http://127.0.0.1:{port}/otel/config", log_path.read_text, 180
        )
        addresses = _listening(port)
    finally:
        _stop_group(process)
    output = log_path.read_text(errors="replace")
    assert addresses and addresses <= LOOPBACK, (addresses, output[-3000:])
    assert TELEMETRY_NOTICE not in output, output[-3000:]


def test_usage_counts_the_calls_that_failed(
    default_project: Path, backend_python: Path, tmp_path: Path
) -> None:
    """A conversation whose LLM calls all failed (the stub answers 500; plain and streamed) shows
    them in /usage: `calls` 3 of which `failed_calls` 3, not `calls: 0`; one that worked adds to both
    its model's count and the total."""
    with run_stub_llm(backend_python, default_project) as llm:
        environ = clean_env(
            CEREBE_BASE_URL=llm.url, DATABASE_URL=f"sqlite:///{tmp_path / 'usage.db'}", **LOAD_TEST_LIMITS
        )
        with run_backend(backend_python, default_project, environ, tmp_path / "usage.log") as backend:
            chat = {"conversation_id": "failing", "message": "[stub:500] hello"}
            for _ in range(2):
                assert httpx.post(f"{backend.url}/api/chat", json=chat, timeout=30).status_code == 502
            streamed = httpx.post(f"{backend.url}/api/chat/stream", json=chat, timeout=30)
            assert "event: error" in streamed.text, streamed.text
            usage = httpx.get(f"{backend.url}/api/conversations/failing/usage", timeout=10).json()
            assert usage["calls"] == 3 and usage["failed_calls"] == 3, usage
            assert usage["input_tokens"] == 0 and usage["by_model"] == {}, usage

            ok = {"conversation_id": "failing", "message": "hello"}
            assert httpx.post(f"{backend.url}/api/chat", json=ok, timeout=30).status_code == 200
            usage = httpx.get(f"{backend.url}/api/conversations/failing/usage", timeout=10).json()
            assert usage["calls"] == 4 and usage["failed_calls"] == 3, usage
            assert [model["calls"] for model in usage["by_model"].values()] == [1], usage
