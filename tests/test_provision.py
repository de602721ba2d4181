"""A fresh machine: missing system tools are named with their install command, in the first seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]


def run_without_system_tools(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs the template's Python with a PATH that holds nothing (no chromium, go, node, git)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    env = {"PATH": str(empty), "HOME": os.environ.get("HOME", "/tmp"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=TEMPLATE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_check_names_each_missing_tool_with_its_install_command(tmp_path: Path) -> None:
    """It lists chromium, Go, git and Node.js, each with the command that installs it."""
    result = run_without_system_tools(tmp_path, "-m", "tests.support.provision", "--check")

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    for tool, command in [
        ("chromium", "apt-get install chromium"),
        ("go", "go.dev/dl"),
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


def test_stack_bin_without_go_stops_in_seconds_with_one_line(tmp_path: Path) -> None:
    """`make stack-bin` on a machine without Go: one line naming what to install, exit 1, no build."""
    result = run_without_system_tools(tmp_path, "-m", "stack.build")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Go" in result.stderr and "go.dev/dl" in result.stderr


def test_stack_bin_with_an_old_go_names_its_version(tmp_path: Path) -> None:
    """A Go older than 1.26 is refused the same way, naming the version found."""
    fake = tmp_path / "empty-bin" / "go"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho go1.22.2\n")
    fake.chmod(0o755)
    result = run_without_system_tools(tmp_path, "-m", "stack.build")

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "go1.22.2 is too old" in result.stderr, result.stderr
