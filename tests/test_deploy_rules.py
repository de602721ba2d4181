"""SLO rules: promtool loads them, and each alert fires on the series it is for and stays quiet otherwise."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import render
from tests.support.stack import binary
from tests.test_deploy_manifests import kustomize

API = "sage-app-api"
WEB = "sage-app-web"
# The GenAI duration histograms' buckets (util-genai's explicit_bucket_boundaries_advisory).
GENAI_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("rules"))


def rules_path(project: Path) -> Path:
    return project / "deploy" / "config" / "prometheus-rules.yaml"


def rules(project: Path) -> dict[str, dict]:
    """Every rule of the file by its alert name (alerts only)."""
    groups = yaml.safe_load(rules_path(project).read_text(encoding="utf-8"))["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def counter(*phases: tuple[float, int]) -> str:
    """promtool values of a counter, one sample a minute: (increase per minute, minutes) per phase."""
    values, total = ["0"], 0.0
    for per_minute, minutes in phases:
        for _ in range(minutes):
            total += per_minute
            values.append(f"{total:g}")
    return " ".join(values)


def requests(service: str, status: int, per_minute: float, minutes: int, *then: tuple[float, int]) -> dict:
    series = (
        f'http_server_request_duration_seconds_count{{service_name="{service}",'
        f'http_route="/api/chat",http_response_status_code="{status}"}}'
    )
    return {"series": series, "values": counter((per_minute, minutes), *then)}


def llm_calls(per_minute: float, minutes: int, error_type: str = "") -> dict:
    error = f',error_type="{error_type}"' if error_type else ""
    labels = f'service_name="{API}",gen_ai_request_model="gpt-4o-mini"{error}'
    series = f"gen_ai_client_operation_duration_seconds_count{{{labels}}}"
    return {"series": series, "values": counter((per_minute, minutes))}


def histogram(metric: str, seconds: float, per_minute: float, minutes: int, *then: tuple) -> list[dict]:
    """The _bucket series of a histogram whose every observation took `seconds`."""
    series = []
    for le in [*GENAI_BUCKETS, "+Inf"]:
        inside = le == "+Inf" or seconds <= le
        phases = [(per_minute if inside else 0, minutes)] + [(rate if inside else 0, m) for rate, m in then]
        labels = f'service_name="{API}",gen_ai_request_model="gpt-4o-mini",le="{le}"'
        series.append({"series": f"{metric}_bucket{{{labels}}}", "values": counter(*phases)})
    return series


def spend(usd_per_hour: float, minutes: int, *then: tuple[float, int]) -> dict:
    series = f'gen_ai_client_cost_USD_total{{service_name="{API}",gen_ai_request_model="gpt-4o-mini"}}'
    return {"series": series, "values": counter((usd_per_hour / 60, minutes), *then)}


@dataclass
class Case:
    """Input series, and per (eval time, alert) the label sets of the alerts expected to fire."""

    series: list[dict]
    expected: dict[tuple[str, str], list[dict]] = field(default_factory=dict)


API_FAST = {"service_name": API, "slo": "api-availability", "severity": "page"}
LLM_PAGE = {"service_name": API, "slo": "llm-errors", "severity": "page"}
LLM_TICKET = {"service_name": API, "severity": "ticket"}
CASES = {
    # API availability, objective 99.9 %: fast burn is > 1.44 % 5xx, slow burn > 0.6 %.
    "api-healthy-0.05%-5xx-for-7h-is-quiet": Case(
        [requests(API, 200, 5997, 420), requests(API, 500, 3, 420)],
        {("7h", "APIErrorBudgetBurnFast"): [], ("7h", "APIErrorBudgetBurnSlow"): []},
    ),
    "api-2%-5xx-pages-fast-for-that-service-only": Case(
        [requests(API, 200, 588, 60), requests(API, 500, 12, 60), requests(WEB, 200, 600, 60)],
        {("60m", "APIErrorBudgetBurnFast"): [API_FAST]},
    ),
    "api-1%-5xx-for-7h-pages-slow-not-fast": Case(
        [requests(API, 200, 594, 420), requests(API, 500, 6, 420)],
        {("7h", "APIErrorBudgetBurnFast"): [], ("7h", "APIErrorBudgetBurnSlow"): [API_FAST]},
    ),
    "api-5%-burst-fires-then-stops-when-the-5xx-stop": Case(
        [requests(API, 200, 570, 30, (600, 30)), requests(API, 500, 30, 30, (0, 30))],
        {("30m", "APIErrorBudgetBurnFast"): [API_FAST], ("60m", "APIErrorBudgetBurnFast"): []},
    ),
    "api-5%-4xx-is-not-an-slo-error": Case(
        [requests(API, 200, 570, 60), requests(API, 404, 30, 60)],
        {("60m", "APIErrorBudgetBurnFast"): [], ("60m", "APIErrorBudgetBurnSlow"): []},
    ),
    # LLM calls, objective 99 %: fast burn is > 14.4 % failed calls, slow burn > 6 %.
    "llm-20%-failed-calls-page-fast": Case(
        [llm_calls(48, 60), llm_calls(12, 60, "timeout")],
        {("60m", "LLMErrorBudgetBurnFast"): [LLM_PAGE]},
    ),
    "llm-3%-failed-calls-for-7h-are-quiet": Case(
        [llm_calls(97, 420), llm_calls(3, 420, "429")],
        {("7h", "LLMErrorBudgetBurnFast"): [], ("7h", "LLMErrorBudgetBurnSlow"): []},
    ),
    # LLM latency: p95 of a call above 30 s, of the first chunk above 3 s.
    "llm-60s-calls-raise-latency": Case(
        histogram("gen_ai_client_operation_duration_seconds", 60, 10, 60),
        {("60m", "LLMLatencyP95High"): [LLM_TICKET]},
    ),
    "llm-8s-calls-are-quiet": Case(
        histogram("gen_ai_client_operation_duration_seconds", 8, 10, 60),
        {("60m", "LLMLatencyP95High"): []},
    ),
    "llm-slow-hour-then-no-calls-is-quiet": Case(
        histogram("gen_ai_client_operation_duration_seconds", 60, 10, 50, (0, 10)),
        {("60m", "LLMLatencyP95High"): []},
    ),
    "llm-4s-first-chunk-raises-ttfc": Case(
        histogram("gen_ai_client_operation_time_to_first_chunk_seconds", 4, 10, 60),
        {("60m", "LLMTimeToFirstChunkP95High"): [LLM_TICKET]},
    ),
    "llm-2s-first-chunk-is-quiet": Case(
        histogram("gen_ai_client_operation_time_to_first_chunk_seconds", 2, 10, 60),
        {("60m", "LLMTimeToFirstChunkP95High"): []},
    ),
    # LLM spend against the default budget of 5 USD per hour.
    "cost-10usd-per-hour-is-over-budget": Case(
        [spend(10, 60)], {("60m", "LLMCostOverBudget"): [{"severity": "ticket"}]}
    ),
    "cost-2usd-per-hour-is-quiet": Case([spend(2, 60)], {("60m", "LLMCostOverBudget"): []}),
    "cost-over-budget-resolves-once-spending-stops": Case(
        [spend(10, 60, (0, 10))], {("70m", "LLMCostOverBudget"): []}
    ),
}


def promtool_test(rule_file: Path, case: Case, tmp_path: Path) -> subprocess.CompletedProcess:
    alerts = rules(rule_file.parents[2])
    tests = [
        {
            "eval_time": at,
            "alertname": name,
            "exp_alerts": [
                {"exp_labels": labels, "exp_annotations": alerts[name]["annotations"]} for labels in fired
            ],
        }
        for (at, name), fired in case.expected.items()
    ]
    spec = {
        "rule_files": [str(rule_file)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": case.series, "alert_rule_test": tests}],
    }
    path = tmp_path / "rules.test.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return subprocess.run(
        [str(binary("promtool")), "test", "rules", str(path)], capture_output=True, text=True
    )


def test_the_rules_file_passes_promtool_check_rules(project):
    """It passes `promtool check rules` and holds the six SLO alerts the README lists."""
    completed = subprocess.run(
        [str(binary("promtool")), "check", "rules", str(rules_path(project))], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert set(rules(project)) == {
        "APIErrorBudgetBurnFast", "APIErrorBudgetBurnSlow", "LLMErrorBudgetBurnFast",
        "LLMErrorBudgetBurnSlow", "LLMLatencyP95High", "LLMTimeToFirstChunkP95High", "LLMCostOverBudget",
    }  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_each_alert_fires_when_it_should_and_stays_quiet_otherwise(project, tmp_path, name):
    """It runs `promtool test rules` on crafted series: the expected alerts fire, no other instance."""
    completed = promtool_test(rules_path(project), CASES[name], tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_llm_budget_is_the_one_constant_to_change(project, tmp_path):
    """It stops alerting on 10 USD per hour once llm:cost_budget:usd_per_hour says 20."""
    text = rules_path(project).read_text(encoding="utf-8")
    budget = "      - record: llm:cost_budget:usd_per_hour\n        expr: vector(5)\n"
    assert text.count(budget) == 1
    copy = tmp_path / "deploy" / "config" / "prometheus-rules.yaml"
    copy.parent.mkdir(parents=True)
    copy.write_text(text.replace(budget, budget.replace("vector(5)", "vector(20)")), encoding="utf-8")

    raised = promtool_test(copy, Case([spend(10, 60)], {("60m", "LLMCostOverBudget"): []}), tmp_path)

    assert raised.returncode == 0, raised.stdout + raised.stderr


def test_a_wrong_expectation_fails_so_the_cases_above_mean_something(project, tmp_path):
    """It fails promtool when a case expects a quiet alert that does fire."""
    case = Case([spend(10, 60)], {("60m", "LLMCostOverBudget"): []})
    assert promtool_test(rules_path(project), case, tmp_path).returncode != 0


def test_prometheus_loads_the_rules_in_k8s_and_compose(project):
    """It names the rules file in rule_files and ships it beside the config in the ConfigMap and compose."""
    config_dir = project / "deploy" / "config"
    config = yaml.safe_load((config_dir / "prometheus-config.yaml").read_text(encoding="utf-8"))
    assert config["rule_files"] == ["prometheus-rules.yaml"]
    data = next(
        obj["data"]
        for obj in kustomize(project, "local")
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("prometheus-config")
    )
    assert set(data) == {"prometheus-config.yaml", "prometheus-rules.yaml"}
    assert data["prometheus-rules.yaml"] == rules_path(project).read_text(encoding="utf-8")
    compose = yaml.safe_load((project / "docker-compose.yaml").read_text(encoding="utf-8"))
    assert (
        "./deploy/config/prometheus-rules.yaml:/etc/prometheus/prometheus-rules.yaml:ro"
        in (compose["services"]["prometheus"]["volumes"])
    )
