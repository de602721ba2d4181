"""The post-generation hook drops switched-off parts and fails the render when telemetry is mis-wired;
the project's own wiring check (`make check`) catches each mismatch it claims to catch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.environment import StrictEnvironment
from dotenv import dotenv_values

from hooks import post_gen_project
from hooks.post_gen_project import WIRING_BROKEN, plan_removals
from tests.conftest import TEMPLATE_DIR, render

SCAFFOLD = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
HOOK_PATH = TEMPLATE_DIR / "hooks" / "post_gen_project.py"
# Where the backend keeps its defaults; an edit of a default goes to whichever file holds it.
BACKEND_SETTINGS = [
    f"backend/app/{name}" for name in ("telemetry/config.py", "telemetry/settings.py", "settings.py")
]
SETTINGS = "<backend settings>"
COLLECTOR = "deploy/config/otel-collector-config.yaml"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default render (backend, web, deploy/, compose), made once per module."""
    return render(tmp_path_factory.mktemp("rendered"))


@pytest.fixture
def project(rendered: Path, tmp_path: Path) -> Path:
    """A fresh copy of the default render that a test may break."""
    return Path(shutil.copytree(rendered, tmp_path / rendered.name))


def edit(root: Path, relative: str, old: str, new: str) -> None:
    """Replace the first `old` in a file (which must hold it) with `new`."""
    if relative == SETTINGS:
        holders = [name for name in BACKEND_SETTINGS if (root / name).is_file()]
        relative = next(name for name in holders if old in (root / name).read_text(encoding="utf-8"))
    path = root / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def drop_init_telemetry(root: Path) -> None:
    """The user's classic slip: main.py keeps its app but loses the init_telemetry(...) call."""
    main_py = root / "backend" / "app" / "main.py"
    lines = main_py.read_text(encoding="utf-8").splitlines(keepends=True)
    main_py.write_text("".join(line for line in lines if not line.strip().startswith("init_telemetry(")))


def run_check(project: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(project / "tools" / "check_wiring.py"), *args],
        cwd=kwargs.pop("cwd", project),
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


def problems(completed: subprocess.CompletedProcess) -> list[str]:
    """The problem lines of a failed check, without its closing count line (which is checked here)."""
    assert completed.returncode == 1, completed.stdout + completed.stderr
    *lines, last = completed.stderr.splitlines()
    assert last == f"wiring: {len(lines)} problem(s) found"
    return lines


# ---- the user-facing checks: one mis-wiring each, with every line it must produce -------------

MAIN = "from fastapi import FastAPI\n\nfrom .telemetry import init_telemetry\n\n"
K8S_API = "deploy/k8s/base/api-deployment.yaml"
K8S_WEB = "deploy/k8s/base/web-deployment.yaml"
DATASOURCES = "deploy/config/grafana-datasources.yaml"


def case(case_id: str, edits: list, expected: list[str] | None = None):
    """One mis-wiring (or, without `expected`, one well-wired variant): edits as (file, old, new),
    (file, None, whole new text) or a function of the project root; problem lines by substring."""
    return pytest.param(edits, expected, id=case_id)


MISWIRINGS = [
    # app: every FastAPI app reaches init_telemetry
    case(
        "app-not-passed",
        [drop_init_telemetry],
        [
            "FastAPI app 'app' in create_app() is not passed to init_telemetry "
            "(expected init_telemetry(app, ...) in create_app())",
        ],
    ),
    case(
        "second-app-elsewhere",
        [("backend/app/admin.py", None, "from fastapi import FastAPI\n\nadmin = FastAPI()\n")],
        [
            "backend/app/admin.py:3: FastAPI app 'admin' at module level is not passed to init_telemetry",
            "backend/app/admin.py: init_telemetry is not imported from the telemetry package "
            "(expected from .telemetry import init_telemetry)",
        ],
    ),
    case(
        "init-in-another-scope",
        [
            (
                "backend/app/extra.py",
                None,
                (
                    MAIN
                    + "def build():\n    app = FastAPI()\n    return app\n\n\n"
                    + "app = build()\ninit_telemetry(app)\n"
                ),
            )
        ],
        ["backend/app/extra.py:6: FastAPI app 'app' in build() is not passed"],
    ),
    case(
        "app-not-bound",
        [("backend/app/extra.py", None, MAIN + "def bare():\n    return FastAPI()\n")],
        [
            "backend/app/extra.py:6: FastAPI(...) in bare() is not bound to a name",
        ],
    ),
    case(
        "local-stand-in",
        [
            (
                "backend/app/extra.py",
                None,
                (
                    "from fastapi import FastAPI\n\nfrom .setup import init_telemetry\n\n"
                    "app = FastAPI()\ninit_telemetry(app)\n"
                ),
            )
        ],
        ["backend/app/extra.py: init_telemetry is not imported from the telemetry package"],
    ),
    case(
        "no-app-at-all",
        [("backend/app/main.py", None, "VALUE = 1\n")],
        [
            "backend/app: no FastAPI(...) app found",
        ],
    ),
    case(
        "module-does-not-parse",
        [("backend/app/broken.py", None, "def (:\n")],
        [
            "backend/app/broken.py:1: does not parse as Python",
        ],
    ),
    # backend: its defaults
    case(
        "backend-endpoint-on-grpc-port",
        [(SETTINGS, '"http://localhost:4318"', '"http://localhost:4317"')],
        [
            "OTLP_ENDPOINT='http://localhost:4317' uses port 4317, the OTLP/gRPC port, but the exporter "
            "speaks "
            "OTLP/HTTP (http/protobuf) (expected port 4318)",
            ".env.example: OTEL_EXPORTER_OTLP_ENDPOINT='http://localhost:4318' disagrees with OTLP_ENDPOINT",
        ],
    ),
    case(
        "backend-name-not-a-dns-label",
        [(SETTINGS, '"sage-app-api"', '"Sage_API"')],
        [
            "SERVICE_NAME='Sage_API' is not a DNS-1123 label",
            ".env.example: OTEL_SERVICE_NAME='sage-app-api' disagrees with SERVICE_NAME in backend/app/",
            "docker-compose.yaml: service 'api' (built from backend/) sets OTEL_SERVICE_NAME='sage-app-api' "
            "(expected 'Sage_API', the backend's service.name)",
        ],
    ),
    # env_files: .env.example agrees with the backend; web/ has its own name and reaches the API
    case(
        "env-name-disagrees",
        [(".env.example", "=sage-app-api", "=sage-app")],
        [
            ".env.example: OTEL_SERVICE_NAME='sage-app' disagrees with SERVICE_NAME in backend/app/",
        ],
    ),
    case(
        "env-endpoint-on-grpc-port",
        [(".env.example", "=http://localhost:4318", "=http://localhost:4317")],
        [
            ".env.example: OTEL_EXPORTER_OTLP_ENDPOINT='http://localhost:4317' uses port 4317, the OTLP/gRPC",
            ".env.example: OTEL_EXPORTER_OTLP_ENDPOINT='http://localhost:4317' disagrees with OTLP_ENDPOINT",
        ],
    ),
    case(
        "web-named-like-the-backend",
        [("web/.env.example", "=sage-app-web", "=sage-app-api")],
        [
            "web/.env.example: OTEL_SERVICE_NAME='sage-app-api' is the backend's service.name",
            "docker-compose.yaml: service 'web' (built from web/) sets OTEL_SERVICE_NAME='sage-app-web' "
            "(expected 'sage-app-api', the web's service.name)",
        ],
    ),
    case(
        "web-api-url-off-the-backend-port",
        [("web/.env.example", "localhost:8000", "localhost:3000")],
        [
            "web/.env.example: API_BASE_URL='http://localhost:3000' does not reach the backend's port "
            "(expected port 8000)",
        ],
    ),
    # service_names: compose and k8s agree, one name per app
    case(
        "compose-backend-renamed",
        [("docker-compose.yaml", "NAME: sage-app-api", "NAME: shop")],
        [
            "docker-compose.yaml: service 'api' (built from backend/) sets OTEL_SERVICE_NAME='shop' "
            "(expected 'sage-app-api', the backend's service.name)",
            f"{K8S_API}: Deployment 'api' sets OTEL_SERVICE_NAME='sage-app-api', but compose "
            "service 'api' sets 'shop' (expected the same name in both)",
        ],
    ),
    case(
        "k8s-web-reports-as-the-backend",
        [(K8S_WEB, "value: sage-app-web", "value: sage-app-api")],
        [
            f"{K8S_WEB}: Deployment 'web' sets OTEL_SERVICE_NAME='sage-app-api', but compose "
            "service 'web' sets 'sage-app-web'",
            f"{K8S_WEB}: Deployment 'web' sets OTEL_SERVICE_NAME='sage-app-api', which "
            "Deployment 'api' also sets, so both would report as one service",
        ],
    ),
    # k8s: workload env names a Service and one of its ports
    case(
        "k8s-endpoint-names-no-service",
        [(K8S_API, "//otel-collector:", "//collector:")],
        [
            f"{K8S_API}: Deployment 'api' container 'api': "
            "OTEL_EXPORTER_OTLP_ENDPOINT='http://collector:4318' "
            "names no Service 'collector' in deploy/ (expected one of the Services: ",
        ],
    ),
    case(
        "k8s-endpoint-on-grpc-port",
        [(K8S_API, "otel-collector:4318", "otel-collector:4317")],
        [
            f"{K8S_API}: Deployment 'api' container 'api': "
            "OTEL_EXPORTER_OTLP_ENDPOINT='http://otel-collector:4317' "
            "uses port 4317, the OTLP/gRPC port",
        ],
    ),
    case(
        "k8s-address-on-a-port-not-exposed",
        [(K8S_WEB, "http://api:8000", "http://api:8080")],
        [
            f"{K8S_WEB}: Deployment 'web' container 'web': API_BASE_URL='http://api:8080': "
            "Service 'api' exposes 8000, not 8080",
        ],
    ),
    # collector: the receiver is reachable, on the apps' port
    case(
        "collector-bound-to-localhost",
        [(COLLECTOR, "endpoint: 0.0.0.0:4318", "endpoint: localhost:4318")],
        [
            f"{COLLECTOR}: receiver 'otlp' binds 'localhost:4318', unreachable from other pods",
        ],
    ),
    case(
        "collector-http-without-endpoint",
        [(COLLECTOR, "http:\n        endpoint: 0.0.0.0:4318", "http: {}")],
        [
            f"{COLLECTOR}: receiver 'otlp' has no protocols.http.endpoint, so it binds localhost:4318",
        ],
    ),
    case(
        "collector-on-another-port",
        [(COLLECTOR, "endpoint: 0.0.0.0:4318", "endpoint: 0.0.0.0:4319")],
        [
            f"{COLLECTOR}: receiver 'otlp' listens on port 4319, but the apps send OTLP to port 4318 "
            "(expected the receiver on port 4318)",
        ],
    ),
    # stack: component configs, compose and k3d name the same services and ports
    case(
        "exporter-on-a-port-not-exposed",
        [(COLLECTOR, "endpoint: tempo:4317", "endpoint: tempo:4318")],
        [
            f"{COLLECTOR}: tempo:4318 uses a port Service 'tempo' does not expose (",
        ],
    ),
    case(
        "data-source-names-no-service",
        [(DATASOURCES, "//loki:3100", "//loki-gateway:3100")],
        [
            f"{DATASOURCES}: loki-gateway:3100 names no Service 'loki-gateway' in deploy/",
            f"{DATASOURCES}: loki-gateway:3100 names no service 'loki-gateway' in docker-compose.yaml",
        ],
    ),
    case(
        "compose-address-names-no-service",
        [("docker-compose.yaml", "URL: http://api:", "URL: http://backend:")],
        [
            "docker-compose.yaml: service 'web' API_BASE_URL='http://backend:8000' names no compose service",
        ],
    ),
    case(
        "compose-endpoint-on-grpc-port",
        [("docker-compose.yaml", "otel-collector:4318", "otel-collector:4317")],
        [
            "docker-compose.yaml: service 'api' OTEL_EXPORTER_OTLP_ENDPOINT='http://otel-collector:4317' "
            "uses port 4317",
        ],
    ),
    case(
        "k3d-port-compose-does-not-publish",
        [("docker-compose.yaml", ':3001:3000"', ':3002:3000"')],
        [
            "docker-compose.yaml: service 'grafana' does not publish 3001:3000 "
            "(expected the same localhost port as deploy/k3d/cluster.yaml)",
        ],
    ),
    case(
        "k3d-port-to-an-undeclared-node-port",
        [("deploy/k3d/cluster.yaml", "3001:30301", "3001:30399")],
        [
            "deploy/k3d/cluster.yaml: port 3001:30399 maps to NodePort 30399, which no Service declares",
        ],
    ),
    # reading: a manifest that does not parse is reported, not skipped
    case(
        "manifest-does-not-parse",
        [("deploy/k8s/base/x.yaml", None, "kind: A\n---\nkind: B\n  bad: indent\n")],
        [
            "deploy/k8s/base/x.yaml:4:6: does not parse as YAML: mapping values are not allowed here",
        ],
    ),
]


def apply(root: Path, edits: list) -> None:
    for change in edits:
        if callable(change):
            change(root)
        elif change[1] is None:
            write(root, change[0], change[2])
        else:
            edit(root, *change)


@pytest.mark.parametrize(("edits", "expected"), MISWIRINGS)
def test_each_miswiring_is_reported_with_the_file_and_what_was_expected(project, edits, expected):
    """It exits 1 with exactly the expected problem lines, one line each, for one broken agreement."""
    apply(project, edits)

    found = problems(run_check(project))

    assert len(found) == len(expected), found
    for part in expected:
        assert sum(part in line for line in found) == 1, (part, found)


def drop_web_and_deploy(root: Path) -> None:
    shutil.rmtree(root / "web")
    shutil.rmtree(root / "deploy")
    (root / "docker-compose.yaml").unlink()


WELL_WIRED_VARIANTS = [
    case(
        "init-telemetry-app-keyword",
        [("backend/app/extra.py", None, MAIN + "app = FastAPI()\ninit_telemetry(app=app)\n")],
    ),
    case(
        "attribute-call-and-alias",
        [
            (
                "backend/app/extra.py",
                None,
                (
                    "import fastapi\n\nfrom app.telemetry import init_telemetry as wire\n\n"
                    "app: fastapi.FastAPI = fastapi.FastAPI()\nwire(app)\n"
                ),
            )
        ],
    ),
    case(
        "app-built-inside-the-call",
        [
            (
                "backend/app/extra.py",
                None,
                (
                    "from fastapi import FastAPI\n\nfrom . import telemetry\n\n\ndef build():\n"
                    "    return telemetry.init_telemetry(FastAPI())\n"
                ),
            )
        ],
    ),
    case(
        "bare-apps-in-tests",
        [("backend/app/tests/test_x.py", None, "from fastapi import FastAPI\n\napp = FastAPI()\n")],
    ),
    case(
        "empty-env-values-mean-the-defaults",
        [
            (".env.example", "OTEL_SERVICE_NAME=sage-app-api", "OTEL_SERVICE_NAME="),
            (
                ".env.example",
                "OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318",
                "OTEL_EXPORTER_OTLP_ENDPOINT=",
            ),
        ],
    ),
    case(
        "api-port-moves-the-backend",
        [
            ("web/.env.example", "localhost:8000", "localhost:9000"),
            (".env.example", "LOG_LEVEL=", "API_PORT=9000\nLOG_LEVEL="),
        ],
    ),
    case(
        "broken-files-in-dependency-and-build-dirs",
        [
            (f"{directory}/otel-collector-config.yaml", None, "receivers: [")
            for directory in (
                "web/node_modules/x",
                ".venv",
                "web/.next",
                "dist",
                "build",
                "deploy/node_modules",
            )
        ]
        + [("backend/app/__pycache__/x.py", None, "def (:\n")],
    ),
    case("without-web-and-deploy", [drop_web_and_deploy]),
]


@pytest.mark.parametrize(("edits", "expected"), WELL_WIRED_VARIANTS)
def test_other_well_wired_shapes_pass(project, edits, expected):
    """It accepts other ways of passing the app, default-meaning empty values, and absent parts."""
    apply(project, edits)

    completed = run_check(project)

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "wiring: OK (10 checks)\n"


# ---- the command line -------------------------------------------------------------------------


def blocked(tmp_path: Path, module: str) -> dict[str, str]:
    """An environment in which `import <module>` fails as if it were not installed."""
    shadow = tmp_path / f"without-{module}" / module
    shadow.mkdir(parents=True)
    message = f"No module named {module}"
    (shadow / "__init__.py").write_text(f"raise ModuleNotFoundError({message!r}, name={module!r})\n")
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(shadow.parent)}


def test_without_python_dotenv_it_runs_the_other_checks_and_says_what_it_skipped(project, tmp_path):
    """Where only PyYAML is installed (cookiecutter's and cruft's own dependencies), it still checks
    the app, k8s and compose, and its OK line names the missing package."""
    env = blocked(tmp_path, "dotenv")
    edit(project, ".env.example", "OTEL_SERVICE_NAME=sage-app-api", "OTEL_SERVICE_NAME=sage-app")

    completed = run_check(project, env=env)
    assert completed.stdout == (
        "wiring: OK (8 checks; 2 skipped: python-dotenv is not installed, so the .env files were not read "
        "(make install, then make check))\n"
    )
    drop_init_telemetry(project)
    assert "is not passed to init_telemetry" in problems(run_check(project, env=env))[0]


def test_without_pyyaml_it_says_so_in_one_line_and_exits_2(project, tmp_path):
    """It cannot read manifests without PyYAML: one line naming it, exit status 2."""
    completed = run_check(project, env=blocked(tmp_path, "yaml"))

    assert completed.returncode == 2
    assert completed.stderr == (
        "wiring: cannot run: PyYAML is not installed (pip install pyyaml, or make install)\n"
    )


def test_it_checks_the_project_it_belongs_to_from_any_directory_or_the_one_it_is_given(project, tmp_path):
    """It defaults to its own project, takes another project's path, and exits 2 for a non-directory."""
    assert run_check(project, cwd=tmp_path).stdout == "wiring: OK (10 checks)\n"
    drop_init_telemetry(project)
    other = run_check(project, str(project), cwd=tmp_path)
    assert other.returncode == 1 and other.stderr.startswith("backend/app/main.py:")
    missing = run_check(project, str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "is not a directory" in missing.stderr


# ---- the hook ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("include_web", "include_k8s", "removed"),
    [
        pytest.param(True, True, [], id="web-and-k8s"),
        pytest.param(True, False, ["deploy", "docker-compose.yaml"], id="web-only"),
        pytest.param(False, True, ["web"], id="k8s-only"),
        pytest.param(False, False, ["web", "deploy", "docker-compose.yaml"], id="backend-only"),
    ],
)
def test_plan_removals_drops_each_switched_off_part(include_web, include_k8s, removed):
    """It removes web/ without the web app and deploy/ plus compose without the k8s stack."""
    context = {"include_web": include_web, "include_k8s": include_k8s}

    assert plan_removals(context) == [Path(path) for path in removed]


def test_plan_removals_reads_yes_no_words_and_keeps_everything_when_unsure():
    """It reads 'no' as off, and a missing or unreadable switch as on (nothing is deleted)."""
    assert plan_removals({"include_web": "no", "include_k8s": "yes"}) == [Path("web")]
    assert plan_removals({}) == []
    assert plan_removals({"include_web": None, "include_k8s": "maybe"}) == []


@pytest.mark.parametrize("session_replay", ["builtin", "none", "highlight", "sentry"])
def test_plan_removals_keeps_every_replay_plug_in_whatever_the_default_vendor(session_replay):
    """It removes no vendor's files and not the built-in replay: SESSION_REPLAY can pick any at run time."""
    assert plan_removals({"include_web": True, "include_k8s": True, "session_replay": session_replay}) == []


def test_remove_skips_paths_that_are_not_there(tmp_path):
    """It deletes directories and files that exist and tolerates the others."""
    write(tmp_path, "web/app/page.tsx", "")
    write(tmp_path, "docker-compose.yaml", "")

    post_gen_project.remove(tmp_path, [Path("web"), Path("deploy"), Path("docker-compose.yaml")])

    assert list(tmp_path.iterdir()) == []


def test_the_unrendered_hook_has_an_empty_context():
    """It falls back to {} when imported unrendered, so the tests never delete anything."""
    assert post_gen_project.CONTEXT == {}


def test_the_rendered_hook_reads_booleans_back_as_booleans():
    """It renders to valid Python whose CONTEXT holds real True/False for the include switches."""
    answers = {"project_slug": "shop", "include_web": False, "include_k8s": True, "project_name": "x''' \\ é"}
    rendered = (
        StrictEnvironment().from_string(HOOK_PATH.read_text(encoding="utf-8")).render(cookiecutter=answers)
    )
    namespace: dict = {"__name__": "rendered_hook"}

    exec(compile(rendered, "rendered_hook.py", "exec"), namespace)

    assert namespace["CONTEXT"] == answers
    assert namespace["plan_removals"](namespace["CONTEXT"]) == [Path("web")]


def test_the_hook_is_self_contained_with_jinja_in_one_place():
    """It uses only the stdlib and keeps Jinja in one literal, since cookiecutter runs it alone."""
    source = HOOK_PATH.read_text(encoding="utf-8")

    assert "import hooks" not in source and "from hooks" not in source
    assert source.count("{{") == 1
    assert "{%" not in source
    assert "{#" not in source


def test_hook_main_removes_switched_off_parts_and_prints_ok(project, monkeypatch, capsys):
    """It deletes web/ when include_web is off, then runs the project's check and prints its OK."""
    monkeypatch.setattr(post_gen_project, "CONTEXT", {"include_web": False, "include_k8s": True})
    monkeypatch.chdir(project)

    post_gen_project.main()

    assert not (project / "web").exists()
    assert (project / "deploy").is_dir()
    assert capsys.readouterr().out.startswith("wiring: OK")


def test_hook_main_exits_1_with_the_problems_and_the_template_bug_line(project, monkeypatch, capsys):
    """It prints the check's problems, then one ERROR line, on stderr, and exits 1."""
    drop_init_telemetry(project)
    monkeypatch.setattr(post_gen_project, "CONTEXT", {"include_web": True, "include_k8s": True})
    monkeypatch.chdir(project)

    with pytest.raises(SystemExit) as exit_info:
        post_gen_project.main()

    err = capsys.readouterr().err.splitlines()
    assert exit_info.value.code == 1
    assert err[0].startswith("backend/app/main.py:") and "FastAPI app 'app'" in err[0]
    assert err[-1] == WIRING_BROKEN


# ---- bakes ------------------------------------------------------------------------------------


def test_a_bake_prints_the_wiring_check_ok(cookies, capfd):
    """It renders the default project, and the hook shows the check's OK line with every check run."""
    result = cookies.bake()

    assert result.exit_code == 0, result.exception
    assert "wiring: OK (10 checks)" in capfd.readouterr().out


def test_a_bake_where_only_cookiecutter_is_installed_renders_and_names_what_it_skipped(
    cookies, capfd, monkeypatch, tmp_path
):
    """It renders with cookiecutter's own dependencies (PyYAML, no python-dotenv): the hook's check
    passes on what it can read and its OK line says the .env files were not read, and why."""
    monkeypatch.setenv("PYTHONPATH", blocked(tmp_path, "dotenv")["PYTHONPATH"])

    result = cookies.bake()

    assert result.exit_code == 0, result.exception
    assert "wiring: OK (8 checks; 2 skipped: python-dotenv is not installed" in capfd.readouterr().out


@pytest.mark.parametrize(
    ("relative", "old", "new", "reported"),
    [
        pytest.param(
            "backend/app/main.py", "  init_telemetry(app,", "  print(app,", "backend/app/main.py:", id="app"
        ),
        pytest.param(
            COLLECTOR, "tempo:4317", "tempo:4318", f"{COLLECTOR}: tempo:4318 uses a port", id="stack"
        ),
    ],
)
def test_a_template_with_broken_wiring_fails_the_render_and_leaves_nothing(
    cookies, tmp_path, capfd, relative, old, new, reported
):
    """It fails cookiecutter with the problem and the template-bug line, and leaves no directory."""
    template = tmp_path / "template"
    shutil.copytree(TEMPLATE_DIR / "hooks", template / "hooks")
    shutil.copytree(
        SCAFFOLD,
        template / SCAFFOLD.name,
        ignore=shutil.ignore_patterns(".ruff_cache", "__pycache__", "node_modules"),
    )
    shutil.copy(TEMPLATE_DIR / "cookiecutter.json", template)
    edit(template, f"{SCAFFOLD.name}/{relative}", old, new)

    result = cookies.bake(template=str(template))

    err = capfd.readouterr().err
    assert result.exit_code != 0
    assert reported in err
    assert WIRING_BROKEN in err
    assert [child for out in (tmp_path / "cookies").iterdir() for child in out.iterdir()] == []


@pytest.mark.parametrize(
    ("session_replay", "has_highlight"), [("none", False), ("highlight", True), ("sentry", False)]
)
def test_env_example_documents_the_settings_without_secrets(cookies, session_replay, has_highlight):
    """It lists the dev settings with the answers, an empty API key, and Highlight only when chosen;
    SESSION_REPLAY defaults to the answer and the built-in replay's token is there whatever it is."""
    extra = {"session_replay": session_replay, "highlight_project_id": "ve6y97ge" if has_highlight else ""}
    result = cookies.bake(extra_context=extra)

    values = dotenv_values(result.project_path / ".env.example", interpolate=False)
    assert values["OTEL_SERVICE_NAME"] == "sage-app-api"
    assert values["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4318"
    assert values["CEREBE_API_KEY"] == ""
    assert values["LOKI_URL"] == ""
    assert set(values) >= {"OTEL_TRACES_SAMPLER_ARG", "DEPLOYMENT_ENVIRONMENT", "LOG_LEVEL", "DATABASE_URL"}
    assert ("HIGHLIGHT_PROJECT_ID" in values) is has_highlight
    assert values["SESSION_REPLAY"] == session_replay
    assert values["REPLAY_VIEWER_TOKEN"] == ""
    if has_highlight:
        assert values["HIGHLIGHT_PROJECT_ID"] == "ve6y97ge"
