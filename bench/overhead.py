"""Request overhead of the scaffold's telemetry: throughput, latency and CPU ms per request.

Renders the template, boots the backend with real uvicorn against the stub LLM, and drives load
from this process (a separate process from the server). Variants run interleaved in rounds
(A B C A B C ...) because the machine is noisy; medians over rounds are reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import CACHE_DIR, render  # noqa: E402
from tests.support.otlp_receiver import OtlpReceiver  # noqa: E402
from tests.support.processes import (  # noqa: E402
    backend_requirements,
    clean_env,
    ensure_venv,
    run_backend,
    run_stub_llm,
)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (uvicorn runs the app in one process)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def drive(
    url: str, path: str, body: dict | None, requests: int, concurrency: int
) -> tuple[float, list[float]]:
    """Returns (wall seconds, latencies) for `requests` requests over `concurrency` connections."""
    latencies: list[float] = []

    def worker(count: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(count):
                started = time.perf_counter()
                if body is None:
                    response = client.get(path)
                else:
                    response = client.post(path, json={**body, "conversation_id": f"b{i % 20}"})
                latencies.append(time.perf_counter() - started)
                if response.status_code >= 500:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, [requests // concurrency] * concurrency))
    return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--sample-ratio", default="1.0")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="sage-bench-"))
    project = render(workdir / "render")
    python = ensure_venv(CACHE_DIR, backend_requirements(project / "backend" / "pyproject.toml"))
    routes = {"chat": ("/api/chat", {"message": "benchmark me"}), "bare": ("/api/conversations/none", None)}

    with ExitStack() as stack:
        receiver = stack.enter_context(OtlpReceiver())
        llm = stack.enter_context(run_stub_llm(python, project))
        common = {"CEREBE_BASE_URL": llm.url, "LOG_LEVEL": "INFO"}
        variants = {
            "a_disabled": {"OTEL_SDK_DISABLED": "true"},
            "b_scaffold": {
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_TRACES_SAMPLER_ARG": args.sample_ratio,
            },
        }
        backends = {
            name: stack.enter_context(
                run_backend(
                    python,
                    project,
                    clean_env(**common, **env, DATABASE_URL=f"sqlite:///{workdir / name}.db"),
                    workdir / f"{name}.log",
                )
            )
            for name, env in variants.items()
        }
        results: dict[tuple[str, str], list[dict]] = {}
        for backend in backends.values():  # warm-up
            for path, body in routes.values():
                drive(backend.url, path, body, 100, args.concurrency)
        for _ in range(args.rounds):
            for route, (path, body) in routes.items():
                for name, backend in backends.items():
                    cpu_before = cpu_seconds(backend.process.pid)
                    wall, latencies = drive(backend.url, path, body, args.requests, args.concurrency)
                    cpu = cpu_seconds(backend.process.pid) - cpu_before
                    latencies.sort()
                    results.setdefault((route, name), []).append(
                        {
                            "rps": len(latencies) / wall,
                            "p50": latencies[len(latencies) // 2] * 1e3,
                            "p99": latencies[int(len(latencies) * 0.99)] * 1e3,
                            "cpu_ms": cpu / len(latencies) * 1e3,
                        }
                    )
    print(f"{'route':6} {'variant':12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11}")
    for (route, name), rounds in results.items():
        med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        print(
            f"{route:6} {name:12} {med['rps']:8.1f} {med['p50']:8.2f} {med['p99']:8.2f} {med['cpu_ms']:11.2f}"
        )


if __name__ == "__main__":
    main()
