"""2. Backend trouble: the collector not listening, hanging 5 s, or answering 500/garbage.

Each fault runs beside a telemetry-disabled backend, driven interleaved for a sustained run; we
report p50/p99 against the disabled run, failures, and RSS growth extrapolated per 100k requests.
"""

from __future__ import annotations

from contextlib import ExitStack

from bench.common import Project, backends, drive, median, rss_mb, stub_llm
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import free_port

FAULTS = {
    "not listening": None,
    "hangs 5 s": {"delay": 5.0},
    "answers 500": {"status": 500},
    "answers garbage": {"garbage": True},
}


def run(project: Project, chunks: int, requests: int) -> list[dict]:
    rows = []
    for fault, receiver_options in FAULTS.items():
        with ExitStack() as stack:
            if receiver_options is None:
                endpoint = f"http://127.0.0.1:{free_port()}"
            else:
                endpoint = stack.enter_context(OtlpReceiver(**receiver_options)).endpoint
            llm_url = stack.enter_context(stub_llm(project))
            booted = stack.enter_context(
                backends(
                    project,
                    {
                        "disabled": {"OTEL_SDK_DISABLED": "true"},
                        "fault": {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint},
                    },
                    llm_url,
                )
            )
            for backend in booted.values():
                drive(backend, "chat", 100)
            loads: dict[str, list] = {name: [] for name in booted}
            rss_start: dict[str, float] = {}
            for chunk in range(chunks):
                for name, backend in booted.items():
                    loads[name].append(drive(backend, "chat", requests))
                if chunk == 0:  # queues are full by now: growth from here on is what would leak
                    rss_start = {name: rss_mb(b.process.pid) for name, b in booted.items()}
            rss_end = {name: rss_mb(b.process.pid) for name, b in booted.items()}
        total = chunks * requests
        measured = (chunks - 1) * requests
        for name in booted:
            rows.append(
                {
                    "fault": fault,
                    "variant": name,
                    "requests": total,
                    "failed": sum(load.failed for load in loads[name]),
                    "p50_ms": median([load.pct(0.50) for load in loads[name]]),
                    "p99_ms": median([load.pct(0.99) for load in loads[name]]),
                    "rss_mb": rss_end[name],
                    "rss_per_100k": (rss_end[name] - rss_start[name]) / measured * 100_000,
                    "stop_s": booted[name].stop_seconds or 0.0,
                }
            )
    return rows
