# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Which context crosses process boundaries: trace context both ways, baggage only inbound.

The web app sends the conversation id in W3C baggage (`gen_ai.conversation.id`) so both samplers
decide alike (sampling.py); a replay vendor may send its own. That is for this API to read, not to
pass on: with the SDK's default propagators every outgoing httpx call, the LLM provider's
included, would repeat the caller's baggage to a third party. So baggage is extracted from
requests and never injected into calls out. OTEL_PROPAGATORS, when set, wins (the SDK reads it).

What the API reads from it: the sampler decides by the conversation id (sampling.py), and the
request's SERVER span names it (ConversationOnServerSpan), so Tempo finds every request of one
conversation.

An incoming `traceparent` whose sampled flag is off is not followed (UnsampledParentAsLink): a
client could otherwise switch tracing off for its own requests (`00-<any>-<any>-00`) and hide
from it. The request starts a trace of its own, decided by this API's sampler, with a span link
to the caller's context; the response names that trace, never the caller's. A sampled parent
(the browser's, through the web app) is followed as before.
"""

from __future__ import annotations

import re

from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context, create_key, get_current, get_value, set_value
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.sdk.trace import Span, SpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .sampling import CONVERSATION_BAGGAGE_KEY

# The API's own rule for a conversation id (api/chat.py's ConversationId): the caller writes the
# baggage, so a value that is not one never becomes an attribute.
_CONVERSATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class InboundOnly(TextMapPropagator):
    """Extracts with `propagator`; injects nothing."""

    def __init__(self, propagator: TextMapPropagator) -> None:
        self._propagator = propagator

    def extract(self, carrier: CarrierT, context: Context | None = None, getter: Getter = default_getter) -> Context:
        return self._propagator.extract(carrier, context, getter=getter)

    def inject(self, carrier: CarrierT, context: Context | None = None, setter: Setter = default_setter) -> None:
        return None

    @property
    def fields(self) -> set[str]:
        return set()


# Where UnsampledParentAsLink leaves the caller's unsampled context for LinkUnsampledCaller.
_UNSAMPLED_CALLER = create_key("app.unsampled_caller")
UNSAMPLED_CALLER_LINK_REASON = "caller's trace, not sampled there"


class UnsampledParentAsLink(TraceContextTextMapPropagator):
    """W3C trace context, except that an unsampled remote parent is not made the parent: the
    request starts a new trace (this API's sampler decides it) and the caller's context is kept
    aside for a span link. Injection (calls out) is unchanged."""

    def extract(self, carrier: CarrierT, context: Context | None = None, getter: Getter = default_getter) -> Context:
        extracted = super().extract(carrier, context, getter=getter)
        caller = trace.get_current_span(extracted).get_span_context()
        if not caller.is_valid or caller.trace_flags.sampled:
            return extracted
        fresh = context if context is not None else get_current()
        return set_value(_UNSAMPLED_CALLER, caller, fresh)


class LinkUnsampledCaller(SpanProcessor):
    """Links a request's SERVER span to the unsampled caller context it did not follow."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        caller = get_value(_UNSAMPLED_CALLER, parent_context)
        if span.kind is SpanKind.SERVER and caller is not None and span.is_recording():
            span.add_link(caller, {"app.link.reason": UNSAMPLED_CALLER_LINK_REASON})


def install(configured: str | None) -> None:
    """Sets the process's propagators, unless OTEL_PROPAGATORS (`configured`) names its own."""
    if configured:
        return
    propagate.set_global_textmap(CompositePropagator([UnsampledParentAsLink(), InboundOnly(W3CBaggagePropagator())]))


class ConversationOnServerSpan(SpanProcessor):
    """Puts the caller's baggage `gen_ai.conversation.id` on the SERVER span of its request.

    Like opentelemetry-processor-baggage's BaggageSpanProcessor, narrowed to one key, to the
    request's own span, and to values that are valid conversation ids (that processor copies any
    value the caller sends onto every span).
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if span.kind is not SpanKind.SERVER:
            return
        conversation = baggage.get_baggage(CONVERSATION_BAGGAGE_KEY, parent_context)
        if isinstance(conversation, str) and _CONVERSATION_ID.fullmatch(conversation):
            span.set_attribute(CONVERSATION_BAGGAGE_KEY, conversation)
