"""The real OpenTelemetry Collector and Prometheus 3 in tests, run with the rendered configs.

`make stack-bin` (stack/build.py; `make test` runs it first) builds `otelcol`, `prometheus` and
`promtool` into .cache/bin. Here they run as the stack runs them, with only their listening
addresses and the addresses of their peers overridden from outside:

    with run_collector([config], log, overrides={"exporters::otlp_grpc/tempo::endpoint": ...}) as col:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = col.http
    with run_prometheus(project, workdir) as prom:
        prom.query('sum(rate(http_server_request_duration_seconds_count[1m]))')

The collector's `--set` flags move its receivers, health check and self-metrics to free loopback
ports (the configs bind 0.0.0.0 for containers) and point its exporters at the test's stand-ins.
Prometheus runs the rendered config and rules with the flags of the rendered k8s Deployment;
only its listen address, storage path and (for alert tests) the evaluation interval differ.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.processes import free_port, wait_until_serving

TEMPLATE_DIR = Path(__file__).resolve().parents[2]
BIN = TEMPLATE_DIR / ".cache" / "bin"
# What the prod overlay's Secret (collector-credentials.yaml) gives the collector: dummies of the
# right shape, so `validate` sees the config as a cluster would.
PROD_ENV = {
    "GRAFANA_CLOUD_OTLP_ENDPOINT": "https://otlp-gateway.example.invalid/otlp",
    "GRAFANA_CLOUD_BASIC_AUTH": "MTIzNDU2OmdsY190ZXN0",
    "HIGHLIGHT_PROJECT_ID": "ve6y97ge",
}


def binary(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run `make stack-bin` (`make test` builds it first)")
    return path


def _stop(process: subprocess.Popen, grace: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the collector ----------------------------------------------------------------------------------


def collector_command(configs: list[Path]) -> list[str]:
    return [str(binary("otelcol")), *(f"--config={path}" for path in configs)]


def validate(configs: list[Path], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`otelcol validate` of configs merged as several --config merge them (as compose does)."""
    command = [str(binary("otelcol")), "validate", *(f"--config={path}" for path in configs)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, env={**PROD_ENV, **(env or {})}
    )


@dataclass
class Collector:
    process: subprocess.Popen
    grpc: str  # host:port of the OTLP gRPC receiver
    http: str  # http://host:port of the OTLP/HTTP receiver (the SDKs' OTEL_EXPORTER_OTLP_ENDPOINT)
    self_metrics: str  # its own Prometheus endpoint
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_collector(
    configs: list[Path],
    log_path: Path,
    *,
    overrides: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Collector]:
    """The real collector with `configs`, its own ports on loopback, `overrides` as --set flags."""
    grpc, http, health, telemetry = (free_port() for _ in range(4))
    listen = {
        "receivers::otlp::protocols::grpc::endpoint": f"127.0.0.1:{grpc}",
        "receivers::otlp::protocols::http::endpoint": f"127.0.0.1:{http}",
        "extensions::health_check::endpoint": f"127.0.0.1:{health}",
    }
    # A list cannot be --set by index: this replaces the one pull reader with one on loopback.
    reader = f"{{pull: {{exporter: {{prometheus: {{host: 127.0.0.1, port: {telemetry}}}}}}}}}"
    command = [
        *collector_command(configs),
        *(f"--set={key}={value}" for key, value in {**listen, **(overrides or {})}.items()),
        f"--config=yaml:service::telemetry::metrics::readers: [{reader}]",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**PROD_ENV, **(env or {})}
        )
    collector = Collector(
        process,
        f"127.0.0.1:{grpc}",
        f"http://127.0.0.1:{http}",
        f"http://127.0.0.1:{telemetry}/metrics",
        log_path,
    )
    try:
        wait_until_serving("otelcol", process, f"http://127.0.0.1:{health}/", collector.output)
        yield collector
    finally:
        _stop(process)


def sink_config(path: Path, receiver_endpoint: str) -> Path:
    """A collector that receives OTLP gRPC (as Tempo does) and forwards it as OTLP/HTTP to a test
    receiver, which decodes it: the Tempo stand-in (Tempo itself is AGPL and not built here)."""
    config = {
        "extensions": {"health_check": {"endpoint": "0.0.0.0:13133"}},
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}, "http": {}}}},
        "exporters": {"otlp_http/receiver": {"endpoint": receiver_endpoint}},
        "service": {
            "extensions": ["health_check"],
            "telemetry": {"metrics": {"readers": []}},
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp_http/receiver"]}},
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


# -- Prometheus -------------------------------------------------------------------------------------


def rendered_prometheus_args(project: Path) -> list[str]:
    """The container args of the rendered k8s Deployment (compose runs the same flags)."""
    manifest = project / "deploy" / "k8s" / "base" / "prometheus-deployment.yaml"
    deployment = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return list(container["args"])


@dataclass
class Prometheus:
    process: subprocess.Popen
    url: str
    log_path: Path

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30.0)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {response.status_code} {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """Instant query; raises on a PromQL error, returns the series (empty: no data)."""
        data = self.api("query", query=expr)
        return data["result"] if data["resultType"] == "vector" else [{"value": data["result"]}]

    def exemplars(self, expr: str, since: float) -> list[dict]:
        return self.api("query_exemplars", query=expr, start=since, end=time.time() + 60)

    def alerts(self) -> list[dict]:
        return self.api("alerts")["alerts"]

    def rule_groups(self) -> list[dict]:
        return self.api("rules")["groups"]

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_prometheus(
    project: Path, workdir: Path, *, evaluation_interval: str | None = None
) -> Iterator[Prometheus]:
    """Prometheus 3 with the rendered config, rules and flags; listening on a loopback port.

    `evaluation_interval` (e.g. "1s") shortens how often rules run, in a copy of the config that
    differs only there and in the rule file's absolute path; the rules file is the rendered one."""
    config_path = project / "deploy" / "config" / "prometheus-config.yaml"
    if evaluation_interval:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        config["global"]["evaluation_interval"] = evaluation_interval
        config["rule_files"] = [str(config_path.parent / name) for name in config["rule_files"]]
        config_path = workdir / "prometheus-config.yaml"
        config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    args = []
    for arg in rendered_prometheus_args(project):
        if arg.startswith("--config.file="):
            arg = f"--config.file={config_path}"
        elif arg.startswith("--storage.tsdb.path="):
            arg = f"--storage.tsdb.path={workdir / 'prometheus-data'}"
        args.append(arg)
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(binary("prometheus")), *args, f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    prometheus = Prometheus(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_until_serving("prometheus", process, f"{prometheus.url}/-/ready", prometheus.output)
        yield prometheus
    finally:
        _stop(process)
