"""Grafana provisioning: fixed UIDs, links that survive rendering and Grafana's $-expansion, valid queries."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import TEMPLATE_DIR, render
from tests.support.stack import binary

SCAFFOLD = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
UIDS = {"prometheus", "loki", "tempo"}
COMBINATIONS = {
    "defaults": ({}, "http://localhost:3000/replay/"),
    "all-on-highlight": (
        {"session_replay": "highlight", "highlight_project_id": "ve6y97ge"},
        "https://app.highlight.io/ve6y97ge/sessions/",
    ),
}
# Grafana's template variables, replaced by sample values before a query is parsed.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__range": "1h",
    "$__interval": "1m",
    "$__tags": 'service_name="x"',
    "$service": "x",
    "$route": "x",
    "$model": "x",
    "$search": "x",
}
# LogQL (Loki 3.x): range and vector aggregations, the parsers and formatters a pipeline may use.
LOGQL_FUNCTIONS = {
    "rate", "count_over_time", "bytes_over_time", "bytes_rate", "sum_over_time", "avg_over_time",
    "max_over_time", "min_over_time", "first_over_time", "last_over_time", "stddev_over_time",
    "stdvar_over_time", "quantile_over_time", "absent_over_time", "rate_counter",
    "sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "sort", "sort_desc",
    "by", "without", "label_replace", "vector",
}  # fmt: skip
LOGQL_STAGES = {
    "json", "logfmt", "unwrap", "line_format", "label_format", "pattern", "regexp", "keep", "drop",
    "decolorize", "unpack",
}  # fmt: skip
# TraceQL (Tempo 2.10): spanset functions and metrics functions.
TRACEQL_FUNCTIONS = {
    "rate", "count_over_time", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
    "quantile_over_time", "histogram_over_time", "compare", "topk", "bottomk",
    "select", "by", "count", "avg", "min", "max", "sum",
}  # fmt: skip
TRACEQL_INTRINSICS = {"duration", "kind", "status", "name", "statusMessage", "rootName", "rootServiceName",
                      "traceDuration", "server", "client", "internal", "producer", "consumer", "error",
                      "ok", "unset", "nil", "true", "false"}  # fmt: skip
MATCHER = re.compile(r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*')


@pytest.fixture(scope="module", params=list(COMBINATIONS), ids=list(COMBINATIONS))
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    context, replay_prefix = COMBINATIONS[request.param]
    return render(tmp_path_factory.mktemp(request.param), **context), replay_prefix


@pytest.fixture(scope="module")
def project(rendered) -> Path:
    return rendered[0]


def datasources(project: Path) -> list[dict]:
    text = (project / "deploy" / "config" / "grafana-datasources.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["datasources"]


def dashboards(project: Path) -> dict[str, dict]:
    folder = project / "deploy" / "config" / "dashboards"
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))}


def all_panels(panels: list[dict]) -> list[dict]:
    return [p for panel in panels for p in [panel, *all_panels(panel.get("panels", []))]]


def targets(project: Path, uid: str) -> list[str]:
    """Every query a dashboard sends to the data source `uid`, variables included."""
    queries = []
    for board in dashboards(project).values():
        for panel in all_panels(board["panels"]):
            for target in panel.get("targets", []):
                if (target.get("datasource") or panel.get("datasource") or {}).get("uid") == uid:
                    queries.append(target.get("expr") or target.get("query"))
        for variable in board["templating"]["list"]:
            if variable.get("datasource", {}).get("uid") == uid:
                # label_values(<series selector>, <label>) is Grafana's: the selector is the PromQL.
                query = variable["query"]["query"]
                values = re.fullmatch(r"label_values\((.*), *\w+\)", query)
                queries.append(values.group(1) if values else query)
    return queries


def grafana_expand(text: str, environ: dict[str, str]) -> str:
    """What Grafana's provisioning makes of a value: `$$` is a literal `$`; `$NAME` and `${NAME}`
    elsewhere become the environment variable (Go's os.ExpandEnv), an unknown one the empty string."""
    expand = re.compile(r"\$\{([^}]*)\}|\$([A-Za-z0-9_]+)")
    return "$".join(
        expand.sub(lambda m: environ.get(m.group(1) or m.group(2), ""), part) for part in text.split("$$")
    )


def substitute(query: str) -> str:
    for variable in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        query = query.replace(variable, GRAFANA_VARIABLES[variable])
    assert "$" not in query, f"an unknown Grafana variable is left in {query!r}"
    return query


def balanced(query: str) -> bool:
    """Brackets balance outside "..." and `...` strings."""
    stack, pairs = [], {")": "(", "]": "[", "}": "{"}
    for token in re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', '""', query):
        if token in "([{":
            stack.append(token)
        elif token in pairs and (not stack or stack.pop() != pairs[token]):
            return False
    return not stack


def empty_compatible(operator: str, quoted: str) -> bool:
    """Whether a label matcher also matches a missing label (the empty string), as Loki judges it:
    a stream selector needs one matcher that does not (`=~".*"` alone is refused, `=~".+"` is not)."""
    value = json.loads(quoted)
    if operator in {"=", "!="}:
        return (value == "") is (operator == "=")
    return (re.fullmatch(value, "") is not None) is (operator == "=~")


def logql_problems(query: str) -> list[str]:
    """Balanced brackets, stream selectors of label matchers Loki accepts, known functions and stages."""
    query = substitute(query)
    problems = [] if balanced(query) else ["unbalanced brackets"]
    plain = re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', '""', query)
    selectors = re.findall(r"\{([^{}]*)\}", plain)
    if not selectors:
        problems.append("no stream selector")
    for selector in re.findall(r"\{([^{}]*)\}", query):
        matchers = [MATCHER.fullmatch(m) for m in re.split(r',(?=(?:[^"]*"[^"]*")*[^"]*$)', selector)]
        if not all(matchers):
            problems.append(f"bad stream selector {{{selector}}}")
        elif all(empty_compatible(m.group(1), m.group(2)) for m in matchers):
            problems.append(f"no matcher of {{{selector}}} excludes the empty value (Loki refuses it)")
    problems += [
        f"unknown function {f}" for f in re.findall(r"\b([a-z_]+)\s*\(", plain) if f not in LOGQL_FUNCTIONS
    ]
    for stage in re.findall(r"\|\s*([a-z_]+)\b(?!\s*(?:=|!=|=~|!~|>|<))", plain):
        if stage not in LOGQL_STAGES:
            problems.append(f"unknown pipeline stage {stage}")
    return problems


def traceql_problems(query: str) -> list[str]:
    """Balanced brackets, spansets in braces, scoped attributes or intrinsics, known functions."""
    query = substitute(query)
    problems = [] if balanced(query) else ["unbalanced brackets"]
    plain = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)
    if not re.search(r"\{[^{}]*\}", plain):
        problems.append("no spanset selector")
    problems += [
        f"unknown function {f}" for f in re.findall(r"\b([a-z_]+)\s*\(", plain) if f not in TRACEQL_FUNCTIONS
    ]
    for spanset in re.findall(r"\{([^{}]*)\}", plain):
        for word in re.findall(r"(?<![.\w])([A-Za-z_][\w.]*)", spanset):
            scoped = word.startswith(("span.", "resource.", "event.", "link.", "instrumentation."))
            if (
                not scoped
                and word not in TRACEQL_INTRINSICS
                and not re.fullmatch(r"\d+(ms|s|m|h|us|ns)?", word)
            ):
                problems.append(f"unknown attribute or intrinsic {word}")
    return problems


def test_the_three_data_sources_are_provisioned_with_fixed_uids(project):
    """It provisions Prometheus, Loki and Tempo under the uids prometheus, loki and tempo."""
    assert {(source["type"], source["uid"]) for source in datasources(project)} == {
        (uid, uid) for uid in UIDS
    }


def test_every_uid_a_dashboard_or_link_names_is_provisioned(project):
    """It finds every data source uid named by a panel, a target, a variable or a data source link."""

    def named(value: object) -> set[str]:
        if isinstance(value, dict):
            own = {value["uid"]} if isinstance(value.get("uid"), str) and "type" in value else set()
            links = {v for k, v in value.items() if k in {"datasourceUid", "targetUID"}}
            return own | links | {uid for item in value.values() for uid in named(item)}
        return {uid for item in value for uid in named(item)} if isinstance(value, list) else set()

    referenced = named(list(dashboards(project).values())) | named(
        [source["jsonData"] for source in datasources(project)]
    )
    assert referenced - {"-- Grafana --"} == UIDS


def test_the_links_between_signals_are_all_configured(project):
    """It links traces to logs and metrics, draws the service map, and links logs and exemplars to traces."""
    sources = {source["uid"]: source for source in datasources(project)}
    tempo = sources["tempo"]["jsonData"]
    assert tempo["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert tempo["tracesToLogsV2"]["tags"] == [{"key": "service.name", "value": "service_name"}]
    assert tempo["tracesToMetrics"]["datasourceUid"] == "prometheus"
    assert tempo["serviceMap"] == {"datasourceUid": "prometheus"}
    assert tempo["nodeGraph"] == {"enabled": True}
    fields = {field["name"]: field for field in sources["loki"]["jsonData"]["derivedFields"]}
    assert fields["trace_id"]["datasourceUid"] == "tempo" and fields["trace_id"]["matcherType"] == "label"
    assert sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0] == {
        "name": "trace_id",
        "datasourceUid": "tempo",
        "urlDisplayLabel": "View trace",
    }


def test_grafana_turns_the_provisioned_links_into_its_own_template_strings(rendered):
    """It leaves ${__value.raw}, ${__tags}, ${__trace.traceId} to Grafana and fills in REPLAY_URL_PREFIX."""
    project, replay_prefix = rendered
    env_file = (project / "deploy" / "config" / "grafana.env").read_text(encoding="utf-8")
    environ = dict(line.split("=", 1) for line in env_file.splitlines() if line and not line.startswith("#"))
    assert environ["REPLAY_URL_PREFIX"] == replay_prefix
    text = (project / "deploy" / "config" / "grafana-datasources.yaml").read_text(encoding="utf-8")
    loaded = yaml.safe_load(grafana_expand(text, environ))["datasources"]
    sources = {source["uid"]: source for source in loaded}
    tempo, loki = sources["tempo"], sources["loki"]["jsonData"]["derivedFields"]

    assert tempo["jsonData"]["tracesToLogsV2"]["query"] == '{${__tags}} | trace_id="${__trace.traceId}"'
    assert all("{$__tags" in query["query"] for query in tempo["jsonData"]["tracesToMetrics"]["queries"])
    assert [field["url"] for field in loki] == ["${__value.raw}", replay_prefix + "${__value.raw}"]
    assert tempo["correlations"][0]["config"]["target"]["url"] == replay_prefix + "${sessionId}"


def test_the_session_replay_correlation_extracts_session_id_from_span_attributes(project):
    """It pulls session.id (not another attribute) out of Grafana's serialized span tags."""
    correlation = {s["uid"]: s for s in datasources(project)}["tempo"]["correlations"][0]
    transformation = correlation["config"]["transformations"][0]
    tags = json.dumps(
        [{"key": "http.route", "value": "/api/chat"}, {"key": "session.id", "value": "s-123"}],
        separators=(",", ":"),
    )
    assert correlation["type"] == "external" and transformation["mapValue"] == "sessionId"
    assert re.search(transformation["expression"], tags).group(1) == "s-123"


def test_the_rendered_grafana_files_are_byte_identical_to_the_template(project):
    """It copies dashboards and data sources verbatim: no Jinja touched {{http_route}} or ${...}."""
    for relative in ["deploy/config/grafana-datasources.yaml", "deploy/config/grafana-dashboards.yaml"] + [
        f"deploy/config/dashboards/{name}" for name in dashboards(project)
    ]:
        assert (project / relative).read_bytes() == (SCAFFOLD / relative).read_bytes(), relative
    red = (project / "deploy" / "config" / "dashboards" / "service-red.json").read_text(encoding="utf-8")
    assert '"legendFormat": "{{http_route}}"' in red and "[$__rate_interval]" in red


def test_the_rendered_static_configs_are_byte_identical_to_the_template(project):
    """It renders the Jinja-free component configs to the same bytes (one source, no surprises)."""
    static = ("tempo-config.yaml", "loki-config.yaml", "prometheus-config.yaml", "prometheus-rules.yaml")
    for name in (*static, "kustomization.yaml"):
        relative = f"deploy/config/{name}"
        assert (project / relative).read_bytes() == (SCAFFOLD / relative).read_bytes(), relative


def test_dashboards_are_grafana_dashboard_json_with_unique_panel_ids(project):
    """It gives each dashboard a uid, title and schemaVersion, each panel a unique id and a position."""
    boards = dashboards(project)
    assert set(boards) == {"service-red.json", "llm.json", "slo.json"}
    assert len({board["uid"] for board in boards.values()}) == len(boards)
    for name, board in boards.items():
        assert board["schemaVersion"] >= 39 and board["title"] and board["uid"], name
        panels = all_panels(board["panels"])
        ids = [panel["id"] for panel in panels]
        assert len(ids) == len(set(ids)), name
        assert all({"x", "y", "w", "h"} <= set(panel["gridPos"]) for panel in panels), name


def test_every_promql_query_parses_with_promtool(project, tmp_path):
    """It parses every dashboard and trace-to-metrics PromQL expression with promtool check rules."""
    queries = targets(project, "prometheus")
    tempo = {s["uid"]: s for s in datasources(project)}["tempo"]
    queries += [q["query"].replace("$$", "$") for q in tempo["jsonData"]["tracesToMetrics"]["queries"]]
    assert len(queries) > 15
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"query:{number}", "expr": substitute(query)} for number, query in enumerate(queries)
    ]}]}  # fmt: skip
    path = tmp_path / "queries.rules.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    completed = subprocess.run(
        [str(binary("promtool")), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"SUCCESS: {len(queries)} rules found" in completed.stdout


def test_promtool_rejects_a_broken_query_so_the_check_above_means_something(tmp_path):
    """It fails promtool on an unbalanced expression."""
    path = tmp_path / "broken.rules.yaml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "q", "expr": "sum(rate(x[5m])"}]}]})
    )
    completed = subprocess.run(
        [str(binary("promtool")), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert completed.returncode != 0


def test_every_logql_query_is_balanced_with_known_functions_and_stages(project):
    """It checks dashboard and trace-to-logs LogQL: brackets, label matchers, functions, pipeline stages."""
    queries = targets(project, "loki")
    tempo = {s["uid"]: s for s in datasources(project)}["tempo"]
    queries.append(
        tempo["jsonData"]["tracesToLogsV2"]["query"].replace("$${", "${").replace("${__tags}", "$__tags")
    )
    queries = [q.replace("${__trace.traceId}", "0af7651916cd43dd8448eb211c80319c") for q in queries]
    assert len(queries) >= 4
    assert {query: logql_problems(query) for query in queries} == {query: [] for query in queries}


def test_the_logql_check_catches_what_loki_refuses():
    """It reports an unclosed selector, a misspelt function, an unknown stage, an all-empty selector."""
    assert "unbalanced brackets" in logql_problems('{service_name="x" | json')
    assert "unknown function sum_over_tim" in logql_problems('sum_over_tim({a="b"} | unwrap x [5m])')
    assert "unknown pipeline stage jsn" in logql_problems('{a="b"} | jsn')
    assert logql_problems('{a=~".*"}') == [
        'no matcher of {a=~".*"} excludes the empty value (Loki refuses it)'
    ]
    assert logql_problems('{a=~".*", b!="x"}') and logql_problems('{a=""}') and logql_problems('{a!~".+"}')
    assert (
        logql_problems('{a=~".+"}') == logql_problems('{a=~".*", b="x"}') == logql_problems('{a!~""}') == []
    )


def test_every_traceql_query_is_balanced_with_known_attributes_and_functions(project):
    """It checks the dashboards' TraceQL: brackets, scoped attributes or intrinsics, functions."""
    queries = targets(project, "tempo")
    assert queries
    assert {query: traceql_problems(query) for query in queries} == {query: [] for query in queries}
    assert "unknown attribute or intrinsic service" in traceql_problems('{ service = "x" }')
    assert "unbalanced brackets" in traceql_problems("{ duration > 1s ")
