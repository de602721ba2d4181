"""Cerebe client: OpenAI-compatible chat completions over one shared httpx.AsyncClient.

Each call is a `chat <model>` GenAI span (telemetry/llm.py) around the HTTP CLIENT span that the
httpx instrumentation makes; the outbound request carries traceparent, so a Cerebe server that
speaks OpenTelemetry joins the same trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from .settings import Settings
from .telemetry.llm import LLMTelemetry


class CerebeError(Exception):
    """A failed call, with the status the API should answer and a short `error.type`."""

    def __init__(self, message: str, *, status_code: int, error_type: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type


@dataclass(frozen=True)
class ChatReply:
    content: str
    model: str
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None


class CerebeClient:
    def __init__(self, http: httpx.AsyncClient, settings: Settings, llm: LLMTelemetry) -> None:
        self._http = http
        self._settings = settings
        self._llm = llm
        self._url = f"{settings.cerebe_base_url}/v1/chat/completions"
        parts = urlsplit(settings.cerebe_base_url)
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)

    async def chat(
        self,
        messages: list[dict[str, str]],
        *,
        conversation_id: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatReply:
        model = model or self._settings.cerebe_model
        payload: dict[str, Any] = {"model": model, "messages": messages}
        if temperature is not None:
            payload["temperature"] = temperature
        if max_tokens is not None:
            payload["max_tokens"] = max_tokens
        headers = {}
        if self._settings.cerebe_api_key:
            headers["Authorization"] = f"Bearer {self._settings.cerebe_api_key}"

        with self._llm.chat(
            provider=self._settings.cerebe_provider,
            model=model,
            server_address=self._host,
            server_port=self._port,
            conversation_id=conversation_id,
            temperature=temperature,
            max_tokens=max_tokens,
        ) as call:
            body = await self._post(payload, headers)
            cost = self._llm.record_response(call, body)
            try:
                content = body["choices"][0]["message"]["content"]
            except (KeyError, IndexError, TypeError):
                raise CerebeError(
                    "Cerebe answered without a message", status_code=502, error_type="malformed_response"
                ) from None
            return ChatReply(
                content=content if isinstance(content, str) else str(content),
                model=body.get("model") or model,
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
                cost_usd=cost,
            )

    async def _post(self, payload: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._http.post(
                self._url, json=payload, headers=headers, timeout=self._settings.cerebe_timeout
            )
        except httpx.TimeoutException:
            raise CerebeError("Cerebe did not answer in time", status_code=504, error_type="timeout") from None
        except httpx.TransportError as exc:
            raise CerebeError(
                f"Cerebe is unreachable: {type(exc).__name__}", status_code=502, error_type=type(exc).__name__
            ) from None
        if response.status_code == 429:
            raise CerebeError("Cerebe is rate limiting us", status_code=503, error_type="429")
        if response.status_code >= 400:
            raise CerebeError(
                f"Cerebe answered {response.status_code}",
                status_code=502,
                error_type=str(response.status_code),
            )
        try:
            body = response.json()
        except ValueError:
            raise CerebeError(
                "Cerebe answered with malformed JSON", status_code=502, error_type="malformed_response"
            ) from None
        if not isinstance(body, dict):
            raise CerebeError("Cerebe answered with malformed JSON", status_code=502, error_type="malformed_response")
        return body
