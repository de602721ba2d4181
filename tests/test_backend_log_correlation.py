"""Log records carry the replay session of their request (real uvicorn, OTLP logs decoded off the wire).

One boot: a chat request sent with a session header, one without; each under a known trace id.
Grafana's Loki data source links `session_id` (structured metadata, from the OTLP attribute
`session.id`) to the replay, so every record of a request with a session must carry it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.otlp_receiver import LogRecord, OtlpReceiver
from tests.support.processes import clean_env, run_backend, run_stub_llm

pytestmark = pytest.mark.boot

WITH_SESSION = "5b8aa5a2d2c872e8321cf37308d69df2"
WITHOUT_SESSION = "6c9bb6b3e3d983f9432d048419e7ae03"
SESSION = "sess-7f3a9c"


@dataclass
class CorrelationRun:
    logs: list[LogRecord]
    output: str

    def records_of(self, trace_id: str) -> list[LogRecord]:
        return [r for r in self.logs if r.trace_id == trace_id]

    def json_lines_of(self, trace_id: str) -> list[dict]:
        lines = [json.loads(line) for line in self.output.splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("trace_id") == trace_id]


@pytest.fixture(scope="module")
def run(
    default_project: Path, backend_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> CorrelationRun:
    workdir = tmp_path_factory.mktemp("log-correlation")
    with OtlpReceiver() as otlp, run_stub_llm(backend_python, default_project) as llm:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            CEREBE_BASE_URL=llm.url,
            CEREBE_API_KEY="correlation-test-key",
            DATABASE_URL=f"sqlite:///{workdir / 'correlation.db'}",
        )
        with run_backend(backend_python, default_project, env, workdir / "backend.log") as backend:
            for trace_id, headers in ((WITH_SESSION, {"x-session-id": SESSION}), (WITHOUT_SESSION, {})):
                response = httpx.post(
                    f"{backend.url}/api/chat",
                    json={"conversation_id": f"c-{trace_id[:6]}", "message": "hello"},
                    headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01", **headers},
                    timeout=10,
                )
                assert response.status_code == 200, response.text
        # Stopped gracefully: the log batches were flushed on shutdown.
        return CorrelationRun(otlp.logs(), backend.output())


def test_every_log_record_of_a_request_with_a_session_carries_session_id(run: CorrelationRun) -> None:
    """Each OTLP log record written while serving the request has `session.id` = the header's session."""
    records = run.records_of(WITH_SESSION)
    assert {r.body for r in records} >= {"llm.call", "chat reply stored"}, [r.body for r in records]
    assert [r.attributes.get("session.id") for r in records] == [SESSION] * len(records)


def test_log_records_of_a_request_without_a_session_carry_none(run: CorrelationRun) -> None:
    """No session header, no `session.id`: nothing leaks over from the previous request."""
    records = run.records_of(WITHOUT_SESSION)
    assert records and not [r.attributes["session.id"] for r in records if "session.id" in r.attributes]


def test_stdout_json_lines_carry_session_id(run: CorrelationRun) -> None:
    """The JSON line on stdout names it `session_id`, like Loki's structured metadata."""
    with_session, without = run.json_lines_of(WITH_SESSION), run.json_lines_of(WITHOUT_SESSION)
    assert with_session and all(line.get("session_id") == SESSION for line in with_session), with_session
    assert without and not any("session_id" in line or "session.id" in line for line in without), without
