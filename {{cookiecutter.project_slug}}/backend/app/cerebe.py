# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Cerebe client: OpenAI-compatible chat completions over one shared httpx.AsyncClient.

Each call is a `chat <model>` GenAI span (telemetry/llm.py) around the HTTP CLIENT span that the
httpx instrumentation makes; the outbound request carries traceparent, so a Cerebe server that
speaks OpenTelemetry joins the same trace. A streamed call's span covers the whole stream and
records the time to the first chunk. There are no automatic retries: a retry you add would show
up as a second span.

Tools: pass `tools` (OpenAI function definitions) and a reply may carry `tool_calls` instead of, or
beside, text; streamed tool-call fragments are put together by index. The agent loop
(app/agent/loop.py) runs them and calls again with `role: "tool"` messages.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from .settings import Settings
from .telemetry.llm import LLMCall, LLMTelemetry


class CerebeError(Exception):
    """A failed call, with the status the API should answer and a short `error.type` (which the
    LLM span and the llm.call record take as outcome)."""

    def __init__(self, message: str, *, status_code: int, error_type: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type


def _malformed(what: str = "malformed JSON") -> CerebeError:
    return CerebeError(f"Cerebe answered with {what}", status_code=502, error_type="malformed_response")


# A model's tool-call arguments are JSON text it wrote; past this many characters a call is malformed
# (a runaway generation must not grow without bound in memory).
MAX_TOOL_ARGUMENTS_CHARS = 64 * 1024
MAX_TOOL_CALLS = 32  # per reply


@dataclass(frozen=True)
class ToolCall:
    """One tool the model asks for: its id (echoed back as `tool_call_id`), name and JSON arguments."""

    id: str
    name: str
    arguments: str

    def message(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class ChatReply:
    content: str
    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)


@dataclass
class StreamedReply:
    """Filled in while a stream is consumed; complete once the iterator is exhausted."""

    chunks: list[str] = field(default_factory=list)
    reply: ChatReply | None = None


class CerebeClient:
    def __init__(self, http: httpx.AsyncClient, settings: Settings, llm: LLMTelemetry) -> None:
        self._http = http
        self._settings = settings
        self._llm = llm
        self._url = f"{settings.cerebe_base_url}/v1/chat/completions"
        parts = urlsplit(settings.cerebe_base_url)
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)

    def _call(
        self, messages: list[dict[str, Any]], model: str, conversation_id: str | None, **params: Any
    ) -> AbstractContextManager[LLMCall]:
        return self._llm.call(
            provider=self._settings.cerebe_provider,
            model=model,
            server_address=self._host,
            server_port=self._port,
            conversation_id=conversation_id,
            messages=messages,
            **params,
        )

    def _payload(self, messages: list[dict[str, Any]], model: str, **params: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": model, "messages": messages}
        payload.update({key: value for key, value in params.items() if value is not None})
        return payload

    def _headers(self) -> dict[str, str]:
        key = self._settings.cerebe_api_key
        return {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        conversation_id: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> ChatReply:
        model = model or self._settings.cerebe_model
        with self._call(messages, model, conversation_id, temperature=temperature, max_tokens=max_tokens) as call:
            payload = self._payload(messages, model, temperature=temperature, max_tokens=max_tokens, tools=tools)
            body = await self._post(payload)
            try:
                message = body["choices"][0]["message"]
                tool_calls = _tool_calls(message.get("tool_calls"))
                content = message["content"] if not tool_calls else message.get("content") or ""
            except (KeyError, IndexError, TypeError, AttributeError):
                raise _malformed("no message") from None
            cost = call.record_response(body)
            return ChatReply(
                content=content if isinstance(content, str) else str(content),
                model=body.get("model") or model,
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
                cost_usd=cost,
                tool_calls=tool_calls,
            )

    async def chat_stream(
        self,
        messages: list[dict[str, Any]],
        result: StreamedReply,
        *,
        conversation_id: str | None = None,
        model: str | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> AsyncIterator[str]:
        """Yields text chunks; usage comes from the final chunk (`stream_options.include_usage`);
        tool calls, put together from their fragments, are in `result.reply.tool_calls` at the end."""
        model = model or self._settings.cerebe_model
        payload = self._payload(messages, model, stream=True, stream_options={"include_usage": True}, tools=tools)
        response_model, response_id, reasons, usage = model, None, [], None
        fragments = _ToolCallFragments()
        with self._call(messages, model, conversation_id, stream=True) as call:
            async with self._open_stream(payload) as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise _malformed("a malformed stream chunk") from None
                    response_model = chunk.get("model") or response_model
                    response_id = chunk.get("id") or response_id
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or ():
                        if choice.get("finish_reason"):
                            reasons.append(choice["finish_reason"])
                        delta = choice.get("delta") or {}
                        if delta.get("tool_calls"):
                            call.record_chunk()
                            fragments.add(delta["tool_calls"])
                        text = delta.get("content")
                        if text:
                            call.record_chunk()
                            result.chunks.append(text)
                            yield text
            content = "".join(result.chunks)
            tool_calls = fragments.calls()
            cost = call.record_result(
                model=response_model,
                response_id=response_id,
                finish_reasons=reasons,
                usage=usage,
                content=content,
                tool_calls=tool_calls,
            )
            result.reply = ChatReply(content, response_model, call.input_tokens, call.output_tokens, cost, tool_calls)

    async def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        with _transport_errors():
            response = await self._http.post(
                self._url, json=payload, headers=self._headers(), timeout=self._settings.cerebe_timeout
            )
        _raise_for_status(response.status_code)
        try:
            body = response.json()
        except ValueError:
            raise _malformed() from None
        if not isinstance(body, dict):
            raise _malformed()
        return body

    @asynccontextmanager
    async def _open_stream(self, payload: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        request = self._http.build_request(
            "POST", self._url, json=payload, headers=self._headers(), timeout=self._settings.cerebe_timeout
        )
        with _transport_errors():
            response = await self._http.send(request, stream=True)
        try:
            _raise_for_status(response.status_code)
            with _transport_errors():  # a stalled stream times out while reading
                yield response
        finally:
            await response.aclose()


def _tool_calls(raw: Any) -> list[ToolCall]:
    """The `tool_calls` of a reply message, checked; a bad shape is a malformed answer."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_TOOL_CALLS:
        raise _malformed("malformed tool calls")
    calls = []
    for item in raw:
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict):
            raise _malformed("malformed tool calls")
        call_id, name, arguments = item.get("id"), function.get("name"), function.get("arguments") or "{}"
        if not (isinstance(call_id, str) and isinstance(name, str) and isinstance(arguments, str)):
            raise _malformed("malformed tool calls")
        if len(arguments) > MAX_TOOL_ARGUMENTS_CHARS:
            raise _malformed("over-long tool arguments")
        calls.append(ToolCall(call_id, name, arguments))
    return calls


class _ToolCallFragments:
    """Streamed tool calls: the first fragment of each (by `index`) names its id and function, the
    following ones append to its arguments."""

    def __init__(self) -> None:
        self._parts: dict[int, dict[str, Any]] = {}
        self._size = 0

    def add(self, deltas: Any) -> None:
        for delta in deltas if isinstance(deltas, list) else ():
            index = delta.get("index") if isinstance(delta, dict) else None
            if not isinstance(index, int) or (index not in self._parts and len(self._parts) >= MAX_TOOL_CALLS):
                raise _malformed("malformed tool calls")
            part = self._parts.setdefault(index, {"id": None, "name": None, "arguments": []})
            function = delta.get("function") if isinstance(delta.get("function"), dict) else {}
            part["id"] = delta.get("id") or part["id"]
            part["name"] = function.get("name") or part["name"]
            if isinstance(arguments := function.get("arguments"), str):
                self._size += len(arguments)
                if self._size > MAX_TOOL_ARGUMENTS_CHARS * MAX_TOOL_CALLS:
                    raise _malformed("over-long tool arguments")
                part["arguments"].append(arguments)

    def calls(self) -> list[ToolCall]:
        return _tool_calls(
            [
                {"id": p["id"], "function": {"name": p["name"], "arguments": "".join(p["arguments"])}}
                for _, p in sorted(self._parts.items())
            ]
            or None
        )


@contextmanager
def _transport_errors() -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException:
        raise CerebeError("Cerebe did not answer in time", status_code=504, error_type="timeout") from None
    except httpx.TransportError as exc:
        name = type(exc).__name__
        raise CerebeError(f"Cerebe is unreachable: {name}", status_code=502, error_type=name) from None


def _raise_for_status(status: int) -> None:
    if status == 429:
        raise CerebeError("Cerebe is rate limiting us", status_code=503, error_type="429")
    if status >= 400:
        raise CerebeError(f"Cerebe answered {status}", status_code=502, error_type=str(status))
