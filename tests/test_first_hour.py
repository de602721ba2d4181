"""What a newcomer meets in the first hour with the rendered project (issue 29): its `make` targets
run as a person runs them, with the cached backend venv (VENV=)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import clean_env, free_port

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
