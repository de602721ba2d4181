"""CI workflows: the scaffold's renders to the expected text for each option set and keeps its
GitHub Actions expressions; the template's own runs what .ci/run runs."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import TEMPLATE_DIR, render

EXPECTED_DIR = Path(__file__).parent / "expected"
WORKFLOW = Path(".github", "workflows", "ci.yml")
BACKEND_COMMANDS = ["make install", "make lint", "make check", "make test"]

CASES = [
    pytest.param(({}, "scaffold-ci.defaults.yml", {"backend", "web", "manifests"}), id="defaults"),
    pytest.param(
        ({"include_web": False, "include_k8s": False}, "scaffold-ci.web-and-k8s-off.yml", {"backend"}),
        id="web-and-k8s-off",
    ),
]


def load_workflow(text: str) -> dict:
    """The workflow as a dict. PyYAML follows YAML 1.1, where the key `on` is the boolean True."""
    workflow = yaml.safe_load(text)
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def run_commands(job: dict) -> list[str]:
    return [
        line.strip() for step in job["steps"] for line in step.get("run", "").splitlines() if line.strip()
    ]


@pytest.fixture(scope="module", params=CASES)
def rendered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str, set]:
    context, expected_name, jobs = request.param
    return render(tmp_path_factory.mktemp("ci"), **context), expected_name, jobs


def test_scaffold_workflow_is_rendered_byte_for_byte(rendered: tuple[Path, str, set]) -> None:
    """The rendered workflow equals tests/expected/<case> exactly (whitespace left by Jinja included)."""
    project, expected_name, _ = rendered
    actual = (project / WORKFLOW).read_bytes()
    expected = (EXPECTED_DIR / expected_name).read_bytes()
    diff = difflib.unified_diff(
        expected.decode().splitlines(keepends=True),
        actual.decode().splitlines(keepends=True),
        fromfile=f"tests/expected/{expected_name}",
        tofile="rendered",
    )
    assert actual == expected, "".join(diff)


def test_scaffold_workflow_runs_the_projects_own_commands(rendered: tuple[Path, str, set]) -> None:
    """It parses; the jobs match the options; the backend job runs Makefile targets that exist."""
    project, _, jobs = rendered
    workflow = load_workflow((project / WORKFLOW).read_text())
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert set(workflow["jobs"]) == jobs
    assert run_commands(workflow["jobs"]["backend"]) == BACKEND_COMMANDS
    targets = set(re.findall(r"^([a-z-]+):", (project / "Makefile").read_text(), re.MULTILINE))
    assert {command.split()[1] for command in BACKEND_COMMANDS} <= targets
    if "web" in jobs:
        assert workflow["jobs"]["web"]["defaults"]["run"]["working-directory"] == "web"
        assert run_commands(workflow["jobs"]["web"]) == ["npm ci", "npm run build", "npm test"]
    if "manifests" in jobs:
        commands = run_commands(workflow["jobs"]["manifests"])
        assert any(c.startswith("kubectl kustomize deploy/k8s/overlays/local ") for c in commands), commands
        assert any(c.startswith("kubernetes-validate --strict ") for c in commands), commands


def test_github_expressions_survive_rendering(rendered: tuple[Path, str, set]) -> None:
    """`${{ github.ref }}` and `${{ matrix.python-version }}` reach GitHub untouched, the raw tags do not."""
    project, _, _ = rendered
    text = (project / WORKFLOW).read_text()
    workflow = load_workflow(text)
    assert workflow["concurrency"]["group"] == "ci-${{ github.ref }}"
    backend = workflow["jobs"]["backend"]
    assert backend["name"] == "backend (Python ${{ matrix.python-version }})"
    assert backend["strategy"]["matrix"]["python-version"] == ["3.11", "3.12"]
    setup = next(step for step in backend["steps"] if step.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["python-version"] == "${{ matrix.python-version }}"
    assert "raw %}" not in text and "endraw" not in text


def test_template_workflow_runs_ci_run() -> None:
    """The template repository's workflow parses and runs `bash .ci/run` on Python 3.11."""
    workflow = load_workflow((TEMPLATE_DIR / WORKFLOW).read_text())
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert workflow["concurrency"]["group"] == "ci-${{ github.ref }}"
    (job,) = workflow["jobs"].values()
    assert run_commands(job) == ["bash .ci/run"]
    setup = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["python-version"] == "3.11"
    assert (TEMPLATE_DIR / ".ci" / "run").is_file()
