"""Where the time goes: py-spy on the live backend under load, CPU µs per request per component.

    .venv/bin/python -m bench.profile                          # chat and bare, sampling 1.0 and 0.1
    .venv/bin/python -m bench.profile --route chat --sampling 1.0 --seconds 30
    .venv/bin/python -m bench.profile --from out.txt --cpu-us 9800   # re-group a saved py-spy run

Boots the rendered scaffold at each sampling ratio and a telemetry-disabled twin, measures each
one's CPU per request without the profiler (interleaved, /proc, all threads), then samples every
thread of each server with `py-spy record --gil --format raw --full-filenames` while the bench's
load (bench/common.py) runs. `--gil` keeps only samples of the thread holding the GIL, i.e. Python
running (threads parked in epoll, queues or sqlite do not count, which py-spy's idle detection
misses on a loaded machine). Each sample is given to one component (COMPONENTS, by module
prefix); a component's µs per request is its share of the samples times the unprofiled CPU per
request (py-spy slows the target 2-3x here). Export threads (batch span/log processors, the
metric reader) count: their CPU is part of CPU per request. Native CPU outside the GIL (sqlite,
uvloop) is spread over all rows by this scaling, so the telemetry rows lean high.

How a sample is attributed (`classify`): on the request path, the component is the first
telemetry frame below the innermost frame of the app or its frameworks (the call into telemetry;
the SDK, stdlib and wrapt frames beneath it belong to the caller); a stack with no telemetry frame
below the app's is "not telemetry". Metric SDK frames anywhere under that call make it
"<component>: metrics". Threads with no app frame at all are export threads, named by the most
specific exporter/processor frame on the stack. Re-run after a restructure: only COMPONENTS
(module prefixes) may need a new line.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from bench.common import (
    CACHE_DIR,
    Backend,
    backends,
    cpu_seconds,
    drive,
    ensure_venv,
    median,
    prepare,
    stub_llm,
)
from tests.support.otlp_receiver import OtlpReceiver

PY_SPY = ["py-spy==0.4.1"]

# Module prefix -> component, most specific first. Request-path telemetry is named by the module
# that the app (or its framework) called into.
COMPONENTS: list[tuple[str, str]] = [
    ("opentelemetry.instrumentation.sqlalchemy:pool", "SQLAlchemy pool metrics"),
    ("opentelemetry.instrumentation.sqlalchemy:usage", "SQLAlchemy pool metrics"),
    ("opentelemetry.instrumentation.sqlalchemy:connect", "SQLAlchemy connect spans"),
    ("opentelemetry.instrumentation.sqlalchemy", "SQLAlchemy statement spans"),
    ("opentelemetry.instrumentation.httpx", "httpx CLIENT span"),
    ("opentelemetry.instrumentation.asgi", "HTTP server span + middleware"),
    ("opentelemetry.instrumentation.fastapi", "HTTP server span + middleware"),
    ("app.telemetry.traces", "HTTP server span + middleware"),
    ("app.telemetry.replay", "HTTP server span + middleware"),
    ("genai_prices", "GenAI cost lookup (genai-prices)"),
    ("app.telemetry.llm", "GenAI span + util-genai"),
    ("opentelemetry.util.genai", "GenAI span + util-genai"),
    ("app.telemetry.logs:emit", "OTLP LogRecord construction"),
    ("opentelemetry.instrumentation.logging", "OTLP LogRecord construction"),
    ("opentelemetry.sdk._logs", "OTLP LogRecord construction"),
    ("app.telemetry.loki", "Loki handler (enqueue)"),
    ("app.telemetry.scrubbing", "scrubbing"),
    ("app.telemetry.logs", "stdout JSON log formatting"),
    ("opentelemetry.sdk.metrics", "metrics (direct)"),
    ("opentelemetry.metrics", "metrics (direct)"),
    ("opentelemetry.sdk.trace", "spans (SDK, other)"),
    ("opentelemetry.trace", "trace API / context"),
    ("opentelemetry.context", "trace API / context"),
    ("opentelemetry.propagate", "trace API / context"),
    ("opentelemetry", "other OpenTelemetry"),
]
# Threads with no app frame: the most specific of these on the stack names the thread's work.
EXPORT_THREADS: list[tuple[str, str]] = [
    ("app.telemetry.scrubbing", "export: scrubbing (span exporter wrapper)"),
    ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "export: spans (OTLP encode + HTTP)"),
    ("opentelemetry.exporter.otlp.proto.http._log_exporter", "export: logs (OTLP encode + HTTP)"),
    ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "export: metrics (OTLP encode + HTTP)"),
    ("opentelemetry.sdk.metrics", "export: metric reader (collect)"),
    ("app.telemetry.loki", "export: Loki pusher"),
    ("opentelemetry.exporter.otlp.proto.common", "export: other OpenTelemetry threads"),
    ("opentelemetry.sdk._shared_internal", "export: batch processors (queue, wait)"),
    ("opentelemetry", "export: other OpenTelemetry threads"),
]
# Frames that belong to whoever called them: they neither host nor start a telemetry call.
NEUTRAL = (
    "wrapt",
    "logging",
    "json",
    "threading",
    "re",
    "functools",
    "contextlib",
    "contextvars",
    "typing",
    "enum",
    "abc",
    "weakref",
    "queue",
    "copy",
    "decimal",
    "dataclasses",
    "collections",
    "importlib",
    "inspect",
    "os",
    "posixpath",
    "genericpath",
    "traceback",
    "linecache",
    "encodings",
    "time",
    "random",
    "uuid",
    "codecs",
    "io",
    "string",
    "_weakrefset",
    "selectors",
    "socket",
    "ssl",
    "http",
    "urllib",
    "email",
    "pydantic",
    "pydantic_core",
    "google.protobuf",
)
NOT_TELEMETRY = "not telemetry (app, framework, server, stdlib)"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def module_of(path: str) -> str:
    """Dotted module of a source path: site-packages/opentelemetry/sdk/trace/__init__.py ->
    opentelemetry.sdk.trace; backend/app/telemetry/logs.py -> app.telemetry.logs."""
    path = path.replace("\\", "/")
    for marker in ("/site-packages/", "/backend/", "/lib/python3."):
        if marker in path:
            path = path.rsplit(marker, 1)[1]
            if marker == "/lib/python3.":
                path = path.split("/", 1)[1] if "/" in path else path
            break
    path = path.removesuffix(".py").removesuffix("/__init__")
    return path.strip("/").replace("/", ".")


def _match(module: str, func: str, table: list[tuple[str, str]]) -> str | None:
    for prefix, name in table:
        prefix_module, _, func_hint = prefix.partition(":")
        if (module == prefix_module or module.startswith(prefix_module + ".")) and func_hint in func.lower():
            return name
    return None


def _neutral(module: str) -> bool:
    return module.split(".", 1)[0] in NEUTRAL or module.startswith("<") or module == ""


def _is_telemetry(module: str) -> bool:
    return module.startswith(("opentelemetry", "app.telemetry", "genai_prices"))


def classify(frames: list[tuple[str, str]]) -> str:
    """The component of one stack, root first: [(module, function), ...]."""
    rooted = [(m, f) for m, f in frames if not _neutral(m)]
    if not rooted:
        return NOT_TELEMETRY
    if _is_telemetry(rooted[0][0]):  # a thread telemetry started: its CPU is export cost
        for module, _ in reversed(frames):
            name = next((n for p, n in EXPORT_THREADS if module == p or module.startswith(p + ".")), None)
            if name is not None and not name.startswith("export: other"):
                return name
        return "export: other OpenTelemetry threads"
    hosts = [i for i, (module, _) in enumerate(frames) if not _is_telemetry(module) and not _neutral(module)]
    below = frames[hosts[-1] + 1 :]
    entry = next(((m, f) for m, f in below if _is_telemetry(m)), None)
    if entry is None:
        return NOT_TELEMETRY
    name = _match(*entry, COMPONENTS) or "other OpenTelemetry"
    if any(m.startswith(("opentelemetry.sdk.metrics", "opentelemetry.metrics")) for m, _ in below):
        if not name.startswith("metrics") and "pool metrics" not in name:
            name += ": metrics"
    # The cost lookup is reached through the GenAI span's code: name it on its own.
    if name.startswith("GenAI span") and any(m.startswith("genai_prices") for m, _ in below):
        name = "GenAI cost lookup (genai-prices)"
    return name


def parse_frame(text: str) -> tuple[str, str]:
    match = _FRAME.match(text.strip())
    if not match:
        return "", text.strip()
    return module_of(match["file"]), match["func"]


def read_samples(path: Path) -> Counter[str]:
    """Samples per component from a py-spy `raw` (collapsed stacks) or `speedscope` file."""
    text = path.read_text()
    counts: Counter[str] = Counter()
    if text.lstrip().startswith("{"):
        doc = json.loads(text)
        frames = [
            (module_of(frame.get("file", "")), frame.get("name", "")) for frame in doc["shared"]["frames"]
        ]
        for profile in doc["profiles"]:
            weights = profile.get("weights") or [1] * len(profile["samples"])
            for stack, weight in zip(profile["samples"], weights, strict=True):
                counts[classify([frames[i] for i in stack])] += weight
        return counts
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [parse_frame(part) for part in stack.split(";")]
        frames = [f for f in frames if f[0] or not f[1].startswith(("process ", "thread "))]
        counts[classify(frames)] += int(count)
    return counts


def breakdown(counts: Counter[str], cpu_us_per_request: float) -> list[dict]:
    """Rows (component, share, µs/request), largest first; shares of all samples."""
    total = sum(counts.values()) or 1
    rows = [
        {"component": name, "share": n / total, "us": n / total * cpu_us_per_request}
        for name, n in counts.most_common()
    ]
    return rows


def py_spy() -> Path:
    return ensure_venv(CACHE_DIR, PY_SPY).parent / "py-spy"


def profile_backend(backend: Backend, route: str, seconds: float, out: Path, rate: int = 100) -> dict:
    """py-spy on `backend` for `seconds` while the bench load runs; CPU and requests of the window."""
    recorder = subprocess.Popen(
        [
            str(py_spy()),
            "record",
            "--pid",
            str(backend.process.pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--full-filenames",
            "--gil",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # The load runs for as long as py-spy records (it attaches within milliseconds); the rows are
    # scaled to the unprofiled CPU per request, so the window only needs to cover the recording.
    served, cpu_start, started = 0, cpu_seconds(backend.process.pid), time.perf_counter()
    while recorder.poll() is None and time.perf_counter() - started < seconds - 0.5:
        load = drive(backend, route, 100)
        served += load.ok + load.failed
    cpu = cpu_seconds(backend.process.pid) - cpu_start
    _, err = recorder.communicate(timeout=60)
    if recorder.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
    return {"requests": served, "cpu_us_per_request": cpu / max(1, served) * 1e6}


def unprofiled_cpu_us(
    booted: dict[str, Backend], route: str, rounds: int = 3, requests: int = 200
) -> dict[str, float]:
    """CPU µs per request of each backend without py-spy attached, interleaved (medians)."""
    samples: dict[str, list[float]] = {name: [] for name in booted}
    for _ in range(rounds):
        for name, backend in booted.items():
            samples[name].append(drive(backend, route, requests).cpu_ms_per_request * 1e3)
    return {name: median(values) for name, values in samples.items()}


def profile_runs(routes: list[str], ratios: list[str], seconds: float, workdir: Path) -> list[dict]:
    """Per route: unprofiled CPU of each variant, then py-spy on each in turn; one result per
    (route, sampling), its rows scaled to the unprofiled CPU per request (py-spy slows the target)."""
    project = prepare(workdir)
    results = []
    with ExitStack() as stack:
        receiver = stack.enter_context(OtlpReceiver())
        llm_url = stack.enter_context(stub_llm(project))
        variants = {"disabled": {"OTEL_SDK_DISABLED": "true"}}
        for ratio in ratios:
            variants[f"scaffold {ratio}"] = {
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_TRACES_SAMPLER_ARG": ratio,
            }
        booted = stack.enter_context(backends(project, variants, llm_url))
        for backend in booted.values():
            for route in routes:
                drive(backend, route, 200)
        for route in routes:
            cpu = unprofiled_cpu_us(booted, route)
            windows, counts = {}, {}
            for name, backend in booted.items():
                out = workdir / f"py-spy-{route}-{name.replace(' ', '-')}.txt"
                windows[name] = {**profile_backend(backend, route, seconds, out), "file": str(out)}
                counts[name] = read_samples(out)
            base = counts["disabled"]
            base_per_request = sum(base.values()) / windows["disabled"]["requests"]
            for name in booted:
                if name == "disabled":
                    continue
                per_request = sum(counts[name].values()) / windows[name]["requests"]
                # Samples per request above the disabled run's that no telemetry frame holds:
                # the app and framework doing more (GC, context copies) because telemetry is on.
                indirect = counts[name][NOT_TELEMETRY] / windows[name]["requests"] - base_per_request
                results.append(
                    {
                        "route": route,
                        "sampling": name.split()[1],
                        "disabled_cpu_us": cpu["disabled"],
                        "cpu_us_per_request": cpu[name],
                        "profiled_cpu_us_per_request": windows[name]["cpu_us_per_request"],
                        "requests": windows[name]["requests"],
                        "file": windows[name]["file"],
                        "indirect_us": indirect / per_request * cpu[name],
                        "rows": breakdown(counts[name], cpu[name]),
                    }
                )
    return results


def print_table(result: dict) -> None:
    added = result["cpu_us_per_request"] - result.get("disabled_cpu_us", 0.0)
    print(
        f"\n{result.get('route', '?')} @ sampling {result.get('sampling', '?')}: "
        f"{result['cpu_us_per_request']:.0f} µs CPU/request unprofiled (disabled "
        f"{result.get('disabled_cpu_us', float('nan')):.0f}, added {added:+.0f}); py-spy window: "
        f"{result.get('requests', '?')} requests, {result.get('file', '')}"
    )
    telemetry = sum(row["us"] for row in result["rows"] if row["component"] != NOT_TELEMETRY)
    print(
        f"telemetry frames: {telemetry:.0f} µs/request; 'not telemetry' above the disabled run "
        f"(indirect): {result.get('indirect_us', float('nan')):+.0f} µs/request"
    )
    print(f"| {'component':48} | share | µs/req |")
    print(f"| {'---':48} | --- | --- |")
    for row in result["rows"]:
        print(f"| {row['component']:48} | {row['share']:5.1%} | {row['us']:6.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--route", action="append", choices=["chat", "agent", "bare"])
    parser.add_argument("--sampling", action="append")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--from", dest="source", type=Path, help="group a saved py-spy raw/speedscope file")
    parser.add_argument("--cpu-us", type=float, default=0.0, help="with --from: CPU µs per request")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.source:
        results = [
            {"cpu_us_per_request": args.cpu_us, "rows": breakdown(read_samples(args.source), args.cpu_us)}
        ]
    else:
        workdir = Path(tempfile.mkdtemp(prefix="sage-profile-"))
        results = profile_runs(
            args.route or ["chat", "bare"], args.sampling or ["1.0", "0.1"], args.seconds, workdir
        )
    for result in results:
        print_table(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
