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
        output = result.stdout + result.stderr
        assert "Traceback" not in output and "Exception ignored" not in output, (
            f"make {target}:\n{output[-3000:]}"
        )
    help_text = subprocess.run(["make", "help"], cwd=project, capture_output=True, text=True).stdout
    assert {"install", "run", "dev", "test", "check", "update"} <= {
        line.split()[0] for line in help_text.splitlines()
    }


def test_make_dev_without_containers_says_what_to_install_and_how_to_see_telemetry(
    default_project: Path,
) -> None:
    """With no k3d and no Docker engine, `make dev` fails with one hint: what to install, and the
    container-free way (stub LLM + make run, span tree in the terminal)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "dev", "K3D=/nonexistent/k3d", "DOCKER=/nonexistent/docker"],
        cwd=default_project,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    hint = result.stderr.strip().splitlines()[0]
    for words in ("k3d", "docker compose", "make stub-llm", "make run", "span tree"):
        assert words in hint, result.stderr


def test_make_dev_chooses_k3d_when_it_and_docker_answer(default_project: Path, tmp_path: Path) -> None:
    """With k3d and a Docker engine, `make dev` plans the k3d stack; with only docker compose, compose."""
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("k3d", "docker"):
        (fake / name).write_text("#!/bin/sh\nexit 0\n")
        (fake / name).chmod(0o755)
    k3d = subprocess.run(
        ["make", "--no-print-directory", "-n", "dev", f"K3D={fake / 'k3d'}", f"DOCKER={fake / 'docker'}"],
        cwd=default_project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    compose = subprocess.run(
        ["make", "--no-print-directory", "-n", "dev", "K3D=/nonexistent/k3d", f"DOCKER={fake / 'docker'}"],
        cwd=default_project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert "k3d-dev" in k3d.stdout, k3d.stdout + k3d.stderr
    assert "compose-dev" in compose.stdout, compose.stdout + compose.stderr
