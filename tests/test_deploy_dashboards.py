"""Every dashboard, opened as Grafana opens it: default variable values, queries each backend accepts."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import render
from tests.support.stack import binary
from tests.test_deploy_grafana import (
    all_panels,
    dashboards,
    datasources,
    grafana_expand,
    logql_problems,
    traceql_problems,
)

# What a query variable offers once the stack has data (Grafana selects the first, or "All").
FOUND_VALUES = ["sage-app-api", "sage-app-web"]
# The data source's scrape interval (prometheus-config.yaml) is $__interval's floor; Grafana's
# $__rate_interval is then max($__interval + scrape interval, 4 x scrape interval).
INTERVAL_SECONDS = 15
RATE_INTERVAL_SECONDS = 4 * INTERVAL_SECONDS
REFERENCE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Latency histograms whose panels must show exemplars (a dot opens the trace of that request).
LATENCY_HISTOGRAMS = (
    "http_server_request_duration_seconds_bucket",
    "gen_ai_client_operation_duration_seconds_bucket",
    "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
    "gen_ai_execute_tool_duration_seconds_bucket",
    "gen_ai_invoke_agent_duration_seconds_bucket",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("dashboards"))


def regex_escape(value: str) -> str:
    """Grafana's escaping of a value inside a Prometheus/Loki regex matcher (multi or "All")."""
    return re.sub(r"[\\^$*+?.()|{}\[\]]", lambda m: "\\\\" + m.group(0), value)


def opening_values(board: dict) -> dict[str, str]:
    """Each variable's text in a query when the dashboard opens with its saved defaults:
    a query variable with nothing saved selects "All" if it has it, else the first value found;
    "All" is allValue when set, else every found value as a regex alternation."""
    values = {}
    for variable in board["templating"]["list"]:
        current = (variable.get("current") or {}).get("value")
        kind = variable["type"]
        if kind == "query" and current in (None, "", []):
            current = "$__all" if variable.get("includeAll") else FOUND_VALUES[0]
        elif kind in {"custom", "interval"} and current in (None, "", []):
            current = str(variable["query"]).split(",")[0].strip()
        elif kind in {"textbox", "constant"} and current is None:
            current = variable.get("query", "")
        selected = current if isinstance(current, list) else [current]
        regex = variable.get("multi") or variable.get("includeAll")
        if selected == ["$__all"]:
            all_value = variable.get("allValue")
            values[variable["name"]] = all_value or "(" + "|".join(map(regex_escape, FOUND_VALUES)) + ")"
        elif regex:
            escaped = [regex_escape(value) for value in selected]
            values[variable["name"]] = escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
        else:
            values[variable["name"]] = selected[0]
    return values


def builtins(board: dict) -> dict[str, str]:
    """Grafana's global variables for the dashboard's default time range."""
    amount, unit = re.fullmatch(r"now-(\d+)([smhd])", board["time"]["from"]).groups()
    seconds = int(amount) * UNITS[unit]
    return {
        "__range": f"{seconds}s",
        "__range_s": str(seconds),
        "__range_ms": str(seconds * 1000),
        "__interval": f"{INTERVAL_SECONDS}s",
        "__interval_ms": str(INTERVAL_SECONDS * 1000),
        "__rate_interval": f"{RATE_INTERVAL_SECONDS}s",
        "__auto": f"{INTERVAL_SECONDS}s",
    }


def interpolate(query: str, values: dict[str, str]) -> str:
    def value(match: re.Match) -> str:
        name = next(group for group in match.groups() if group)
        assert name in values, f"{query!r} names ${name}, which neither the dashboard nor Grafana defines"
        return values[name]

    return REFERENCE.sub(value, query)


def opened_queries(board: dict) -> list[tuple[str, str]]:
    """(data source type, query) of every panel target and query variable, as sent on opening."""
    values = opening_values(board) | builtins(board)
    queries = []
    for panel in all_panels(board["panels"]):
        for target in panel.get("targets", []):
            source = (target.get("datasource") or panel.get("datasource") or {}).get("type")
            queries.append((source, interpolate(target.get("expr") or target.get("query") or "", values)))
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            selector = re.fullmatch(r"label_values\((.*), *\w+\)", query)
            queries.append(
                (
                    variable["datasource"]["type"],
                    interpolate(selector.group(1) if selector else query, values),
                )
            )
    return queries


def promql_problems(queries: list[str], tmp_path: Path) -> str:
    """promtool's complaints about the queries (empty when it parses them all)."""
    rules = {
        "groups": [
            {"name": "opened", "rules": [{"record": f"q:{n}", "expr": q} for n, q in enumerate(queries)]}
        ]
    }
    path = tmp_path / "opened.rules.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    completed = subprocess.run(
        [str(binary("promtool")), "check", "rules", str(path)], capture_output=True, text=True
    )
    return "" if completed.returncode == 0 else completed.stdout + completed.stderr


def test_every_dashboard_opens_with_queries_prometheus_loki_and_tempo_accept(project, tmp_path):
    """It opens each dashboard on its defaults ("All" included) and checks every query its backend parses."""
    for name, board in dashboards(project).items():
        queries = opened_queries(board)
        by_source = {source: [q for s, q in queries if s == source] for source in {s for s, _ in queries}}
        assert set(by_source) <= {"prometheus", "loki", "tempo"}, name
        assert promql_problems(by_source.get("prometheus", []), tmp_path) == "", name
        assert {q: logql_problems(q) for q in by_source.get("loki", [])} == {
            q: [] for q in by_source.get("loki", [])
        }
        assert {q: traceql_problems(q) for q in by_source.get("tempo", [])} == {
            q: [] for q in by_source.get("tempo", [])
        }


def test_the_llm_dashboard_opens_on_all_services_with_a_selector_loki_accepts(project):
    """It opens llm.json on "All" and sends Loki service_name=~".+", never the refused ".*"."""
    board = dashboards(project)["llm.json"]
    assert opening_values(board)["service"] == ".+"
    loki = [query for source, query in opened_queries(board) if source == "loki"]
    assert len(loki) >= 2 and all('{service_name=~".+"}' in query for query in loki)


def test_opening_all_with_a_match_everything_value_is_caught(project):
    """It reports the Loki panels of a dashboard whose "All" is ".*" (the value that broke them)."""
    board = json.loads(
        json.dumps(dashboards(project)["llm.json"]).replace('"allValue": ".+"', '"allValue": ".*"')
    )
    broken = [q for source, q in opened_queries(board) if source == "loki" and logql_problems(q)]
    assert len(broken) >= 2


def test_the_latency_panels_show_exemplars(project):
    """It sets exemplar: true on every RED and LLM latency query, so each dot opens its trace in Tempo."""
    latency = [
        target
        for board in dashboards(project).values()
        for panel in all_panels(board["panels"])
        for target in panel.get("targets", [])
        if any(metric in (target.get("expr") or "") for metric in LATENCY_HISTOGRAMS)
    ]
    assert len(latency) >= 7
    assert all(target.get("exemplar") is True for target in latency), [t["expr"] for t in latency]


def test_the_slo_dashboard_lists_the_prometheus_alerts_and_draws_recorded_series(project):
    """It lists the Prometheus rules in an alert list panel and queries only series the rules record."""
    board = dashboards(project)["slo.json"]
    alert_lists = [panel for panel in board["panels"] if panel["type"] == "alertlist"]
    names = {source["uid"]: source["name"] for source in datasources(project)}
    assert [panel["options"]["datasource"] for panel in alert_lists] == [names["prometheus"]]
    prometheus = {source["uid"]: source for source in datasources(project)}["prometheus"]
    assert prometheus["jsonData"]["manageAlerts"] is True
    rules_file = project / "deploy" / "config" / "prometheus-rules.yaml"
    recorded = {
        rule["record"]
        for group in yaml.safe_load(rules_file.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    queried = {
        name
        for _, query in opened_queries(board)
        for name in re.findall(r"\b([a-z_]+:[a-z0-9_:]+)", re.sub(r"\[[^\]]*\]", "", query))
    }
    assert queried and queried <= recorded, queried - recorded


def loki_metadata_key(attribute: str) -> str:
    """The structured metadata key Loki's OTLP ingest stores a log attribute under (dots to _)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", attribute)


def test_each_loki_derived_field_picks_exactly_its_own_key(project):
    """It matches trace_id and session_id (from session.id) and no key that merely contains them."""
    env = (project / "deploy" / "config" / "grafana.env").read_text(encoding="utf-8")
    environ = dict(line.split("=", 1) for line in env.splitlines() if line and not line.startswith("#"))
    text = (project / "deploy" / "config" / "grafana-datasources.yaml").read_text(encoding="utf-8")
    loki = {s["uid"]: s for s in yaml.safe_load(grafana_expand(text, environ))["datasources"]}["loki"]
    # Stream labels and structured metadata of one backend log record written during a request
    # with a session (the Highlight render's request attributes included).
    attributes = ["trace_id", "span_id", "session.id", "highlight.session_id", "highlight.trace_id"]
    keys = ["service_name", "deployment_environment_name", *map(loki_metadata_key, attributes)]
    for field in loki["jsonData"]["derivedFields"]:
        assert field["matcherType"] == "label", field["name"]
        # Grafana: the first key for which `new RegExp(matcherRegex).test(key)` holds.
        assert [key for key in keys if re.search(field["matcherRegex"], key)] == [field["name"]]
    assert {field["name"] for field in loki["jsonData"]["derivedFields"]} == {"trace_id", "session_id"}
    assert loki_metadata_key("session.id") == "session_id"
