"""The web app renders as shipped: JSX/TS copied byte for byte, answers only where they belong."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from pathlib import Path

import pytest

from tests.conftest import TEMPLATE_DIR, render

SCAFFOLD = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
TEMPLATE_WEB = SCAFFOLD / "web"
COOKIECUTTER = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
COPY_WITHOUT_RENDER = COOKIECUTTER["_copy_without_render"]
REPLAY_CHOICES = COOKIECUTTER["session_replay"]
# The only web files Jinja renders: each holds answers and nothing Jinja could misread.
RENDERED = {".env.example", "lib/config.ts"}
# Web files other parts of the template own (the container build).
NOT_OURS = {"Dockerfile", ".dockerignore"}
ANSWERS = {
    "project_name": "Acme Chat",
    "session_replay": "highlight",
    "highlight_project_id": "ve6y97ge",
    "deployment_environment": "staging",
    "trace_sample_ratio": "0.25",
}
PLACEHOLDER = re.compile(r"\{\{ cookiecutter\.(\w+) \}\}")


def web_files(web: Path) -> list[str]:
    return sorted(p.relative_to(web).as_posix() for p in web.rglob("*") if p.is_file())


def copied_verbatim(relative: str) -> bool:
    """Cookiecutter copies a file without rendering when it, or a directory above it, matches."""
    path = Path("web", relative)
    return any(
        fnmatch.fnmatch(candidate.as_posix(), pattern)
        for candidate in (path, *path.parents[:-1])
        for pattern in COPY_WITHOUT_RENDER
    )


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("acme"), **ANSWERS)


def test_no_web_app_when_switched_off(tmp_path: Path) -> None:
    """include_web=False: the post-gen hook removes web/ entirely."""
    project = render(tmp_path, include_web=False)
    assert not (project / "web").exists()
    assert (project / "backend").is_dir()


def test_every_web_file_is_either_copied_or_deliberately_rendered() -> None:
    """A new .ts/.tsx file cannot slip through Jinja: it must match _copy_without_render."""
    unlisted = [f for f in web_files(TEMPLATE_WEB) if not copied_verbatim(f) and f not in RENDERED | NOT_OURS]
    assert unlisted == []
    assert not [f for f in RENDERED if copied_verbatim(f)]


def test_copied_files_are_byte_identical(acme: Path) -> None:
    """JSX/TS, package.json and the lockfile arrive exactly as in the template."""
    copied = [f for f in web_files(TEMPLATE_WEB) if copied_verbatim(f)]
    assert "package-lock.json" in copied and "lib/otel-web.ts" in copied
    different = [f for f in copied if (acme / "web" / f).read_bytes() != (TEMPLATE_WEB / f).read_bytes()]
    assert different == []


def test_rendered_files_differ_only_by_the_answers(acme: Path) -> None:
    """Each rendered file is its template with every placeholder replaced by its answer."""
    context = json.loads((acme / ".cookiecutter.json").read_text())
    for relative in sorted(RENDERED):
        template = (TEMPLATE_WEB / relative).read_text()
        assert PLACEHOLDER.search(template), f"{relative} has no placeholder: copy it instead"
        expected = PLACEHOLDER.sub(lambda m: str(context[m.group(1)]), template)
        assert (acme / "web" / relative).read_text() == expected, relative


def web_vendors() -> list[str]:
    """The keys of REPLAY_VENDORS, the web app's vendor registry (lib/observability.ts)."""
    source = (TEMPLATE_WEB / "lib" / "observability.ts").read_text()
    registry = re.search(r"^export const REPLAY_VENDORS = \{\n(.*?)^\}", source, re.M | re.S)
    assert registry, "lib/observability.ts has no REPLAY_VENDORS"
    return re.findall(r"^  (\w+): ", registry.group(1), re.M)


def backend_vendors() -> list[str]:
    """The keys of VENDORS, the backend's vendor registry (app/telemetry/replay.py)."""
    tree = ast.parse((SCAFFOLD / "backend" / "app" / "telemetry" / "replay.py").read_text())
    (registry,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "VENDORS"
    ]
    return [key.value for key in registry.keys]


def test_the_vendor_list_is_the_same_in_cookiecutter_json_web_and_backend() -> None:
    """cookiecutter.json's session_replay choices are the web registry's keys and the backend's, and
    each web vendor has its plug-in file (the one place each side lists vendors)."""
    assert sorted(REPLAY_CHOICES) == sorted(web_vendors()) == sorted(backend_vendors())
    assert [
        name for name in web_vendors() if not (TEMPLATE_WEB / "lib" / "replay" / f"{name}.ts").is_file()
    ] == []


@pytest.mark.parametrize("vendor", REPLAY_CHOICES)
def test_the_replay_answer_is_only_the_default_and_every_plug_in_ships(vendor: str, tmp_path: Path) -> None:
    """session_replay becomes SESSION_REPLAY's default on both sides; every vendor's plug-in, and the
    built-in replay's backend package, are rendered whatever the answer, for the run-time switch."""
    project = render(tmp_path, session_replay=vendor)
    config = (project / "web" / "lib" / "config.ts").read_text()
    replay = (project / "backend" / "app" / "telemetry" / "replay.py").read_text()
    assert f'export const SESSION_REPLAY = "{vendor}";' in config
    assert f'DEFAULT_VENDOR = "{vendor}"' in replay
    assert (project / "web" / "lib" / "observability.ts").read_bytes() == (
        TEMPLATE_WEB / "lib" / "observability.ts"
    ).read_bytes()
    shipped = [
        name for name in REPLAY_CHOICES if (project / "web" / "lib" / "replay" / f"{name}.ts").is_file()
    ]
    assert shipped == REPLAY_CHOICES
    assert (project / "backend" / "app" / "replay" / "routes.py").is_file()
    assert (project / "backend" / "tests" / "test_replay.py").is_file()
    assert (project / "web" / "app" / "replay").is_dir()


def test_answers_reach_the_web_config(acme: Path) -> None:
    """Service name, namespace, environment, ratio and Highlight project become the web's defaults."""
    config = (acme / "web" / "lib" / "config.ts").read_text()
    assert 'SERVICE_NAME = "acme-chat-web"' in config
    assert 'SERVICE_NAMESPACE = "acme-chat"' in config
    assert 'DEPLOYMENT_ENVIRONMENT = "staging"' in config
    assert 'TRACE_SAMPLE_RATIO = "0.25"' in config
    assert 'HIGHLIGHT_PROJECT_ID = "ve6y97ge"' in config
    env = (acme / "web" / ".env.example").read_text()
    assert "OTEL_SERVICE_NAME=acme-chat-web\n" in env


def test_every_server_setting_is_documented_in_env_example() -> None:
    """Each variable lib/server/env.ts reads has a line in web/.env.example."""
    source = (TEMPLATE_WEB / "lib" / "server" / "env.ts").read_text()
    read = set(re.findall(r'setting\(env, "([A-Z_]+)"\)', source)) | set(
        re.findall(r"env\.([A-Z_]+)", source)
    )
    documented = set(re.findall(r"^([A-Z_]+)=", (TEMPLATE_WEB / ".env.example").read_text(), re.M))
    undocumented = (
        read - documented - {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"}
    )
    assert undocumented == set()


def test_package_json_pins_one_consistent_set_and_the_lockfile_matches() -> None:
    """Exact versions, no "type" (it breaks next build), and one copy of each OpenTelemetry package."""
    package = json.loads((TEMPLATE_WEB / "package.json").read_text())
    assert "type" not in package
    assert set(package["scripts"]) >= {"build", "start", "test"}
    pinned = {**package["dependencies"], **package["devDependencies"]}
    assert [name for name, version in pinned.items() if not re.fullmatch(r"\d+\.\d+\.\d+", version)] == []
    lock = json.loads((TEMPLATE_WEB / "package-lock.json").read_text())
    assert lock["packages"][""]["dependencies"] == package["dependencies"]
    assert lock["packages"][""]["devDependencies"] == package["devDependencies"]
    otel = [path for path in lock["packages"] if "@opentelemetry/" in path]
    names = [path.rsplit("node_modules/", 1)[1] for path in otel]
    assert len(names) == len(set(names)), "an OpenTelemetry package is installed twice"
    assert [p for p in otel if p.count("node_modules/") > 1] == []
    versions = {lock["packages"][p]["version"] for p in otel}
    # The SDK's stable packages share one 2.x version and its experimental ones one 0.2xx version.
    assert len({v for v in versions if v.startswith("2.")}) == 1, versions
    assert len({v for v in versions if v.startswith("0.2")}) == 1, versions
