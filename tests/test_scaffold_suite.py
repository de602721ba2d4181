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


def test_readme_flow_make_install_then_make_test(default_project: Path, tmp_path: Path) -> None:
    """As the README says: `make install && make test && make check` in a fresh copy, fresh venv."""
    import shutil

    project = tmp_path / default_project.name
    shutil.copytree(default_project, project, ignore=shutil.ignore_patterns(".venv", "*.db", "__pycache__"))
    env = {**clean_env(), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for target in ("install", "test", "check", "lint"):
        result = subprocess.run(
            ["make", target], cwd=project, env=env, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, f"make {target}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    help_text = subprocess.run(["make", "help"], cwd=project, capture_output=True, text=True).stdout
    assert {"install", "run", "dev", "test", "check", "update"} <= {
        line.split()[0] for line in help_text.splitlines()
    }
