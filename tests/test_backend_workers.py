"""Several workers: each builds its own providers, and a graceful stop flushes every one of them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import clean_env, run_backend, run_stub_llm

pytestmark = pytest.mark.boot

REQUESTS = 40


def test_two_uvicorn_workers_export_every_request(
    default_project: Path, backend_python: Path, tmp_path: Path
) -> None:
    """`uvicorn --workers 2`: all requests' server spans arrive after SIGTERM, from both workers."""
    command = [str(backend_python), "-m", "uvicorn", "app.main:app", "--workers", "2"]
    with OtlpReceiver() as otlp, run_stub_llm(backend_python, default_project) as llm:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            OTEL_RESOURCE_ATTRIBUTES="team=chat",
            CEREBE_BASE_URL=llm.url,
            DATABASE_URL=f"sqlite:///{tmp_path / 'workers.db'}",
        )
        with run_backend(
            backend_python, default_project, env, tmp_path / "workers.log", command=command
        ) as backend:
            for i in range(REQUESTS):
                # A new connection each time, so the kernel spreads them over both workers.
                assert httpx.get(f"{backend.url}/api/conversations/w{i}", timeout=10).status_code == 404
        spans = [s for s in otlp.spans() if s.kind == "SERVER"]
    assert otlp.errors == []
    assert len(spans) == REQUESTS, backend.output()[-2000:]
    assert {s.resource["team"] for s in spans} == {"chat"}, "OTEL_RESOURCE_ATTRIBUTES applies"
    workers = {(s.resource["service.instance.id"], s.resource["process.pid"]) for s in spans}
    print(f"{len(workers)} worker(s) served the requests")
    assert all(pid != backend.process.pid for _, pid in workers), "requests were served by the workers"
