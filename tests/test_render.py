"""Render every option combination: clean output that parses, compiles, lints and wires up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SKIP_DIRS = {".git", "node_modules", ".venv", ".next", "__pycache__"}
JINJA_LEFTOVERS = ("{{ cookiecutter", "{{cookiecutter", "{%", "%}", "{#", "#}")

COMBINATIONS = [
    pytest.param({}, id="defaults"),
    pytest.param({"include_web": False, "include_k8s": False, "session_replay": "none"}, id="all-off"),
    pytest.param(
        {
            "include_web": True,
            "include_k8s": True,
            "session_replay": "highlight",
            "highlight_project_id": "ve6y97ge",
        },
        id="all-on-highlight",
    ),
    pytest.param({"session_replay": "sentry"}, id="sentry"),
    pytest.param({"include_web": False}, id="no-web"),
    pytest.param({"include_k8s": False}, id="no-k8s"),
    pytest.param(
        {
            "project_name": "Acme Knowledge Assistant Platform",
            "trace_sample_ratio": "0.25",
            "deployment_environment": "staging",
            "cerebe_model": "gpt-4.1-mini",
            "description": "A longer description, with punctuation: commas; colons - and dashes.",
            "author_name": "Zoë O'Brien",
        },
        id="long-names-unicode-ratio",
    ),
]


def project_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not SKIP_DIRS & set(p.relative_to(root).parts)]


@pytest.fixture(params=COMBINATIONS)
def baked(request: pytest.FixtureRequest, cookies) -> tuple[dict, Path]:
    result = cookies.bake(extra_context=request.param)
    assert result.exit_code == 0, result.exception
    assert result.exception is None
    return request.param, Path(result.project_path)


def test_no_jinja_is_left_behind(baked: tuple[dict, Path]) -> None:
    """No file keeps a cookiecutter placeholder or a Jinja statement."""
    _, project = baked
    leftovers = [
        f"{path.relative_to(project)}: {marker}"
        for path in project_files(project)
        for text in [path.read_text(errors="ignore")]
        for marker in JINJA_LEFTOVERS
        if marker in text
    ]
    assert leftovers == []


def test_python_compiles_and_data_files_parse(baked: tuple[dict, Path]) -> None:
    """Every .py compiles; every YAML and JSON file parses."""
    _, project = baked
    for path in project_files(project):
        text = path.read_text(errors="strict") if path.suffix in {".py", ".json", ".yaml", ".yml"} else None
        if path.suffix == ".py":
            compile(text, str(path), "exec")
        elif path.suffix == ".json":
            json.loads(text)
        elif path.suffix in {".yaml", ".yml"}:
            list(yaml.safe_load_all(text))


def test_rendered_backend_passes_ruff(baked: tuple[dict, Path]) -> None:
    """The rendered backend is lint-clean and formatted, whatever names were chosen."""
    _, project = baked
    for command in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command], cwd=project / "backend", capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_switched_off_parts_are_absent(baked: tuple[dict, Path]) -> None:
    """include_web / include_k8s off: their trees are gone (the k8s stack takes compose with it)."""
    context, project = baked
    assert (project / "web").exists() is (context.get("include_web") is not False)
    assert (project / "deploy").exists() is (context.get("include_k8s") is not False)
    assert (project / "docker-compose.yaml").exists() is (context.get("include_k8s") is not False)


def test_answers_reach_the_telemetry_config(baked: tuple[dict, Path]) -> None:
    """Service name, sample ratio and environment land in the one config module."""
    context, project = baked
    config = (project / "backend" / "app" / "telemetry" / "config.py").read_text()
    slug = project.name
    assert f'SERVICE_NAME = "{slug}-api"' in config
    assert f'TRACE_SAMPLE_RATIO = float("{context.get("trace_sample_ratio", "1.0")}")' in config
    assert f'DEPLOYMENT_ENVIRONMENT = "{context.get("deployment_environment", "local")}"' in config
    replay = (project / "backend" / "app" / "telemetry" / "replay.py").read_text()
    assert f'DEFAULT_VENDOR = "{context.get("session_replay", "builtin")}"' in replay


def test_wiring_check_passes_in_the_rendered_project(baked: tuple[dict, Path]) -> None:
    """The post-gen check ships with the project and passes there, every check run (none skipped)."""
    _, project = baked
    result = subprocess.run(
        [sys.executable, "tools/check_wiring.py"], cwd=project, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "wiring: OK (10 checks)\n"


def test_no_secrets_are_rendered(cookies) -> None:
    """Keys come from the environment: a rendered project holds no key values, even a Highlight id's."""
    result = cookies.bake(extra_context={"session_replay": "highlight", "highlight_project_id": "abc123xyz"})
    project = Path(result.project_path)
    secret_keys = ("CEREBE_API_KEY", "LOKI_PASSWORD", "REPLAY_VIEWER_TOKEN")
    for path in project_files(project):
        text = path.read_text(errors="ignore")
        for line in text.splitlines():
            for key in secret_keys:
                if f"{key}=" in line:
                    value = line.split(f"{key}=", 1)[1].strip().strip("\"'")
                    # Empty, or read from the environment ($VAR, ${VAR:-}, make's $$VAR): never a value.
                    assert value == "" or value.startswith("$"), f"{path}: {line}"
