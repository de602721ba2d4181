"""The agent on the booted scaffold: what a collector receives for tool-calling runs.

One uvicorn run (AGENT_MAX_STEPS=3) against the scaffold's stub LLM process, which asks for one tool
per round trip for each `[tool:NAME {args}]` marker: a one-tool and a two-tool run, a failing tool,
a run past the step limit, a streamed run; a graceful stop flushes everything. The assertions read
the decoded OTLP and what the stub LLM received.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.otlp_receiver import LogRecord, Metric, OtlpReceiver, Span
from tests.support.processes import clean_env, run_backend, run_stub_llm

pytestmark = pytest.mark.boot

CALC = '[tool:calculate {"expression": "6 * 7"}]'
USAGE = "[tool:conversation_usage]"
FAIL = '[tool:calculate {"expression": "1 / 0"}]'
MESSAGES = {
    "one": f"one tool {CALC}",
    "two": f"two tools {USAGE} {CALC}",
    "fail": f"failing tool {FAIL}",
    "limit": CALC * 4,
}
AGENT = "invoke_agent assistant"
# Attributes this project adds beside the conventions (README: LLM calls, Agent).
EXTENSIONS = {"gen_ai.usage.cost", "app.agent.steps"}


@dataclass
class AgentBoot:
    replies: dict[str, httpx.Response]
    streamed: list[dict]
    usage_two: dict
    spans: list[Span]
    logs: list[LogRecord]
    metrics: list[Metric]
    llm_requests: list[dict]
    errors: list[str]

    def reply(self, name: str) -> dict:
        return self.replies[name].json()

    def trace(self, trace_id: str) -> list[Span]:
        return sorted((s for s in self.spans if s.trace_id == trace_id), key=lambda s: s.start_ns)

    def agent(self, trace_id: str) -> Span:
        (agent,) = [s for s in self.trace(trace_id) if s.name == AGENT]
        return agent

    def children(self, span: Span) -> list[Span]:
        return [s for s in self.trace(span.trace_id) if s.parent_span_id == span.span_id]

    def steps(self, trace_id: str) -> list[Span]:
        """The agent's direct children that are chat or tool spans, in start order."""
        children = self.children(self.agent(trace_id))
        return [s for s in children if s.name.startswith(("chat ", "execute_tool "))]


def _sse(client: httpx.Client, conversation_id: str, message: str) -> list[dict]:
    with client.stream(
        "POST", "/api/chat/stream", json={"conversation_id": conversation_id, "message": message}
    ) as response:
        return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]


@pytest.fixture(scope="module")
def boot(default_project: Path, backend_python: Path, tmp_path_factory: pytest.TempPathFactory) -> AgentBoot:
    workdir = tmp_path_factory.mktemp("agent")
    with OtlpReceiver() as otlp, run_stub_llm(backend_python, default_project) as llm:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            CEREBE_BASE_URL=llm.url,
            AGENT_MAX_STEPS="3",
            DATABASE_URL=f"sqlite:///{workdir / 'agent.db'}",
        )
        with run_backend(backend_python, default_project, env, workdir / "backend.log") as backend:
            with httpx.Client(base_url=backend.url, timeout=10) as client:
                replies = {
                    name: client.post("/api/chat", json={"conversation_id": name, "message": message})
                    for name, message in MESSAGES.items()
                }
                streamed = _sse(client, "stream", f"streamed {CALC}")
                usage_two = client.get("/api/conversations/two/usage").json()
        return AgentBoot(
            replies,
            streamed,
            usage_two,
            otlp.spans(),
            otlp.logs(),
            otlp.metrics(),
            llm.requests(),
            otlp.errors,
        )


def test_receiver_rejected_nothing(boot: AgentBoot) -> None:
    """Every export was valid OTLP."""
    assert boot.errors == []


def test_a_one_tool_run_is_one_agent_span_over_chat_tool_chat(boot: AgentBoot) -> None:
    """invoke_agent (INTERNAL) under the server span; below it chat, execute_tool calculate, chat."""
    reply = boot.reply("one")
    assert boot.replies["one"].status_code == 200 and "[calculate: 42]" in reply["reply"]
    trace = boot.trace(reply["trace_id"])
    (server,) = [s for s in trace if s.kind == "SERVER"]
    agent = boot.agent(reply["trace_id"])
    assert agent.parent_span_id == server.span_id and agent.kind == "INTERNAL"
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "assistant"
    assert agent.attributes["gen_ai.conversation.id"] == "one"
    steps = boot.steps(reply["trace_id"])
    assert [(s.name, s.kind) for s in steps] == [
        ("chat gpt-4o-mini", "CLIENT"),
        ("execute_tool calculate", "INTERNAL"),
        ("chat gpt-4o-mini", "CLIENT"),
    ]
    tool = steps[1]
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "calculate"
    assert tool.attributes["gen_ai.tool.type"] == "function"
    assert tool.status_code == "UNSET"
    # Each chat span keeps its HTTP call to the LLM below it.
    for chat in (steps[0], steps[2]):
        (http,) = boot.children(chat)
        assert http.kind == "CLIENT" and str(http.attributes["url.full"]).endswith("/v1/chat/completions")


def test_the_tool_call_id_is_the_one_the_stub_gave_and_goes_back_with_the_result(boot: AgentBoot) -> None:
    """gen_ai.tool.call.id equals the stub's id; the next request answers it as role "tool"."""
    tool = boot.steps(boot.reply("one")["trace_id"])[1]
    call_id = tool.attributes["gen_ai.tool.call.id"]
    answered = [
        r["body"]
        for r in boot.llm_requests
        if (last := r["body"]["messages"][-1]).get("role") == "tool" and last["tool_call_id"] == call_id
    ]
    (body,) = answered
    asked = body["messages"][-2]
    assert asked["role"] == "assistant" and asked["tool_calls"][0]["id"] == call_id
    assert asked["tool_calls"][0]["function"]["name"] == "calculate"
    assert body["messages"][-1]["content"] == "42"
    assert call_id == boot.reply("one")["steps"][0]["id"]
    assert traceparent_of(body, boot) == tool.trace_id


def traceparent_of(body: dict, boot: AgentBoot) -> str:
    """The trace id in the traceparent header of the LLM request that carried `body`."""
    (request,) = [r for r in boot.llm_requests if r["body"] is body]
    return request["headers"]["traceparent"].split("-")[1]


def test_a_two_tool_run_sums_its_three_round_trips(boot: AgentBoot) -> None:
    """Two tools, three chat spans; the agent span, the reply and /usage all hold the sums of the three."""
    reply = boot.reply("two")
    steps = boot.steps(reply["trace_id"])
    assert [s.name for s in steps] == [
        "chat gpt-4o-mini",
        "execute_tool conversation_usage",
        "chat gpt-4o-mini",
        "execute_tool calculate",
        "chat gpt-4o-mini",
    ]
    chats = [s for s in steps if s.kind == "CLIENT"]
    agent = boot.agent(reply["trace_id"])
    tokens_in = sum(s.attributes["gen_ai.usage.input_tokens"] for s in chats)
    tokens_out = sum(s.attributes["gen_ai.usage.output_tokens"] for s in chats)
    cost = sum(s.attributes["gen_ai.usage.cost"] for s in chats)
    assert agent.attributes["gen_ai.usage.input_tokens"] == tokens_in == reply["usage"]["input_tokens"]
    assert agent.attributes["gen_ai.usage.output_tokens"] == tokens_out == reply["usage"]["output_tokens"]
    assert agent.attributes["gen_ai.usage.cost"] == pytest.approx(cost)
    assert reply["usage"]["cost_usd"] == pytest.approx(cost)
    assert agent.attributes["app.agent.steps"] == 3 == reply["usage"]["llm_calls"]
    usage = boot.usage_two
    assert usage["calls"] == 3 and usage["input_tokens"] == tokens_in and usage["output_tokens"] == tokens_out
    ids = [s.attributes["gen_ai.tool.call.id"] for s in steps if s.kind == "INTERNAL"]
    assert ids == [step["id"] for step in reply["steps"]] and len(set(ids)) == 2


def test_a_failing_tool_is_an_error_span_the_tail_sampler_keeps_and_the_run_goes_on(boot: AgentBoot) -> None:
    """1 / 0: execute_tool is ERROR with error.type (the tail sampler's errors policy keeps the trace);
    the model got the error as the tool result and answered; the agent span is not an error."""
    reply = boot.reply("fail")
    assert boot.replies["fail"].status_code == 200 and "ZeroDivisionError" in reply["reply"]
    (tool,) = [s for s in boot.steps(reply["trace_id"]) if s.kind == "INTERNAL"]
    assert tool.status_code == "ERROR" and tool.attributes["error.type"] == "ZeroDivisionError"
    assert boot.agent(reply["trace_id"]).status_code == "UNSET"
    warnings = [r for r in boot.logs if r.body == "tool.call" and r.span_id == tool.span_id]
    assert [(w.severity_text, w.attributes["outcome"]) for w in warnings] == [("WARN", "ZeroDivisionError")]


def test_the_step_limit_answers_a_clear_error_and_the_agent_span_says_why(boot: AgentBoot) -> None:
    """Four tools asked with AGENT_MAX_STEPS=3: 502 code max_steps naming the trace; agent span ERROR."""
    response = boot.replies["limit"]
    assert response.status_code == 502
    error = response.json()
    assert error["code"] == "max_steps" and "AGENT_MAX_STEPS" in error["detail"]
    agent = boot.agent(error["trace_id"])
    assert agent.status_code == "ERROR" and agent.attributes["error.type"] == "max_steps"
    steps = boot.steps(error["trace_id"])
    assert [s.kind for s in steps] == ["CLIENT", "INTERNAL", "CLIENT", "INTERNAL", "CLIENT"]
    assert agent.attributes["app.agent.steps"] == 3


def test_the_streamed_run_sends_tool_steps_and_traces_the_same_tree(boot: AgentBoot) -> None:
    """The stream's tool_call / tool_result events carry the stub's id; its chat spans are streamed."""
    events = boot.streamed
    call = next(e["tool_call"] for e in events if "tool_call" in e)
    result = next(e["tool_result"] for e in events if "tool_result" in e)
    done = events[-1]
    assert done["done"] is True and done["llm_calls"] == 2
    assert result["id"] == call["id"] and result["output"] == "42"
    steps = boot.steps(done["trace_id"])
    assert [s.name for s in steps] == ["chat gpt-4o-mini", "execute_tool calculate", "chat gpt-4o-mini"]
    assert all(s.attributes.get("gen_ai.request.stream") is True for s in steps if s.kind == "CLIENT")
    assert steps[1].attributes["gen_ai.tool.call.id"] == call["id"]
    bodies = [r["body"] for r in boot.llm_requests]
    streamed = next(body for body in bodies if body.get("stream") and body.get("tools"))
    assert streamed["stream_options"] == {"include_usage": True}


def test_tool_and_step_metrics_arrive_without_high_cardinality_labels(boot: AgentBoot) -> None:
    """gen_ai.execute_tool.duration by tool and outcome; app.agent.steps by agent and outcome."""
    names = {m.name: m for m in boot.metrics}
    tools = names["gen_ai.execute_tool.duration"]
    # The names and units the LLM dashboard's agent panels query (after Prometheus's translation).
    agent_metrics = ("gen_ai.invoke_agent.duration", "app.agent.steps")
    assert {(n, names[n].unit, names[n].kind) for n in agent_metrics} == {
        ("gen_ai.invoke_agent.duration", "s", "histogram"),
        ("app.agent.steps", "{step}", "histogram"),
    }
    assert tools.unit == "s" and tools.kind == "histogram"
    counts = {
        (p["attributes"]["gen_ai.tool.name"], p["attributes"].get("error.type")): p["count"]
        for p in tools.data_points
    }
    # one, two (x2), fail, limit (x2), stream: calculate 5 ok + 1 failed, conversation_usage 1.
    assert counts == {
        ("calculate", None): 5,
        ("calculate", "ZeroDivisionError"): 1,
        ("conversation_usage", None): 1,
    }
    steps = names["app.agent.steps"]
    by_outcome = {p["attributes"].get("error.type"): (p["count"], p["sum"]) for p in steps.data_points}
    assert by_outcome == {None: (4, 2 + 3 + 2 + 2), "max_steps": (1, 3)}
    for metric in (tools, steps):
        for point in metric.data_points:
            assert not set(point["attributes"]) & {"gen_ai.conversation.id", "gen_ai.tool.call.id"}


def test_every_genai_attribute_is_in_the_installed_semantic_conventions(
    boot: AgentBoot, backend_python: Path
) -> None:
    """Each gen_ai.* / error.* key on the agent, chat and tool spans is a name of the semconv package the
    backend pins (opentelemetry-semantic-conventions), or one of this project's documented extensions.
    (OpenTelemetry Weaver's live check would do this against the registry; it is not installable here.)"""
    script = (
        "import json; from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as g, "
        "error_attributes as e; print(json.dumps(sorted({v for m in (g, e) for k, v in vars(m).items() "
        "if k.isupper() and isinstance(v, str)})))"
    )
    known = set(json.loads(subprocess.check_output([str(backend_python), "-c", script], text=True)))
    used = {
        key
        for span in boot.spans
        if span.name.startswith(("invoke_agent ", "execute_tool ", "chat "))
        for key in span.attributes
        if key.startswith(("gen_ai.", "error.", "app."))
    }
    assert {"gen_ai.tool.call.id", "gen_ai.agent.name", "gen_ai.conversation.id"} <= used
    assert used - known == EXTENSIONS
