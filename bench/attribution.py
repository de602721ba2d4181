"""Where the request overhead goes: the scaffold with one telemetry part left out at a time.

    .venv/bin/python -m bench.attribution
All variants run at once, driven interleaved; CPU ms per request of each server process.
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench.common import backends, drive, median, prepare, stub_llm
from tests.support.otlp_receiver import OtlpReceiver

BENCH_DIR = Path(__file__).resolve().parent
PARTS = ["", "otlp-logs", "metrics", "db-spans", "httpx-spans"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--route", default="chat")
    args = parser.parse_args()
    project = prepare(Path(tempfile.mkdtemp(prefix="sage-attr-")))
    with ExitStack() as stack:
        receiver = stack.enter_context(OtlpReceiver())
        llm_url = stack.enter_context(stub_llm(project))
        command = [str(project.python), "-m", "uvicorn", "--app-dir", str(BENCH_DIR), "variant_app:app"]
        variants = {"disabled": {"OTEL_SDK_DISABLED": "true"}}
        for part in PARTS:
            variants[f"all but {part}" if part else "full"] = {
                "_command": command,
                "BENCH_LEAVE_OUT": part,
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            }
        booted = stack.enter_context(backends(project, variants, llm_url))
        for backend in booted.values():
            drive(backend, args.route, 100)
        cpu: dict[str, list[float]] = {name: [] for name in booted}
        for _ in range(args.rounds):
            for name, backend in booted.items():
                cpu[name].append(drive(backend, args.route, args.requests).cpu_ms_per_request)
    base = median(cpu["disabled"])
    full = median(cpu["full"])
    print(f"{'variant':24} {'CPU ms/req':>10} {'vs disabled':>12} {'part costs':>11}")
    for name, values in cpu.items():
        value = median(values)
        part = f"{full - value:11.2f}" if name.startswith("all but") else ""
        print(f"{name:24} {value:10.2f} {value - base:+12.2f} {part}")


if __name__ == "__main__":
    main()
