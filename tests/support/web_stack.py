"""The whole app for browser tests, each part a real process, with an OTLP receiver as the collector.

    app = ensure_web_build(project / "web", CACHE_DIR)
    with web_stack(project, app, backend_python, workdir, backend_env={"REPLAY_VIEWER_TOKEN": "t"}) as stack:
        page.goto(stack.web.url)            # the built Next.js app (`npm start`)
        stack.rx.spans()                    # what the browser, Next.js and the backend exported

The backend gets the stub LLM (tools/stub_cerebe.py) and a SQLite file in `workdir`; the web app
forwards /api/* to the backend and the browser's spans to the receiver, and exports its own
server spans every 0.5 s instead of 5 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.browser import WebApp, run_web
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import Backend, StubLLM, clean_env, run_backend, run_stub_llm


@dataclass
class WebStack:
    rx: OtlpReceiver
    llm: StubLLM
    backend: Backend
    web: WebApp
    database_url: str


@contextmanager
def web_stack(
    project: Path,
    app: Path,
    backend_python: Path,
    workdir: Path,
    *,
    backend_env: dict[str, str] | None = None,
    web_env: dict[str, str] | None = None,
) -> Iterator[WebStack]:
    """Receiver, stub LLM, backend and web app, started in that order and stopped in reverse."""
    database_url = f"sqlite:///{workdir / 'e2e.db'}"
    with OtlpReceiver() as rx, run_stub_llm(backend_python, project) as llm:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint,
            CEREBE_BASE_URL=llm.url,
            CEREBE_API_KEY="web-e2e-key",
            DATABASE_URL=database_url,
            **(backend_env or {}),
        )
        with run_backend(backend_python, project, env, workdir / "backend.log") as backend:
            env = clean_env(
                API_BASE_URL=backend.url,
                OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint,
                OTEL_BSP_SCHEDULE_DELAY="500",  # the server's spans leave within 0.5 s, not 5 s
                NEXT_TELEMETRY_DISABLED="1",
                **(web_env or {}),
            )
            with run_web(app, env, workdir / "web.log") as web:
                yield WebStack(rx, llm, backend, web, database_url)
