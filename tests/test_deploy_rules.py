"""SLO rules: Prometheus 3's promtool loads them and passes the unit tests the scaffold ships."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import render
from tests.support.stack import binary
from tests.test_deploy_manifests import kustomize

ALERTS = {
    "APIErrorBudgetBurnFast", "APIErrorBudgetBurnSlow", "LLMErrorBudgetBurnFast",
    "LLMErrorBudgetBurnSlow", "LLMLatencyP95High", "LLMTimeToFirstChunkP95High", "LLMCostOverBudget",
}  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("rules"))


def rules_path(project: Path) -> Path:
    return project / "deploy" / "config" / "prometheus-rules.yaml"


def rule_tests_path(project: Path) -> Path:
    return project / "deploy" / "config" / "prometheus-rules.test.yaml"


def rules(project: Path) -> dict[str, dict]:
    """Every rule of the file by its alert name (alerts only)."""
    groups = yaml.safe_load(rules_path(project).read_text(encoding="utf-8"))["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def promtool_test(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(binary("promtool")), "test", "rules", str(path)], capture_output=True, text=True
    )


def shipped_tests(project: Path) -> dict:
    return yaml.safe_load(rule_tests_path(project).read_text(encoding="utf-8"))


def test_the_rules_file_passes_promtool_check_rules(project):
    """It passes `promtool check rules` and holds the SLO alerts the README lists."""
    completed = subprocess.run(
        [str(binary("promtool")), "check", "rules", str(rules_path(project))], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert set(rules(project)) == ALERTS


def test_the_shipped_rule_tests_pass(project):
    """`promtool test rules deploy/config/prometheus-rules.test.yaml` (what `make check` runs) passes."""
    completed = promtool_test(rule_tests_path(project))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "SUCCESS" in completed.stdout


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_stays_quiet(project):
    """The shipped tests cover each alert both ways, for the rendered service's name."""
    fires, quiet = set(), set()
    for case in shipped_tests(project)["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
            for alert in check["exp_alerts"]:
                assert alert["exp_labels"].get("service_name", "sage-app-api") == "sage-app-api"
    assert fires == ALERTS and quiet == ALERTS


def test_a_wrong_expectation_fails_so_the_shipped_tests_mean_something(project, tmp_path):
    """Each case expecting a firing alert fails promtool once it expects silence instead."""
    spec = shipped_tests(project)
    spec["rule_files"] = [str(rules_path(project))]
    firing = [
        (case, check) for case in spec["tests"] for check in case["alert_rule_test"] if check["exp_alerts"]
    ]
    assert firing
    for case, check in firing:
        saved, check["exp_alerts"] = check["exp_alerts"], []
        path = tmp_path / "wrong.test.yaml"
        path.write_text(yaml.safe_dump({**spec, "tests": [case]}), encoding="utf-8")
        assert promtool_test(path).returncode != 0, case["name"]
        check["exp_alerts"] = saved


def test_the_llm_budget_is_the_one_constant_to_change(project, tmp_path):
    """With llm:cost_budget:usd_per_hour at 20 instead of 5, the 10 USD/hour case no longer fires."""
    text = rules_path(project).read_text(encoding="utf-8")
    budget = "      - record: llm:cost_budget:usd_per_hour\n        expr: vector(5)\n"
    assert text.count(budget) == 1
    raised = tmp_path / "prometheus-rules.yaml"
    raised.write_text(text.replace(budget, budget.replace("vector(5)", "vector(20)")), encoding="utf-8")
    spec = shipped_tests(project)
    spec["rule_files"] = [str(raised)]
    by_name = {case["name"]: case for case in spec["tests"]}
    for name, passes in (
        ("cost-10usd-per-hour-is-over-budget", False),
        ("cost-2usd-per-hour-is-quiet", True),
    ):
        path = tmp_path / f"{name}.test.yaml"
        path.write_text(yaml.safe_dump({**spec, "tests": [by_name[name]]}), encoding="utf-8")
        assert (promtool_test(path).returncode == 0) is passes, name


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


def test_make_check_runs_the_rule_tests_when_promtool_is_on_path(project, backend_python, tmp_path):
    """The scaffold's `make check` runs them with promtool on PATH (a broken case fails it); without
    promtool it says in one line that they did not run."""
    make = [shutil.which("make"), "-C", str(project), "check", f"VENV={backend_python.parents[1]}"]
    with_promtool = {**os.environ, "PATH": f"{binary('promtool').parent}{os.pathsep}{os.environ['PATH']}"}
    passed = subprocess.run(make, capture_output=True, text=True, env=with_promtool)
    assert passed.returncode == 0 and "SUCCESS" in passed.stdout, passed.stdout + passed.stderr

    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "make").symlink_to(shutil.which("make"))
    quiet = subprocess.run(make, capture_output=True, text=True, env={**os.environ, "PATH": str(bare)})
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "the SLO rule tests (deploy/config/prometheus-rules.test.yaml) did not run" in quiet.stdout

    tests = rule_tests_path(project)
    original = tests.read_text(encoding="utf-8")
    try:
        tests.write_text(
            original.replace("exp_alerts: []", "exp_alerts: [{exp_labels: {}}]", 1), encoding="utf-8"
        )
        broken = subprocess.run(make, capture_output=True, text=True, env=with_promtool)
    finally:
        tests.write_text(original, encoding="utf-8")
    assert broken.returncode != 0, broken.stdout
