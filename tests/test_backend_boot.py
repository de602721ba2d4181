"""Boot the rendered backend under real uvicorn and check its telemetry where it arrives.

One run (module fixture): a traced POST /api/chat plus a burst of requests, then a graceful stop.
The OTLP receiver decodes protobuf as a collector would; the Loki receiver decodes push JSON.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.loki_receiver import LokiEntry, LokiReceiver
from tests.support.otlp_receiver import LogRecord, Metric, OtlpReceiver, Span
from tests.support.processes import clean_env, run_backend, run_stub_llm

pytestmark = pytest.mark.boot

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
BURST = 25


@dataclass
class BootRun:
    reply: dict
    spans: list[Span]
    logs: list[LogRecord]
    metrics: list[Metric]
    loki: list[LokiEntry]
    loki_pushes: int
    llm_requests: list[dict]
    output: str
    receiver_errors: list[str]
    stop_seconds: float

    def server_span(self) -> Span:
        found = [s for s in self.spans if s.kind == "SERVER" and s.trace_id == TRACE_ID]
        assert len(found) == 1, [(s.name, s.kind, s.trace_id) for s in self.spans]
        return found[0]

    def descendants(self, root: Span) -> list[Span]:
        in_trace = [s for s in self.spans if s.trace_id == root.trace_id]
        found, todo = [], [root.span_id]
        while todo:
            parent = todo.pop()
            for span in in_trace:
                if span.parent_span_id == parent:
                    found.append(span)
                    todo.append(span.span_id)
        return found


@pytest.fixture(scope="module")
def boot(default_project: Path, backend_python: Path, tmp_path_factory: pytest.TempPathFactory) -> BootRun:
    workdir = tmp_path_factory.mktemp("boot")
    with OtlpReceiver() as otlp, LokiReceiver() as loki, run_stub_llm(backend_python, default_project) as llm:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            LOKI_URL=loki.url,
            # Every record of the run fits one batch and no timer fires: exactly one push, at shutdown.
            LOKI_BATCH_SIZE="1000",
            LOKI_FLUSH_INTERVAL="3600",
            CEREBE_BASE_URL=llm.url,
            CEREBE_API_KEY="boot-test-key",
            DATABASE_URL=f"sqlite:///{workdir / 'boot.db'}",
        )
        with run_backend(backend_python, default_project, env, workdir / "backend.log") as backend:
            response = httpx.post(
                f"{backend.url}/api/chat",
                json={"conversation_id": "boot-1", "message": "hello from the boot test"},
                headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            with httpx.Client(base_url=backend.url, timeout=10) as client:
                for i in range(BURST):
                    assert client.get(f"/api/conversations/burst-{i}").status_code == 404
        # The backend has stopped gracefully: whatever it flushed on shutdown has arrived.
        return BootRun(
            reply=response.json(),
            spans=otlp.spans(),
            logs=otlp.logs(),
            metrics=otlp.metrics(),
            loki=loki.entries(),
            loki_pushes=loki.pushes,
            llm_requests=llm.requests(),
            output=backend.output(),
            receiver_errors=otlp.errors + loki.errors,
            stop_seconds=backend.stop_seconds,
        )


def test_everything_sent_was_well_formed(boot: BootRun) -> None:
    """The receivers rejected nothing: the backend speaks valid OTLP protobuf and Loki push JSON."""
    assert boot.receiver_errors == []


def test_server_span_continues_the_incoming_trace(boot: BootRun) -> None:
    """It exports the server span with the incoming trace id and parent."""
    server = boot.server_span()
    assert server.parent_span_id == PARENT_ID
    assert server.name == "POST /api/chat"
    assert server.attributes["http.response.status_code"] == 200
    assert boot.reply["trace_id"] == TRACE_ID


def test_db_and_outbound_http_spans_descend_from_the_server_span(boot: BootRun) -> None:
    """DB statements and the outbound call to the LLM are in the request's trace, below it."""
    below = boot.descendants(boot.server_span())
    db = [s for s in below if s.attributes.get("db.system.name") == "sqlite"]
    assert any(s.attributes.get("db.query.text", "").startswith("INSERT") for s in db), [
        s.name for s in below
    ]
    http_out = [s for s in below if s.kind == "CLIENT" and s.attributes.get("http.request.method") == "POST"]
    assert len(http_out) == 1 and http_out[0].attributes["url.full"].endswith("/v1/chat/completions")


def test_llm_received_traceparent_of_the_same_trace(boot: BootRun) -> None:
    """The stub LLM got a traceparent naming the same trace, and the bearer key."""
    (request,) = [r for r in boot.llm_requests if r["path"] == "/v1/chat/completions"]
    version, trace_id, parent_id, flags = request["headers"]["traceparent"].split("-")
    assert trace_id == TRACE_ID
    assert parent_id in {s.span_id for s in boot.descendants(boot.server_span())}
    assert request["headers"]["authorization"] == "Bearer boot-test-key"


def test_llm_span_has_model_tokens_and_cost(boot: BootRun) -> None:
    """The chat span carries the GenAI attributes and a cost."""
    (llm,) = [s for s in boot.descendants(boot.server_span()) if s.name == "chat gpt-4o-mini"]
    assert llm.kind == "CLIENT"
    assert llm.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert llm.attributes["gen_ai.usage.input_tokens"] == 5
    assert llm.attributes["gen_ai.usage.output_tokens"] == 6
    assert llm.attributes["gen_ai.usage.cost"] > 0


def test_otlp_logs_carry_the_trace_id(boot: BootRun) -> None:
    """At least one OTLP log record (the app's own) is correlated with the request's trace."""
    correlated = [r for r in boot.logs if r.trace_id == TRACE_ID]
    assert any(r.body == "chat reply stored" for r in correlated), [(r.body, r.trace_id) for r in boot.logs]
    assert all(r.resource["service.name"] == "sage-app-api" for r in boot.logs)


def test_stdout_json_lines_carry_the_trace_id(boot: BootRun) -> None:
    """stdout is JSON lines, and the request's line names its trace and span."""
    lines = [json.loads(line) for line in boot.output.splitlines() if line.startswith("{")]
    stored = [line for line in lines if line["message"] == "chat reply stored"]
    assert stored and stored[0]["trace_id"] == TRACE_ID and len(stored[0]["span_id"]) == 16
    assert any(line["logger"].startswith("uvicorn") for line in lines), (
        "server logs go through the same handler"
    )


def test_stdout_json_lines_carry_no_console_junk(boot: BootRun) -> None:
    """No ANSI colour escapes and no uvicorn `color_message` in the JSON lines; every line is JSON."""
    lines = [line for line in boot.output.splitlines() if line.strip()]
    assert all(line.startswith("{") for line in lines), [line for line in lines if not line.startswith("{")]
    assert "\x1b" not in boot.output and "\\u001b" not in boot.output
    assert not [line for line in lines if "color_message" in json.loads(line)]
    assert any(json.loads(line)["message"].startswith("Uvicorn running on") for line in lines)


def test_http_server_duration_metric_arrived(boot: BootRun) -> None:
    """http.server.request.duration arrived as a histogram with a point for /api/chat."""
    (duration,) = [m for m in boot.metrics if m.name == "http.server.request.duration"]
    assert duration.kind == "histogram" and duration.unit == "s"
    chat_points = [p for p in duration.data_points if p["attributes"].get("http.route") == "/api/chat"]
    assert chat_points and chat_points[0]["count"] == 1
    assert {m.name for m in boot.metrics} >= {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"}


def test_instruments_nothing_reads_are_not_exported(boot: BootRun) -> None:
    """Active requests, body sizes and the httpx client duration (read by no dashboard or alert)
    never reach the collector; the request duration does."""
    names = {m.name for m in boot.metrics}
    unread = {
        "http.server.active_requests",
        "http.server.request.body.size",
        "http.server.response.body.size",
        "http.client.request.duration",
    }
    assert "http.server.request.duration" in names and not names & unread, sorted(names)


def test_loki_gets_the_line_with_trace_id_in_it_and_not_as_a_label(boot: BootRun) -> None:
    """LOKI_URL: the JSON line carries trace_id; labels are only service, env and level."""
    stored = [e for e in boot.loki if '"chat reply stored"' in e.line]
    assert stored, [e.line for e in boot.loki][:5]
    assert json.loads(stored[0].line)["trace_id"] == TRACE_ID
    assert set(stored[0].labels) == {"service", "env", "level"}
    assert all("trace_id" not in e.labels and TRACE_ID not in e.labels.values() for e in boot.loki)
    assert boot.loki_pushes == 1 < len(boot.loki), "the run's records are batched into one push at shutdown"


def test_graceful_stop_loses_no_finished_request_span(boot: BootRun) -> None:
    """Every request of the burst just before SIGTERM has its server span exported."""
    burst = [
        s
        for s in boot.spans
        if s.kind == "SERVER" and s.attributes.get("url.path", "").startswith("/api/conv")
    ]
    assert len(burst) == BURST
    assert boot.stop_seconds < 10


def test_resource_names_the_service(boot: BootRun) -> None:
    """Resource: service name, namespace, version and environment, as rendered."""
    resource = boot.server_span().resource
    assert resource["service.name"] == "sage-app-api"
    assert resource["service.namespace"] == "sage-app"
    assert resource["deployment.environment.name"] == "local"
    assert resource["service.version"] == "0.1.0"


EXIT_SCRIPT = """
import logging
from app.main import create_app

app = create_app()
logging.getLogger("app.exit_check").warning("logged just before a normal exit")
"""


def test_interpreter_exit_flushes_loki_and_prints_no_traceback(
    default_project: Path, backend_python: Path, tmp_path: Path
) -> None:
    """A process that builds the app (LOKI_URL and an OTLP endpoint set), logs and exits normally
    pushes its line at exit and prints no traceback and no "Exception ignored" (issue: a handler
    attribute clashing with logging.Handler's own `_closed` crashed logging.shutdown at exit)."""
    with OtlpReceiver() as otlp, LokiReceiver() as loki:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            LOKI_URL=loki.url,
            DATABASE_URL=f"sqlite:///{tmp_path / 'exit.db'}",
        )
        done = subprocess.run(
            [str(backend_python), "-c", EXIT_SCRIPT],
            cwd=default_project / "backend",
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert "Traceback" not in output and "Exception ignored" not in output, output
        assert [e.line for e in loki.entries() if "logged just before a normal exit" in e.line], output
        assert [r for r in otlp.logs() if r.body == "logged just before a normal exit"], output
