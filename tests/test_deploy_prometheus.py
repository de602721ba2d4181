"""Prometheus: the config passes promtool, and dashboards query the names its OTLP receiver produces."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from stack.build import PROMETHEUS_VERSION
from tests.conftest import render
from tests.support.stack import binary
from tests.test_deploy_collector import collector_configs

PROMETHEUS_IMAGE = f"prom/prometheus:v{PROMETHEUS_VERSION}"  # the version `make stack-bin` builds
REQUIRED_FLAGS = {"--web.enable-otlp-receiver", "--web.enable-remote-write-receiver"}
# exemplar-storage: trace ids on histogram buckets. created-timestamp-zero-ingestion: a new series
# starts at 0 at its OTLP start time, so the first export's count is an increase (without it a
# burst of errors from a fresh process never moves rate(): tests/test_stack_e2e.py's alert test).
REQUIRED_FEATURES = {"exemplar-storage", "created-timestamp-zero-ingestion"}
# otlptranslator's unit names (the subset a scaffold instrument can use); others are kept as written.
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": "", "%": "percent"}
# (OTLP name, unit, kind) of what reaches Prometheus: the backend's instruments (http, gen_ai,
# cost) and the collector's span_metrics and service_graph connectors.
INSTRUMENTS = [
    ("http.server.request.duration", "s", "histogram"),
    ("gen_ai.client.operation.duration", "s", "histogram"),
    ("gen_ai.client.operation.time_to_first_chunk", "s", "histogram"),
    ("gen_ai.client.token.usage", "{token}", "histogram"),
    ("gen_ai.execute_tool.duration", "s", "histogram"),
    ("gen_ai.invoke_agent.duration", "s", "histogram"),
    ("app.agent.steps", "{step}", "histogram"),
    ("traces.span.metrics.calls", "1", "counter"),
    ("traces.span.metrics.duration", "ms", "histogram"),
    ("traces_service_graph_request_total", "1", "counter"),
]


def prometheus_name(name: str, unit: str, kind: str) -> str:
    """Prometheus 3's UnderscoreEscapingWithSuffixes name for an OTLP metric (prometheus/otlptranslator)."""
    tokens = [token for token in re.split(r"[^a-zA-Z0-9:]+", name) if token]
    main = "" if "{" in unit else UNIT_NAMES.get(unit, unit)
    main = re.sub(r"[^a-zA-Z0-9:]+", "_", main).strip("_")
    if main and main not in tokens:
        tokens.append(main)
    if kind == "counter":
        tokens = [token for token in tokens if token != "total"] + ["total"]
    return "_".join(tokens)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("prometheus"))


def prometheus_config(project: Path) -> dict:
    return yaml.safe_load(
        (project / "deploy" / "config" / "prometheus-config.yaml").read_text(encoding="utf-8")
    )


def test_the_config_passes_promtool_check_config(project):
    """Prometheus 3's promtool accepts the rendered config as it is, `otlp` block and rule files included."""
    path = project / "deploy" / "config" / "prometheus-config.yaml"
    completed = subprocess.run(
        [str(binary("promtool")), "check", "config", str(path)], capture_output=True, text=True
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    rules = yaml.safe_load((path.parent / "prometheus-rules.yaml").read_text(encoding="utf-8"))
    assert f"SUCCESS: {sum(len(g['rules']) for g in rules['groups'])} rules found" in completed.stdout


def test_promtool_refuses_an_otlp_key_prometheus_3_does_not_know(project, tmp_path):
    """The check above can fail: a misspelt key of the `otlp` block is an error for Prometheus 3."""
    config = prometheus_config(project)
    config["otlp"]["translation_stratgy"] = config["otlp"].pop("translation_strategy")
    config["rule_files"] = []
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    completed = subprocess.run(
        [str(binary("promtool")), "check", "config", str(path)], capture_output=True, text=True
    )
    assert completed.returncode != 0 and "translation_stratgy" in completed.stdout + completed.stderr


def test_the_otlp_block_pins_the_naming_and_promotes_the_service_labels_dashboards_use(project):
    """It states UnderscoreEscapingWithSuffixes and promotes service.name, which dashboards filter on."""
    otlp = prometheus_config(project)["otlp"]
    assert otlp["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    assert "service.name" in otlp["promote_resource_attributes"]
    boards = (project / "deploy" / "config" / "dashboards").glob("*.json")
    assert all("service_name" in path.read_text(encoding="utf-8") for path in boards)


def test_k8s_and_compose_run_prometheus_with_the_receivers_and_exemplars_on(project):
    """It passes the OTLP receiver, remote-write receiver and exemplar flags in both places, same image."""
    deployment = yaml.safe_load(
        (project / "deploy" / "k8s" / "base" / "prometheus-deployment.yaml").read_text(encoding="utf-8")
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    compose = yaml.safe_load((project / "docker-compose.yaml").read_text(encoding="utf-8"))["services"][
        "prometheus"
    ]
    assert REQUIRED_FLAGS <= set(container["args"]) and container["args"] == compose["command"]
    features = {
        f
        for a in container["args"]
        if a.startswith("--enable-feature=")
        for f in a.split("=", 1)[1].split(",")
    }
    assert features == REQUIRED_FEATURES
    assert container["image"] == compose["image"] == PROMETHEUS_IMAGE


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        ("http.server.request.duration", "s", "histogram", "http_server_request_duration_seconds"),
        ("gen_ai.client.token.usage", "{token}", "histogram", "gen_ai_client_token_usage"),
        ("gen_ai.client.cost", "USD", "counter", "gen_ai_client_cost_USD_total"),
        ("traces.span.metrics.calls", "1", "counter", "traces_span_metrics_calls_total"),
    ],
)
def test_otlp_names_translate_as_prometheus_3_does(name, unit, kind, expected):
    """It adds the unit (braced units dropped, unknown ones kept as written) and _total to counters."""
    assert prometheus_name(name, unit, kind) == expected


def test_every_metric_a_dashboard_queries_is_one_the_stack_produces(project):
    """It finds each metric name in the dashboards among the translated names of what reaches Prometheus."""
    llm = (project / "backend" / "app" / "telemetry" / "llm.py").read_text(encoding="utf-8")
    cost = re.search(r'COST_METRIC = "([^"]+)"', llm).group(1)
    cost_unit = re.search(r'create_counter\(COST_METRIC, unit="([^"]+)"', llm).group(1)
    produced = set()
    for name, unit, kind in [*INSTRUMENTS, (cost, cost_unit, "counter")]:
        base = prometheus_name(name, unit, kind)
        produced |= (
            {base} if kind == "counter" else {f"{base}_{suffix}" for suffix in ("bucket", "sum", "count")}
        )
    queried = set()
    for path in (project / "deploy" / "config" / "dashboards").glob("*.json"):
        board = json.loads(path.read_text(encoding="utf-8"))
        text = json.dumps([board["panels"], board["templating"]])
        queried |= set(re.findall(r"\b((?:http|gen_ai|traces|app)_[a-zA-Z0-9_]+)(?=\{|\[)", text))
        queried |= set(re.findall(r"label_values\((\w+)", text))
    assert queried and queried <= produced, queried - produced
    assert "gen_ai_client_cost_USD_total" in queried
    assert {"gen_ai_execute_tool_duration_seconds_bucket", "app_agent_steps_bucket"} <= queried


def test_exemplars_survive_the_collector_and_prometheus_keeps_them(project):
    """It keeps exemplars end to end: span_metrics makes them, metrics pipelines only limit and batch
    (processors that keep exemplars), Prometheus stores them, Grafana links their trace_id to Tempo."""
    for label, config in collector_configs(project).items():
        assert config["connectors"]["span_metrics"]["exemplars"] == {"enabled": True}, label
        assert config["service"]["pipelines"]["metrics"]["processors"] == ["memory_limiter", "batch"], label
    assert prometheus_config(project)["storage"]["exemplars"]["max_exemplars"] >= 10000
    sources = yaml.safe_load(
        (project / "deploy" / "config" / "grafana-datasources.yaml").read_text(encoding="utf-8")
    )["datasources"]
    links = {s["uid"]: s for s in sources}["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert [(link["name"], link["datasourceUid"]) for link in links] == [("trace_id", "tempo")]
