"""The post-generation hook drops switched-off parts and fails the render when telemetry is mis-wired."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.environment import StrictEnvironment

from hooks import post_gen_project
from hooks.post_gen_project import WIRING_BROKEN, plan_removals

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
SCAFFOLD = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}"
CHECK_SCRIPT = SCAFFOLD / "tools" / "check_wiring.py"
HOOK_PATH = TEMPLATE_ROOT / "hooks" / "post_gen_project.py"


def _load_check_wiring():
    """Import the scaffold's tools/check_wiring.py, which is plain Python before rendering too."""
    spec = importlib.util.spec_from_file_location("check_wiring", CHECK_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cw = _load_check_wiring()

MAIN_PY = """\
from fastapi import FastAPI

from .telemetry import init_telemetry


def create_app() -> FastAPI:
    app = FastAPI(title="Shop")
    init_telemetry(app, "shop-api")
    return app
"""

API_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    spec:
      containers:
        - name: api
          image: shop-api
          env:
            - name: OTEL_SERVICE_NAME
              value: shop-api
            - name: OTEL_EXPORTER_OTLP_ENDPOINT
              value: http://otel-collector.observability.svc.cluster.local:4318
"""

# The web app reads its OTLP endpoint from a ConfigMap (envFrom), the other common pattern.
WEB_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: shop-web
          envFrom:
            - configMapRef:
                name: web-env
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-env
data:
  OTEL_SERVICE_NAME: shop-web
  OTEL_EXPORTER_OTLP_ENDPOINT: http://otel-collector:4318
"""

COLLECTOR_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: otel-collector
spec:
  ports:
    - {name: otlp-grpc, port: 4317}
    - {name: otlp-http, port: 4318}
"""

COLLECTOR_CONFIG_MAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: otel-collector-config
data:
  config.yaml: |
    receivers:
      otlp:
        protocols:
          grpc:
            endpoint: 0.0.0.0:4317
          http:
            endpoint: 0.0.0.0:4318
    exporters:
      debug: {}
    service:
      pipelines:
        traces:
          receivers: [otlp]
          exporters: [debug]
"""

GOOD_TREE = {
    "backend/app/__init__.py": "",
    "backend/app/main.py": MAIN_PY,
    "backend/app/telemetry/__init__.py": "from .setup import init_telemetry\n",
    "backend/app/telemetry/config.py": 'SERVICE_NAME = "shop-api"\nOTLP_ENDPOINT = "http://localhost:4318"\n',
    "backend/tests/test_app.py": "from fastapi import FastAPI\n\napp = FastAPI()\n",
    ".env.example": (
        "# OpenTelemetry\nOTEL_SERVICE_NAME=shop-api\nOTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318\n"
        "CEREBE_API_KEY=\n"
    ),
    "web/.env.example": (
        "OTEL_SERVICE_NAME=shop-web\nAPI_BASE_URL=http://localhost:8000\n"
        "OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318\n"
    ),
    "web/app/page.tsx": "export default function Page() {\n  return <div style={{a: 1}} />;\n}\n",
    "web/tsconfig.json": '{\n  // Next.js writes comments here\n  "compilerOptions": {"strict": true,},\n}\n',
    "web/package.json": '{"name": "shop-web", "private": true}\n',
    ".github/workflows/ci.yaml": "on: push\njobs:\n  t:\n    steps:\n      - run: echo ${{ secrets.X }}\n",
    "scripts/count.sh": 'items=(a b)\necho "${#items[@]}" "{%s}" \n',
    "deploy/k8s/base/api-deployment.yaml": API_DEPLOYMENT,
    "deploy/k8s/base/web-deployment.yaml": WEB_DEPLOYMENT,
    "deploy/k8s/base/otel-collector-service.yaml": COLLECTOR_SERVICE,
    "deploy/k8s/base/otel-collector-config.yaml": COLLECTOR_CONFIG_MAP,
    "tools/check_wiring.py": CHECK_SCRIPT.read_text(encoding="utf-8"),
}


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small, well-wired project with a backend, a web app, manifests and a collector."""
    root = tmp_path / "shop"
    for relative, text in GOOD_TREE.items():
        write(root, relative, text)
    return root


def only(problems: list[str]) -> str:
    assert len(problems) == 1, problems
    assert "\n" not in problems[0]
    return problems[0]


# ---- the whole check --------------------------------------------------------------------------


def test_a_well_wired_project_passes_every_check(project):
    """It finds nothing wrong with a consistent backend, web app, manifests and collector."""
    assert cw.run_checks(project) == []


def test_main_prints_ok_with_the_number_of_checks(project, capsys):
    """It prints one OK line counting the checks and returns 0."""
    assert cw.main([str(project)]) == 0
    assert capsys.readouterr().out == f"wiring: OK ({len(cw.CHECKS)} checks)\n"


def test_main_prints_each_problem_and_returns_1(project, capsys):
    """It prints every problem on its own line and returns 1."""
    edit(project, "backend/app/telemetry/config.py", ":4318", ":4317")
    edit(project, "web/package.json", "}", "")

    assert cw.main([str(project)]) == 1
    err = capsys.readouterr().err
    assert "backend/app/telemetry/config.py:2: OTLP_ENDPOINT=" in err
    assert "web/package.json:" in err
    assert err.splitlines()[-1].startswith("wiring: ")


def test_main_says_in_one_line_that_pyyaml_is_missing_and_returns_2(project, capsys, monkeypatch):
    """It exits 2 with a single line naming PyYAML when PyYAML cannot be imported."""
    monkeypatch.setattr(cw, "yaml", None)

    assert cw.main([str(project)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "PyYAML" in err


def test_the_script_checks_the_project_it_belongs_to_by_default(project, tmp_path):
    """It checks its own project when run without a path, from any directory."""
    completed = subprocess.run(
        [sys.executable, str(project / "tools" / "check_wiring.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("wiring: OK")


# ---- a. every FastAPI app goes through init_telemetry ------------------------------------------


def test_an_app_not_passed_to_init_telemetry_is_reported_with_file_and_line(project):
    """It names the file, line and app when init_telemetry is never called with it."""
    edit(project, "backend/app/main.py", '    init_telemetry(app, "shop-api")\n', "")

    problem = only(cw.check_apps_instrumented(project))
    assert problem.startswith("backend/app/main.py:7: FastAPI app 'app' in create_app() is not passed")
    assert "(expected init_telemetry(app, ...) in create_app())" in problem


def test_a_second_app_in_another_module_without_init_telemetry_is_reported(project):
    """It checks every module, so an admin app elsewhere without telemetry is caught."""
    write(project, "backend/app/admin.py", "from fastapi import FastAPI\n\nadmin = FastAPI()\n")

    problems = cw.check_apps_instrumented(project)
    assert [problem.split(": ")[0] for problem in problems] == [
        "backend/app/admin.py:3",
        "backend/app/admin.py",
    ]
    assert "FastAPI app 'admin' at module level is not passed to init_telemetry" in problems[0]
    assert "init_telemetry is not imported from the telemetry package" in problems[1]


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            "from fastapi import FastAPI\nfrom .telemetry import init_telemetry\n\n"
            "app = FastAPI()\ninit_telemetry(app=app)\n",
            id="app-keyword",
        ),
        pytest.param(
            "import fastapi\nfrom app.telemetry import init_telemetry as wire\n\n"
            "app: fastapi.FastAPI = fastapi.FastAPI()\nwire(app)\n",
            id="attribute-call-and-alias",
        ),
        pytest.param(
            "from fastapi import FastAPI\nfrom . import telemetry\n\n"
            "def build():\n    return telemetry.init_telemetry(FastAPI())\n",
            id="inline-app",
        ),
    ],
)
def test_other_ways_of_passing_the_app_to_init_telemetry_are_accepted(project, source):
    """It accepts app=, an alias, a module attribute, and an app built inside the call."""
    write(project, "backend/app/main.py", source)

    assert cw.check_apps_instrumented(project) == []


def test_init_telemetry_in_another_scope_does_not_count(project):
    """It requires the call in the scope that built the app, where the name means that app."""
    write(
        project,
        "backend/app/main.py",
        "from fastapi import FastAPI\nfrom .telemetry import init_telemetry\n\n"
        "def create_app():\n    app = FastAPI()\n    return app\n\napp = create_app()\ninit_telemetry(app)\n",
    )

    assert "backend/app/main.py:5: FastAPI app 'app' in create_app()" in only(
        cw.check_apps_instrumented(project)
    )


def test_an_app_not_bound_to_a_name_is_reported(project):
    """It reports `return FastAPI()`, whose telemetry nothing can show."""
    write(project, "backend/app/main.py", MAIN_PY + "\n\ndef bare():\n    return FastAPI()\n")

    assert only(cw.check_apps_instrumented(project)).startswith(
        "backend/app/main.py:13: FastAPI(...) in bare() is not bound to a name"
    )


def test_an_app_whose_module_does_not_import_init_telemetry_from_telemetry_is_reported(project):
    """It rejects a local stand-in named init_telemetry."""
    edit(
        project,
        "backend/app/main.py",
        "from .telemetry import init_telemetry\n",
        "from .setup import init_telemetry\n",
    )

    assert only(cw.check_apps_instrumented(project)) == (
        "backend/app/main.py: init_telemetry is not imported from the telemetry package "
        "(expected from .telemetry import init_telemetry)"
    )


def test_a_backend_without_any_app_is_reported(project):
    """It fails when no FastAPI app is found at all, rather than passing vacuously."""
    write(project, "backend/app/main.py", "VALUE = 1\n")

    assert only(cw.check_apps_instrumented(project)).startswith("backend/app: no FastAPI(...) app found")


def test_apps_built_in_tests_are_not_checked(project):
    """It ignores test modules, which build bare apps on purpose."""
    write(project, "backend/app/tests/test_routes.py", "from fastapi import FastAPI\n\napp = FastAPI()\n")

    assert cw.check_apps_instrumented(project) == []


def test_a_module_that_does_not_parse_is_reported(project):
    """It names a module with a syntax error instead of crashing."""
    write(project, "backend/app/broken.py", "def (:\n")

    assert only(cw.check_apps_instrumented(project)).startswith(
        "backend/app/broken.py:1: does not parse as Python"
    )


# ---- b. the backend's service name and OTLP endpoint ------------------------------------------


def test_missing_backend_constants_are_reported_by_name(project):
    """It names each missing constant and the file it should be in."""
    write(project, "backend/app/telemetry/config.py", 'SERVICE_NAME = f"{1}"\n')

    problems = cw.check_backend_constants(project)
    assert [problem.split(" not found")[0] for problem in problems] == [
        "backend/app/telemetry/config.py: SERVICE_NAME",
        "backend/app/telemetry/config.py: OTLP_ENDPOINT",
    ]


def test_a_grpc_port_endpoint_is_reported_as_the_classic_mistake(project):
    """It explains that 4317 is OTLP/gRPC while the exporter speaks OTLP/HTTP."""
    edit(project, "backend/app/telemetry/config.py", ":4318", ":4317")

    problem = only(cw.check_backend_constants(project))
    assert problem.startswith(
        "backend/app/telemetry/config.py:2: OTLP_ENDPOINT='http://localhost:4317' uses port 4317"
    )
    assert "OTLP/gRPC" in problem
    assert problem.endswith("(expected port 4318)")


@pytest.mark.parametrize(
    ("endpoint", "complaint"),
    [
        ("localhost:4318", "is not an http(s) URL"),
        ("http://collector", "uses port default"),
        ("http://collector:4318/v1/traces", "has a path"),
        ("http://collector:43x8", "is not a URL with a numeric port"),
    ],
)
def test_a_malformed_otlp_endpoint_is_reported(project, endpoint, complaint):
    """It rejects an endpoint without scheme, without port, with a path, or with a bad port."""
    edit(project, "backend/app/telemetry/config.py", "http://localhost:4318", endpoint)

    assert complaint in only(cw.check_backend_constants(project))


def test_a_service_name_that_is_not_a_dns_label_is_reported(project):
    """It rejects a service name Kubernetes would refuse as a label."""
    edit(project, "backend/app/telemetry/config.py", '"shop-api"', '"Shop_API"')

    assert "SERVICE_NAME='Shop_API' is not a DNS-1123 label" in only(cw.check_backend_constants(project))


# ---- c. agreement across files ----------------------------------------------------------------


def test_an_env_example_disagreeing_with_the_backend_is_reported(project):
    """It names the .env.example line and the value the backend constant holds."""
    edit(project, ".env.example", "OTEL_SERVICE_NAME=shop-api", "OTEL_SERVICE_NAME=shop")
    edit(project, ".env.example", "localhost:4318", "collector:4318")

    assert cw.check_env_files(project) == [
        ".env.example:2: OTEL_SERVICE_NAME='shop' disagrees with SERVICE_NAME in "
        "backend/app/telemetry/config.py (expected 'shop-api')",
        ".env.example:3: OTEL_EXPORTER_OTLP_ENDPOINT='http://collector:4318' disagrees with OTLP_ENDPOINT in "
        "backend/app/telemetry/config.py (expected 'http://localhost:4318')",
    ]


def test_a_grpc_port_in_env_example_is_reported(project):
    """It reports a 4317 endpoint in .env.example, not just a disagreement."""
    edit(project, ".env.example", "localhost:4318", "localhost:4317")

    problems = cw.check_env_files(project)
    assert len(problems) == 2
    assert all(problem.startswith(".env.example:3: OTEL_EXPORTER_OTLP_ENDPOINT=") for problem in problems)
    assert "OTLP/gRPC" in problems[0]


def test_empty_env_values_fall_back_to_the_backend_constants(project):
    """It accepts an empty value, which the backend reads as 'use the default'."""
    write(project, ".env.example", "OTEL_SERVICE_NAME=\nOTEL_EXPORTER_OTLP_ENDPOINT=\n")

    assert cw.check_env_files(project) == []


def test_a_web_service_named_like_the_backend_is_reported(project):
    """It rejects a web app reporting under the backend's service.name."""
    edit(project, "web/.env.example", "shop-web", "shop-api")

    assert only(cw.check_web_config(project)).startswith(
        "web/.env.example:1: OTEL_SERVICE_NAME='shop-api' is the backend's service.name"
    )


def test_a_web_api_base_url_off_the_backend_port_is_reported(project):
    """It rejects an API_BASE_URL that does not point at the backend's port."""
    edit(project, "web/.env.example", "localhost:8000", "localhost:3000")

    assert only(cw.check_web_config(project)).endswith(
        "does not reach the backend's port (expected port 8000)"
    )


def test_api_port_in_the_root_env_example_moves_the_backend(project):
    """It compares API_BASE_URL with API_PORT when the root .env.example sets it."""
    edit(project, "web/.env.example", "localhost:8000", "localhost:9000")
    write(project, ".env.example", "API_PORT=9000\n")

    assert cw.check_web_config(project) == []


def test_web_and_k8s_checks_are_skipped_when_those_parts_are_absent(project):
    """It checks only the parts that exist, so a project without web/ and deploy/ passes."""
    shutil.rmtree(project / "web")
    shutil.rmtree(project / "deploy")

    assert cw.run_checks(project) == []


def test_a_k8s_endpoint_naming_a_missing_service_is_reported(project):
    """It names the manifest, the workload and the Services that do exist."""
    edit(
        project,
        "deploy/k8s/base/api-deployment.yaml",
        "otel-collector.observability",
        "collector.observability",
    )

    assert only(cw.check_k8s_manifests(project)) == (
        "deploy/k8s/base/api-deployment.yaml: Deployment 'api' container 'api': "
        "OTEL_EXPORTER_OTLP_ENDPOINT='http://collector.observability.svc.cluster.local:4318' "
        "names no Service 'collector.observability.svc.cluster.local' in deploy/ "
        "(expected one of the Services: otel-collector)"
    )


def test_a_k8s_endpoint_on_a_port_the_service_does_not_expose_is_reported(project):
    """It reports a port the named Service does not expose, and which ports it does."""
    edit(project, "deploy/k8s/base/web-deployment.yaml", "otel-collector:4318", "otel-collector:4319")

    problem = only(cw.check_k8s_manifests(project))
    assert problem.startswith("deploy/k8s/base/web-deployment.yaml: Deployment 'web' container 'web'")
    assert "4319" in problem


def test_a_k8s_endpoint_on_the_grpc_port_is_reported(project):
    """It reports 4317 in a workload's env even though the Service exposes it."""
    edit(project, "deploy/k8s/base/api-deployment.yaml", ":4318", ":4317")

    assert "OTLP/gRPC" in only(cw.check_k8s_manifests(project))


def test_a_workload_other_than_the_backend_using_its_service_name_is_reported(project):
    """It reports a web Deployment reporting as the backend (a copy-paste slip)."""
    edit(
        project,
        "deploy/k8s/base/web-deployment.yaml",
        "OTEL_SERVICE_NAME: shop-web",
        "OTEL_SERVICE_NAME: shop-api",
    )

    assert only(cw.check_k8s_manifests(project)).startswith(
        "deploy/k8s/base/web-deployment.yaml: Deployment 'web' container 'web' "
        "sets OTEL_SERVICE_NAME='shop-api'"
    )


def test_a_collector_bound_to_localhost_is_reported(project):
    """It reports a receiver other pods cannot reach, naming the ConfigMap and key."""
    edit(project, "deploy/k8s/base/otel-collector-config.yaml", "0.0.0.0:4318", "localhost:4318")

    assert only(cw.check_collector_config(project)).startswith(
        "deploy/k8s/base/otel-collector-config.yaml: ConfigMap 'otel-collector-config' key 'config.yaml': "
        "receiver 'otlp' binds 'localhost:4318'"
    )


def test_a_collector_without_an_http_endpoint_is_reported_as_bound_to_localhost(project):
    """It knows the collector binds localhost when protocols.http has no endpoint."""
    edit(project, "deploy/k8s/base/otel-collector-config.yaml", "endpoint: 0.0.0.0:4318", "{}")

    assert "binds localhost:4318" in only(cw.check_collector_config(project))


def test_a_collector_config_file_is_checked_outside_deploy(project):
    """It finds a *collector*config*.yaml file anywhere (docker compose) and checks its port."""
    write(
        project,
        "compose/otel-collector-config.yaml",
        "receivers:\n  otlp_http/apps:\n    protocols:\n      http:\n"
        "        endpoint: ${env:MY_POD_IP}:4319\n",
    )

    assert only(cw.check_collector_config(project)) == (
        "compose/otel-collector-config.yaml: receiver 'otlp_http/apps' listens on port 4319, "
        "but the apps send OTLP to port 4318 (expected the receiver on port 4318)"
    )


# ---- c2. the local stack: collector pipelines, names and ports, Grafana data sources -----------


@pytest.fixture(scope="module")
def rendered_stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default render, with its deploy/ stack and docker-compose.yaml (rendered once per module)."""
    from tests.conftest import render

    return render(tmp_path_factory.mktemp("stack"))


@pytest.fixture
def stack(rendered_stack: Path, tmp_path: Path) -> Path:
    """A fresh copy of the rendered project that a test may break."""
    return Path(shutil.copytree(rendered_stack, tmp_path / rendered_stack.name))


COLLECTOR = "deploy/config/otel-collector-config.yaml"


def test_the_rendered_stack_passes_the_stack_checks(stack):
    """It finds nothing wrong with the rendered collector, manifests, compose file and Grafana files."""
    assert cw.check_collector_pipelines(stack) == []
    assert cw.check_stack_wiring(stack) == []
    assert cw.check_grafana_provisioning(stack) == []


def test_a_pipeline_using_an_undefined_exporter_is_reported(stack):
    """It names the pipeline and the component that is used but not defined."""
    edit(stack, COLLECTOR, "exporters: [otlp_http/prometheus]", "exporters: [otlp_http/mimir]")

    problems = cw.check_collector_pipelines(stack)
    assert any(
        "pipeline 'metrics' uses exporter 'otlp_http/mimir', which is not defined" in p for p in problems
    )
    assert any("exporter 'otlp_http/prometheus' is defined but no pipeline uses it" in p for p in problems)


def test_a_defined_but_unused_processor_is_reported(stack):
    """It reports a processor that no pipeline lists."""
    edit(stack, COLLECTOR, "processors:\n  # First", "processors:\n  attributes/unused: {}\n  # First")

    assert "processor 'attributes/unused' is defined but no pipeline uses it" in only(
        cw.check_collector_pipelines(stack)
    )


def test_a_connector_that_only_exports_is_reported(stack):
    """It requires a connector to be the exporter of one pipeline and the receiver of another."""
    edit(
        stack, COLLECTOR, "receivers: [otlp, span_metrics, service_graph]", "receivers: [otlp, span_metrics]"
    )

    assert "connector 'service_graph' is never used as receiver" in only(cw.check_collector_pipelines(stack))


def test_an_exporter_port_the_service_does_not_expose_is_reported(stack):
    """It checks host:port in component configs against the Services in deploy/."""
    edit(stack, COLLECTOR, "endpoint: tempo:4317", "endpoint: tempo:4318")

    assert "tempo:4318 uses a port Service 'tempo' does not expose (3200, 4317)" in only(
        cw.check_stack_wiring(stack)
    )


def test_a_grafana_data_source_naming_no_service_is_reported(stack):
    """It reports a data source URL whose host is neither a k8s Service nor a compose service."""
    edit(stack, "deploy/config/grafana-datasources.yaml", "http://loki:3100", "http://loki-gateway:3100")

    problems = cw.check_stack_wiring(stack)
    assert any("loki-gateway:3100 names no Service 'loki-gateway' in deploy/" in p for p in problems)
    assert any("names no service 'loki-gateway' in docker-compose.yaml" in p for p in problems)


def test_compose_running_other_flags_than_the_k8s_container_is_reported(stack):
    """It compares each compose command with the args of the k8s container of the same name."""
    edit(stack, "docker-compose.yaml", "      - --web.enable-otlp-receiver\n", "")

    assert "service 'prometheus' runs" in only(cw.check_stack_wiring(stack))


def test_a_config_the_k8s_stack_uses_but_compose_does_not_mount_is_reported(stack):
    """It keeps one source of truth: every configMapGenerator file is mounted by compose too."""
    edit(
        stack,
        "docker-compose.yaml",
        "      - ./deploy/config/tempo-config.yaml:/etc/tempo/tempo-config.yaml:ro\n",
        "      - ./tempo.yaml:/etc/tempo/tempo-config.yaml:ro\n",
    )

    problems = cw.check_stack_wiring(stack)
    assert any("mounts ./tempo.yaml, which does not exist" in p for p in problems)
    assert any(
        "tempo-config.yaml reaches the k8s stack but no docker-compose.yaml service" in p for p in problems
    )


def test_a_k3d_port_compose_does_not_publish_is_reported(stack):
    """It expects compose to publish the localhost ports deploy/k3d/cluster.yaml maps."""
    edit(stack, "docker-compose.yaml", '"3001:3000"', '"3002:3000"')

    assert "service 'grafana' does not publish 3001:3000" in only(cw.check_stack_wiring(stack))


def test_a_dashboard_naming_an_unprovisioned_data_source_is_reported(stack):
    """It reports a panel whose data source uid is not provisioned, with the uids that are."""
    edit(stack, "deploy/config/dashboards/llm.json", '"uid": "loki"', '"uid": "logs"')

    problems = cw.check_grafana_provisioning(stack)
    assert problems and all(
        "refers to data source uid 'logs', which is not provisioned" in p for p in problems
    )
    assert problems[0].startswith("deploy/config/dashboards/llm.json: ")
    assert problems[0].endswith("(expected one of: loki, prometheus, tempo)")


def test_repeated_panel_ids_are_reported(stack):
    """It requires unique panel ids in a dashboard."""
    edit(stack, "deploy/config/dashboards/service-red.json", '"id": 2\n', '"id": 1\n')

    assert "panel ids are missing or repeated [1]" in only(cw.check_grafana_provisioning(stack))


def test_a_template_whose_dashboard_names_a_missing_data_source_fails_the_render(cookies, tmp_path, capfd):
    """It fails cookiecutter with the problem and the template-bug line when a dashboard is broken."""
    template = tmp_path / "template"
    shutil.copytree(TEMPLATE_ROOT / "hooks", template / "hooks")
    shutil.copytree(
        SCAFFOLD,
        template / SCAFFOLD.name,
        ignore=shutil.ignore_patterns(".ruff_cache", "__pycache__", "node_modules"),
    )
    shutil.copy(TEMPLATE_ROOT / "cookiecutter.json", template)
    edit(
        template,
        f"{SCAFFOLD.name}/deploy/config/dashboards/service-red.json",
        '"uid": "tempo"',
        '"uid": "jaeger"',
    )

    result = cookies.bake(template=str(template))

    err = capfd.readouterr().err
    assert result.exit_code != 0
    assert "deploy/config/dashboards/service-red.json: refers to data source uid 'jaeger'" in err
    assert WIRING_BROKEN in err


# ---- d. every YAML and JSON file parses --------------------------------------------------------


def test_a_broken_yaml_document_is_reported_with_its_line(project):
    """It parses every document of a stream and names the file, line and parser complaint."""
    write(project, "deploy/k8s/base/extra.yaml", "kind: A\n---\nkind: B\n  bad: indent\n")

    assert only(cw.check_files_parse(project)) == (
        "deploy/k8s/base/extra.yaml:4:6: does not parse as YAML: mapping values are not allowed here "
        "(expected valid YAML)"
    )


def test_a_broken_json_file_is_reported_with_its_line(project):
    """It names the file, line, column and the JSON parser's message."""
    write(project, "web/package.json", '{\n  "name": "shop-web",\n}\n')

    assert only(cw.check_files_parse(project)) == (
        "web/package.json:3:1: does not parse as JSON: Expecting property name enclosed in double quotes "
        "(expected valid JSON)"
    )


def test_files_in_dependency_and_build_directories_are_not_checked(project):
    """It skips node_modules, .venv, .next, dist and build."""
    for directory in ("web/node_modules/x", ".venv", "web/.next", "dist", "build"):
        write(project, f"{directory}/broken.json", "{")
        write(project, f"{directory}/leftover.txt", "{{ cookiecutter.project_slug }}")

    assert cw.run_checks(project) == []


# ---- e. nothing left unrendered --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("name = '{{ cookiecutter.project_slug }}'", "a cookiecutter variable"),
        ("name = '{{cookiecutter.project_slug}}'", "a cookiecutter variable"),
        ("{% if cookiecutter.include_web %}", "a Jinja statement"),
        ("{%- endif %}", "a Jinja statement"),
        ("{# a template comment #}", "a Jinja comment"),
    ],
)
def test_leftover_template_text_is_reported_with_file_and_line(project, text, kind):
    """It names the file, the line and what kind of template text was left."""
    write(project, "backend/README.md", "# Backend\n\n" + text + "\n")

    problem = only(cw.check_no_unrendered_jinja(project))
    assert problem.startswith(f"backend/README.md:3: unrendered template text, {kind}: ")


@pytest.mark.parametrize(
    "text",
    [
        "run: echo ${{ secrets.X }} ${{ github.sha }}",
        "<div style={{a: 1}} />",
        'echo "${#items[@]}"',
        ".a{width:100%}",
        'label = "{%s}" % name',
    ],
)
def test_github_expressions_jsx_shell_css_and_printf_are_not_template_text(project, text):
    """It leaves alone double braces and percent signs that are not Jinja markers."""
    write(project, "notes.txt", text + "\n")

    assert cw.check_no_unrendered_jinja(project) == []


def test_binary_files_are_not_scanned(project):
    """It skips binary files even if their bytes happen to spell a marker."""
    (project / "logo.png").write_bytes(b"\x89PNG\0\0{{ cookiecutter.x }}")

    assert cw.check_no_unrendered_jinja(project) == []


def test_check_wiring_holds_no_template_marker_so_cookiecutter_renders_it_verbatim():
    """It builds its patterns from pieces, so it needs no raw block and no allow-list."""
    source = CHECK_SCRIPT.read_text(encoding="utf-8")

    assert all(marker not in source for marker in ("{{", "{%", "{#", "%}", "#}"))


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
    edit(project, "backend/app/main.py", '    init_telemetry(app, "shop-api")\n', "")
    monkeypatch.setattr(post_gen_project, "CONTEXT", {"include_web": True, "include_k8s": True})
    monkeypatch.chdir(project)

    with pytest.raises(SystemExit) as exit_info:
        post_gen_project.main()

    err = capsys.readouterr().err.splitlines()
    assert exit_info.value.code == 1
    assert err[0].startswith("backend/app/main.py:7: FastAPI app 'app'")
    assert err[-1] == WIRING_BROKEN


# ---- bakes ------------------------------------------------------------------------------------


def run_check(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "tools/check_wiring.py"], cwd=project, capture_output=True, text=True, check=False
    )


def test_bake_with_default_answers_passes_the_wiring_check(cookies, capfd):
    """It renders the default project, whose hook and own `python tools/check_wiring.py` print OK."""
    result = cookies.bake()

    assert result.exit_code == 0, result.exception
    assert "wiring: OK" in capfd.readouterr().out
    completed = run_check(result.project_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("wiring: OK")


@pytest.mark.parametrize(
    ("include_web", "include_k8s"),
    [
        pytest.param(False, True, id="no-web"),
        pytest.param(True, False, id="no-k8s"),
        pytest.param(False, False, id="neither"),
    ],
)
def test_bake_without_web_or_k8s_leaves_those_parts_out(cookies, include_web, include_k8s):
    """It renders without web/ or deploy/ and docker-compose.yaml when they are switched off."""
    result = cookies.bake(extra_context={"include_web": include_web, "include_k8s": include_k8s})

    assert result.exit_code == 0, result.exception
    if not include_web:
        assert not (result.project_path / "web").exists()
    if not include_k8s:
        assert not (result.project_path / "deploy").exists()
        assert not (result.project_path / "docker-compose.yaml").exists()
    assert run_check(result.project_path).returncode == 0


def test_a_baked_project_whose_app_loses_init_telemetry_fails_the_check(cookies):
    """It exits 1 naming main.py when a user removes the init_telemetry call."""
    result = cookies.bake()
    main_py = result.project_path / "backend" / "app" / "main.py"
    source = main_py.read_text(encoding="utf-8")
    kept = [
        line for line in source.splitlines(keepends=True) if not line.strip().startswith("init_telemetry(")
    ]
    main_py.write_text("".join(kept), encoding="utf-8")

    completed = run_check(result.project_path)

    assert completed.returncode == 1
    assert "backend/app/main.py:" in completed.stderr
    assert "is not passed to init_telemetry" in completed.stderr


def test_a_template_with_broken_wiring_fails_the_render_and_leaves_nothing(cookies, tmp_path, capfd):
    """It fails cookiecutter with the template-bug line when the template itself is mis-wired."""
    template = tmp_path / "template"
    shutil.copytree(TEMPLATE_ROOT / "hooks", template / "hooks")
    shutil.copytree(
        SCAFFOLD, template / SCAFFOLD.name, ignore=shutil.ignore_patterns(".ruff_cache", "__pycache__")
    )
    shutil.copy(TEMPLATE_ROOT / "cookiecutter.json", template)
    edit(template, f"{SCAFFOLD.name}/backend/app/main.py", "    init_telemetry(app,", "    print(app,")

    result = cookies.bake(template=str(template))

    err = capfd.readouterr().err
    assert result.exit_code != 0
    assert "backend/app/main.py:" in err
    assert WIRING_BROKEN in err
    assert [child for out in (tmp_path / "cookies").iterdir() for child in out.iterdir()] == []


@pytest.mark.parametrize(
    ("session_replay", "has_highlight"), [("none", False), ("highlight", True), ("sentry", False)]
)
def test_env_example_documents_the_settings_without_secrets(cookies, session_replay, has_highlight):
    """It lists the dev settings with the answers, an empty API key, and Highlight only when chosen."""
    extra = {"session_replay": session_replay, "highlight_project_id": "ve6y97ge" if has_highlight else ""}
    result = cookies.bake(extra_context=extra)

    entries = cw._read_env_file(result.project_path / ".env.example")
    values = {key: value for key, (_, value) in entries.items()}
    assert values["OTEL_SERVICE_NAME"] == "sage-app-api"
    assert values["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4318"
    assert values["CEREBE_API_KEY"] == ""
    assert values["LOKI_URL"] == ""
    assert set(values) >= {"OTEL_TRACES_SAMPLER_ARG", "DEPLOYMENT_ENVIRONMENT", "LOG_LEVEL", "DATABASE_URL"}
    assert ("HIGHLIGHT_PROJECT_ID" in values) is has_highlight
    if has_highlight:
        assert values["HIGHLIGHT_PROJECT_ID"] == "ve6y97ge"
