# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Agent runs as the GenAI semantic conventions describe them (semantic-conventions-genai v0.1.0).

    invoke_agent <agent name>   INTERNAL, one per request: gen_ai.operation.name = invoke_agent,
    │                           gen_ai.agent.name, gen_ai.conversation.id, the request's tokens and
    │                           cost summed over its round trips, app.agent.steps; error.type if it failed
    ├─ chat <model>             CLIENT, one per LLM round trip (telemetry/llm.py, unchanged)
    └─ execute_tool <tool>      INTERNAL, one per tool call: gen_ai.tool.name, gen_ai.tool.call.id
                                (the model's id), gen_ai.tool.type = function; error.type + ERROR

The spans and the tool duration histogram (`gen_ai.execute_tool.duration`, by gen_ai.tool.name and
error.type: its count is the tool calls by tool and outcome) come from OpenTelemetry's util-genai,
the same handler as the chat spans. `app.agent.steps` (a histogram of round trips per request, by
agent and error.type) and the attribute of that name are this project's extension, like
`gen_ai.usage.cost`. Tool arguments and results are content: recorded only under
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT (SPAN_ONLY or SPAN_AND_EVENT), cut to 4,096 characters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.metrics import MeterProvider
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_AGENT_NAME,
    GEN_AI_PROVIDER_NAME,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.util.genai.invocation import LocalAgentInvocation, ToolInvocation
from opentelemetry.util.genai.types import Error

from .llm import GEN_AI_USAGE_COST, MAX_CONTENT_CHARS, LLMTelemetry

STEPS_METRIC = "app.agent.steps"
STEPS_ATTRIBUTE = "app.agent.steps"
FUNCTION = "function"  # gen_ai.tool.type's value for a function the app runs (the package has no enum for it)
# A tool name the app does not know is the model's text: it never becomes a span name or a metric
# label (span metrics and Prometheus would get one series per invented name).
UNKNOWN_TOOL = "unknown"
STEP_BUCKETS = [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30]


class AgentTelemetry:
    """One per app: the agent's and its tools' spans, on util-genai's handler shared with the LLM spans."""

    def __init__(self, llm: LLMTelemetry, meter_provider: MeterProvider | None) -> None:
        self._handler = llm.handler
        meter = meter_provider.get_meter(__name__) if meter_provider else None
        self._steps = (
            meter.create_histogram(
                STEPS_METRIC,
                unit="{step}",
                description="LLM round trips per agent run",
                explicit_bucket_boundaries_advisory=STEP_BUCKETS,
            )
            if meter
            else None
        )

    @property
    def capture_content(self) -> bool:
        return self._handler.should_capture_content()

    @contextmanager
    def run(self, *, agent_name: str, provider: str, model: str, conversation_id: str | None) -> Iterator[AgentRun]:
        """The `invoke_agent` span around one request's loop; it is the current span inside.

        On an exception it ends as ERROR with the exception's `error_type` (or class name), after
        recording what the run had used so far, and re-raises."""
        invocation = self._handler.invoke_local_agent(
            request_model=model, agent_name=agent_name, conversation_id=conversation_id
        )
        invocation.attributes[GEN_AI_PROVIDER_NAME] = provider
        run = AgentRun(self, invocation, agent_name)
        try:
            yield run
        except BaseException as exc:
            error_type = getattr(exc, "error_type", None) or type(exc).__qualname__
            run.close(error_type)
            invocation.fail(Error(type=error_type, message=str(exc) or error_type))
            raise
        run.close(None)
        invocation.stop()

    def record_steps(self, steps: int, agent_name: str, error_type: str | None) -> None:
        if self._steps is not None:
            attributes = {GEN_AI_AGENT_NAME: agent_name}
            if error_type:
                attributes[ERROR_TYPE] = error_type
            self._steps.record(steps, attributes)


class AgentRun:
    """The agent span in progress: add each round trip's usage, start each tool call's span."""

    def __init__(self, telemetry: AgentTelemetry, invocation: LocalAgentInvocation, agent_name: str) -> None:
        self._telemetry = telemetry
        self.invocation = invocation
        self.agent_name = agent_name
        self.steps = 0
        self.input_tokens: int | None = 0
        self.output_tokens: int | None = 0
        self.cost_usd: float | None = 0.0

    def add_round_trip(self, input_tokens: int | None, output_tokens: int | None, cost_usd: float | None) -> None:
        """One LLM call's usage; a call without usage (or cost) leaves the sum out rather than understate it."""
        self.steps += 1
        self.input_tokens = (
            None if input_tokens is None or self.input_tokens is None else self.input_tokens + input_tokens
        )
        self.output_tokens = (
            None if output_tokens is None or self.output_tokens is None else self.output_tokens + output_tokens
        )
        self.cost_usd = None if cost_usd is None or self.cost_usd is None else self.cost_usd + cost_usd

    def close(self, error_type: str | None) -> None:
        invocation = self.invocation
        if self.steps:
            invocation.input_tokens = self.input_tokens
            invocation.output_tokens = self.output_tokens
            if self.cost_usd is not None:
                invocation.attributes[GEN_AI_USAGE_COST] = self.cost_usd
        invocation.attributes[STEPS_ATTRIBUTE] = self.steps
        self._telemetry.record_steps(self.steps, self.agent_name, error_type)

    @contextmanager
    def tool(
        self, name: str, *, call_id: str, known: bool, description: str | None, arguments: str
    ) -> Iterator[ToolSpan]:
        """The `execute_tool` span of one call. Fail it with ToolSpan.fail; an exception also fails it."""
        handler = self._telemetry._handler
        invocation = handler.tool(name if known else UNKNOWN_TOOL, tool_type=FUNCTION, agent_name=self.agent_name)
        invocation.tool_call_id = call_id
        if known and description:
            invocation.tool_description = _cut(description)
        capture = handler.should_capture_content()
        if capture:
            invocation.arguments = _cut(arguments)
        span = ToolSpan(invocation, capture)
        try:
            yield span
        except BaseException as exc:
            span.fail(getattr(exc, "error_type", None) or type(exc).__qualname__, str(exc))
            raise
        finally:
            span.end()


class ToolSpan:
    def __init__(self, invocation: ToolInvocation, capture: bool) -> None:
        self.invocation = invocation
        self._capture = capture
        self._error: Error | None = None

    def result(self, text: str) -> None:
        """What goes back to the model (content: recorded only when captured)."""
        if self._capture:
            self.invocation.tool_result = _cut(text)

    def fail(self, error_type: str, message: str) -> None:
        if self._error is None:
            self._error = Error(type=error_type, message=message or error_type)

    def end(self) -> None:
        if self._error is not None:
            self.invocation.fail(self._error)
        else:
            self.invocation.stop()


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CONTENT_CHARS else text[:MAX_CONTENT_CHARS] + "…"
