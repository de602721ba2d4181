# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""What one client, and all of them together, may spend on the LLM through /api/chat.

    admission = admit(request)                 # 429 / 503 with Retry-After, before anything is stored
    try:
        admission.reserve(history)             # an estimate of the input tokens, charged at once
        reply = await unless_disconnected(request, cerebe.chat(...))   # cancelled if the client goes
        admission.settle(reply.input_tokens, reply.output_tokens)      # the estimate replaced by usage
    finally:
        admission.release()

Limits (Settings, CHAT_* and CEREBE_MAX_CONNECTIONS): requests per minute and tokens per hour per
client and in total, LLM calls at once per client (so one client cannot hold the shared httpx
pool: 300 streams that are never read hold 4 connections, not 100), and calls at once in total
(the pool's size: past it 503 at once rather than a wait for a connection). A streamed reply holds
its slot until the stream ends: `LimitedStreamingResponse` releases it, whatever ends the stream.
All counts are per worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Iterable, Mapping
from typing import TypeVar

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .limits import Refused
from .ratelimit import SlidingWindow, client_id, retry_after_header
from .settings import Settings

T = TypeVar("T")
ALL_CLIENTS = "*"
# About 4 characters per token in English text (OpenAI's rule of thumb), plus each message's framing.
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


def estimate_tokens(messages: Iterable[Mapping[str, str]]) -> int:
    return sum(math.ceil(len(m.get("content", "")) / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE for m in messages)


class ChatLimits:
    """The counters, kept on `app.state.chat_limits` (one per worker)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.requests = SlidingWindow(settings.chat_requests_per_minute, 60.0)
        self.requests_total = SlidingWindow(settings.chat_requests_per_minute_total, 60.0)
        self.tokens = SlidingWindow(settings.chat_tokens_per_hour, 3600.0)
        self.tokens_total = SlidingWindow(settings.chat_tokens_per_hour_total, 3600.0)
        self.active: dict[str, int] = {}
        self.active_total = 0

    def admit(self, client: str) -> Admission:
        s = self.settings
        if self.active.get(client, 0) >= s.chat_concurrent_per_client:
            raise Refused(429, "too_many_llm_calls",
                          f"this client has {s.chat_concurrent_per_client} LLM calls running; retry when one ends",
                          retry_after_header(1))  # fmt: skip
        if self.active_total >= s.cerebe_max_connections:
            raise Refused(503, "llm_busy", f"all {s.cerebe_max_connections} LLM connections are busy; retry shortly",
                          retry_after_header(1))  # fmt: skip
        if wait := self.requests.acquire(client):
            raise Refused(429, "chat_rate_limited",
                          f"over {s.chat_requests_per_minute} chat requests a minute from this client",
                          retry_after_header(wait))  # fmt: skip
        if wait := self.requests_total.acquire(ALL_CLIENTS):
            self.requests.charge(client, -1)
            raise Refused(429, "chat_rate_limited_total",
                          f"over {s.chat_requests_per_minute_total} chat requests a minute in total",
                          retry_after_header(wait))  # fmt: skip
        if wait := self.tokens.retry_after(client, 1):
            raise Refused(429, "token_budget_spent",
                          f"this client used its {s.chat_tokens_per_hour} LLM tokens for the hour",
                          retry_after_header(wait))  # fmt: skip
        if wait := self.tokens_total.retry_after(ALL_CLIENTS, 1):
            raise Refused(429, "token_budget_spent_total",
                          f"the {s.chat_tokens_per_hour_total} LLM tokens of the hour are used up",
                          retry_after_header(wait))  # fmt: skip
        self.active[client] = self.active.get(client, 0) + 1
        self.active_total += 1
        return Admission(self, client)


class Admission:
    """One admitted LLM call: its slot, and its tokens as charged so far."""

    def __init__(self, limits: ChatLimits, client: str) -> None:
        self._limits = limits
        self.client = client
        self.charged = 0
        self._released = False

    def _charge(self, tokens: int) -> None:
        self._limits.tokens.charge(self.client, tokens)
        self._limits.tokens_total.charge(ALL_CLIENTS, tokens)
        self.charged += tokens

    def reserve(self, messages: Iterable[Mapping[str, str]]) -> None:
        """Charges an estimate of the call's input tokens before the call starts."""
        self._charge(estimate_tokens(messages))

    def settle(self, input_tokens: int | None, output_tokens: int | None) -> None:
        """Replaces the estimate by what Cerebe reported (kept when it reported nothing)."""
        if input_tokens is None and output_tokens is None:
            return
        used = (input_tokens or 0) + (output_tokens or 0)
        self._charge(used - self.charged)

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        limits = self._limits
        left = limits.active.get(self.client, 1) - 1
        if left > 0:
            limits.active[self.client] = left
        else:
            limits.active.pop(self.client, None)
        limits.active_total -= 1


def admit(request: Request) -> Admission:
    """Admits the request's LLM call or raises Refused (429/503 with Retry-After and one line)."""
    return request.app.state.chat_limits.admit(client_id(request))


class ClientGone(Refused):
    """The client closed the connection while its LLM call ran: the call was cancelled."""

    def __init__(self) -> None:
        super().__init__(499, "client_closed_request", "the client closed the connection; the LLM call was cancelled")


async def _disconnected(request: Request) -> None:
    # The body has been read: the next message the server has for this request is its disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, call: Awaitable[T]) -> T:
    """Awaits `call`; if the client disconnects first, cancels it (closing the upstream connection,
    so the LLM stops generating and billing) and raises ClientGone."""
    work = asyncio.ensure_future(call)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        work.cancel()
        watcher.cancel()
        raise
    watcher.cancel()
    if work in done:
        return work.result()
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await work
    raise ClientGone()


class LimitedStreamingResponse(StreamingResponse):
    """A StreamingResponse that releases its Admission when it ends, however it ends (the stream
    done, the client gone, an error). Starlette cancels the stream when the client disconnects."""

    def __init__(self, *args, admission: Admission, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.admission.release()


__all__ = ["Admission", "ChatLimits", "LimitedStreamingResponse", "admit", "estimate_tokens", "unless_disconnected"]
