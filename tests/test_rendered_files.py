"""Template-maintainer checks of the rendered files that the project's own wiring check leaves out:
collector pipelines, data source uids, compose and k8s running the same images, files compose reads,
and tools/ copied verbatim. (No Jinja left and every YAML/JSON file parses: test_render.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import TEMPLATE_DIR, render

SCAFFOLD = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
COMBINATIONS = {
    "defaults": {},
    "all-on-highlight": {"session_replay": "highlight", "highlight_project_id": "ve6y97ge"},
}


@pytest.fixture(scope="module", params=list(COMBINATIONS), ids=list(COMBINATIONS))
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp(request.param), **COMBINATIONS[request.param])


def load(path: Path) -> object:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def collector_configs(project: Path) -> dict[str, dict]:
    """Every collector config the stack can run: the local one and the production variants."""
    paths = sorted((project / "deploy").rglob("otel-collector-config*.yaml"))
    assert paths
    return {path.relative_to(project).as_posix(): load(path) for path in paths}


def test_every_collector_pipeline_has_a_receiver_and_an_exporter(project):
    """It gives each pipeline at least one receiver and one exporter (the collector refuses to start)."""
    for label, config in collector_configs(project).items():
        for name, pipeline in config["service"]["pipelines"].items():
            assert pipeline.get("receivers") and pipeline.get("exporters"), (label, name)


def test_every_connector_leaves_one_pipeline_and_enters_another(project):
    """It uses each connector as the exporter of a pipeline and the receiver of another."""
    for label, config in collector_configs(project).items():
        pipelines = config["service"]["pipelines"].values()
        for connector in config.get("connectors") or {}:
            assert any(connector in pipeline.get("exporters", []) for pipeline in pipelines), (
                label,
                connector,
            )
            assert any(connector in pipeline.get("receivers", []) for pipeline in pipelines), (
                label,
                connector,
            )


def test_each_grafana_data_source_uid_is_provisioned_once(project):
    """It provisions every data source under a fixed uid of its own, so links by uid are unambiguous."""
    uids = [
        source.get("uid")
        for source in load(project / "deploy/config/grafana-datasources.yaml")["datasources"]
    ]
    assert None not in uids
    assert len(uids) == len(set(uids))


def compose_services(project: Path) -> dict[str, dict]:
    return load(project / "docker-compose.yaml")["services"]


def k8s_containers(project: Path) -> dict[str, dict]:
    """The container named like its Deployment, for every Deployment in deploy/k8s/base."""
    found = {}
    for path in sorted((project / "deploy/k8s/base").glob("*-deployment.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc.get("kind") == "Deployment":
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    if container["name"] == doc["metadata"]["name"]:
                        found[container["name"]] = container
    return found


COLLECTOR_OVERLAY = "COLLECTOR_OVERLAY:-otel-collector-config.yaml"


def test_compose_runs_each_stack_service_with_the_image_and_flags_of_its_k8s_container(project):
    """It runs the same image and command line in compose as in k8s, for every service both run."""
    containers = k8s_containers(project)
    shared = {name: service for name, service in compose_services(project).items() if name in containers}
    assert {"otel-collector", "tempo", "loki", "prometheus", "grafana"} <= set(shared)
    for name, service in shared.items():
        container = containers[name]
        if "build" not in service:  # the apps: compose builds them, k8s imports the built image
            assert service["image"] == container["image"], name
        if "command" in service:
            command = list(service["command"])
            if name == "otel-collector":  # the optional local tail-sampling overlay (README, "Production")
                assert command[-1] == f"--config=/etc/otelcol-contrib/${{{COLLECTOR_OVERLAY}}}", command
                command = command[:-1]
            assert command == container.get("args"), name


def test_every_file_compose_mounts_or_reads_exists(project):
    """It mounts and reads only files the render wrote (deploy/.secrets/ is made by make grafana-secret)."""
    for name, service in compose_services(project).items():
        sources = [
            volume.split(":")[0] for volume in service.get("volumes", []) if volume.startswith((".", "/"))
        ]
        sources += service.get("env_file", [])
        for source in sources:
            if ".secrets" not in Path(source).parts:
                assert (project / source).exists(), (name, source)


def test_tools_are_rendered_verbatim(project):
    """It renders tools/ byte for byte: the wiring check holds no Jinja markers that would be rewritten."""
    template_files = sorted(
        path.relative_to(SCAFFOLD)
        for path in (SCAFFOLD / "tools").rglob("*.py")
        if "__pycache__" not in path.parts
    )
    assert template_files
    for relative in template_files:
        assert (project / relative).read_bytes() == (SCAFFOLD / relative).read_bytes(), relative
