"""Shared fixtures: render the template, and a cached venv with the rendered backend's deps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests.support import provision
from tests.support.processes import backend_requirements, ensure_venv

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
CACHE_DIR = TEMPLATE_DIR / ".cache"


def pytest_sessionstart(session: pytest.Session) -> None:
    """A missing tool (Chromium, Go, Node.js, kubectl, git) stops the run at once, naming
    each one and its install command, rather than failing its tests one by one minutes later.
    PROVISION_CHECK=0 runs anyway (for a subset that needs none of them)."""
    if os.environ.get("PROVISION_CHECK", "1") != "0" and (left := provision.missing()):
        pytest.exit(provision.message(left), returncode=1)


def render(output_dir: Path, **extra_context: object) -> Path:
    """Renders the template without prompts; returns the project directory."""
    return Path(
        cookiecutter(
            str(TEMPLATE_DIR), no_input=True, output_dir=str(output_dir), extra_context=extra_context
        )
    )


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="session")
def backend_python(default_project: Path) -> Path:
    """Python of a venv holding the rendered backend's dependencies (installed once, then cached)."""
    return ensure_venv(CACHE_DIR, backend_requirements(default_project / "backend" / "pyproject.toml"))
