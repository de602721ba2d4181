"""Telemetry never breaks the app: with the collector gone, requests succeed just as fast.

Latency here is a ratio against OTEL_SDK_DISABLED=true in the same test, with a generous bound:
the exact overhead belongs to the benchmarks (bench/), not to a unit test.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import httpx
import pytest

from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import LOAD_TEST_LIMITS, clean_env, free_port, run_backend, run_stub_llm

pytestmark = pytest.mark.boot

REQUESTS = 60


def _post(client: httpx.Client, i: int) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.post("/api/chat", json={"conversation_id": f"r{i % 5}", "message": f"ping {i}"})
    return time.perf_counter() - started, response.status_code


def _drive(url: str) -> tuple[list[float], list[int]]:
    with httpx.Client(base_url=url, timeout=10) as client:
        results = [_post(client, i) for i in range(REQUESTS)]
    return [r[0] for r in results], [r[1] for r in results]


def _run(project: Path, python: Path, workdir: Path, llm_url: str, name: str, **env: str):
    base = clean_env(
        CEREBE_BASE_URL=llm_url, DATABASE_URL=f"sqlite:///{workdir / name}.db", **LOAD_TEST_LIMITS, **env
    )
    with run_backend(python, project, base, workdir / f"{name}.log") as backend:
        _drive(backend.url)  # warm-up: imports, connection pool, first-export attempts
        latencies, statuses = _drive(backend.url)
    return latencies, statuses, backend


def test_collector_down_costs_requests_nothing(
    default_project: Path, backend_python: Path, tmp_path: Path
) -> None:
    """OTLP port closed: all requests succeed, median latency stays near the SDK-disabled run.

    Both backends run at once and requests alternate between them (A B A B ...), so a load spike
    on this machine hits both sides alike.
    """
    closed = f"http://127.0.0.1:{free_port()}"
    results: dict[str, list[tuple[float, int]]] = {"off": [], "down": []}
    with (
        run_stub_llm(backend_python, default_project) as llm,
        run_backend(
            backend_python,
            default_project,
            clean_env(
                CEREBE_BASE_URL=llm.url,
                DATABASE_URL=f"sqlite:///{tmp_path / 'off.db'}",
                OTEL_SDK_DISABLED="true",
                **LOAD_TEST_LIMITS,
            ),
            tmp_path / "off.log",
        ) as off,
        run_backend(
            backend_python,
            default_project,
            clean_env(
                CEREBE_BASE_URL=llm.url,
                DATABASE_URL=f"sqlite:///{tmp_path / 'down.db'}",
                OTEL_EXPORTER_OTLP_ENDPOINT=closed,
                **LOAD_TEST_LIMITS,
            ),
            tmp_path / "down.log",
        ) as down,
        httpx.Client(base_url=off.url, timeout=10) as off_client,
        httpx.Client(base_url=down.url, timeout=10) as down_client,
    ):
        for i in range(-10, REQUESTS):  # the first ten of each are warm-up
            for name, client in (("off", off_client), ("down", down_client)):
                outcome = _post(client, i)
                if i >= 0:
                    results[name].append(outcome)
    assert {status for _, status in results["off"]} == {200}
    assert {status for _, status in results["down"]} == {200}
    median_off = statistics.median(t for t, _ in results["off"])
    median_down = statistics.median(t for t, _ in results["down"])
    ratio = median_down / median_off
    print(
        f"median latency: disabled {median_off * 1e3:.2f} ms, collector down {median_down * 1e3:.2f} ms, "
        f"ratio {ratio:.2f}"
    )
    assert ratio < 3.0, f"collector down made requests {ratio:.1f}x slower"

    output = down.output()
    assert "Traceback" not in output, output[-3000:]
    export_warnings = [line for line in output.splitlines() if "export" in line.lower() and "level" in line]
    print(f"stop took {down.stop_seconds:.1f} s; export lines: {len(export_warnings)}")
    assert_one_quiet_line_per_signal(output)
    assert down.stop_seconds < 15, "shutdown gives up on an unreachable collector within its deadline"


def assert_one_quiet_line_per_signal(output: str) -> None:
    """Collector down: each signal says so once (WARNING, no traceback); nothing else about
    exporting, no ERROR, and the shutdown did not wait for its flush deadline."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    telemetry = [line for line in lines if line["logger"].startswith(("opentelemetry", "app.telemetry"))]
    said = sorted(line["message"].split(" to ")[0] for line in telemetry)
    assert said == ["Cannot export logs", "Cannot export metrics", "Cannot export traces"], "\n".join(
        json.dumps(line) for line in telemetry
    )
    assert {line["level"] for line in telemetry} == {"warning"}
    assert not [line for line in telemetry if "exception" in line]


def test_slow_or_failing_collector_costs_requests_nothing(
    default_project: Path, backend_python: Path, tmp_path: Path
) -> None:
    """A collector answering 500, or hanging for 5 s, fails no request; the stop stays bounded."""
    with run_stub_llm(backend_python, default_project) as llm:
        for name, receiver in (("status500", OtlpReceiver(status=500)), ("slow", OtlpReceiver(delay=5.0))):
            with receiver:
                _, statuses, backend = _run(
                    default_project,
                    backend_python,
                    tmp_path,
                    llm.url,
                    name,
                    OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                    OTEL_BSP_SCHEDULE_DELAY="200",
                )
            assert set(statuses) == {200}, name
            assert "Traceback" not in backend.output(), backend.output()[-3000:]
            assert backend.stop_seconds < 15, name
