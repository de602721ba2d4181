"""4. Shutdown: SIGTERM while requests are in flight; every finished request's span must arrive."""

from __future__ import annotations

from contextlib import ExitStack

from bench.common import Project, backends, stub_llm
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import sigterm_under_load


def run(project: Project, seconds: float = 3.0, concurrency: int = 4) -> list[dict]:
    with ExitStack() as stack:
        receiver = stack.enter_context(OtlpReceiver())
        llm_url = stack.enter_context(stub_llm(project))
        booted = stack.enter_context(
            backends(project, {"scaffold": {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}}, llm_url)
        )
        finished, stop_seconds = sigterm_under_load(booted["scaffold"], seconds, concurrency)
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
