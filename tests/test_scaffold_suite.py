"""The rendered scaffold's own checks pass where a user would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import clean_env

pytestmark = pytest.mark.boot


def test_scaffold_test_suite_passes(default_project: Path, backend_python: Path) -> None:
    """`pytest` inside the rendered backend/ passes (it brings its own stub LLM)."""
    result = subprocess.run(
        [str(backend_python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=default_project / "backend",
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary


def test_scaffold_ruff_passes(default_project: Path) -> None:
    """The rendered backend is lint-clean and formatted under its own ruff settings."""
    backend = default_project / "backend"
    for command in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command], cwd=backend, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
