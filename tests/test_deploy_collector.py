"""The collector configs: pinned contrib image, current component names, complete pipelines, Loki via OTLP."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import render

# The collector image every manifest and compose file runs, and the component types this template
# uses, checked against that release: core otlp receiver, memory_limiter and batch processors,
# otlp_grpc / otlp_http exporters (renamed from otlp / otlphttp in core v0.144.0); contrib
# health_check extension, span_metrics (renamed from spanmetrics) and service_graph (renamed from
# servicegraph, contrib PR 47971, 2026-04) connectors. Add a type here only after checking that
# release's metadata.yaml of the component.
CONTRIB_VERSION = "0.165.0"
COLLECTOR_IMAGE = f"otel/opentelemetry-collector-contrib:{CONTRIB_VERSION}"
KNOWN_COMPONENTS = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch"},
    "exporters": {"otlp_grpc", "otlp_http", "debug"},
    "connectors": {"span_metrics", "service_graph"},
    "extensions": {"health_check"},
}
# Deprecated aliases that still load in CONTRIB_VERSION but log a warning at every start.
DEPRECATED_NAMES = {"otlp": "otlp_grpc", "otlphttp": "otlp_http", "spanmetrics": "span_metrics"}
DEPRECATED_NAMES |= {"servicegraph": "service_graph", "healthcheck": "health_check"}
COMBINATIONS = {
    "defaults": {},
    "all-on-highlight": {"session_replay": "highlight", "highlight_project_id": "ve6y97ge"},
}


@pytest.fixture(scope="module", params=list(COMBINATIONS), ids=list(COMBINATIONS))
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp(request.param), **COMBINATIONS[request.param])


def collector_configs(project: Path) -> dict[str, dict]:
    paths = [project / "deploy" / "config" / "otel-collector-config.yaml"]
    paths += sorted((project / "deploy" / "k8s" / "overlays" / "prod").glob("otel-collector-config*.yaml"))
    return {
        path.relative_to(project).as_posix(): yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in paths
    }


def local_config(project: Path) -> dict:
    return collector_configs(project)["deploy/config/otel-collector-config.yaml"]


def component_type(name: str) -> str:
    return name.split("/", 1)[0]


def test_every_component_type_is_a_current_name_of_the_pinned_contrib_release(project):
    """It uses only component types on the checked list for contrib 0.165.0, none of the old aliases."""
    for label, config in collector_configs(project).items():
        for section, known in KNOWN_COMPONENTS.items():
            for name in config.get(section) or {}:
                kind = component_type(name)
                if section == "receivers" and kind == "otlp":
                    continue  # the receiver kept its name; only the exporter became otlp_grpc
                assert kind not in DEPRECATED_NAMES, (
                    f"{label}: {section} {name}: use {DEPRECATED_NAMES.get(kind)}"
                )
                assert kind in known, (
                    f"{label}: {section} {name} is not on the checked list for {CONTRIB_VERSION}"
                )


def test_every_manifest_and_compose_runs_the_pinned_collector_image(project):
    """It runs the collector image whose component names were checked, in k8s and in compose."""
    texts = [path.read_text(encoding="utf-8") for path in (project / "deploy").rglob("*.yaml")]
    texts.append((project / "docker-compose.yaml").read_text(encoding="utf-8"))
    used = {
        image for text in texts for image in re.findall(r"otel/opentelemetry-collector-contrib:\S+", text)
    }
    assert used == {COLLECTOR_IMAGE}


def test_every_pipeline_component_is_defined_and_every_defined_one_is_used(project):
    """It finds each pipeline component defined, and nothing defined left unused."""
    for label, config in collector_configs(project).items():
        pipelines = config["service"]["pipelines"]
        used = {section: set() for section in KNOWN_COMPONENTS}
        for pipeline in pipelines.values():
            for part in ("receivers", "processors", "exporters"):
                for name in pipeline[part]:
                    section = "connectors" if name in (config.get("connectors") or {}) else part
                    assert name in (config.get(section) or {}), f"{label}: {name} is not defined"
                    used[section].add(name)
        used["extensions"] = set(config["service"]["extensions"])
        for section in KNOWN_COMPONENTS:
            assert set(config.get(section) or {}) == used[section], (label, section)


def test_the_pipelines_limit_memory_first_and_send_each_signal_to_its_store(project):
    """It limits memory before batching; traces go to Tempo, logs to Loki's /otlp, metrics to Prometheus."""
    config = local_config(project)
    pipelines = config["service"]["pipelines"]
    for pipeline in pipelines.values():
        assert pipeline["processors"] == ["memory_limiter", "batch"]
    assert config["exporters"]["otlp_grpc/tempo"]["endpoint"] == "tempo:4317"
    assert config["exporters"]["otlp_http/loki"]["endpoint"] == "http://loki:3100/otlp"
    assert config["exporters"]["otlp_http/prometheus"]["endpoint"] == "http://prometheus:9090/api/v1/otlp"
    assert pipelines["traces"]["exporters"][:3] == ["otlp_grpc/tempo", "span_metrics", "service_graph"]
    assert pipelines["metrics"]["receivers"] == ["otlp", "span_metrics", "service_graph"]
    assert pipelines["metrics"]["exporters"] == ["otlp_http/prometheus"]
    assert pipelines["logs"]["exporters"][0] == "otlp_http/loki"


def test_the_receivers_bind_all_interfaces_on_the_otlp_ports(project):
    """It binds OTLP gRPC on 0.0.0.0:4317 and OTLP/HTTP on 0.0.0.0:4318, reachable from other pods."""
    for label, config in collector_configs(project).items():
        protocols = config["receivers"]["otlp"]["protocols"]
        assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317", label
        assert protocols["http"]["endpoint"] == "0.0.0.0:4318", label


def test_the_highlight_exporter_exists_only_when_highlight_is_the_replay_vendor(project):
    """It exports traces and logs to Highlight/LaunchDarkly only in the highlight render."""
    config = local_config(project)
    highlight = (project / ".env.example").read_text(encoding="utf-8").count("HIGHLIGHT_PROJECT_ID=") == 1
    assert ("otlp_http/highlight" in config["exporters"]) is highlight
    for signal in ("traces", "logs"):
        assert ("otlp_http/highlight" in config["service"]["pipelines"][signal]["exporters"]) is highlight
    assert "otlp_http/highlight" not in config["service"]["pipelines"]["metrics"]["exporters"]
    if highlight:
        exporter = config["exporters"]["otlp_http/highlight"]
        assert exporter["headers"] == {"x-highlight-project": "${env:HIGHLIGHT_PROJECT_ID}"}
        assert exporter["endpoint"].startswith("${env:HIGHLIGHT_OTLP_ENDPOINT:-https://")


def test_loki_keeps_trace_ids_as_structured_metadata_and_never_as_labels(project):
    """It allows structured metadata on tsdb v13 and indexes only service identity as labels."""
    loki = yaml.safe_load((project / "deploy" / "config" / "loki-config.yaml").read_text(encoding="utf-8"))
    assert [(c["store"], c["schema"]) for c in loki["schema_config"]["configs"]] == [("tsdb", "v13")]
    limits = loki["limits_config"]
    assert limits["allow_structured_metadata"] is True
    resource = limits["otlp_config"]["resource_attributes"]
    assert resource["ignore_defaults"] is True
    labels = {name for rule in resource["attributes_config"] for name in rule["attributes"]}
    assert labels == {"service.name", "service.namespace", "deployment.environment.name"}
    everything = (project / "deploy").rglob("*.yaml")
    assert not any(
        re.search(r"index_label[\s\S]{0,200}trace", path.read_text(encoding="utf-8")) for path in everything
    )


def test_tempo_generates_span_metrics_and_remote_writes_them_to_prometheus(project):
    """It enables span-metrics and local-blocks in overrides (service graphs come from the collector only)."""
    tempo = yaml.safe_load((project / "deploy" / "config" / "tempo-config.yaml").read_text(encoding="utf-8"))
    generator = tempo["metrics_generator"]
    assert generator["storage"]["remote_write"] == [
        {"url": "http://prometheus:9090/api/v1/write", "send_exemplars": True}
    ]
    assert tempo["overrides"]["defaults"]["metrics_generator"]["processors"] == [
        "span-metrics",
        "local-blocks",
    ]
    assert "service_graph" in local_config(project)["connectors"]
    assert tempo["storage"]["trace"]["backend"] == "local"
