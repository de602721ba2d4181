"""The collector and Prometheus the suite builds are the ones the scaffold deploys, with its components."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from stack.build import PROMETHEUS_VERSION, collector_version
from tests.conftest import render
from tests.support.stack import binary
from tests.test_deploy_collector import COMBINATIONS, collector_configs

COLLECTOR_IMAGE = f"otel/opentelemetry-collector-contrib:{collector_version()}"
PROMETHEUS_IMAGE = f"prom/prometheus:v{PROMETHEUS_VERSION}"
SECTIONS = ("receivers", "processors", "exporters", "connectors", "extensions")


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return [render(tmp_path_factory.mktemp(name), **answers) for name, answers in COMBINATIONS.items()]


def images(project: Path) -> set[str]:
    texts = [path.read_text(encoding="utf-8") for path in (project / "deploy").rglob("*.yaml")]
    texts.append((project / "docker-compose.yaml").read_text(encoding="utf-8"))
    return {image for text in texts for image in re.findall(r"\b(?:otel|prom)/[\w.-]+:v?\d[\w.-]*", text)}


def test_compose_and_k8s_deploy_the_versions_the_suite_built(projects):
    """Every collector and Prometheus image tag in compose and the manifests is the built version."""
    for project in projects:
        assert images(project) == {COLLECTOR_IMAGE, PROMETHEUS_IMAGE}, project.name


def test_the_built_binaries_report_those_versions():
    """`make stack-bin` built the manifest's collector release and Prometheus PROMETHEUS_VERSION."""
    collector = subprocess.run([binary("otelcol"), "--version"], capture_output=True, text=True, check=True)
    assert collector.stdout.split() == ["otelcol", "version", collector_version()]
    for tool in ("prometheus", "promtool"):
        out = subprocess.run([binary(tool), "--version"], capture_output=True, text=True, check=True).stdout
        assert out.startswith(f"{tool}, version {PROMETHEUS_VERSION} "), out


def built_components() -> dict[str, set[str]]:
    """What `otelcol components` says the build holds, by section."""
    listing = subprocess.run([binary("otelcol"), "components"], capture_output=True, text=True, check=True)
    found = yaml.safe_load(listing.stdout)
    return {section: {c["name"] for c in found.get(section) or []} for section in SECTIONS}


def test_the_build_holds_exactly_the_components_the_rendered_configs_use(projects):
    """Across the render matrix, every component type a config uses is built, and nothing else is."""
    used: dict[str, set[str]] = {section: set() for section in SECTIONS}
    for project in projects:
        for config in collector_configs(project).values():
            for section in SECTIONS:
                used[section] |= {name.split("/", 1)[0] for name in config.get(section) or {}}
    assert built_components() == used


def test_the_manifest_pins_one_collector_release():
    """Core and contrib components at the manifest's release, core's stable providers at one v1."""
    manifest = yaml.safe_load((binary("otelcol").parents[2] / "stack" / "otelcol-builder.yaml").read_text())
    modules = [entry["gomod"].split() for section in SECTIONS for entry in manifest.get(section, [])]
    assert modules and {version for _, version in modules} == {f"v{collector_version()}"}
    providers = {entry["gomod"].split()[1] for entry in manifest["providers"]}
    assert len(providers) == 1 and providers.pop().startswith("v1.")
