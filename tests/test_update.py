"""Regenerate without losing work: `cruft update` brings template changes into an edited project.

One run (module fixture) against a throwaway git copy of this template's working tree. Commit A;
from it, one project made with `cruft create` and one with `cookiecutter` + `cruft link`; the
user's edits, committed; commit B changes the template; the first project runs `make update`,
the second `cruft update`. Both kinds of conflict cruft produces are exercised: `<<<<<<<` markers
when the project's history holds the file as rendered, a `.rej` file when it does not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import TEMPLATE_DIR, render
from tests.support.processes import clean_env

SCAFFOLD = "{{cookiecutter.project_slug}}"
ANSWERS = {"project_name": "Ledger Lens"}
SLUG = "ledger-lens"
NEW_DEFAULT_DESCRIPTION = "A new default, for projects rendered from now on only."
# Never part of the template: dependencies and build output a developer may have in the tree.
SKIPPED_PARTS = {".git", ".venv", "node_modules", ".next", "__pycache__", ".cache", ".pytest_cache"}
UPDATE_SECONDS_LIMIT = 30

USER_README_TITLE = "# Ledger Lens: the books, explained"
TEMPLATE_README_TITLE = "# {{ cookiecutter.project_name }}, observable from its first commit"
USER_COMMENT = "# Ledger Lens: probes and scrapes stay out of traces and the duration metric."
USER_DEPENDENCY = '    "tenacity>=9,<10",'
TEMPLATE_CONSTANT = 'TEMPLATE_UPDATE = "B"'
NOTES_ROUTE = '''"""Notes: a route the Ledger Lens team added after rendering."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/notes", tags=["notes"])


@router.get("")
async def list_notes() -> list[str]:
    return ["regenerated without losing work"]
'''
NOTES_TEST = """from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.notes import router


def test_notes_route_survives_template_updates() -> None:
    app = FastAPI()
    app.include_router(router)
    assert TestClient(app).get("/api/notes").json() == ["regenerated without losing work"]
"""


@dataclass
class UpdateRun:
    created: Path  # `cruft create`, committed, edited, then `make update`
    linked: Path  # `cookiecutter`, edited before the first commit, `cruft link`, then `cruft update`
    commit_a: str
    commit_b: str
    old_description: str
    make_update: subprocess.CompletedProcess
    cruft_update: subprocess.CompletedProcess
    check_before: subprocess.CompletedProcess
    check_after: subprocess.CompletedProcess
    status_after: str  # `git status --porcelain` of the created project right after the update
    conflicted_readme: str  # its README.md before the conflict was resolved
    seconds: dict[str, float] = field(default_factory=dict)


def git_env(home: Path) -> dict[str, str]:
    """Only this test's identity and config: cruft commits nothing, but the test's git calls do."""
    return clean_env(
        HOME=str(home),
        GIT_AUTHOR_NAME="Sage Test",
        GIT_AUTHOR_EMAIL="sage-test@example.invalid",
        GIT_COMMITTER_NAME="Sage Test",
        GIT_COMMITTER_EMAIL="sage-test@example.invalid",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )


def run(args: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    """Runs without a terminal or stdin, so a prompt fails instead of waiting."""
    result = subprocess.run(
        args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def commit_all(repo: Path, env: dict[str, str], message: str) -> str:
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-q", "-m", message], repo, env)
    return run(["git", "rev-parse", "HEAD"], repo, env).stdout.strip()


def copy_working_tree(destination: Path) -> None:
    """The template as it is on disk: tracked files plus untracked ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = TEMPLATE_DIR / relative
        if SKIPPED_PARTS & set(Path(relative).parts) or not source.is_file():
            continue
        (destination / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination / relative)


def replace_line(path: Path, index: int, line: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[index] = line + "\n"
    path.write_text("".join(lines))


def first_comment_index(path: Path) -> int:
    """The first `# ` line, far enough from the end that an append does not touch its context."""
    lines = path.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("# "))
    assert index < len(lines) - 10, f"{path}: no comment line well before the end"
    return index


def keep_ours(text: str) -> str:
    """Resolves conflict markers the way a user keeping their own lines would."""
    kept, section = [], "outside"
    for line in text.splitlines(keepends=True):
        if line.startswith("<<<<<<< "):
            section = "ours"
        elif section != "outside" and line.startswith(("|||||||", "=======")):
            section = "theirs"
        elif section != "outside" and line.startswith(">>>>>>> "):
            section = "outside"
        elif section in {"outside", "ours"}:
            kept.append(line)
    return "".join(kept)


def edit_as_user(project: Path) -> None:
    """A new route with its test, a changed comment in a template-owned file, a deleted file,
    an added dependency, and the README's title (which the template changes too)."""
    (project / "backend" / "app" / "api" / "notes.py").write_text(NOTES_ROUTE)
    (project / "backend" / "tests" / "test_notes.py").write_text(NOTES_TEST)
    config = project / "backend" / "app" / "telemetry" / "config.py"
    replace_line(config, first_comment_index(config), USER_COMMENT)
    (project / ".env.example").unlink()
    pyproject = project / "backend" / "pyproject.toml"
    text = pyproject.read_text()
    assert "dependencies = [\n" in text, f"{pyproject}: no dependencies list to add to"
    pyproject.write_text(text.replace("dependencies = [\n", f"dependencies = [\n{USER_DEPENDENCY}\n", 1))
    replace_line(project / "README.md", 0, USER_README_TITLE)


def change_template(template: Path) -> None:
    """Commit B: a telemetry constant, a new file, a removed file, an edit to the file the user
    deleted, the README title the user changed too, and a new default for `description`."""
    scaffold = template / SCAFFOLD
    with (scaffold / "backend" / "app" / "telemetry" / "config.py").open("a") as config:
        config.write(f"\n\n# Added by the template after the project was rendered.\n{TEMPLATE_CONSTANT}\n")
    (scaffold / "docs" / "updating.md").write_text(
        "# Updating {{ cookiecutter.project_name }}\n\n{{ cookiecutter.description }}\n"
    )
    (scaffold / "docs" / "old-setup.md").unlink()
    with (scaffold / ".env.example").open("a") as env_example:
        env_example.write("\nOTEL_METRIC_EXPORT_INTERVAL=60000\n")
    replace_line(scaffold / "README.md", 0, TEMPLATE_README_TITLE)
    questions = json.loads((template / "cookiecutter.json").read_text())
    questions["description"] = NEW_DEFAULT_DESCRIPTION
    (template / "cookiecutter.json").write_text(json.dumps(questions, indent=2, ensure_ascii=False) + "\n")


@pytest.fixture(scope="module")
def update_run(tmp_path_factory: pytest.TempPathFactory) -> UpdateRun:
    root = tmp_path_factory.mktemp("update")
    env = git_env(root / "home")
    (root / "home").mkdir()
    cruft = [sys.executable, "-m", "cruft"]

    template = root / "template"
    copy_working_tree(template)
    # A file of the older template, so that commit B has one to remove.
    (template / SCAFFOLD / "docs").mkdir(exist_ok=True)
    (template / SCAFFOLD / "docs" / "old-setup.md").write_text(
        "# Setting up {{ cookiecutter.project_name }}\n"
    )
    run(["git", "init", "-q", "-b", "main"], template, env)
    commit_a = commit_all(template, env, "A")
    old_description = json.loads((template / "cookiecutter.json").read_text())["description"]

    create = ["create", str(template), "--no-input", "--output-dir", str(root / "created")]
    run([*cruft, *create, "--extra-context", json.dumps(ANSWERS)], root, env)
    created = root / "created" / SLUG
    assert (created / "README.md").read_text().splitlines()[0] == "# Ledger Lens"
    run(["git", "init", "-q", "-b", "main"], created, env)
    commit_all(created, env, "Rendered from sage-obs")
    edit_as_user(created)
    commit_all(created, env, "Our own work")

    answers = [f"{key}={value}" for key, value in ANSWERS.items()]
    run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            str(template),
            "--no-input",
            "-o",
            str(root / "linked"),
            *answers,
        ],
        root,
        env,
    )
    linked = root / "linked" / SLUG
    replace_line(linked / "README.md", 0, USER_README_TITLE)  # before the first commit: no rendered blob
    run(["git", "init", "-q", "-b", "main"], linked, env)
    commit_all(linked, env, "Initial commit")
    replay = (linked / ".cookiecutter.json").read_text()
    run(
        [*cruft, "link", "--no-input", "--checkout", commit_a, "--extra-context", replay, str(template)],
        linked,
        env,
    )
    commit_all(linked, env, "Link to the template")

    change_template(template)
    commit_b = commit_all(template, env, "B")

    seconds = {}
    check_before = run([*cruft, "check"], created, env, check=False)
    started = time.monotonic()
    make = ["make", "--no-print-directory", "update", f"PY={sys.executable}", "CRUFT_ARGS=--skip-apply-ask"]
    make_update = run(make, created, env, check=False)
    seconds["make update"] = time.monotonic() - started
    check_after = run([*cruft, "check"], created, env, check=False)
    status_after = run(["git", "status", "--porcelain"], created, env).stdout
    conflicted_readme = (created / "README.md").read_text()
    (created / "README.md").write_text(keep_ours(conflicted_readme))
    run(["git", "add", "README.md"], created, env)

    started = time.monotonic()
    cruft_update = run(
        [*cruft, "update", "--skip-apply-ask", "--allow-untracked-files"], linked, env, check=False
    )
    seconds["cruft update"] = time.monotonic() - started

    return UpdateRun(
        created=created,
        linked=linked,
        commit_a=commit_a,
        commit_b=commit_b,
        old_description=old_description,
        make_update=make_update,
        cruft_update=cruft_update,
        check_before=check_before,
        check_after=check_after,
        status_after=status_after,
        conflicted_readme=conflicted_readme,
        seconds=seconds,
    )


def cruft_state(project: Path) -> dict:
    return json.loads((project / ".cruft.json").read_text())


def test_replay_file_holds_the_answers_and_no_output_paths(tmp_path: Path) -> None:
    """.cookiecutter.json is valid JSON: every answer and `_template`, none of the other private keys."""
    project = render(tmp_path, project_name="Ledger Lens", author_name="Zoë", include_k8s=False)
    replay = json.loads((project / ".cookiecutter.json").read_text())
    questions = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    assert set(replay) == {key for key in questions if not key.startswith("_")} | {"_template"}
    assert replay["project_slug"] == SLUG and replay["author_name"] == "Zoë"
    assert replay["include_k8s"] is False and replay["session_replay"] == "builtin"
    assert str(tmp_path) not in (project / ".cookiecutter.json").read_text()


@pytest.mark.boot
def test_update_is_quick(update_run: UpdateRun) -> None:
    """Each update (two renders, a diff, git apply) takes seconds."""
    print(", ".join(f"{name}: {seconds:.1f}s" for name, seconds in update_run.seconds.items()))
    assert max(update_run.seconds.values()) < UPDATE_SECONDS_LIMIT, update_run.seconds


@pytest.mark.boot
def test_the_user_edits_survive(update_run: UpdateRun) -> None:
    """The new route and its test, the edited comment, the deletion and the dependency are all kept."""
    project = update_run.created
    assert (project / "backend" / "app" / "api" / "notes.py").read_text() == NOTES_ROUTE
    assert (project / "backend" / "tests" / "test_notes.py").read_text() == NOTES_TEST
    assert USER_COMMENT in (project / "backend" / "app" / "telemetry" / "config.py").read_text().splitlines()
    assert not (project / ".env.example").exists(), "a file the user deleted came back"
    assert USER_DEPENDENCY in (project / "backend" / "pyproject.toml").read_text().splitlines()


@pytest.mark.boot
@pytest.mark.parametrize("kind", ["created", "linked"])
def test_the_template_changes_arrive(update_run: UpdateRun, kind: str) -> None:
    """The new constant, the new file and the removal reach the project; .cruft.json records commit B."""
    project = getattr(update_run, kind)
    config = (project / "backend" / "app" / "telemetry" / "config.py").read_text()
    assert config.rstrip().endswith(TEMPLATE_CONSTANT)
    assert (project / "docs" / "updating.md").is_file()
    assert not (project / "docs" / "old-setup.md").exists()
    assert cruft_state(project)["commit"] == update_run.commit_b


@pytest.mark.boot
@pytest.mark.parametrize("kind", ["created", "linked"])
def test_the_recorded_answers_are_kept(update_run: UpdateRun, kind: str) -> None:
    """No prompt (stdin is closed), the same slug, and the template's new default does not replace
    the recorded description."""
    project = getattr(update_run, kind)
    answers = cruft_state(project)["context"]["cookiecutter"]
    assert answers["project_name"] == "Ledger Lens" and answers["project_slug"] == SLUG
    assert answers["description"] == update_run.old_description != NEW_DEFAULT_DESCRIPTION
    assert (
        project / "docs" / "updating.md"
    ).read_text() == f"# Updating Ledger Lens\n\n{update_run.old_description}\n"
    assert (
        json.loads((project / ".cookiecutter.json").read_text())["description"] == update_run.old_description
    )


@pytest.mark.boot
def test_a_line_both_changed_is_left_as_conflict_markers(update_run: UpdateRun) -> None:
    """When git has the file as rendered, cruft's 3-way apply leaves markers with both titles, git
    reports the path unmerged, and `make update` fails naming it (cruft itself exits 0)."""
    rendered_title = TEMPLATE_README_TITLE.replace("{{ cookiecutter.project_name }}", "Ledger Lens")
    readme = update_run.conflicted_readme.splitlines()
    assert readme[0].startswith("<<<<<<< ") and USER_README_TITLE in readme and rendered_title in readme
    assert "UU README.md" in update_run.status_after.splitlines()
    assert "Good work!" in update_run.make_update.stdout + update_run.make_update.stderr
    assert update_run.make_update.returncode != 0
    assert "conflicts to resolve" in update_run.make_update.stderr
    assert "README.md" in update_run.make_update.stderr.splitlines()


@pytest.mark.boot
def test_a_line_both_changed_is_left_in_a_rej_file_when_git_lacks_the_render(update_run: UpdateRun) -> None:
    """The linked project never committed the rendered README: the template's hunk goes to
    README.md.rej, the user's title stays, and every other change is applied."""
    assert update_run.cruft_update.returncode == 0, update_run.cruft_update.stderr
    rejected = (update_run.linked / "README.md.rej").read_text()
    rendered_title = TEMPLATE_README_TITLE.replace("{{ cookiecutter.project_name }}", "Ledger Lens")
    assert f"+{rendered_title}" in rejected.splitlines()
    assert (update_run.linked / "README.md").read_text().splitlines()[0] == USER_README_TITLE


@pytest.mark.boot
def test_cruft_check_sees_the_update(update_run: UpdateRun) -> None:
    """`cruft check` fails while the template is ahead and passes after the update."""
    assert update_run.check_before.returncode != 0, update_run.check_before.stdout
    assert update_run.check_after.returncode == 0, update_run.check_after.stdout


@pytest.mark.boot
def test_the_updated_project_passes_its_wiring_check_and_suite(
    update_run: UpdateRun, backend_python: Path
) -> None:
    """`tools/check_wiring.py` and the backend's own tests, the user's new one included, pass."""
    project = update_run.created
    wiring = subprocess.run(
        [str(backend_python), "tools/check_wiring.py"],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert wiring.returncode == 0, wiring.stdout + wiring.stderr
    suite = subprocess.run(
        [str(backend_python), "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"],
        cwd=project / "backend",
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert suite.returncode == 0, suite.stdout[-4000:] + suite.stderr[-2000:]
    assert "PASSED tests/test_notes.py::test_notes_route_survives_template_updates" in suite.stdout
