"""4. Shutdown: SIGTERM while requests are in flight; every finished request's span must arrive."""

from __future__ import annotations

import signal
import threading
import time
from contextlib import ExitStack

import httpx

from bench.common import Project, backends, stub_llm
from tests.support.otlp_receiver import OtlpReceiver


def run(project: Project, seconds: float = 3.0, concurrency: int = 4) -> list[dict]:
    finished: list[str] = []
    lock = threading.Lock()
    with ExitStack() as stack:
        receiver = stack.enter_context(OtlpReceiver())
        llm_url = stack.enter_context(stub_llm(project))
        booted = stack.enter_context(
            backends(project, {"scaffold": {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}}, llm_url)
        )
        backend = booted["scaffold"]
        stop = threading.Event()

        def worker(n: int) -> None:
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

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        backend.process.send_signal(signal.SIGTERM)  # mid-load
        started = time.monotonic()
        backend.process.wait(30)
        stop_seconds = time.monotonic() - started
        stop.set()
        for thread in threads:
            thread.join()
        exported = {s.attributes.get("url.path") for s in receiver.spans() if s.kind == "SERVER"}
    lost = [path for path in finished if path not in exported]
    return [
        {
            "finished": len(finished),
            "exported": len(set(finished) & exported),
            "lost": len(lost),
            "stop_s": stop_seconds,
        }
    ]
