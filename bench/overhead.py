"""1. Request overhead of each way to wire telemetry into the same app.

(a) OTEL_SDK_DISABLED; (b) the scaffold's telemetry; (c) `opentelemetry-instrument` as commonly
run, and (c=) at equal coverage (the same signals as (b): FastAPI, httpx and SQLAlchemy spans,
metrics, OTLP logs with trace correlation, one stdout JSON line per record, GenAI spans and cost);
(d) the floor: (b) creating every span, metric point and log record but exporting nothing
(bench/floor_app.py); (e) (b) plus the direct-to-Loki push (LOKI_URL).
All variants run at once and are driven in interleaved rounds, the order turned by one each round
(a b c c= d e, b c c= d e a, ...); medians over rounds, targets from per-round pairs.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from bench.common import Project, backends, drive, median, stub_llm
from tests.support.loki_receiver import LokiReceiver
from tests.support.otlp_receiver import OtlpReceiver

BENCH_DIR = Path(__file__).resolve().parent

DISABLED = "a disabled"
SCAFFOLD = "b scaffold"
AUTO = "c opentelemetry-instrument"
AUTO_EQUAL = "c= opentelemetry-instrument, equal coverage"
FLOOR = "d floor (exports nothing)"
LOKI = "e scaffold + direct Loki"


def _bench_app(project: Project, module: str) -> list[str]:
    return [str(project.python), "-m", "uvicorn", "--app-dir", str(BENCH_DIR), f"{module}:app"]


def _auto(project: Project, endpoint: str, ratio: str) -> dict[str, str]:
    instrument = str(project.python.parent / "opentelemetry-instrument")
    return {
        "_command": [instrument, *_bench_app(project, "auto_app")],
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": "bench-auto",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": ratio,
        "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true",
    }


def _auto_equal(project: Project, endpoint: str, ratio: str) -> dict[str, str]:
    """What a user of plain auto-instrumentation sets to get what the scaffold records.

    OTLP logs come from the logging instrumentation's handler (the scaffold's), not the SDK's
    deprecated one (OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED). The ASGI receive/send
    sub-spans stay on: no environment variable turns them off (exclude_spans is an argument only).
    """
    env = {
        **_auto(project, endpoint, ratio),
        "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": "healthz,metrics,api/replay/",
        "OTEL_PYTHON_LOG_CORRELATION": "true",
        "OTEL_SEMCONV_STABILITY_OPT_IN": "http,database",
        "BENCH_AUTO_EQUAL": "1",
    }
    del env["OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED"]
    return env


def variants(project: Project, endpoint: str, ratio: str, loki_url: str) -> dict[str, dict[str, str]]:
    scaffold = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_SAMPLER_ARG": ratio}
    return {
        DISABLED: {"OTEL_SDK_DISABLED": "true"},
        SCAFFOLD: scaffold,
        AUTO: _auto(project, endpoint, ratio),
        AUTO_EQUAL: _auto_equal(project, endpoint, ratio),
        FLOOR: {**scaffold, "_command": _bench_app(project, "floor_app")},
        LOKI: {**scaffold, "LOKI_URL": loki_url},
    }


def run(project: Project, rounds: int, requests: dict[str, int], ratio: str = "1.0") -> list[dict]:
    """Rows: route, variant, req/s, p50, p99, CPU ms/req, failures (medians over rounds), and each
    round's req/s and CPU ms/req (`round_rps`, `round_cpu_ms`, in round order: each round drives
    every variant once, so comparisons pair round i with round i). `requests`: per round, by route."""
    with ExitStack() as stack:
        receiver = stack.enter_context(OtlpReceiver())
        loki = stack.enter_context(LokiReceiver())
        llm_url = stack.enter_context(stub_llm(project))
        booted = stack.enter_context(
            backends(project, variants(project, receiver.endpoint, ratio, loki.url), llm_url)
        )
        for backend in booted.values():
            for route in ("chat", "bare"):
                drive(backend, route, 200)
        samples: dict[tuple[str, str], list] = {}
        names = list(booted)
        for round_ in range(rounds):
            # The order turns by one each round: a variant's exports arrive (and are decoded by
            # this process's receiver) while the next one is driven, so a fixed order would always
            # hand the same variant the heaviest predecessor's leftovers ((c=) before (d)).
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for route in ("chat", "bare"):
                for name in order:
                    samples.setdefault((route, name), []).append(drive(booted[name], route, requests[route]))
        assert not receiver.errors, receiver.errors[:3]
        assert loki.entries(), "variant (e) pushed nothing to Loki"
    rows = []
    for (route, name), loads in samples.items():
        rows.append(
            {
                "route": route,
                "variant": name,
                "sampling": ratio,
                "rps": median([load.rps for load in loads]),
                "p50_ms": median([load.pct(0.50) for load in loads]),
                "p99_ms": median([load.pct(0.99) for load in loads]),
                "cpu_ms": median([load.cpu_ms_per_request for load in loads]),
                "failed": sum(load.failed for load in loads),
                "round_rps": [load.rps for load in loads],
                "round_cpu_ms": [load.cpu_ms_per_request for load in loads],
            }
        )
    return rows
