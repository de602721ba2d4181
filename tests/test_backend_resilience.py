"""Telemetry never breaks the app: with the collector gone, requests succeed just as fast.

Latency here is a ratio against OTEL_SDK_DISABLED=true in the same test, with a generous bound:
the exact overhead belongs to the benchmarks (bench/), not to a unit test.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import httpx
import pytest

from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import clean_env, free_port, run_backend, run_stub_llm

pytestmark = pytest.mark.boot

REQUESTS = 60


def _drive(url: str) -> tuple[list[float], list[int]]:
    latencies, statuses = [], []
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(REQUESTS):
            started = time.perf_counter()
            response = client.post("/api/chat", json={"conversation_id": f"r{i % 5}", "message": f"ping {i}"})
            latencies.append(time.perf_counter() - started)
            statuses.append(response.status_code)
    return latencies, statuses


def _run(project: Path, python: Path, workdir: Path, llm_url: str, name: str, **env: str):
    base = clean_env(CEREBE_BASE_URL=llm_url, DATABASE_URL=f"sqlite:///{workdir / name}.db", **env)
    with run_backend(python, project, base, workdir / f"{name}.log") as backend:
        _drive(backend.url)  # warm-up: imports, connection pool, first-export attempts
        latencies, statuses = _drive(backend.url)
    return latencies, statuses, backend


def test_collector_down_costs_requests_nothing(
    default_project: Path, backend_python: Path, tmp_path: Path
) -> None:
    """OTLP port closed: all requests succeed, median latency stays near the SDK-disabled run."""
    closed = f"http://127.0.0.1:{free_port()}"
    with run_stub_llm(backend_python, default_project) as llm:
        off, off_status, _ = _run(default_project, backend_python, tmp_path, llm.url, "off", OTEL_SDK_DISABLED="true")
        down, down_status, backend = _run(
            default_project, backend_python, tmp_path, llm.url, "down", OTEL_EXPORTER_OTLP_ENDPOINT=closed
        )
    assert set(off_status) == {200} and set(down_status) == {200}
    ratio = statistics.median(down) / statistics.median(off)
    print(f"median latency: disabled {statistics.median(off) * 1e3:.2f} ms, collector down "
          f"{statistics.median(down) * 1e3:.2f} ms, ratio {ratio:.2f}")
    assert ratio < 3.0, f"collector down made requests {ratio:.1f}x slower"

    output = backend.output()
    assert "Traceback" not in output, output[-3000:]
    export_warnings = [line for line in output.splitlines() if "export" in line.lower() and "level" in line]
    assert len(export_warnings) <= 12, "one warning per kind of failure, not one per batch:\n" + "\n".join(
        export_warnings
    )
    print(f"stop took {backend.stop_seconds:.1f} s; export warnings: {len(export_warnings)}")
    assert backend.stop_seconds < 15, "shutdown gives up on an unreachable collector within its deadline"


def test_slow_or_failing_collector_costs_requests_nothing(
    default_project: Path, backend_python: Path, tmp_path: Path
) -> None:
    """A collector answering 500, or hanging for 5 s, fails no request; the stop stays bounded."""
    with run_stub_llm(backend_python, default_project) as llm:
        for name, receiver in (("status500", OtlpReceiver(status=500)), ("slow", OtlpReceiver(delay=5.0))):
            with receiver:
                _, statuses, backend = _run(
                    default_project, backend_python, tmp_path, llm.url, name,
                    OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="200",
                )
            assert set(statuses) == {200}, name
            assert "Traceback" not in backend.output(), backend.output()[-3000:]
            assert backend.stop_seconds < 15, name
