"""Fast fault tests (the benchmarks' sustained versions live in bench/): outcomes, not timings."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import LOAD_TEST_LIMITS, clean_env, run_backend, run_stub_llm, sigterm_under_load

pytestmark = pytest.mark.boot


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_sigterm_under_load_loses_no_finished_request_span(
    default_project: Path, backend_python: Path, tmp_path: Path
) -> None:
    """SIGTERM while four clients hammer the API: every request that got its answer has its span."""
    with OtlpReceiver() as otlp:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint, DATABASE_URL=f"sqlite:///{tmp_path / 'sd.db'}"
        )
        with run_backend(backend_python, default_project, env, tmp_path / "sd.log") as backend:
            finished, _ = sigterm_under_load(backend, seconds=2.0)
        exported = {s.attributes.get("url.path") for s in otlp.spans() if s.kind == "SERVER"}
    assert len(finished) > 50, "the load really ran"
    lost = [path for path in finished if path not in exported]
    assert lost == [], f"{len(lost)} of {len(finished)} finished requests lost their span"


def test_memory_stays_bounded_while_the_collector_hangs(
    default_project: Path, backend_python: Path, tmp_path: Path
) -> None:
    """Collector hanging: thousands of spans later the process has not grown with them (queues drop)."""
    with OtlpReceiver(delay=30.0) as hanging, run_stub_llm(backend_python, default_project) as llm:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=hanging.endpoint,
            OTEL_EXPORTER_OTLP_TIMEOUT="30",
            CEREBE_BASE_URL=llm.url,
            DATABASE_URL=f"sqlite:///{tmp_path / 'hang.db'}",
            **LOAD_TEST_LIMITS,
        )
        with run_backend(backend_python, default_project, env, tmp_path / "hang.log") as backend:
            with httpx.Client(base_url=backend.url, timeout=10) as client:

                def chat(count: int) -> None:
                    for i in range(count):
                        response = client.post(
                            "/api/chat", json={"conversation_id": f"h{i % 7}", "message": "hi"}
                        )
                        assert response.status_code == 200

                chat(300)  # fills the span queue (2048) and the log queue: ~12 spans per request
                settled = _rss_mb(backend.process.pid)
                chat(900)  # three times more telemetry that cannot leave
                grown = _rss_mb(backend.process.pid) - settled
    print(f"RSS grew {grown:.1f} MB over 900 requests with the collector hanging")
    # Unbounded, 900 requests' ~11k spans and ~3k log records would be tens of MB.
    assert grown < 12, f"RSS grew {grown:.1f} MB while the collector hung"
