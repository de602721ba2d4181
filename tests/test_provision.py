"""A fresh machine: missing system tools are named with their install command, in the first seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]


def run_without_system_tools(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs the template's Python with a PATH that holds nothing (no chromium, promtool, node, git)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    env = {"PATH": str(empty), "HOME": os.environ.get("HOME", "/tmp"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=TEMPLATE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_check_names_each_missing_tool_with_its_install_command(tmp_path: Path) -> None:
    """It lists chromium, promtool, git and Node.js, each with the command that installs it."""
    result = run_without_system_tools(tmp_path, "-m", "tests.support.provision", "--check")

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    for tool, command in [
        ("chromium", "apt-get install chromium"),
        ("promtool", "apt-get install --no-install-recommends prometheus"),
        ("git", "apt-get install git"),
        ("node", "nodejs.org"),
    ]:
        assert any(line.split()[:1] == [tool] and command in line for line in lines), result.stderr


def test_the_suite_stops_at_once_when_a_tool_is_missing(tmp_path: Path) -> None:
    """pytest exits before running a single test, with the same message, instead of failing later."""
    result = run_without_system_tools(
        tmp_path, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_provision.py"
    )

    assert result.returncode == 1
    assert "The test suite needs tools that are not installed" in result.stdout + result.stderr
    assert " passed" not in result.stdout


def test_with_everything_installed_the_check_passes() -> None:
    """On this machine (provisioned by `make test`) nothing is missing."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.provision", "--check"],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
