"""1. Request overhead: (a) OTEL_SDK_DISABLED, (b) the scaffold's telemetry, (c) opentelemetry-instrument.

All variants run at once and are driven in interleaved rounds (a b c a b c ...); medians over rounds.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from bench.common import Project, backends, drive, median, stub_llm
from tests.support.otlp_receiver import OtlpReceiver

BENCH_DIR = Path(__file__).resolve().parent


def variants(project: Project, endpoint: str, ratio: str) -> dict[str, dict[str, str]]:
    instrument = str(project.python.parent / "opentelemetry-instrument")
    return {
        "a disabled": {"OTEL_SDK_DISABLED": "true"},
        "b scaffold": {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_SAMPLER_ARG": ratio},
        "c opentelemetry-instrument": {
            "_command": [
                instrument,
                str(project.python),
                "-m",
                "uvicorn",
                "--app-dir",
                str(BENCH_DIR),
                "auto_app:app",
            ],
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": "bench-auto",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": ratio,
            "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true",
        },
    }


def run(project: Project, rounds: int, requests: int, ratio: str = "1.0") -> list[dict]:
    """Rows: route, variant, req/s, p50, p99, CPU ms/req, failures (medians over rounds)."""
    with ExitStack() as stack:
        receiver = stack.enter_context(OtlpReceiver())
        llm_url = stack.enter_context(stub_llm(project))
        booted = stack.enter_context(backends(project, variants(project, receiver.endpoint, ratio), llm_url))
        for backend in booted.values():
            for route in ("chat", "bare"):
                drive(backend, route, 200)
        samples: dict[tuple[str, str], list] = {}
        for _ in range(rounds):
            for route in ("chat", "bare"):
                for name, backend in booted.items():
                    samples.setdefault((route, name), []).append(drive(backend, route, requests))
        assert not receiver.errors, receiver.errors[:3]
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
            }
        )
    return rows
