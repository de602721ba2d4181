"""2. Backend trouble: the collector not listening, hanging 5 s, or answering 500/garbage.

Each fault runs beside a telemetry-disabled backend, driven interleaved for a sustained run; we
report p50/p99 against the disabled run, failures, and RSS after every chunk of requests. The span
and log queues (2,048 each) fill within the first ~1,000 chat requests (six spans and two log
records each); what RSS still gains over the second half of a longer run is what would leak.

.venv/bin/python -m bench.faults --chunks 20 --requests 1000   # the long run: does RSS level off?
"""

from __future__ import annotations

import argparse
import json
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench.common import Project, backends, drive, median, prepare, rss_mb, stub_llm
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import free_port

FAULTS = {
    "not listening": None,
    "hangs 5 s": {"delay": 5.0},
    "answers 500": {"status": 500},
    "answers garbage": {"garbage": True},
}


def run(project: Project, chunks: int, requests: int, faults: tuple[str, ...] = tuple(FAULTS)) -> list[dict]:
    """Rows per fault and variant; `rss_series`: RSS MB after each chunk of `requests`."""
    rows = []
    for fault in faults:
        receiver_options = FAULTS[fault]
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
            series: dict[str, list[float]] = {name: [] for name in booted}
            for _ in range(chunks):
                for name, backend in booted.items():
                    loads[name].append(drive(backend, "chat", requests))
                    series[name].append(round(rss_mb(backend.process.pid), 1))
        half = chunks // 2 - 1  # the reading half-way: from there to the end is the second half
        for name in booted:
            rows.append(
                {
                    "fault": fault,
                    "variant": name,
                    "requests": chunks * requests,
                    "failed": sum(load.failed for load in loads[name]),
                    "p50_ms": median([load.pct(0.50) for load in loads[name]]),
                    "p99_ms": median([load.pct(0.99) for load in loads[name]]),
                    "rss_first_mb": series[name][0],
                    "rss_mb": series[name][-1],
                    "rss_second_half_mb": series[name][-1] - series[name][half],
                    "rss_series": series[name],
                    "stop_s": booted[name].stop_seconds or 0.0,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="RSS of a backend whose collector is in trouble")
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1000, help="chat requests per chunk")
    parser.add_argument("--fault", choices=list(FAULTS), default="not listening")
    args = parser.parse_args()
    project = prepare(Path(tempfile.mkdtemp(prefix="sage-faults-")))
    for row in run(project, args.chunks, args.requests, (args.fault,)):
        print(json.dumps({key: row[key] for key in ("variant", "requests", "failed", "rss_series")}))


if __name__ == "__main__":
    main()
