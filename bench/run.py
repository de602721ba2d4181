"""Run every benchmark, print a table, write docs/PERFORMANCE.md.

.venv/bin/python -m bench.run            # or: make bench
.venv/bin/python -m bench.run --quick    # fewer rounds, for a smoke run
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

from bench import faults, overhead, shutdown, startup
from bench.common import ROOT
from tests.support.loki_receiver import LokiReceiver


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.platform()}"


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    head = "| " + " | ".join(title for _, title, _ in columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(format(row[key], fmt) for key, _, fmt in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "PERFORMANCE.md")
    args = parser.parse_args()
    rounds, requests = (2, 200) if args.quick else (5, 600)

    workdir = Path(tempfile.mkdtemp(prefix="sage-bench-"))
    sections = []
    rows, project = startup.run(workdir / "startup", renders=3 if args.quick else 5)
    startup_rows = rows

    rows = overhead.run(project, rounds, requests, "1.0") + overhead.run(project, rounds, requests, "0.1")
    columns = [
        ("route", "route", ""),
        ("variant", "variant", ""),
        ("sampling", "sampling", ""),
        ("rps", "req/s", ".1f"),
        ("p50_ms", "p50 ms", ".2f"),
        ("p99_ms", "p99 ms", ".2f"),
        ("cpu_ms", "CPU ms/req", ".2f"),
        ("failed", "failed", "d"),
    ]
    sections.append(("1. Request overhead", table(rows, columns)))

    rows = faults.run(project, chunks=2 if args.quick else 5, requests=200 if args.quick else 1000)
    columns = [
        ("fault", "collector", ""),
        ("variant", "variant", ""),
        ("requests", "requests", "d"),
        ("failed", "failed", "d"),
        ("p50_ms", "p50 ms", ".2f"),
        ("p99_ms", "p99 ms", ".2f"),
        ("rss_mb", "RSS MB", ".1f"),
        ("rss_per_100k", "RSS growth MB/100k req", ".1f"),
        ("stop_s", "stop s", ".1f"),
    ]
    sections.append(("2. Collector trouble", table(rows, columns)))

    with LokiReceiver() as loki:
        result = subprocess.run(
            [
                str(project.python),
                str(ROOT / "bench" / "logging_cost.py"),
                loki.url,
                "2000" if args.quick else "20000",
            ],
            cwd=project.path / "backend",
            env={**os.environ, "PYTHONPATH": str(project.path / "backend")},
            capture_output=True,
            text=True,
            check=True,
        )
        logging_result = json.loads(result.stdout.strip().splitlines()[-1])
        delivered = len(loki.entries())
    logging_result["delivered"] = delivered
    logging_result["delivered_per_s"] = delivered / logging_result["emit_seconds"]
    logging_result["ratio"] = logging_result["scaffold_chain_us"] / logging_result["plain_json_us"]
    columns = [
        ("plain_json_us", "plain JSON µs/call", ".1f"),
        ("scaffold_chain_us", "scaffold chain µs/call", ".1f"),
        ("ratio", "ratio", ".2f"),
        ("scaffold_chain_with_loki_us", "+ Loki µs/call", ".1f"),
        ("emitted", "emitted (5 s)", "d"),
        ("delivered_per_s", "delivered to Loki /s", ".0f"),
        ("dropped", "dropped", "d"),
        ("max_rss_growth_mb", "max RSS growth MB", ".1f"),
    ]
    sections.append(("3. Logging", table([logging_result], columns)))

    rows = shutdown.run(project)
    columns = [
        ("finished", "finished requests", "d"),
        ("exported", "their spans exported", "d"),
        ("lost", "lost", "d"),
        ("stop_s", "stop s", ".1f"),
    ]
    sections.append(("4. Shutdown under load (SIGTERM)", table(rows, columns)))

    columns = [
        ("render_all_on_s", "render, all options on (s)", ".2f"),
        ("render_s", "render + cached venv (s)", ".2f"),
        ("boot_s", "... + boot (s)", ".2f"),
        ("first_span_s", "... + first span received (s)", ".2f"),
    ]
    sections.append(("5. Render time and time to first trace", table(startup_rows, columns)))

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    header = (
        f"# Performance\n\nMeasured {datetime.date.today()} on {machine()}, template commit "
        f"{commit.stdout.strip() or '?'}, with `python -m bench.run{' --quick' if args.quick else ''}`.\n"
    )
    text = header + "".join(f"\n## {title}\n\n{body}\n" for title, body in sections)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
