"""The collector configs: pinned contrib image, current component names, complete pipelines, Loki via OTLP."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import render
from tests.support.stack import run_collector, validate
from tests.test_deploy_manifests import kustomize

# Every config is checked by the real collector (tests/support/stack.py: stack/otelcol-builder.yaml's
# release, built by `make stack-bin`): `otelcol validate`, then a start with its ports on loopback.
# What the collector accepts is not all this file checks: which pipeline samples, which store gets
# each signal and which traces tail sampling keeps are the template's choices, asserted below.
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


def signal(pipeline: str) -> str:
    return pipeline.split("/", 1)[0]


def config_files(project: Path) -> dict[str, list[Path]]:
    """Each config as the collector is given it: the tail-sampling option as a second --config."""
    config_dir = project / "deploy" / "config"
    files = {
        LOCAL: [config_dir / "otel-collector-config.yaml"],
        LOCAL_TAIL_SAMPLING: [
            config_dir / "otel-collector-config.yaml",
            config_dir / "otel-collector-tail-sampling.yaml",
        ],
    }
    for path in sorted(
        (project / "deploy" / "k8s" / "overlays" / "prod").glob("otel-collector-config*.yaml")
    ):
        files[path.relative_to(project).as_posix()] = [path]
    return files


def test_every_config_is_accepted_by_the_real_collector(project):
    """`otelcol validate` of the pinned release accepts each config (--config merged as compose does)."""
    files = config_files(project)
    assert len(files) == 4
    for label, paths in files.items():
        result = validate(paths)
        assert result.returncode == 0, f"{label}: {result.stdout}{result.stderr}"


def test_validate_refuses_a_misspelt_key_and_an_unknown_component(project, tmp_path):
    """The check above can fail: one wrong key, or a component the build lacks, and validate says no."""
    base, overlay = config_files(project)[LOCAL_TAIL_SAMPLING]
    misspelt = tmp_path / "misspelt.yaml"
    misspelt.write_text(overlay.read_text().replace("decision_wait:", "decision_wiat:"))
    result = validate([base, misspelt])
    assert result.returncode != 0 and "decision_wiat" in result.stderr
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        base.read_text().replace("  span_metrics:\n", "  service_graph: {}\n  span_metrics:\n", 1)
    )
    result = validate([unknown])
    assert result.returncode != 0 and "service_graph" in result.stderr


def test_every_config_starts_on_the_real_collector_without_a_warning_about_itself(project, tmp_path):
    """Each config starts (OTTL conditions compile only at start) and logs no deprecated name."""
    for index, (label, paths) in enumerate(config_files(project).items()):
        log = tmp_path / f"collector-{index}.log"
        with run_collector(paths, log):
            pass
        output = log.read_text(errors="replace")
        assert "Everything is ready" in output, f"{label}:\n{output}"
        assert "deprecated" not in output.lower(), f"{label}:\n{output}"
        assert "please rewrite" not in output, f"{label}: OTTL paths without their context:\n{output}"
        assert "\terror\t" not in output, f"{label}:\n{output}"


def test_the_start_check_sees_a_deprecated_name(project, tmp_path):
    """The check above can fail: an old alias (otlphttp) starts but logs its deprecation."""
    (base,) = config_files(project)[LOCAL]
    old = tmp_path / "old-names.yaml"
    old.write_text(base.read_text().replace("otlp_http/loki", "otlphttp/loki"))
    log = tmp_path / "old.log"
    with run_collector([old], log):
        pass
    assert '"otlphttp" alias is deprecated' in log.read_text()


def test_the_pipelines_limit_memory_first_and_send_each_signal_to_its_store(project):
    """It limits memory before batching; traces go to Tempo, logs to Loki's /otlp, metrics to Prometheus."""
    config = local_config(project)
    pipelines = config["service"]["pipelines"]
    for pipeline in pipelines.values():
        assert pipeline["processors"] == ["memory_limiter", "batch"]
    assert config["exporters"]["otlp_grpc/tempo"]["endpoint"] == "tempo:4317"
    assert config["exporters"]["otlp_http/loki"]["endpoint"] == "http://loki:3100/otlp"
    assert config["exporters"]["otlp_http/prometheus"]["endpoint"] == "http://prometheus:9090/api/v1/otlp"
    assert pipelines["traces"]["exporters"][:2] == ["otlp_grpc/tempo", "span_metrics"]
    assert pipelines["metrics"]["receivers"] == ["otlp", "span_metrics"]
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


def test_tempo_generates_span_metrics_and_the_service_graph_and_remote_writes_them(project):
    """It enables service-graphs, span-metrics and local-blocks (the collector has no service_graph)."""
    tempo = yaml.safe_load((project / "deploy" / "config" / "tempo-config.yaml").read_text(encoding="utf-8"))
    generator = tempo["metrics_generator"]
    assert generator["storage"]["remote_write"] == [
        {"url": "http://prometheus:9090/api/v1/write", "send_exemplars": True}
    ]
    assert tempo["overrides"]["defaults"]["metrics_generator"]["processors"] == [
        "service-graphs",
        "span-metrics",
        "local-blocks",
    ]
    for label, config in collector_configs(project).items():
        assert not [name for name in config["connectors"] if name.startswith("service_graph")], label
    assert tempo["storage"]["trace"]["backend"] == "local"


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


def test_span_metrics_see_every_span_before_sampling(project):
    """It feeds span_metrics from the OTLP pipeline without tail_sampling; only one pipeline samples."""
    for label, config in sampling_configs(project).items():
        pipelines, connectors = config["service"]["pipelines"], config["connectors"]
        feeders = [n for n, p in pipelines.items() if "span_metrics" in p["exporters"]]
        assert feeders == ["traces"], label
        assert pipelines["traces"]["receivers"] == ["otlp"], label
        assert "tail_sampling" not in pipelines["traces"]["processors"], label
        assert pipelines["traces"]["exporters"] == ["span_metrics", "forward/sampling"], label
        sampled = pipelines["traces/sampled"]
        assert sampled["receivers"] == ["forward/sampling"] and sampled["processors"][0] == "tail_sampling", (
            label
        )
        assert [n for n, p in pipelines.items() if "tail_sampling" in p["processors"]] == ["traces/sampled"]
        stored = {
            n for n, p in pipelines.items() if signal(n) == "traces" and set(p["exporters"]) - set(connectors)
        }
        assert stored == {"traces/sampled"}, f"{label}: traces reach a store unsampled from {stored}"


def test_every_error_slow_trace_costly_llm_call_and_thumbs_down_is_kept(project):
    """It keeps ERROR traces, traces over 10 s, calls over 0.05 USD (llm.py's attribute), score -1."""
    llm = (project / "backend" / "app" / "telemetry" / "llm.py").read_text(encoding="utf-8")
    cost_attribute = re.search(r'GEN_AI_USAGE_COST = "([^"]+)"', llm).group(1)
    for label, config in sampling_configs(project).items():
        found = policies(config)
        assert found["errors"]["status_code"] == {"status_codes": ["ERROR"]}, label
        assert found["slow"]["latency"] == {"threshold_ms": 10000}, label
        assert found["costly-llm-call"]["ottl_condition"]["span"] == [
            f'span.attributes["{cost_attribute}"] > 0.05'
        ]
        assert found["negative-feedback"]["ottl_condition"]["span"] == [
            'span.attributes["app.feedback.score"] < 0'
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
        attribute = r'span\.attributes\["gen_ai\.conversation\.id"\]'
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
