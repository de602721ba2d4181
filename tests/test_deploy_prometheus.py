"""Prometheus: the config passes promtool, and dashboards query the names its OTLP receiver produces."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import render
from tests.test_deploy_collector import collector_configs
from tests.test_deploy_manifests import require

PROMETHEUS_IMAGE = "prom/prometheus:v3.5.0"
REQUIRED_FLAGS = {
    "--web.enable-otlp-receiver",
    "--web.enable-remote-write-receiver",
    "--enable-feature=exemplar-storage",
}
# Keys of the `otlp:` block in Prometheus 3.5, which Debian's promtool (2.42, no OTLP receiver)
# does not know: the block is checked against this list and removed before promtool sees the file.
OTLP_KEYS_3_5 = {
    "promote_resource_attributes", "ignore_resource_attributes", "promote_all_resource_attributes",
    "translation_strategy", "keep_identifying_resource_attributes", "convert_histograms_to_nhcb",
    "promote_scope_metadata",
}  # fmt: skip
TRANSLATION_STRATEGIES = {"UnderscoreEscapingWithSuffixes", "UnderscoreEscapingWithoutSuffixes",
                          "NoUTF8EscapingWithSuffixes", "NoTranslation"}  # fmt: skip
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


def test_the_config_passes_promtool_check_config(project, tmp_path):
    """It passes `promtool check config` with its rule files; the Prometheus 3 `otlp` block is set aside."""
    config = prometheus_config(project)
    otlp = config.pop("otlp")
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    for name in config["rule_files"]:
        (tmp_path / name).write_bytes((project / "deploy" / "config" / name).read_bytes())

    completed = subprocess.run(
        [require("promtool"), "check", "config", str(path)], capture_output=True, text=True
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    rules = yaml.safe_load((tmp_path / "prometheus-rules.yaml").read_text(encoding="utf-8"))
    assert f"SUCCESS: {sum(len(g['rules']) for g in rules['groups'])} rules found" in completed.stdout
    assert set(otlp) <= OTLP_KEYS_3_5
    assert otlp["translation_strategy"] in TRANSLATION_STRATEGIES


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
