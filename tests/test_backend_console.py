"""The console view in real uvicorn: a span tree per request on the terminal when no collector is set.

Three boots of the rendered backend with the stub LLM: no OTLP endpoint (the tree prints), an OTLP
endpoint (no tree; the exported spans are checked too), and an endpoint with TELEMETRY_CONSOLE=true.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.otlp_receiver import OtlpReceiver, Span
from tests.support.processes import clean_env, run_backend, run_stub_llm

pytestmark = pytest.mark.boot

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@dataclass
class ConsoleRun:
    output: str
    spans: list[Span]

    def tree(self) -> list[str]:
        """The lines of the tree whose root line names TRACE_ID; [] when there is none."""
        lines = self.output.splitlines()
        for index, line in enumerate(lines):
            if line.endswith(f"trace {TRACE_ID}"):
                tree = [line]
                for child in lines[index + 1 :]:
                    if not child.startswith("  "):
                        break
                    tree.append(child)
                return tree
        return []


def _boot(
    project: Path, python: Path, workdir: Path, name: str, message: str = "hello console", **env: str
) -> ConsoleRun:
    """Boots the backend, sends one chat request under TRACE_ID, stops it (SIGTERM, graceful)."""
    with run_stub_llm(python, project) as llm:
        environ = clean_env(
            CEREBE_BASE_URL=llm.url,
            CEREBE_API_KEY="console-test-key",
            DATABASE_URL=f"sqlite:///{workdir / f'{name}.db'}",
            **env,
        )
        with run_backend(python, project, environ, workdir / f"{name}.log") as backend:
            response = httpx.post(
                f"{backend.url}/api/chat",
                json={"conversation_id": "console-1", "message": message},
                headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
                timeout=10,
            )
            assert response.status_code == 200, response.text
    # Stopped gracefully: the request's span has ended and its tree, if any, is in the output.
    return ConsoleRun(backend.output(), [])


@pytest.fixture(scope="module")
def local_run(
    default_project: Path, backend_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> ConsoleRun:
    """No OTEL_EXPORTER_OTLP_ENDPOINT: local development, the exporters point at nothing."""
    return _boot(default_project, backend_python, tmp_path_factory.mktemp("console"), "local")


@pytest.fixture(scope="module")
def collector_run(
    default_project: Path, backend_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> ConsoleRun:
    """An OTLP endpoint is configured: telemetry goes there, the console stays quiet."""
    with OtlpReceiver() as otlp:
        run = _boot(
            default_project,
            backend_python,
            tmp_path_factory.mktemp("console"),
            "collector",
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
        )
        run.spans = otlp.spans()
    return run


def test_local_run_prints_the_request_as_a_span_tree(local_run: ConsoleRun) -> None:
    """Without a collector the request prints as a tree: route, status, trace id; DB, LLM, HTTP out, logs."""
    tree = local_run.tree()
    assert tree, local_run.output
    root, children = tree[0], "\n".join(tree[1:])
    assert "sage-app-api POST /api/chat 200" in root
    assert "  ├─ INSERT local.db  INSERT INTO messages" in children, tree
    assert "SELECT local.db  SELECT messages." in children, tree
    llm_line = next(line for line in tree if "chat gpt-4o-mini" in line)
    assert "in / " in llm_line and "out tokens · $0.0" in llm_line, llm_line
    assert "├─ POST http://127.0.0.1:" in children and "/v1/chat/completions 200" in children, tree
    assert "INFO app.llm: llm.call" in children, tree
    assert "INFO app.api.chat: chat reply stored" in children, tree


def _telemetry_lines(output: str) -> list[str]:
    """The start-up line saying where telemetry goes (a JSON log line of logger app.startup)."""
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [
        r["message"]
        for r in records
        if r.get("logger") == "app.startup" and r["message"].startswith("Telemetry")
    ]


def test_local_run_exports_to_no_endpoint_nobody_set(local_run: ConsoleRun) -> None:
    """No endpoint set: nothing is sent to the default localhost:4318, where nobody runs a collector,
    so no export warning; one start-up line says the telemetry stays here (console and local store)."""
    lowered = local_run.output.lower()
    assert "cannot export" not in lowered and "connection refused" not in lowered, local_run.output[-3000:]
    said = _telemetry_lines(local_run.output)
    assert len(said) == 1, local_run.output[-3000:]
    assert "console view" in said[0] and "local store" in said[0] and "not exported" in said[0], said
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in said[0], said  # how to send it somewhere


def test_with_an_otlp_endpoint_no_tree_is_printed(collector_run: ConsoleRun) -> None:
    """With a collector configured the console view is off; the request's spans went to the collector."""
    assert any(s.trace_id == TRACE_ID and s.kind == "SERVER" for s in collector_run.spans)
    assert collector_run.tree() == [] and "├─" not in collector_run.output, collector_run.output
    said = _telemetry_lines(collector_run.output)
    assert len(said) == 1 and "OTLP/HTTP" in said[0] and "/v1/traces" in said[0], collector_run.output[-3000:]
    assert "console view" not in said[0], said


def test_exported_db_span_names_carry_no_file_path(collector_run: ConsoleRun) -> None:
    """SQLite DB spans are named `<OPERATION> <database file name>`: no directory in a span-metrics label."""
    db = [s for s in collector_run.spans if s.attributes.get("db.system.name") == "sqlite"]
    db = [s for s in db if s.name != "connect"]
    assert db and {s.name for s in db} >= {"INSERT collector.db", "SELECT collector.db"}, [s.name for s in db]
    assert not [s.name for s in db if "/" in s.name or "\\" in s.name]


def test_an_unknown_route_prints_with_its_path(
    default_project: Path, backend_python: Path, tmp_path: Path
) -> None:
    """No route matched (so no http.route): the root line names the path, `GET /nope 404`, not
    `GET 404`; without its query string, which may carry secrets."""
    environ = clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'nope.db'}")
    with run_backend(backend_python, default_project, environ, tmp_path / "nope.log") as backend:
        response = httpx.get(
            f"{backend.url}/nope/deeper?token=hidden",
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
            timeout=10,
        )
        assert response.status_code == 404, response.text
    tree = ConsoleRun(backend.output(), []).tree()
    assert tree, backend.output()[-3000:]
    assert "sage-app-api GET /nope/deeper 404" in tree[0] and "hidden" not in tree[0], tree


def test_telemetry_console_true_forces_the_tree_on_beside_a_collector(
    default_project: Path, backend_python: Path, tmp_path: Path
) -> None:
    """TELEMETRY_CONSOLE=true prints the tree even with an OTLP endpoint set."""
    with OtlpReceiver() as otlp:
        run = _boot(
            default_project,
            backend_python,
            tmp_path,
            "forced",
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            TELEMETRY_CONSOLE="true",
        )
    tree = run.tree()
    assert tree and "POST /api/chat 200" in tree[0], run.output
    assert any("chat gpt-4o-mini" in line for line in tree), tree


def test_an_agent_run_prints_as_the_agent_tree(
    default_project: Path, backend_python: Path, tmp_path: Path
) -> None:
    """A run with two tools (one failing): the agent line with its LLM calls and summed usage, below it
    each chat call with its HTTP call, and each tool with the model's call id (and ✗ error.type)."""
    message = '[tool:calculate {"expression": "6 * 7"}] [tool:calculate {"expression": "1 / 0"}]'
    run = _boot(default_project, backend_python, tmp_path, "agent", message)
    tree = run.tree()
    print("\n".join(tree))  # the report quotes one agent trace as the console prints it
    agent = next((line for line in tree if "invoke_agent assistant" in line), "")
    assert agent.startswith("  ├─ invoke_agent assistant  3 LLM calls · "), tree
    assert "out tokens · $0.0" in agent, tree
    below = [line[8:] for line in tree if line.startswith(("  │  ├─ ", "  │  └─ "))]
    assert [line.split("  ")[0] for line in below] == [
        "chat gpt-4o-mini",
        "execute_tool calculate",
        "chat gpt-4o-mini",
        "execute_tool calculate",
        "chat gpt-4o-mini",
    ], tree
    assert re.search(r"^execute_tool calculate  call_\d+  ", below[1]), below
    assert re.search(r"^execute_tool calculate  call_\d+ ✗ ZeroDivisionError  ", below[3]), below
    text = "\n".join(tree)
    assert "INFO app.agent: tool.call" in text and "WARNING app.agent: tool.call" in text
