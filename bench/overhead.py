"""1. Request overhead of each way to wire telemetry into the same app.

(a) OTEL_SDK_DISABLED; (b) the scaffold's telemetry; (c) `opentelemetry-instrument` as commonly
run, and (c=) at equal coverage (the same signals as (b): FastAPI, httpx and SQLAlchemy spans,
metrics, OTLP logs with trace correlation, one stdout JSON line per record, GenAI spans and cost);
(d) the floor: (b) creating every span, metric point and log record but exporting nothing
(bench/floor_app.py); (e) (b) plus the direct-to-Loki push (LOKI_URL); (a') a second, identical
(a): what two runs of the same code differ by here, the yardstick for every other difference.
All variants (or the `only` ones: bench/run.py runs (a), (b), (d), (a') at 0.1) run at once and
are driven in interleaved rounds, the order turned by one each round (a b c c= d e, b c c= d e a,
...); medians over rounds, targets from per-round pairs. Within a round each process is driven in
SLICES short slices, the variants taking turns, so that variants compared ran in the same seconds
of this VM's drifting speed. Every round boots a fresh process of each variant: a process keeps
its own speed for its whole life (two disabled processes kept 6-7 % apart over all 8 rounds of
run 6), so one process per variant put that luck into the variant's median; a process per round
turns it into round-to-round spread that the median averages over 8 or 16 processes. A slice's
CPU runs until the same process's next slice (its last: until the round's tail ends), so the
exports it leaves behind count; the servers have one CPU to themselves (bench.common.CoreSplit)
and the receivers decode in their own process (bench/sinks.py).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.common import CoreSplit, Load, Project, backends, cpu_seconds, drive, median, merged, stub_llm
from bench.sinks import sinks as bench_sinks

BENCH_DIR = Path(__file__).resolve().parent
ROUTE_ORDER = ("chat", "agent", "bare")
# The SDK's batch span processor sends a partial batch after 5 s (OTEL_BSP_SCHEDULE_DELAY): wait
# that long after a route's last drive, so its exports are charged to it.
TAIL_SECONDS = 5.5
# Requests per route that a freshly booted process serves before it is measured: first calls
# compile SQLAlchemy's statement cache, import lazily and fill the OpenTelemetry caches.
WARM_UP = 100
# A round drives each route in this many slices per process, the variants taking turns: this VM's
# speed drifts by 16-18 % from one second to the next (six processes of the same code, bursts of
# 50-400 requests in turns: bench/ANALYSIS.md, sixth pass), so variants compared must be driven in
# the same seconds. A slice is 40 chat, 20 agent or 80 bare requests, ~0.3-0.5 s; a turn of all
# variants is a few seconds.
SLICES = 10
CONCURRENCY = 4

DISABLED = "a disabled"
SCAFFOLD = "b scaffold"
AUTO = "c opentelemetry-instrument"
AUTO_EQUAL = "c= opentelemetry-instrument, equal coverage"
FLOOR = "d floor (exports nothing)"
LOKI = "e scaffold + direct Loki"
TWIN = "a' disabled, a second process"


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
        TWIN: {"OTEL_SDK_DISABLED": "true"},
    }


def _charge_until_next_drive(loads: list[Load], cpu_now: float) -> None:
    """A drive's CPU becomes the process's CPU from its start to the start of the same process's
    next drive (the last: to `cpu_now`): the batches it left behind are exported after its last
    response, while other variants are driven, and that CPU is part of its cost per request."""
    ends = [load.cpu_start for load in loads[1:]] + [cpu_now]
    for load, end in zip(loads, ends, strict=True):
        load.cpu_after = end - load.cpu_start - load.cpu
        load.cpu = end - load.cpu_start


def _one_round(
    project: Project,
    wired: dict[str, dict[str, str]],
    llm_url: str,
    split: CoreSplit,
    routes: tuple[str, ...],
    requests: dict[str, int],
) -> dict[tuple[str, str], Load]:
    """Boots a fresh process per variant (in `wired`'s order, which is also the first slice's
    order), warms each up, drives every route in SLICES short slices per process, interleaved
    (each slice's order turned by one), then stops them all."""
    slices: dict[str, list[tuple[str, Load]]] = {name: [] for name in wired}  # (route, slice), in time order
    with ExitStack() as stack, backends(project, wired, llm_url) as booted:
        clients = {
            name: [stack.enter_context(httpx.Client(base_url=b.url, timeout=30)) for _ in range(CONCURRENCY)]
            for name, b in booted.items()
        }
        for name, backend in booted.items():
            split.pin_server(backend.process.pid)
            for route in routes:
                drive(backend, route, WARM_UP, CONCURRENCY, clients[name])
        time.sleep(TAIL_SECONDS)  # the warm-up's last exports land before the first drive
        names = list(booted)
        # One route, then the other: a process's CPU between two of its slices is one route's.
        for route in routes:
            for i in range(SLICES):
                for name in names[i % len(names) :] + names[: i % len(names)]:
                    load = drive(booted[name], route, requests[route] // SLICES, CONCURRENCY, clients[name])
                    slices[name].append((route, load))
            time.sleep(TAIL_SECONDS)
        out: dict[tuple[str, str], Load] = {}
        for name, backend in booted.items():
            _charge_until_next_drive([load for _, load in slices[name]], cpu_seconds(backend.process.pid))
            for route in routes:
                out[(route, name)] = merged([load for of, load in slices[name] if of == route])
    return out


def run(
    project: Project,
    rounds: int,
    requests: dict[str, int],
    ratio: str = "1.0",
    *,
    pin: bool = True,
    routes: tuple[str, ...] = ROUTE_ORDER,
    only: tuple[str, ...] = (),
) -> list[dict]:
    """Rows: route, variant, req/s, p50, p99, CPU ms/req (exports included), of which after the
    drive, load generator CPU, failures (medians over rounds), and each round's req/s and CPU
    ms/req (`round_rps`, `round_cpu_ms`, in round order: each round drives every variant once, so
    comparisons pair round i with round i). `requests`: per round, by route; `routes`: which;
    `only`: these variants (default: all), so fewer per round and rounds closer in time."""
    samples: dict[tuple[str, str], list[Load]] = {}
    with ExitStack() as stack:
        split = stack.enter_context(CoreSplit(active=pin))
        sinks = stack.enter_context(bench_sinks())
        llm_url = stack.enter_context(stub_llm(project))
        wired = variants(project, sinks.otlp_endpoint, ratio, sinks.loki_url)
        wired = {name: env for name, env in wired.items() if not only or name in only}
        names = list(wired)
        for round_ in range(rounds):
            # The order turns by one each round, so no variant always follows the same one
            # (whose last exports run while it is driven) or always boots first.
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            in_order = {name: wired[name] for name in order}
            for key, load in _one_round(project, in_order, llm_url, split, routes, requests).items():
                samples.setdefault(key, []).append(load)
    assert not sinks.errors, sinks.errors[:3]
    assert LOKI not in wired or sinks.loki_entries, "variant (e) pushed nothing to Loki"
    rows = []
    for route in routes:
        for name in names:
            loads = samples[(route, name)]
            per_request = [load.cpu_after / (load.ok + load.failed) * 1e3 for load in loads]
            rows.append(
                {
                    "route": route,
                    "variant": name,
                    "sampling": ratio,
                    "pinned": split.describe(),
                    "processes": len(loads),
                    "rps": median([load.rps for load in loads]),
                    "p50_ms": median([load.pct(0.50) for load in loads]),
                    "p99_ms": median([load.pct(0.99) for load in loads]),
                    "cpu_ms": median([load.cpu_ms_per_request for load in loads]),
                    "cpu_after_ms": median(per_request),
                    "load_busy": median([load.load_busy for load in loads]),
                    "failed": sum(load.failed for load in loads),
                    "round_rps": [load.rps for load in loads],
                    "round_cpu_ms": [load.cpu_ms_per_request for load in loads],
                }
            )
    return rows
