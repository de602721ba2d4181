# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The wiring check: does the project's telemetry still hold together after your edits?

One module per concern; each check takes a `Project` and returns one line per problem,
`path: what is wrong (what was expected)`. `tools/check_wiring.py` is the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .app import check_apps_instrumented
from .backend import check_backend_defaults
from .collector import check_collector_receivers
from .env_files import check_backend_env_files, check_web_env_files
from .k8s import check_k8s_addresses
from .project import Project, dotenv_values
from .service_names import check_service_names
from .stack import check_component_addresses, check_compose_addresses, check_published_ports

Check = Callable[[Project], list[str]]

CHECKS: tuple[Check, ...] = (
    check_apps_instrumented,
    check_backend_defaults,
    check_backend_env_files,
    check_web_env_files,
    check_service_names,
    check_k8s_addresses,
    check_compose_addresses,
    check_collector_receivers,
    check_component_addresses,
    check_published_ports,
)
# Checks that only read .env files: without python-dotenv they are skipped, and the CLI says so.
NEED_DOTENV = frozenset({check_backend_env_files, check_web_env_files})
DOTENV_MISSING = "python-dotenv is not installed, so the .env files were not read"


def runnable_checks() -> tuple[Check, ...]:
    return tuple(check for check in CHECKS if dotenv_values is not None or check not in NEED_DOTENV)


def run_checks(root: Path) -> list[str]:
    """Every problem the runnable checks find in the project at `root`, files that did not parse first."""
    project = Project(root)
    problems = [problem for check in runnable_checks() for problem in check(project)]
    return project.unreadable + problems
