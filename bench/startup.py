"""5. Render time (all options on) and time from `cookiecutter` to the first span received."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from bench.common import Project, backends, prepare, stub_llm
from tests.support.otlp_receiver import OtlpReceiver


def run(workdir: Path, renders: int = 5) -> tuple[list[dict], Project]:
    timings = []
    for i in range(renders):
        started = time.perf_counter()
        project = prepare(
            workdir / f"render-{i}", include_web=True, include_k8s=True, session_replay="highlight"
        )
        timings.append(time.perf_counter() - started)
    # The venv is cached after the first render; time-to-first-trace below starts from a render.
    started = time.perf_counter()
    project = prepare(workdir / "ttft")
    rendered = time.perf_counter() - started
    with OtlpReceiver() as receiver, stub_llm(project) as llm_url:
        with backends(
            project, {"first": {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}}, llm_url
        ) as booted:
            booted_at = time.perf_counter() - started
            httpx.post(
                f"{booted['first'].url}/api/chat", json={"conversation_id": "t", "message": "hi"}, timeout=10
            )
            receiver.wait_for(lambda rx: rx.spans(), timeout=30)
            first_span = time.perf_counter() - started
    return [
        {
            "render_all_on_s": sorted(timings)[len(timings) // 2],
            "render_s": rendered,
            "boot_s": booted_at,
            "first_span_s": first_span,
        }
    ], project
