"""Real processes for boot tests: the rendered backend under uvicorn, the stub LLM, a venv."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

# Variables a booted backend inherits; everything else (the developer's own OTEL_* included) is
# left out so a test sees only the environment it sets.
_INHERITED = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "SSL_CERT_FILE",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
)


# A load test is one client sending many chats, as an attacker would: it lifts the per-client LLM
# spend limits (CHAT_*, backend/app/chat_limits.py) that tests/test_hostile_backend.py holds it to.
LOAD_TEST_LIMITS = {
    "CHAT_REQUESTS_PER_MINUTE": "1000000",
    "CHAT_REQUESTS_PER_MINUTE_TOTAL": "1000000",
    "CHAT_TOKENS_PER_HOUR": "1000000000000",
    "CHAT_TOKENS_PER_HOUR_TOTAL": "1000000000000",
    "CHAT_CONCURRENT_PER_CLIENT": "1000",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**overrides: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in _INHERITED if key in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def backend_requirements(pyproject: Path) -> list[str]:
    """The backend's runtime and dev dependencies, straight from its pyproject.toml."""
    project = tomllib.loads(pyproject.read_text())["project"]
    return sorted([*project["dependencies"], *project.get("optional-dependencies", {}).get("dev", [])])


def ensure_venv(cache_dir: Path, requirements: list[str]) -> Path:
    """A venv with `requirements` installed, reused while they do not change; returns its python."""
    key = hashlib.sha256("\n".join([sys.version, *requirements]).encode()).hexdigest()[:16]
    root = cache_dir / f"backend-venv-{key}"
    python = root / "bin" / "python"
    if (root / ".ready").exists():
        return python
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
        check=True,
    )
    (root / ".ready").write_text("\n".join(requirements))
    return python


@dataclass
class Backend:
    url: str
    process: subprocess.Popen
    log_path: Path
    stop_seconds: float | None = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_backend(
    python: Path, project: Path, env: dict[str, str], log_path: Path, command: list[str] | None = None
) -> Iterator[Backend]:
    """Starts the API as the rendered project does (`python -m app.serve`: uvicorn with the server's
    limits) in project/backend; on exit stops it with SIGTERM (graceful).

    `command` replaces `python -m app.serve` (e.g. plain uvicorn, or opentelemetry-instrument in front).
    """
    port = free_port()
    command = command or [str(python), "-m", "app.serve"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=project / "backend",
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    backend = Backend(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_healthy(backend)
        yield backend
    finally:
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        backend.stop_seconds = time.monotonic() - started


def wait_until_serving(what: str, process: subprocess.Popen, url: str, output, timeout: float = 30.0) -> None:
    """Polls `url` until it answers 200; fails with the process's output if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{output()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout}s:\n{output()}")


def _wait_healthy(backend: Backend, timeout: float = 30.0) -> None:
    wait_until_serving("backend", backend.process, f"{backend.url}/healthz", backend.output, timeout)


@dataclass
class StubLLM:
    url: str

    def requests(self) -> list[dict]:
        return httpx.get(f"{self.url}/_stub/requests", timeout=5).json()

    def abandoned(self) -> int:
        """Slow calls whose caller closed the connection before the answer (`[stub:slow=...]`)."""
        return httpx.get(f"{self.url}/_stub/abandoned", timeout=5).json()["abandoned"]


@contextmanager
def run_stub_llm(python: Path, project: Path) -> Iterator[StubLLM]:
    """The scaffold's own tools/stub_cerebe.py, as a separate process on a free port."""
    process = subprocess.Popen(
        [str(python), str(project / "tools" / "stub_cerebe.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = process.stdout.readline().strip()
        if "listening on " not in line:
            raise RuntimeError(f"stub LLM did not start: {line!r}")
        yield StubLLM(line.rsplit(" ", 1)[-1])
    finally:
        process.terminate()
        process.wait(timeout=10)


def sigterm_under_load(backend: Backend, seconds: float, concurrency: int = 4) -> tuple[list[str], float]:
    """Clients GET distinct paths until SIGTERM lands mid-load; returns the paths that got their
    answer (404: no such conversation) and how long the server took to stop."""
    finished: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def hammer(n: int) -> None:
        with httpx.Client(base_url=backend.url, timeout=10) as client:
            i = 0
            while not stop.is_set():
                path = f"/api/conversations/sd-{n}-{i}"
                try:
                    if client.get(path).status_code == 404:
                        with lock:
                            finished.append(path)
                except httpx.HTTPError:
                    return
                i += 1

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    backend.process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    backend.process.wait(30)
    stopped_in = time.monotonic() - started
    stop.set()
    for thread in threads:
        thread.join()
    return finished, stopped_in
