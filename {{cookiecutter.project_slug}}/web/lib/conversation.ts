// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The conversation a request belongs to, carried in the OpenTelemetry context as W3C baggage
 * `gen_ai.conversation.id`: the browser's sampler decides by it (lib/sampling.ts) and the
 * propagator sends it to the API as the `baggage` header, where the backend's sampler decides the
 * same way. Only @opentelemetry/api here: the chat imports this in its first-load JavaScript.
 */
import { type Context, context, propagation } from "@opentelemetry/api";

export const CONVERSATION_BAGGAGE_KEY = "gen_ai.conversation.id";

/** Runs `fn` (a fetch to the API) with the conversation id in the active context's baggage. */
export function withConversation<T>(conversationId: string, fn: () => T): T {
  const active = context.active();
  const bag = (propagation.getBaggage(active) ?? propagation.createBaggage()).setEntry(CONVERSATION_BAGGAGE_KEY, {
    value: conversationId,
  });
  return context.with(propagation.setBaggage(active, bag), fn);
}

/** The conversation id in `ctx`'s baggage, if any. */
export function conversationOf(ctx: Context): string | undefined {
  return propagation.getBaggage(ctx)?.getEntry(CONVERSATION_BAGGAGE_KEY)?.value || undefined;
}
