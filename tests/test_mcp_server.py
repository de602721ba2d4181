"""The telemetry MCP server, driven by the official SDK's own client over stdio, as an editor runs it.

Local mode: the rendered project's `make run` (no OTLP endpoint), the stub LLM, chats in two
conversations (one with a failed LLM call, `[stub:500]`), then the server `.mcp.json` names, started
from the project root. Stack mode: the same chats exported over OTLP to a receiver, then served by
loopback stand-ins answering Tempo's, Loki's and Prometheus's HTTP APIs (tests/support/stack_standins.py;
stand-ins because Tempo and Loki are AGPL and not buildable here). Each tool must name the right
traces and not the others; limits: malformed ids, a huge `since`, a flood of calls.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import render
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import clean_env, free_port, run_backend, run_stub_llm, wait_until_serving
from tests.support.stack_standins import StackStandIns

pytestmark = pytest.mark.boot

TOOLS = {"get_trace", "search_traces", "get_conversation", "recent_errors"}
OK, FAILING = "mcp-ok", "mcp-fail"
SECRET = "s3cr3t-query-value"


@dataclass
class Chats:
    """Trace ids of what was sent: two good replies in OK; one good, one failed LLM call in FAILING."""

    ok: list[str] = field(default_factory=list)
    failing_ok: str = ""
    failing: str = ""
    secret_url: str = ""
    session: str = "mcp-session-0001"

    @property
    def all(self) -> list[str]:
        return [*self.ok, self.failing_ok, self.failing]


def _chat(client: httpx.Client, conversation: str, message: str, status: int, **headers: str) -> str:
    response = client.post(
        "/api/chat", json={"conversation_id": conversation, "message": message}, headers=headers
    )
    assert response.status_code == status, response.text
    return response.json()["trace_id"]


def _send_chats(base_url: str) -> Chats:
    chats = Chats()
    with httpx.Client(base_url=base_url, timeout=15) as client:
        chats.ok = [_chat(client, OK, "first question", 200), _chat(client, OK, "second question", 200)]
        chats.failing_ok = _chat(client, FAILING, "this one works", 200, **{"x-session-id": chats.session})
        chats.failing = _chat(client, FAILING, "[stub:500]", 502)
        feedback = client.post(
            "/api/feedback", json={"trace_id": chats.failing_ok, "score": -1, "comment": "bad"}
        )
        assert feedback.status_code == 204, feedback.text
        secret = client.get(f"/api/conversations/{OK}/usage", params={"api_key": SECRET})
        chats.secret_url = secret.headers["traceresponse"].split("-")[1]
    return chats


def _mcp_command(project: Path) -> tuple[str, list[str]]:
    """The server `.mcp.json` names, exactly as an editor reads it."""
    config = json.loads((project / ".mcp.json").read_text())
    (name,) = config["mcpServers"]
    assert name == f"{project.name}-telemetry"
    server = config["mcpServers"][name]
    return server["command"], server["args"]


async def _session_calls(project: Path, env: dict[str, str], calls: list[tuple[str, dict]]) -> list[Any]:
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    command, args = _mcp_command(project)
    params = StdioServerParameters(command=command, args=args, env=env, cwd=project)
    results = []
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        results.append(init)
        results.append(await session.list_tools())
        for name, arguments in calls:
            results.append(await session.call_tool(name, arguments))
    return results


class Mcp:
    """Runs one MCP session per call() with the SDK's stdio client (a fresh server process each time)."""

    def __init__(self, project: Path, env: dict[str, str] | None = None) -> None:
        self.project, self.env = project, env or {}

    def call(self, name: str, **arguments: Any) -> Any:
        return self.calls([(name, arguments)])[0]

    def calls(self, calls: list[tuple[str, dict]]) -> list[Any]:
        return anyio.run(_session_calls, self.project, self.env, calls)[2:]

    def handshake(self) -> tuple[Any, Any]:
        init, tools = anyio.run(_session_calls, self.project, self.env, [])
        return init, tools


def _text(result: Any) -> str:
    return result.content[0].text


@contextmanager
def _make_run(project: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """`make run` as a developer types it (uvicorn --reload from backend/), stopped with SIGTERM."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "run", f"API_PORT={port}"], cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until_serving("make run", process, f"http://127.0.0.1:{port}/healthz", log.read_text, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class LocalRun:
    project: Path
    chats: Chats
    mcp: Mcp


@pytest.fixture(scope="module")
def local_run(backend_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    """A project of its own (its .venv is the cached backend venv), served by `make run`."""
    project = render(tmp_path_factory.mktemp("mcp-local"))
    (project / ".venv").symlink_to(backend_python.parent.parent)
    mcp = Mcp(project)
    with run_stub_llm(backend_python, project) as llm:
        env = clean_env(CEREBE_BASE_URL=llm.url, CEREBE_API_KEY="mcp-test-key")
        with _make_run(project, env, project / "make-run.log") as url:
            chats = _send_chats(url)
            # The store is written off the request path: poll until the last trace is there.
            deadline = time.monotonic() + 20
            while "not found" in _text(mcp.call("get_trace", trace_id=chats.secret_url)):
                assert time.monotonic() < deadline, (project / "make-run.log").read_text()
                time.sleep(0.2)
            yield LocalRun(project, chats, mcp)


def test_the_server_is_named_for_the_project_and_offers_four_read_only_tools(local_run: LocalRun) -> None:
    """`.mcp.json` starts `<slug>-telemetry`; its tools are the four of the contract, all read-only."""
    init, tools = local_run.mcp.handshake()
    assert init.server_info.name == "sage-app-telemetry"
    assert {tool.name for tool in tools.tools} == TOOLS
    assert all(tool.annotations.read_only_hint for tool in tools.tools)


def _check_conversations(mcp: Mcp, chats: Chats) -> None:
    failing, ok = mcp.calls(
        [("get_conversation", {"conversation_id": FAILING}), ("get_conversation", {"conversation_id": OK})]
    )
    text = _text(failing)
    assert chats.failing in text and chats.failing_ok in text, text
    assert not any(trace_id in text for trace_id in chats.ok), text
    assert "LLM chat gpt-4o-mini: ✗ 500" in text, text
    data = failing.structured_content
    assert data["traces"] == 2 and data["error_traces"] == 1, data
    assert data["llm_calls"] == 2 and data["failed_llm_calls"] == 1 and data["feedback"] == [-1], data
    assert data["replay_sessions"] == [chats.session] and data["cost_usd"] > 0, data
    assert [t["trace_id"] for t in data["trace_list"]] == [chats.failing_ok, chats.failing]

    text = _text(ok)
    assert (
        all(trace_id in text for trace_id in chats.ok)
        and chats.failing not in text
        and chats.failing_ok not in text
    )
    assert ok.structured_content["failed_llm_calls"] == 0 and ok.structured_content["input_tokens"] > 0


def _check_search_and_errors(mcp: Mcp, chats: Chats) -> None:
    by_conversation, errors, slow, nothing, recent = mcp.calls(
        [
            ("search_traces", {"conversation_id": OK}),
            ("search_traces", {"status": "error", "route": "/api/chat", "service": "sage-app-api"}),
            ("search_traces", {"min_duration_ms": 3_600_000}),
            ("search_traces", {"service": "no-such-service"}),
            ("recent_errors", {}),
        ]
    )
    found = {t["trace_id"] for t in by_conversation.structured_content["traces"]}
    assert found == set(chats.ok), _text(by_conversation)
    assert all(f"trace {trace_id}" in _text(by_conversation) for trace_id in chats.ok)
    assert [t["trace_id"] for t in errors.structured_content["traces"]] == [chats.failing], _text(errors)
    assert slow.structured_content["traces"] == [] and nothing.structured_content["traces"] == []
    text = _text(recent)
    assert chats.failing in text and not any(t in text for t in (*chats.ok, chats.failing_ok)), text
    assert "POST /api/chat · " in text, text


def _check_trace(mcp: Mcp, chats: Chats) -> None:
    failing, ok, secret = mcp.calls(
        [
            ("get_trace", {"trace_id": chats.failing}),
            ("get_trace", {"trace_id": chats.ok[0].upper()}),
            ("get_trace", {"trace_id": chats.secret_url}),
        ]
    )
    text = _text(failing)
    assert "POST /api/chat 502" in text and "chat gpt-4o-mini  ✗ 500" in text, text
    assert "/v1/chat/completions 500" in text and "app.llm: llm.call" in text, text
    assert "INSERT " in text and "SELECT " in text, text
    assert failing.structured_content["trace"]["error"] is True
    text = _text(ok)
    assert (
        ok.structured_content["trace"]["trace_id"] == chats.ok[0] and " in / " in text and "$0.0" in text
    ), text
    text = _text(secret) + json.dumps(secret.structured_content)
    assert SECRET not in text and "[REDACTED]" in text, text
    (rated,) = mcp.calls([("get_trace", {"trace_id": chats.failing_ok})])
    text = _text(rated)
    assert f"Replay session {chats.session}: http://localhost:3000/replay/{chats.session}" in text, text
    assert "feedback -1" in text and rated.structured_content["trace"]["feedback"] == [-1], text


def test_get_conversation_names_its_traces_and_its_failed_llm_call(local_run: LocalRun) -> None:
    """The failing conversation lists its two traces (not the other one's), the 500, feedback, replay."""
    _check_conversations(local_run.mcp, local_run.chats)


def test_search_and_recent_errors_name_the_right_traces(local_run: LocalRun) -> None:
    """Filters by conversation, status, route, service and duration; recent_errors has only the failure."""
    _check_search_and_errors(local_run.mcp, local_run.chats)


def test_get_trace_is_the_console_tree_with_secrets_scrubbed(local_run: LocalRun) -> None:
    """The tree shows DB, LLM (✗ 500), HTTP out and log lines; a query secret is redacted in the store."""
    _check_trace(local_run.mcp, local_run.chats)
    store = local_run.project / ".cache" / "telemetry" / "store.sqlite3"
    assert store.exists() and SECRET.encode() not in b"".join(
        p.read_bytes() for p in store.parent.iterdir() if p.is_file()
    )


def test_bad_input_gets_a_clear_answer_never_a_crash(local_run: LocalRun) -> None:
    """Malformed and unknown ids, a bad window, out-of-range limits, a huge since: one readable line each."""
    results = local_run.mcp.calls(
        [
            ("get_trace", {"trace_id": "not-a-trace"}),
            ("get_trace", {"trace_id": "0" * 32}),
            ("get_trace", {"trace_id": "ab" * 16}),
            ("get_trace", {"trace_id": "x" * 100_000}),
            ("get_conversation", {"conversation_id": "no such conversation!"}),
            ("get_conversation", {"conversation_id": "never-seen"}),
            ("search_traces", {"limit": 1_000_000}),
            ("recent_errors", {"since": "banana"}),
            ("recent_errors", {"since": "99999999999w"}),
            ("search_traces", {"since": "1970-01-01T00:00:00", "conversation_id": FAILING}),
            ("search_traces", {"route": '/api/chat" } || { true'}),
            ("search_traces", {"route": "/api/chat\n{ }"}),
        ]
    )
    (
        malformed,
        zero,
        unknown,
        huge,
        bad_conv,
        unknown_conv,
        big_limit,
        banana,
        clamped,
        epoch,
        quoted,
        newline,
    ) = results
    assert malformed.is_error and "invalid trace id" in _text(malformed)
    assert zero.is_error and "invalid trace id" in _text(zero)
    assert not unknown.is_error and "not found" in _text(unknown)
    assert huge.is_error and len(_text(huge)) < 2000
    assert bad_conv.is_error and "invalid conversation id" in _text(bad_conv)
    assert not unknown_conv.is_error and "not found" in _text(unknown_conv)
    assert big_limit.is_error
    assert banana.is_error and "invalid since" in _text(banana)
    assert not clamped.is_error and "clamped from 99999999999w" in _text(clamped)
    assert local_run.chats.failing in _text(clamped)
    assert not epoch.is_error and "1w (clamped from 1970-01-01T00:00:00)" in _text(epoch)
    assert not quoted.is_error and quoted.structured_content["traces"] == [], (
        "a quote is data, not query syntax"
    )
    assert newline.is_error and "invalid route" in _text(newline)


def test_a_flood_of_calls_is_answered_in_bounded_time(local_run: LocalRun) -> None:
    """300 calls at once on one session: every one answered correctly, within a deadline, server still up."""

    async def flood() -> tuple[list[Any], float]:
        from mcp import ClientSession
        from mcp.client.stdio import StdioServerParameters, stdio_client

        command, args = _mcp_command(local_run.project)
        params = StdioServerParameters(command=command, args=args, cwd=local_run.project)
        answers: list[Any] = []
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            started = time.monotonic()

            async def one(index: int) -> None:
                if index % 3 == 0:
                    answers.append(
                        await session.call_tool("get_trace", {"trace_id": local_run.chats.failing})
                    )
                elif index % 3 == 1:
                    answers.append(await session.call_tool("get_trace", {"trace_id": "nope"}))
                else:
                    answers.append(await session.call_tool("recent_errors", {"since": "10000d"}))

            with anyio.fail_after(120):
                async with anyio.create_task_group() as group:
                    for index in range(300):
                        group.start_soon(one, index)
            elapsed = time.monotonic() - started
            answers.append(await session.call_tool("get_conversation", {"conversation_id": FAILING}))
        return answers, elapsed

    answers, elapsed = anyio.run(flood)
    assert len(answers) == 301
    assert sum(1 for a in answers if a.is_error and "invalid trace id" in _text(a)) == 100
    assert sum(1 for a in answers if not a.is_error and local_run.chats.failing in _text(a)) == 201
    assert elapsed < 90, elapsed


# -- stack mode ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack_run(
    default_project: Path, backend_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[StackStandIns, Chats, Mcp]]:
    """The same chats exported over OTLP, then served by the Tempo/Loki/Prometheus stand-ins."""
    workdir = tmp_path_factory.mktemp("mcp-stack")
    project = render(workdir / "project")
    (project / ".venv").symlink_to(backend_python.parent.parent)
    with OtlpReceiver() as otlp, run_stub_llm(backend_python, default_project) as llm:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="200",
            OTEL_BLRP_SCHEDULE_DELAY="200",
            CEREBE_BASE_URL=llm.url,
            DATABASE_URL=f"sqlite:///{workdir / 'stack.db'}",
        )
        with run_backend(backend_python, default_project, env, workdir / "backend.log") as backend:
            chats = _send_chats(backend.url)
        spans, logs = otlp.spans(), otlp.logs()
    with StackStandIns(spans, logs, namespace="sage-app") as stack:
        mcp = Mcp(
            project,
            {
                "TEMPO_URL": stack.tempo_url,
                "LOKI_URL": stack.loki_url,
                "PROMETHEUS_URL": stack.prometheus_url,
                "GRAFANA_URL": "http://127.0.0.1:3001",
            },
        )
        yield stack, chats, mcp


def test_stack_mode_answers_the_same_from_tempo_loki_and_prometheus(
    stack_run: tuple[StackStandIns, Chats, Mcp],
) -> None:
    """Same checks as local mode; trace_id is queried as Loki structured metadata, never a label."""
    stack, chats, mcp = stack_run
    _check_conversations(mcp, chats)
    _check_search_and_errors(mcp, chats)
    _check_trace(mcp, chats)
    (trace,) = mcp.calls([("get_trace", {"trace_id": chats.failing})])
    assert "Grafana: http://127.0.0.1:3001/explore?" in _text(trace) and "%22uid%22%3A%22tempo%22" in _text(
        trace
    )
    assert 'span.gen_ai.conversation.id = "mcp-fail"' in " ".join(stack.queries["tempo"])
    assert any(f'| trace_id="{chats.failing}"' in q for q in stack.queries["loki"]), stack.queries["loki"]
    assert not any("{trace_id" in q or ", trace_id" in q.split("}")[0] for q in stack.queries["loki"])
    (quoted,) = mcp.calls([("search_traces", {"route": '/api/chat" } || { true'})])
    assert not quoted.is_error and quoted.structured_content["traces"] == [], _text(quoted)
    assert '{ span.http.route = "/api/chat\\" } || { true" }' in stack.queries["tempo"], stack.queries[
        "tempo"
    ]
    (errors,) = mcp.calls([("recent_errors", {"since": "2h"})])
    assert "metrics: sage-app-api /api/chat 502: 1 answers" in _text(errors), _text(errors)


def test_stack_mode_says_when_the_stack_does_not_answer(stack_run: tuple[StackStandIns, Chats, Mcp]) -> None:
    """Tempo down: a one-line answer naming it, not a crash."""
    _, chats, mcp = stack_run
    down = Mcp(mcp.project, {"TEMPO_URL": f"http://127.0.0.1:{free_port()}"})
    (result,) = down.calls([("get_trace", {"trace_id": chats.failing})])
    assert result.is_error and "not reachable" in _text(result), _text(result)
