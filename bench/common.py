"""What every benchmark needs: a rendered scaffold, its venv, booted backends, load, /proc readings."""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import CACHE_DIR, render  # noqa: E402
from tests.support.processes import (  # noqa: E402
    LOAD_TEST_LIMITS,
    Backend,
    backend_requirements,
    clean_env,
    ensure_venv,
    run_backend,
    run_stub_llm,
)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
AUTO_INSTRUMENT = ["opentelemetry-distro==0.66b2"]


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (uvicorn serves the app in its main process)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Project:
    path: Path
    python: Path
    workdir: Path


def prepare(workdir: Path, **answers: object) -> Project:
    project = render(workdir / "render", **answers)
    requirements = backend_requirements(project / "backend" / "pyproject.toml")
    python = ensure_venv(CACHE_DIR, requirements + AUTO_INSTRUMENT)
    return Project(project, python, workdir)


@dataclass
class Load:
    """Outcome of driving one backend: counts, wall time, latencies (s), CPU of the server."""

    ok: int = 0
    failed: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu_start: float = 0.0  # the server's CPU seconds when the drive began
    cpu_after: float = 0.0  # of `cpu`, what the server spent after the last response (exports)
    load_cpu: float = 0.0  # CPU seconds this process (the load generator) spent driving

    @property
    def load_busy(self) -> float:
        """Share of one CPU the load generator used: near 1.0, it, not the server, set the pace."""
        return self.load_cpu / self.wall if self.wall else 0.0

    @property
    def rps(self) -> float:
        return (self.ok + self.failed) / self.wall if self.wall else 0.0

    def pct(self, q: float) -> float:
        values = sorted(self.latencies)
        return values[min(len(values) - 1, int(len(values) * q))] * 1e3 if values else float("nan")

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu / max(1, self.ok + self.failed) * 1e3


ROUTES = {
    "chat": ("POST", "/api/chat", {"message": "benchmark me"}),
    # An agent run: the stub LLM asks for one tool, the API runs it and calls again (two chat spans,
    # one execute_tool span under the invoke_agent span).
    "agent": ("POST", "/api/chat", {"message": 'benchmark me [tool:calculate {"expression": "6 * 7"}]'}),
    "bare": ("GET", "/api/conversations/none", None),
}


def drive(
    backend: Backend,
    route: str,
    requests: int,
    concurrency: int = 4,
    clients: list[httpx.Client] | None = None,
) -> Load:
    """`requests` requests over `concurrency` keep-alive connections, from this process.

    `clients` (one per connection, `concurrency` of them) are kept open across drives, so a short
    drive does not pay for connecting (bench/overhead.py drives in short slices)."""
    method, path, body = ROUTES[route]
    load, lock = Load(), threading.Lock()

    def worker(count: int, offset: int, client: httpx.Client | None) -> None:
        latencies, ok, failed = [], 0, 0
        with nullcontext(client) if client else httpx.Client(base_url=backend.url, timeout=30) as client:
            for i in range(count):
                started = time.perf_counter()
                try:
                    if body is None:
                        status = client.get(path).status_code
                    else:
                        payload = {**body, "conversation_id": f"b{(offset + i) % 50}"}
                        status = client.post(path, json=payload).status_code
                except httpx.HTTPError:
                    status = 599
                latencies.append(time.perf_counter() - started)
                if status >= 500:
                    failed += 1
                else:
                    ok += 1
        with lock:
            load.latencies += latencies
            load.ok += ok
            load.failed += failed

    per_worker = requests // concurrency
    connections = clients or [None] * concurrency
    load.cpu_start = cpu_seconds(backend.process.pid)
    load_cpu_before = time.process_time()
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, [per_worker] * concurrency, range(0, requests, per_worker), connections))
    load.wall = time.perf_counter() - started
    load.load_cpu = time.process_time() - load_cpu_before
    load.cpu = cpu_seconds(backend.process.pid) - load.cpu_start
    return load


def merged(loads: list[Load]) -> Load:
    """One Load for several drives of the same process (its slices), CPU from the first's start."""
    total = Load(cpu_start=loads[0].cpu_start)
    for load in loads:
        total.ok += load.ok
        total.failed += load.failed
        total.wall += load.wall
        total.cpu += load.cpu
        total.cpu_after += load.cpu_after
        total.load_cpu += load.load_cpu
        total.latencies += load.latencies
    return total


class CoreSplit:
    """One CPU for the servers, the others for everything else (load generator, stubs, receivers).

    Unpinned on 2 cores, a server shared both CPUs with the load generator's threads, the LLM stub
    and the receivers, and its throughput depended on which of them the scheduler ran beside it.
    Pinned, the server being driven has its CPU to itself (the other servers there are idle, bar
    their last exports), all of its threads included: its exports cost throughput, as they would
    in a one-CPU pod. Enter it before starting any process: children inherit "the others"; then
    `pin_server` each server. With one CPU there is nothing to split and it does nothing.
    """

    def __init__(self, active: bool = True) -> None:
        self._before = os.sched_getaffinity(0)
        cpus = sorted(self._before)
        self.active = active and len(cpus) >= 2
        self.server_cpus = {cpus[0]}
        self.other_cpus = set(cpus[1:]) if self.active else set(cpus)

    def describe(self) -> str:
        if not self.active:
            return "nothing pinned"
        others = ", ".join(map(str, sorted(self.other_cpus)))
        server = min(self.server_cpus)
        return f"each server pinned to CPU {server}; load generator, LLM stub, receivers on CPU {others}"

    def __enter__(self) -> CoreSplit:
        if self.active:
            os.sched_setaffinity(0, self.other_cpus)  # this thread, and what it starts from now on
        return self

    def __exit__(self, *exc: object) -> None:
        os.sched_setaffinity(0, self._before)

    def pin_server(self, pid: int) -> None:
        """Every thread the server has now; threads it starts later inherit from theirs."""
        if not self.active:
            return
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(tid), self.server_cpus)


@contextmanager
def backends(
    project: Project, variants: dict[str, dict[str, str]], llm_url: str
) -> Iterator[dict[str, Backend]]:
    """Boots one backend per variant (env overrides; key `_command` replaces the uvicorn command)."""
    with ExitStack() as stack:
        started = {}
        for name, env in variants.items():
            env = dict(env)
            # Plain uvicorn, as every run before app.serve measured; the chat limits lifted (one load client).
            command = env.pop("_command", None) or [str(project.python), "-m", "uvicorn", "app.main:app"]
            full_env = clean_env(
                CEREBE_BASE_URL=llm_url,
                DATABASE_URL=f"sqlite:///{project.workdir / name}.db",
                **{**LOAD_TEST_LIMITS, **env},
            )
            started[name] = stack.enter_context(
                run_backend(
                    project.python, project.path, full_env, project.workdir / f"{name}.log", command=command
                )
            )
        yield started


@contextmanager
def stub_llm(project: Project) -> Iterator[str]:
    with run_stub_llm(project.python, project.path) as llm:
        yield llm.url


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def quartiles(values: list[float]) -> tuple[float, float]:
    """25th and 75th percentile (the middle half of the rounds)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    low, _, high = statistics.quantiles(values, n=4, method="inclusive")
    return low, high
