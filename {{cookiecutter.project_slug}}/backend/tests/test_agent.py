# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""The agent loop: tools offered, tool calls run and answered, bounds, and the spans of each step.

The stub LLM asks for one tool per round trip for each `[tool:NAME {args}]` marker in the message
(tools/stub_cerebe.py), so every test here drives the real loop over HTTP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import pytest
from fastapi.testclient import TestClient
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import Field

from app.agent import ToolContext, ToolRegistry, make_tool
from app.agent.tools import TOOLS, calculate
from app.main import create_app
from app.settings import Settings
from app.telemetry.llm import GEN_AI_USAGE_COST
from app.telemetry.testing import TelemetryCapture

CALC = '[tool:calculate {"expression": "6 * 7"}]'
USAGE = "[tool:conversation_usage]"
FAIL = '[tool:calculate {"expression": "1 / 0"}]'


def post(client: TestClient, message: str, conversation_id: str = "ag") -> dict:
    response = client.post("/api/chat", json={"conversation_id": conversation_id, "message": message})
    assert response.status_code == 200, response.text
    return response.json()


def spans_named(capture: TelemetryCapture, prefix: str) -> list:
    return sorted((s for s in capture.spans() if s.name.startswith(prefix)), key=lambda s: s.start_time)


def sse(client: TestClient, message: str, conversation_id: str = "ag-s") -> list[dict]:
    with client.stream("POST", "/api/chat/stream", json={"conversation_id": conversation_id, "message": message}) as r:
        return [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]


@pytest.fixture
def with_settings(stub_cerebe, tmp_path: Path, telemetry_capture: TelemetryCapture) -> Callable[..., TestClient]:
    """An app whose Settings take the given overrides (agent bounds), optionally with other tools."""
    clients: list[TestClient] = []

    def build(tools: ToolRegistry | None = None, **overrides: object) -> TestClient:
        settings = Settings.from_env(
            {},
            database_url=f"sqlite:///{tmp_path / 'agent.db'}",
            cerebe_base_url=stub_cerebe.url,
            cerebe_timeout=2.0,
            **overrides,
        )
        app = create_app(settings, telemetry_options=telemetry_capture.options())
        telemetry_capture.attach(app)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        if tools is not None:
            app.state.agent.tools = tools
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def test_tools_are_offered_as_openai_functions(client: TestClient, stub_cerebe) -> None:
    """The request to the LLM offers each tool as a function with a JSON schema from its type hints."""
    post(client, "hello")
    offered = {t["function"]["name"]: t for t in stub_cerebe.requests()[-1]["body"]["tools"]}
    assert set(offered) == {"calculate", "conversation_usage"}
    calc = offered["calculate"]["function"]
    assert offered["calculate"]["type"] == "function" and calc["description"].startswith("Evaluates")
    assert calc["parameters"]["required"] == ["expression"]
    assert calc["parameters"]["properties"]["expression"]["maxLength"] == 200
    assert offered["conversation_usage"]["function"]["parameters"]["properties"] == {}, "ToolContext is not offered"


def test_a_one_tool_run_is_an_agent_span_with_two_chat_spans_and_a_tool_span(
    client: TestClient, telemetry_capture: TelemetryCapture, stub_cerebe
) -> None:
    """invoke_agent under the server span; chat, execute_tool, chat below it, with the model's call id."""
    body = post(client, f"what is {CALC}")
    assert "[calculate: 42]" in body["reply"]
    server = telemetry_capture.span(kind=SpanKind.SERVER)
    agent = telemetry_capture.span(name="invoke_agent assistant")
    assert agent.kind == SpanKind.INTERNAL and agent.parent.span_id == server.context.span_id
    assert agent.attributes[gen_ai.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert agent.attributes[gen_ai.GEN_AI_AGENT_NAME] == "assistant"
    assert agent.attributes[gen_ai.GEN_AI_CONVERSATION_ID] == "ag"
    children = sorted(
        (s for s in telemetry_capture.spans() if s.parent and s.parent.span_id == agent.context.span_id),
        key=lambda s: s.start_time,
    )
    assert [s.name for s in children] == ["chat gpt-4o-mini", "execute_tool calculate", "chat gpt-4o-mini"]
    tool = children[1]
    assert tool.kind == SpanKind.INTERNAL and tool.status.status_code == StatusCode.UNSET
    assert tool.attributes[gen_ai.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert tool.attributes[gen_ai.GEN_AI_TOOL_NAME] == "calculate"
    assert tool.attributes[gen_ai.GEN_AI_TOOL_TYPE] == "function"
    # The id is the one the stub gave, and the tool's answer went back under it.
    answered = stub_cerebe.requests()[-1]["body"]["messages"]
    asked = answered[-2]["tool_calls"][0]
    assert tool.attributes[gen_ai.GEN_AI_TOOL_CALL_ID] == asked["id"] == body["steps"][0]["id"]
    assert answered[-1] == {"role": "tool", "tool_call_id": asked["id"], "content": "42"}
    assert not any("arguments" in key or "result" in key for key in tool.attributes), "content is opt-in"


def test_the_agent_span_and_the_reply_sum_the_round_trips_usage(
    client: TestClient, telemetry_capture: TelemetryCapture
) -> None:
    """Tokens and cost on the agent span and in the reply are the sums of its chat spans; /usage counts each."""
    body = post(client, f"two tools {CALC} {USAGE}")
    chats = spans_named(telemetry_capture, "chat ")
    agent = telemetry_capture.span(name="invoke_agent assistant")
    assert len(chats) == 3 and body["usage"]["llm_calls"] == 3 and agent.attributes["app.agent.steps"] == 3
    for key, field in (
        (gen_ai.GEN_AI_USAGE_INPUT_TOKENS, "input_tokens"),
        (gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS, "output_tokens"),
    ):
        total = sum(s.attributes[key] for s in chats)
        assert agent.attributes[key] == total == body["usage"][field]
    cost = sum(s.attributes[GEN_AI_USAGE_COST] for s in chats)
    assert agent.attributes[GEN_AI_USAGE_COST] == pytest.approx(cost) == body["usage"]["cost_usd"]
    usage = client.get("/api/conversations/ag/usage").json()
    assert usage["calls"] == 3 and usage["input_tokens"] == body["usage"]["input_tokens"]
    assert [s["name"] for s in body["steps"]] == ["calculate", "conversation_usage"]


def test_the_usage_tool_reads_this_conversation_so_far(client: TestClient) -> None:
    """conversation_usage answers with the stored replies of this conversation only."""
    first = post(client, "hello", conversation_id="u-1")
    post(client, "other conversation", conversation_id="u-2")
    body = post(client, USAGE, conversation_id="u-1")
    result = json.loads(body["steps"][0]["output"])
    assert result["replies"] == 1 and result["llm_calls"] == 1
    assert result["input_tokens"] == first["usage"]["input_tokens"]


def test_a_failing_tool_goes_back_to_the_model_and_its_span_is_an_error(
    client: TestClient, telemetry_capture: TelemetryCapture, stub_cerebe
) -> None:
    """1 / 0: the tool span is ERROR with error.type, the model reads the error, the run answers 200."""
    body = post(client, f"divide {FAIL}")
    (step,) = body["steps"]
    assert step["ok"] is False and step["error_type"] == "ZeroDivisionError"
    tool = telemetry_capture.span(name="execute_tool calculate")
    assert tool.status.status_code == StatusCode.ERROR and tool.attributes[ERROR_TYPE] == "ZeroDivisionError"
    agent = telemetry_capture.span(name="invoke_agent assistant")
    assert agent.status.status_code == StatusCode.UNSET
    sent = stub_cerebe.requests()[-1]["body"]["messages"][-1]
    assert sent["role"] == "tool" and "ZeroDivisionError: division by zero" in sent["content"]
    assert "ZeroDivisionError" in body["reply"]


def test_an_unknown_tool_or_bad_arguments_are_errors_for_the_model(
    client: TestClient, telemetry_capture: TelemetryCapture
) -> None:
    """A name the app lacks never names a span or a metric label; arguments off the schema are refused."""
    body = post(client, '[tool:rm_rf] [tool:calculate {"expression": "1", "extra": 2}]')
    assert [(s["ok"], s["error_type"]) for s in body["steps"]] == [
        (False, "unknown_tool"),
        (False, "invalid_arguments"),
    ]
    assert telemetry_capture.span(name="execute_tool unknown").attributes[gen_ai.GEN_AI_TOOL_NAME] == "unknown"
    points = telemetry_capture.metric_points("gen_ai.execute_tool.duration")
    assert {p.attributes[gen_ai.GEN_AI_TOOL_NAME] for p in points} == {"unknown", "calculate"}


def test_the_step_limit_stops_the_run_with_a_clear_error(
    with_settings: Callable[..., TestClient], telemetry_capture: TelemetryCapture
) -> None:
    """Past AGENT_MAX_STEPS round trips: 502 code max_steps with the trace id; the agent span says why."""
    client = with_settings(agent_max_steps=2)
    response = client.post("/api/chat", json={"conversation_id": "lim", "message": CALC * 3})
    assert response.status_code == 502
    error = response.json()
    assert error["code"] == "max_steps" and "AGENT_MAX_STEPS" in error["detail"] and len(error["trace_id"]) == 32
    agent = telemetry_capture.span(name="invoke_agent assistant")
    assert agent.status.status_code == StatusCode.ERROR and agent.attributes[ERROR_TYPE] == "max_steps"
    assert format(agent.context.trace_id, "032x") == error["trace_id"]
    assert (
        len(spans_named(telemetry_capture, "chat ")) == 2 and len(spans_named(telemetry_capture, "execute_tool")) == 1
    )
    assert agent.attributes["app.agent.steps"] == 2 and agent.attributes[gen_ai.GEN_AI_USAGE_INPUT_TOKENS] > 0
    (point,) = [p for p in telemetry_capture.metric_points("app.agent.steps") if p.attributes.get(ERROR_TYPE)]
    assert point.attributes == {gen_ai.GEN_AI_AGENT_NAME: "assistant", ERROR_TYPE: "max_steps"} and point.sum == 2


def test_the_tool_call_limit_stops_the_run(with_settings: Callable[..., TestClient]) -> None:
    """Past AGENT_MAX_TOOL_CALLS: 502 code max_tool_calls."""
    client = with_settings(agent_max_tool_calls=1)
    response = client.post("/api/chat", json={"conversation_id": "lim2", "message": CALC * 2})
    assert response.status_code == 502 and response.json()["code"] == "max_tool_calls"


def test_a_tool_past_its_timeout_stops_the_run(
    with_settings: Callable[..., TestClient], telemetry_capture: TelemetryCapture
) -> None:
    """Past AGENT_TOOL_TIMEOUT: 504 code tool_timeout; the tool span's error.type is timeout."""

    async def slow(seconds: float) -> str:
        """Waits."""
        await asyncio.sleep(seconds)
        return "done"

    client = with_settings(tools=ToolRegistry([make_tool(slow)]), agent_tool_timeout=0.2)
    response = client.post("/api/chat", json={"conversation_id": "slow", "message": '[tool:slow {"seconds": 30}]'})
    assert response.status_code == 504 and response.json()["code"] == "tool_timeout"
    tool = telemetry_capture.span(name="execute_tool slow")
    assert tool.status.status_code == StatusCode.ERROR and tool.attributes[ERROR_TYPE] == "timeout"
    agent = telemetry_capture.span(name="invoke_agent assistant")
    assert agent.attributes[ERROR_TYPE] == "tool_timeout"


def test_an_llm_failure_mid_run_fails_the_agent_span_with_its_type(
    client: TestClient, telemetry_capture: TelemetryCapture
) -> None:
    """A 500 from the LLM: 502 as before, the agent span ERROR with error.type 500."""
    response = client.post("/api/chat", json={"conversation_id": "f", "message": "[stub:500]"})
    assert response.status_code == 502
    assert telemetry_capture.span(name="invoke_agent assistant").attributes[ERROR_TYPE] == "500"


def test_no_tools_means_no_tools_offered(with_settings: Callable[..., TestClient], stub_cerebe) -> None:
    """With an empty registry the request carries no `tools` and markers are plain text."""
    client = with_settings(tools=ToolRegistry())
    body = client.post("/api/chat", json={"conversation_id": "n", "message": CALC}).json()
    assert "tools" not in stub_cerebe.requests()[-1]["body"] and body["steps"] == []


def test_tool_metrics_count_calls_by_tool_and_outcome(client: TestClient, telemetry_capture: TelemetryCapture) -> None:
    """gen_ai.execute_tool.duration: one point per tool and outcome, its count the calls."""
    post(client, f"{CALC} {CALC} {FAIL} {USAGE}")
    points = {
        (p.attributes[gen_ai.GEN_AI_TOOL_NAME], p.attributes.get(ERROR_TYPE)): p.count
        for p in telemetry_capture.metric_points("gen_ai.execute_tool.duration")
    }
    assert points == {("calculate", None): 2, ("calculate", "ZeroDivisionError"): 1, ("conversation_usage", None): 1}


def test_streaming_reports_tool_steps_and_traces_the_same_tree(
    client: TestClient, telemetry_capture: TelemetryCapture
) -> None:
    """The stream sends tool_call and tool_result events, then the text; tool-call deltas are put together."""
    events = sse(client, f"stream {CALC}")
    kinds = [next(iter(e)) for e in events]
    assert kinds[:2] == ["tool_call", "tool_result"] and kinds[-1] == "done" and "delta" in kinds
    call, result = events[0]["tool_call"], events[1]["tool_result"]
    assert call["name"] == "calculate" and json.loads(call["arguments"]) == {"expression": "6 * 7"}
    assert result["id"] == call["id"] and result["output"] == "42" and result["ok"] is True
    assert "[calculate: 42]" in "".join(e["delta"] for e in events if "delta" in e)
    assert events[-1]["llm_calls"] == 2
    chats = spans_named(telemetry_capture, "chat ")
    assert [s.attributes.get(gen_ai.GEN_AI_REQUEST_STREAM) for s in chats] == [True, True]
    tool = telemetry_capture.span(name="execute_tool calculate")
    assert tool.attributes[gen_ai.GEN_AI_TOOL_CALL_ID] == call["id"]


def test_streaming_a_stopped_run_sends_an_error_event(with_settings: Callable[..., TestClient]) -> None:
    """The step limit while streaming: an `error` event with the code and the trace id."""
    client = with_settings(agent_max_steps=1)
    with client.stream("POST", "/api/chat/stream", json={"conversation_id": "se", "message": CALC}) as r:
        text = "".join(r.iter_text())
    assert "event: error" in text
    detail = json.loads(text.split("event: error\ndata: ", 1)[1].split("\n", 1)[0])
    assert detail["code"] == "max_steps" and detail["status"] == 502 and len(detail["trace_id"]) == 32


def test_tool_arguments_and_results_are_recorded_only_when_opted_in(
    client_for: Callable[..., TestClient], telemetry_capture: TelemetryCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY adds gen_ai.tool.call.arguments / .result."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    client = client_for()
    post(client, CALC)
    tool = telemetry_capture.span(name="execute_tool calculate")
    assert json.loads(tool.attributes[gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"expression": "6 * 7"}
    assert tool.attributes[gen_ai.GEN_AI_TOOL_CALL_RESULT] == "42"
    second_chat = spans_named(telemetry_capture, "chat ")[1]
    assert '"tool_call_response"' in second_chat.attributes[gen_ai.GEN_AI_INPUT_MESSAGES]


def test_an_unsampled_run_exports_no_spans_but_counts_in_the_metrics(
    client_for: Callable[..., TestClient], telemetry_capture: TelemetryCapture
) -> None:
    """Ratio 0 and no parent: no agent, chat or tool span leaves; the tool and step metrics count the run."""
    client = client_for(trace_sample_ratio=0.0)
    assert post(client, CALC)["steps"][0]["output"] == "42"
    assert telemetry_capture.spans() == []
    assert [p.count for p in telemetry_capture.metric_points("gen_ai.execute_tool.duration")] == [1]
    assert [p.sum for p in telemetry_capture.metric_points("app.agent.steps")] == [2]


def test_with_the_sdk_disabled_the_agent_still_runs(client_for: Callable[..., TestClient]) -> None:
    """OTEL_SDK_DISABLED=true: the loop and its tools work, nothing is recorded."""
    client = client_for(sdk_disabled=True)
    body = post(client, f"{CALC} {FAIL}")
    assert [s["ok"] for s in body["steps"]] == [True, False] and body["usage"]["llm_calls"] == 3


def test_the_console_view_prints_the_agent_tree(
    settings: Settings, stub_cerebe, capsys: pytest.CaptureFixture[str]
) -> None:
    """The local view shows the agent line with its round trips, each tool with the model's call id."""
    from app.telemetry.testing import TelemetryCapture as Capture

    capture = Capture()
    app = create_app(settings, telemetry_options=capture.options(console=True))
    with TestClient(app) as client:
        post(client, f"sum {CALC} {FAIL}")
    tree = capsys.readouterr().err
    assert "├─ invoke_agent assistant  3 LLM calls · " in tree and "out tokens · $0.0" in tree
    assert "│  ├─ execute_tool calculate  call_" in tree
    assert "ZeroDivisionError" in tree.split("execute_tool calculate", 2)[2]


# -- the tool contract ---------------------------------------------------------------------------------


def test_a_tool_is_an_async_function_with_a_description() -> None:
    """Sync functions, missing docstrings, bad names and duplicate names are refused at definition."""

    def sync(x: int) -> int:
        """Sync."""
        return x

    async def undocumented(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="async"):
        make_tool(sync)
    with pytest.raises(ValueError, match="description"):
        make_tool(undocumented)
    with pytest.raises(ValueError, match="must match"):
        make_tool(undocumented, name="no spaces allowed", description="d")
    registry = ToolRegistry([make_tool(undocumented, description="d")])
    with pytest.raises(ValueError, match="two tools"):
        registry.add(make_tool(undocumented, description="d"))


def test_arguments_come_from_type_hints_and_are_validated() -> None:
    """Annotated Field limits become the schema; the model's JSON is checked against it."""

    async def lookup(
        city: Annotated[str, Field(max_length=5, description="city")], ctx: ToolContext, days: int = 1
    ) -> str:
        """Looks up."""
        return f"{city}:{days}:{ctx.conversation_id}"

    tool = make_tool(lookup)
    schema = tool.definition()["function"]["parameters"]
    assert schema["required"] == ["city"] and set(schema["properties"]) == {"city", "days"}
    assert schema["additionalProperties"] is False
    for bad in ('{"city": "toolongname"}', '{"city": "Oslo", "x": 1}', "not json", '{"days": 2}'):
        with pytest.raises(ValueError):
            tool.parse(bad)
    context = ToolContext("c-9", None, None)  # type: ignore[arg-type]
    assert asyncio.run(tool.call(tool.parse('{"city": "Oslo"}'), context)) == "Oslo:1:c-9"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("6 * 7", "42"), ("(17.5 - 2) * 3 / 4", "11.625"), ("2 ** 10", "1024"), ("-3 // 2", "-2"), ("7 % 4", "3")],
)
def test_calculate_evaluates_arithmetic(expression: str, expected: str) -> None:
    assert asyncio.run(calculate.call(calculate.parse(json.dumps({"expression": expression})), None)) == expected


@pytest.mark.parametrize(
    "expression", ["9 ** 9 ** 9", "10 ** 101 * 10", "__import__('os').getcwd()", "x + 1", "(1).real", "'a' * 3"]
)
def test_calculate_refuses_anything_but_bounded_arithmetic(expression: str) -> None:
    """Huge powers, names, attributes, calls and strings are errors, never evaluated."""
    with pytest.raises((ValueError, SyntaxError)):
        asyncio.run(calculate.call(calculate.parse(json.dumps({"expression": expression})), None))


def test_the_tools_file_registers_the_two_examples() -> None:
    assert [t.name for t in TOOLS] == ["conversation_usage", "calculate"]
