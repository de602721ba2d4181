"""The collector configs: pinned contrib image, current component names, complete pipelines, Loki via OTLP."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import render
from tests.test_deploy_manifests import kustomize

# The collector image every manifest and compose file runs, and the component types this template
# uses, checked against that release: core otlp receiver, memory_limiter and batch processors,
# otlp_grpc / otlp_http exporters (renamed from otlp / otlphttp in core v0.144.0), forward
# connector; contrib health_check extension, tail_sampling processor, span_metrics (renamed from
# spanmetrics) and service_graph (renamed from servicegraph, contrib PR 47971, 2026-04)
# connectors. Add a type here only after checking that release's metadata.yaml of the component.
CONTRIB_VERSION = "0.165.0"
COLLECTOR_IMAGE = f"otel/opentelemetry-collector-contrib:{CONTRIB_VERSION}"
KNOWN_COMPONENTS = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch", "tail_sampling"},
    "exporters": {"otlp_grpc", "otlp_http", "debug"},
    "connectors": {"span_metrics", "service_graph", "forward"},
    "extensions": {"health_check"},
}
# (exporting pipeline's signal, receiving pipeline's signal) each connector type supports.
CONNECTOR_SIGNALS = {
    "forward": {("traces", "traces"), ("metrics", "metrics"), ("logs", "logs")},
    "span_metrics": {("traces", "metrics")},
    "service_graph": {("traces", "metrics")},
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


LOCAL = "deploy/config/otel-collector-config.yaml"
LOCAL_TAIL_SAMPLING = f"{LOCAL} + otel-collector-tail-sampling.yaml"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def merged(base: dict, overlay: dict) -> dict:
    """What the collector makes of two --config files: maps merge key by key, anything else
    (lists included) is replaced by the later file's value."""
    result = dict(base)
    for key, value in overlay.items():
        both_maps = isinstance(value, dict) and isinstance(base.get(key), dict)
        result[key] = merged(base[key], value) if both_maps else value
    return result


def collector_configs(project: Path) -> dict[str, dict]:
    """Every config a collector may run: local, local with tail sampling, and the prod ones."""
    config_dir = project / "deploy" / "config"
    configs = {LOCAL: load(config_dir / "otel-collector-config.yaml")}
    configs[LOCAL_TAIL_SAMPLING] = merged(
        configs[LOCAL], load(config_dir / "otel-collector-tail-sampling.yaml")
    )
    for path in sorted(
        (project / "deploy" / "k8s" / "overlays" / "prod").glob("otel-collector-config*.yaml")
    ):
        configs[path.relative_to(project).as_posix()] = load(path)
    return configs


def sampling_configs(project: Path) -> dict[str, dict]:
    return {label: config for label, config in collector_configs(project).items() if label != LOCAL}


def local_config(project: Path) -> dict:
    return collector_configs(project)[LOCAL]


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
    sampled = collector_configs(project)[LOCAL_TAIL_SAMPLING]["service"]["pipelines"]["traces/sampled"]
    assert ("otlp_http/highlight" in sampled["exporters"]) is highlight
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


# tail_sampling of CONTRIB_VERSION: option keys and policy types, from the processor's README and
# config.schema.yaml (contrib, processor/tailsamplingprocessor). No collector binary runs here, so
# the configs are checked against these lists instead of by `otelcol validate`.
TAIL_SAMPLING_OPTIONS = {
    "policies", "decision_wait", "decision_wait_after_root_received", "num_traces",
    "expected_new_traces_per_sec", "decision_cache", "sample_on_first_match", "block_on_overflow",
    "drop_pending_traces_on_shutdown", "maximum_trace_size_bytes", "sampling_strategy",
}  # fmt: skip
DECISION_CACHE_OPTIONS = {"sampled_cache_size", "non_sampled_cache_size"}
POLICY_OPTIONS = {
    "always_sample": set(),
    "latency": {"threshold_ms", "upper_threshold_ms"},
    "numeric_attribute": {"key", "min_value", "max_value", "invert_match"},
    "probabilistic": {"hash_salt", "sampling_percentage"},
    "status_code": {"status_codes"},
    "string_attribute": {"key", "values", "enabled_regex_matching", "cache_max_size", "invert_match"},
    "rate_limiting": {"spans_per_second"},
    "bytes_limiting": {"bytes_per_second", "burst_capacity"},
    "span_count": {"min_spans", "max_spans"},
    "trace_state": {"key", "values"},
    "boolean_attribute": {"key", "value", "invert_match"},
    "ottl_condition": {"error_mode", "span", "spanevent"},
    "and": {"and_sub_policy"},
    "drop": {"drop_sub_policy"},
    "not": {"not_sub_policy"},
    "composite": {"max_total_spans_per_second", "policy_order", "composite_sub_policy", "rate_allocation"},
}
# Types an `and` sub-policy may have (and_sub_policy_cfg): no nesting of and/drop/not/composite.
AND_SUB_POLICY_TYPES = set(POLICY_OPTIONS) - {"and", "drop", "not", "composite"}
STATUS_CODES = {"OK", "ERROR", "UNSET"}
OTTL_ERROR_MODES = {"ignore", "silent", "propagate"}
# OTTL converters the conditions may call (pkg/ottl/ottlfuncs of CONTRIB_VERSION).
OTTL_FUNCTIONS = {"FNV", "IsMatch", "Len", "Int", "Double", "String"}


def signal(pipeline: str) -> str:
    return pipeline.split("/", 1)[0]


def pipeline_graph_problems(config: dict) -> list[str]:
    """Connectors join pipelines of signals they support, each used on both ends; no cycles."""
    pipelines, connectors = config["service"]["pipelines"], config.get("connectors") or {}
    problems = [
        f"pipeline {name} is no signal"
        for name in pipelines
        if signal(name) not in {"traces", "metrics", "logs"}
    ]
    edges: dict[str, set[str]] = {name: set() for name in pipelines}
    for connector in connectors:
        sources = [name for name, p in pipelines.items() if connector in p["exporters"]]
        targets = [name for name, p in pipelines.items() if connector in p["receivers"]]
        if not sources or not targets:
            problems.append(
                f"connector {connector} must be an exporter of one pipeline and a receiver of another"
            )
        for source in sources:
            for target in targets:
                if (signal(source), signal(target)) not in CONNECTOR_SIGNALS[component_type(connector)]:
                    problems.append(f"{connector} cannot join {source} to {target}")
                edges[source].add(target)

    def cycle_from(name: str, path: tuple[str, ...]) -> list[str]:
        if name in path:
            return [" -> ".join([*path, name])]
        return [cycle for target in edges[name] for cycle in cycle_from(target, (*path, name))]

    return problems + [f"cycle {cycle}" for name in pipelines for cycle in cycle_from(name, ())]


def policy_problems(policy: dict, allowed: set[str]) -> list[str]:
    """Known type and option keys of one policy (and of its sub-policies), valid values."""
    kind, name = policy.get("type"), policy.get("name")
    if kind not in allowed:
        return [f"{name}: policy type {kind} is not allowed here"]
    problems = [f"{name}: unknown key {key}" for key in set(policy) - {"name", "type", kind}]
    options = policy.get(kind) or {}
    problems += [f"{name}: unknown {kind} option {key}" for key in set(options) - POLICY_OPTIONS[kind]]
    if kind == "status_code":
        problems += [f"{name}: status {code}" for code in set(options["status_codes"]) - STATUS_CODES]
    if kind == "ottl_condition":
        if options.get("error_mode") not in OTTL_ERROR_MODES:
            problems.append(f"{name}: error_mode {options.get('error_mode')}")
        for condition in options.get("span", []) + options.get("spanevent", []):
            problems += [f"{name}: {problem}" for problem in ottl_problems(condition)]
    if kind == "and":
        for sub in options["and_sub_policy"]:
            problems += policy_problems(sub, AND_SUB_POLICY_TYPES)
    return problems


def ottl_problems(condition: str) -> list[str]:
    """Balanced brackets and quotes, known converters, attributes by quoted key, a comparison."""
    plain = re.sub(r'"(?:[^"\\]|\\.)*"', '""', condition)
    problems = (
        [] if plain.count("(") == plain.count(")") and plain.count("[") == plain.count("]") else ["brackets"]
    )
    problems += [
        f"unknown converter {f}" for f in re.findall(r"\b([A-Za-z]+)\(", plain) if f not in OTTL_FUNCTIONS
    ]
    problems += [
        f"attribute without a quoted key: {a}"
        for a in re.findall(r"attributes\[([^\]]*)\]", plain)
        if a != '""'
    ]
    if not re.search(r"==|!=|<=|>=|<|>", plain):
        problems.append("no comparison")
    # OTTL's lexer reads `[-+]?\d+` as one Int token, parsed as int64.
    problems += [
        f"int {n} overflows int64"
        for n in re.findall(r"[-+]?\b\d+\b(?!\.)", plain)
        if not -(2**63) <= int(n) < 2**63
    ]
    return problems


def tail_sampling(config: dict) -> dict:
    return config["processors"]["tail_sampling"]


def policies(config: dict) -> dict[str, dict]:
    return {policy["name"]: policy for policy in tail_sampling(config)["policies"]}


def fnv1a_64_as_int64(text: str) -> int:
    """OTTL's FNV(): Go's hash/fnv New64a over the UTF-8 bytes, returned as int64."""
    value = 0xCBF29CE484222325
    for byte in text.encode():
        value = ((value ^ byte) * 0x100000001B3) % 2**64
    return value - 2**64 if value >= 2**63 else value


def test_connectors_join_pipelines_they_support_and_the_graph_has_no_cycle(project):
    """It finds every connector on both ends, between signals it supports, in an acyclic graph."""
    for label, config in collector_configs(project).items():
        assert pipeline_graph_problems(config) == [], label


def test_the_graph_check_catches_a_loop_and_a_one_ended_connector():
    """It reports a forward loop, a connector used only as an exporter, and a traces-to-logs join."""
    pipelines = {
        "traces": {"receivers": ["forward/a"], "processors": [], "exporters": ["forward/a", "span_metrics"]},
        "logs": {"receivers": ["span_metrics"], "processors": [], "exporters": ["forward/b"]},
    }
    connectors = {"forward/a": {}, "forward/b": {}, "span_metrics": {}}
    problems = pipeline_graph_problems({"connectors": connectors, "service": {"pipelines": pipelines}})
    assert "cycle traces -> traces" in problems
    assert any(p.startswith("connector forward/b") for p in problems)
    assert "span_metrics cannot join traces to logs" in problems


def test_span_metrics_and_the_service_graph_see_every_span_before_sampling(project):
    """It feeds the connectors from the OTLP pipeline without tail_sampling; only one pipeline samples."""
    for label, config in sampling_configs(project).items():
        pipelines, connectors = config["service"]["pipelines"], config["connectors"]
        feeders = [n for n, p in pipelines.items() if {"span_metrics", "service_graph"} & set(p["exporters"])]
        assert feeders == ["traces"], label
        assert pipelines["traces"]["receivers"] == ["otlp"], label
        assert "tail_sampling" not in pipelines["traces"]["processors"], label
        assert pipelines["traces"]["exporters"] == ["span_metrics", "service_graph", "forward/sampling"], (
            label
        )
        sampled = pipelines["traces/sampled"]
        assert sampled["receivers"] == ["forward/sampling"] and sampled["processors"][0] == "tail_sampling", (
            label
        )
        assert [n for n, p in pipelines.items() if "tail_sampling" in p["processors"]] == ["traces/sampled"]
        stored = {
            n for n, p in pipelines.items() if signal(n) == "traces" and set(p["exporters"]) - set(connectors)
        }
        assert stored == {"traces/sampled"}, f"{label}: traces reach a store unsampled from {stored}"


def test_the_tail_sampling_options_and_policies_are_those_of_the_pinned_release(project):
    """It uses only tail_sampling options, policy types and keys of contrib 0.165.0, with valid values."""
    for label, config in sampling_configs(project).items():
        options = tail_sampling(config)
        assert set(options) <= TAIL_SAMPLING_OPTIONS, label
        assert set(options.get("decision_cache", {})) <= DECISION_CACHE_OPTIONS, label
        assert re.fullmatch(r"\d+(ms|s|m)", options["decision_wait"]), label
        names = [policy["name"] for policy in options["policies"]]
        assert len(names) == len(set(names)), label
        assert [
            p for policy in options["policies"] for p in policy_problems(policy, set(POLICY_OPTIONS))
        ] == []


def test_the_policy_check_catches_unknown_types_keys_and_converters():
    """It reports a misspelt policy type, an option of another release, a nested and, an unknown converter."""
    assert policy_problems({"name": "a", "type": "status"}, set(POLICY_OPTIONS))
    assert policy_problems({"name": "b", "type": "latency", "latency": {"threshold": 5}}, set(POLICY_OPTIONS))
    nested = {
        "name": "c",
        "type": "and",
        "and": {"and_sub_policy": [{"name": "d", "type": "and", "and": {}}]},
    }
    assert policy_problems(nested, set(POLICY_OPTIONS))
    ottl = {
        "name": "e",
        "type": "ottl_condition",
        "ottl_condition": {"error_mode": "ignore", "span": ["Hash(x) > 1"]},
    }
    assert policy_problems(ottl, set(POLICY_OPTIONS)) == ["e: unknown converter Hash"]
    assert ottl_problems("FNV(name) < -9223372036854775809") == ["int -9223372036854775809 overflows int64"]


def test_every_error_slow_trace_costly_llm_call_and_thumbs_down_is_kept(project):
    """It keeps ERROR traces, traces over 10 s, calls over 0.05 USD (llm.py's attribute), score -1."""
    llm = (project / "backend" / "app" / "telemetry" / "llm.py").read_text(encoding="utf-8")
    cost_attribute = re.search(r'GEN_AI_USAGE_COST = "([^"]+)"', llm).group(1)
    for label, config in sampling_configs(project).items():
        found = policies(config)
        assert found["errors"]["status_code"] == {"status_codes": ["ERROR"]}, label
        assert found["slow"]["latency"] == {"threshold_ms": 10000}, label
        assert found["costly-llm-call"]["ottl_condition"]["span"] == [
            f'attributes["{cost_attribute}"] > 0.05'
        ]
        assert found["negative-feedback"]["ottl_condition"]["span"] == [
            'attributes["app.feedback.score"] < 0'
        ]
        assert not tail_sampling(config).get("sample_on_first_match"), label
        assert (
            tail_sampling(config)["decision_cache"]["sampled_cache_size"]
            > tail_sampling(config)["num_traces"]
        )


def test_the_rest_is_sampled_by_conversation_and_by_trace_id_when_there_is_none(project):
    """It keeps the same share of conversations (FNV-1a threshold) as of traces without one (trace id)."""
    for label, config in sampling_configs(project).items():
        found = policies(config)
        fallback = {sub["name"]: sub for sub in found["traces-without-conversation"]["and"]["and_sub_policy"]}
        assert fallback["no-conversation-id"]["string_attribute"] == {
            "key": "gen_ai.conversation.id", "values": [".+"],
            "enabled_regex_matching": True, "invert_match": True,
        }  # fmt: skip
        percentage = fallback["trace-id-ratio"]["probabilistic"]["sampling_percentage"]
        (condition,) = found["conversations"]["ottl_condition"]["span"]
        attribute = r'attributes\["gen_ai\.conversation\.id"\]'
        threshold = int(
            re.fullmatch(rf"{attribute} != nil and FNV\({attribute}\) < (-?\d+)", condition).group(1)
        )
        assert threshold == -(2**63) + (2**64 * percentage) // 100, label

    kept = [f"conversation-{n}" for n in range(20000) if fnv1a_64_as_int64(f"conversation-{n}") < threshold]
    assert abs(len(kept) / 20000 - percentage / 100) < 0.01
    assert fnv1a_64_as_int64("a") == 0xAF63DC4C8601EC8C - 2**64  # the FNV-1a 64 test vector of "a"


def test_every_sampling_config_samples_the_same_way(project):
    """It finds one tail_sampling block, byte for byte, in the local option and both prod configs."""
    blocks = {label: tail_sampling(config) for label, config in sampling_configs(project).items()}
    assert len(blocks) == 3 and all(block == blocks[LOCAL_TAIL_SAMPLING] for block in blocks.values())


def test_compose_and_k3d_ship_tail_sampling_as_an_option_and_prod_always_samples(project):
    """It ships the overlay to compose (COLLECTOR_OVERLAY) and k3d, off by default; prod always samples."""
    compose = yaml.safe_load((project / "docker-compose.yaml").read_text(encoding="utf-8"))["services"]
    collector = compose["otel-collector"]
    base, overlay = collector["command"]
    assert base == "--config=/etc/otelcol-contrib/otel-collector-config.yaml"
    mounted = {volume.split(":")[1] for volume in collector["volumes"]}
    default = re.fullmatch(r"--config=/etc/otelcol-contrib/\$\{COLLECTOR_OVERLAY:-([^}]+)\}", overlay).group(
        1
    )
    for chosen in (default, "otel-collector-tail-sampling.yaml"):
        assert f"/etc/otelcol-contrib/{chosen}" in mounted, chosen
    assert overlay.endswith("${COLLECTOR_OVERLAY:-otel-collector-config.yaml}")

    local = kustomize(project, "local")
    data = next(
        o["data"] for o in local if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("otel-")
    )
    assert set(data) == {"otel-collector-config.yaml", "otel-collector-tail-sampling.yaml"}
    deployment = next(
        o for o in local if o["kind"] == "Deployment" and o["metadata"]["name"] == "otel-collector"
    )
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == [base]

    prod = kustomize(project, "prod")
    data = next(
        o["data"] for o in prod if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("otel-")
    )
    assert set(data) == {"otel-collector-config.yaml"}
    assert "tail_sampling" in yaml.safe_load(data["otel-collector-config.yaml"])["processors"]
    api = next(o for o in prod if o["kind"] == "Deployment" and o["metadata"]["name"] == "api")
    env = {e["name"]: e.get("value") for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "1.0"
