# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""LLM calls: GenAI-semconv spans and metrics (OpenTelemetry's util-genai) plus cost in USD.

`gen_ai.usage.cost` (span attribute) and `gen_ai.client.cost` (counter, USD, labelled by model and
operation only) are this scaffold's vendor extension, not semantic conventions. Prices come from
genai-prices (a maintained table); put your own models or negotiated prices in PRICE_OVERRIDES.

Prompts and completions are not recorded unless OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
is SPAN_ONLY, EVENT_ONLY or SPAN_AND_EVENT (util-genai's modes); each text is then cut to
MAX_CONTENT_CHARS. Every call also logs one `llm.call` record (tokens, cost, latency) so cost can
be rolled up per conversation in Loki.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from genai_prices import Usage, calc_price
from genai_prices.data_snapshot import DataSnapshot, get_snapshot
from genai_prices.types import ModelInfo, ModelPrice, TieredPrices
from opentelemetry.metrics import MeterProvider
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_OPERATION_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_SYSTEM,
    GenAiOperationNameValues,
)
from opentelemetry.trace import TracerProvider
from opentelemetry.util.genai.handler import TelemetryHandler
from opentelemetry.util.genai.invocation import InferenceInvocation
from opentelemetry.util.genai.types import (
    Error,
    InputMessage,
    MessagePart,
    OutputMessage,
    TextPart,
    ToolCallRequestPart,
    ToolCallResponsePart,
)

# Vendor extensions (no semantic convention for cost exists).
GEN_AI_USAGE_COST = "gen_ai.usage.cost"
COST_METRIC = "gen_ai.client.cost"
CHAT = GenAiOperationNameValues.CHAT.value
MAX_CONTENT_CHARS = 4096
_MILLION = 1_000_000

# model -> (USD per million input tokens, USD per million output tokens); wins over genai-prices.
PRICE_OVERRIDES: dict[str, tuple[float, float]] = {}

_internal = logging.getLogger("app.telemetry.llm")
# The per-call record is app data (it ships to OTLP/Loki), so it is not under app.telemetry.
call_logger = logging.getLogger("app.llm")


class PriceTable:
    """Cost of one call in USD, or None (and one warning per model) when the model is unknown.

    genai-prices' `calc_price` costs ~0.1 ms per call (it resolves every priced unit of the model
    each time). Here the price in force is looked up per call (prices can change by date or time
    of day), and a non-tiered one, linear in the token counts, is turned once into a fixed part
    and a price per input and per output token: the same Decimal result for a fraction of the
    work (~6 µs). Tiered prices (by input size) go through genai-prices' calculation every time.
    """

    def __init__(self, overrides: Mapping[str, tuple[float, float]] | None = None) -> None:
        self._overrides = dict(PRICE_OVERRIDES if overrides is None else overrides)
        self._unknown: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        # (provider, model) -> (genai-prices snapshot, the model's entry in it); a new snapshot
        # (prices updated at run time) looks the model up again.
        self._models: dict[tuple[str, str], tuple[DataSnapshot, ModelInfo]] = {}
        # id(ModelPrice) -> (that price, its linear form or None when tiered)
        self._linear: dict[int, tuple[ModelPrice, tuple[Decimal, Decimal, Decimal] | None]] = {}

    def cost_usd(self, provider: str, model: str, input_tokens: int, output_tokens: int) -> float | None:
        if model in self._overrides:
            per_input, per_output = self._overrides[model]
            return (input_tokens * per_input + output_tokens * per_output) / 1_000_000
        if (provider, model) in self._unknown:
            return None
        try:
            total = self._total_price(provider, model, input_tokens, output_tokens)
        except Exception as exc:  # noqa: BLE001 - an unknown model costs a warning, never a request
            with self._lock:
                first = (provider, model) not in self._unknown
                self._unknown.add((provider, model))
            if first:
                _internal.warning("No price for model %r of provider %r: %s", model, provider, exc)
            return None
        return float(total)

    def _total_price(self, provider: str, model: str, input_tokens: int, output_tokens: int) -> Decimal:
        snapshot = get_snapshot()
        cached = self._models.get((provider, model))
        if cached is not None and cached[0] is snapshot:
            info = cached[1]
        else:
            info = calc_price(Usage(input_tokens=0, output_tokens=0), model_ref=model, provider_id=provider).model
            self._models[(provider, model)] = (snapshot, info)
        price = info.get_prices(datetime.now(tz=UTC))
        linear = self._linear_form(price)
        if linear is None:
            return price.calc_price(Usage(input_tokens=input_tokens, output_tokens=output_tokens))["total_price"]
        fixed, per_input, per_output = linear
        return fixed + (per_input * input_tokens + per_output * output_tokens) / _MILLION

    def _linear_form(self, price: ModelPrice) -> tuple[Decimal, Decimal, Decimal] | None:
        cached = self._linear.get(id(price))
        if cached is not None and cached[0] is price:
            return cached[1]
        linear = None
        if not any(isinstance(value, TieredPrices) for value in vars(price).values()):

            def total(input_tokens: int, output_tokens: int) -> Decimal:
                usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
                return price.calc_price(usage)["total_price"]

            fixed = total(0, 0)
            linear = (fixed, total(_MILLION, 0) - fixed, total(0, _MILLION) - fixed)
        self._linear[id(price)] = (price, linear)
        return linear


class LLMTelemetry:
    """One per app: starts a span per chat call and records tokens, duration and cost."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        prices: PriceTable | None = None,
    ) -> None:
        self._handler = TelemetryHandler(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            instrumentation_scope_name=__name__,
        )
        self._prices = prices or PriceTable()
        meter = meter_provider.get_meter(__name__) if meter_provider else None
        self._cost = (
            meter.create_counter(COST_METRIC, unit="USD", description="Estimated cost of LLM calls") if meter else None
        )

    @property
    def handler(self) -> TelemetryHandler:
        """util-genai's handler, shared with the agent's spans (telemetry/agent.py)."""
        return self._handler

    def chat(
        self,
        *,
        provider: str,
        model: str,
        server_address: str | None = None,
        server_port: int | None = None,
        conversation_id: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        messages: list[Mapping[str, Any]] | None = None,
        stream: bool = False,
    ) -> InferenceInvocation:
        """A started `chat <model>` CLIENT span; use it as a context manager around the call."""
        invocation = self._handler.inference(
            provider,
            request_model=model,
            server_address=server_address,
            server_port=server_port,
            operation_name=CHAT,
            conversation_id=conversation_id,
        )
        invocation.attributes[GEN_AI_SYSTEM] = provider  # older name, still read by some tools
        invocation.temperature = temperature
        invocation.max_tokens = max_tokens
        if stream:
            invocation.request_stream = True
        if messages and self._handler.should_capture_content():
            invocation.input_messages = [InputMessage(role=str(m.get("role")), parts=_parts(m)) for m in messages]
        return invocation

    def record_response(self, invocation: InferenceInvocation, body: Mapping[str, Any]) -> float | None:
        """Copies model, id, finish reasons and usage from an OpenAI-style response; adds cost."""
        reasons = [c.get("finish_reason") for c in body.get("choices") or () if c.get("finish_reason")]
        content, tool_calls = None, None
        if body.get("choices"):
            message = (body["choices"][0] or {}).get("message") or {}
            content, tool_calls = message.get("content"), message.get("tool_calls")
        return self.record_result(
            invocation,
            model=body.get("model"),
            response_id=body.get("id"),
            finish_reasons=reasons,
            usage=body.get("usage"),
            content=content,
            tool_calls=tool_calls,
        )

    def record_result(
        self,
        invocation: InferenceInvocation,
        *,
        model: str | None,
        response_id: str | None,
        finish_reasons: list[str],
        usage: Mapping[str, Any] | None,
        content: str | None = None,
        tool_calls: Any = None,
    ) -> float | None:
        """The response side of a call (plain or streamed); returns its cost in USD, if known.
        `tool_calls`: OpenAI-style dicts or cerebe.ToolCall objects (content, recorded only when captured)."""
        invocation.response_model_name = model or None
        invocation.response_id = response_id or None
        invocation.finish_reasons = finish_reasons or None
        if (content is not None or tool_calls) and self._handler.should_capture_content():
            message = {"content": content, "tool_calls": [_as_dict(c) for c in tool_calls or ()]}
            invocation.output_messages = [OutputMessage(role="assistant", parts=_parts(message), finish_reason=None)]
        usage = usage or {}
        input_tokens, output_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(input_tokens, int) or not isinstance(output_tokens, int):
            return None  # no usage reported: no tokens and no cost, rather than a guess
        invocation.input_tokens = input_tokens
        invocation.output_tokens = output_tokens
        model = invocation.response_model_name or invocation.request_model or ""
        cost = self._prices.cost_usd(invocation.provider or "", model, input_tokens, output_tokens)
        if cost is not None:
            invocation.attributes[GEN_AI_USAGE_COST] = cost
            if self._cost is not None:
                self._cost.add(cost, {GEN_AI_REQUEST_MODEL: model, GEN_AI_OPERATION_NAME: CHAT})
        return cost

    @contextmanager
    def call(
        self,
        *,
        provider: str,
        model: str,
        conversation_id: str | None = None,
        **request: Any,
    ) -> Iterator[LLMCall]:
        """The whole life of one chat call's span, plain or streamed:

            with llm.call(provider=..., model=..., conversation_id=..., messages=...) as call:
                call.record_response(body)      # or call.record_result(...) after a stream

        On a normal exit it logs the `llm.call` record (outcome "ok") and ends the span; on an
        exception it logs the record with the error's type as outcome, ends the span as ERROR and
        re-raises. An exception with an `error_type` attribute names its own low-cardinality type.
        `request` goes to chat() (server address/port, temperature, max_tokens, messages, stream).
        """
        started = time.perf_counter()
        call = LLMCall(self, self.chat(provider=provider, model=model, conversation_id=conversation_id, **request))
        try:
            yield call
        except BaseException as exc:
            error_type = getattr(exc, "error_type", None) or type(exc).__qualname__
            self.log_call(
                call.invocation,
                conversation_id=conversation_id,
                latency_ms=_ms(started),
                cost_usd=None,
                outcome=error_type,
            )
            self.fail(call.invocation, error_type, str(exc) or type(exc).__qualname__)
            raise
        self.log_call(
            call.invocation, conversation_id=conversation_id, latency_ms=_ms(started), cost_usd=call.cost, outcome="ok"
        )
        call.invocation.stop()

    @staticmethod
    def fail(invocation: InferenceInvocation, error_type: str, message: str) -> None:
        """Ends the span as ERROR with a short, low-cardinality `error.type` (timeout, 429, ...)."""
        invocation.fail(Error(type=error_type, message=message))

    @staticmethod
    def log_call(
        invocation: InferenceInvocation,
        *,
        conversation_id: str | None,
        latency_ms: float,
        cost_usd: float | None,
        outcome: str,
    ) -> None:
        """One `llm.call` record per call, logged inside the chat span (so it carries its trace_id)."""
        call_logger.info(
            "llm.call",
            extra={
                "event": "llm.call",
                "conversation_id": conversation_id,
                "model": invocation.response_model_name or invocation.request_model,
                "input_tokens": invocation.input_tokens,
                "output_tokens": invocation.output_tokens,
                "cost_usd": cost_usd,
                "latency_ms": round(latency_ms, 2),
                "outcome": outcome,
            },
        )


class LLMCall:
    """The span of one call in progress (see LLMTelemetry.call): record the response on it."""

    def __init__(self, telemetry: LLMTelemetry, invocation: InferenceInvocation) -> None:
        self.invocation = invocation
        self.cost: float | None = None
        self._telemetry = telemetry

    @property
    def input_tokens(self) -> int | None:
        return self.invocation.input_tokens

    @property
    def output_tokens(self) -> int | None:
        return self.invocation.output_tokens

    def record_response(self, body: Mapping[str, Any]) -> float | None:
        """An OpenAI-style response body: model, id, finish reasons, usage; returns the cost in USD."""
        self.cost = self._telemetry.record_response(self.invocation, body)
        return self.cost

    def record_result(self, **result: Any) -> float | None:
        """The response side assembled from a stream (see LLMTelemetry.record_result)."""
        self.cost = self._telemetry.record_result(self.invocation, **result)
        return self.cost

    def record_chunk(self) -> None:
        """A streamed chunk arrived (the first one sets the time to first chunk)."""
        self.invocation.record_stream_chunk()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _as_dict(call: Any) -> Any:
    return call.message() if hasattr(call, "message") else call


def _parts(message: Mapping[str, Any]) -> list[MessagePart]:
    """A chat message as util-genai parts: text, the tool calls an assistant asked for, a tool's result."""
    if message.get("role") == "tool":
        return [ToolCallResponsePart(response=_cut(message.get("content")), id=message.get("tool_call_id"))]
    parts: list[MessagePart] = []
    if message.get("content") is not None or not message.get("tool_calls"):
        parts.append(TextPart(content=_cut(message.get("content") or "")))
    for call in message.get("tool_calls") or ():
        function = (call.get("function") if isinstance(call, Mapping) else None) or {}
        parts.append(
            ToolCallRequestPart(
                arguments=_cut(function.get("arguments")), name=str(function.get("name")), id=call.get("id")
            )
        )
    return parts


def _cut(content: Any) -> str:
    text = content if isinstance(content, str) else str(content)
    return text if len(text) <= MAX_CONTENT_CHARS else text[:MAX_CONTENT_CHARS] + "…"
