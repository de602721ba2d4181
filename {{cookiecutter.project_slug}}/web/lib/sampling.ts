// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Conversation-consistent sampling: at a ratio below 1, all traces of one conversation are kept
 * or dropped together, in the browser and in the API (backend/app/telemetry/sampling.py decides
 * the same way).
 *
 * The rule, for a new trace (no parent) whose context carries W3C baggage `gen_ai.conversation.id`:
 *
 *     hash = the first 8 bytes of SHA-256(UTF-8 conversation id), as an unsigned big-endian integer
 *     keep  <=>  hash < floor(ratio * 2^64)
 *
 * ratio * 2^64 is exact in IEEE doubles (a power-of-two scaling), so both languages get the same
 * threshold. Without a conversation id the trace id decides (TraceIdRatioBasedSampler); a parent's
 * decision is always followed (ParentBasedSampler). testdata/sampling-vectors.json holds ids and
 * the decisions at several ratios; this module's tests and the backend's both check them.
 *
 * `withConversation(id, () => fetch(...))` (lib/conversation.ts) puts the id in the context's
 * baggage: the fetch span is sampled by it, and the propagator sends it to the API (lib/otel-web.ts).
 */
import type { Context } from "@opentelemetry/api";
import {
  ParentBasedSampler,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  TraceIdRatioBasedSampler,
} from "@opentelemetry/sdk-trace-base";
import { sha256 } from "@noble/hashes/sha2";
import { conversationOf } from "./conversation";

const encoder = new TextEncoder();

/** The first 8 bytes of SHA-256 of the id, as an unsigned integer below 2^64. */
export function conversationHash(conversationId: string): bigint {
  const digest = sha256(encoder.encode(conversationId));
  let hash = 0n;
  for (let i = 0; i < 8; i++) hash = (hash << 8n) | BigInt(digest[i]);
  return hash;
}

/** Hashes below this are kept: 0 keeps none, 2^64 (ratio 1) keeps all. */
export function conversationThreshold(ratio: number): bigint {
  if (!(ratio > 0)) return 0n;
  return BigInt(Math.floor(Math.min(ratio, 1) * 2 ** 64));
}

export function keepsConversation(conversationId: string, ratio: number): boolean {
  return conversationHash(conversationId) < conversationThreshold(ratio);
}

/** Root sampler: the conversation id in baggage decides; without one, the trace id does. */
export class ConversationRatioSampler implements Sampler {
  private readonly threshold: bigint;
  private readonly byTraceId: TraceIdRatioBasedSampler;

  constructor(private readonly ratio: number) {
    this.threshold = conversationThreshold(ratio);
    this.byTraceId = new TraceIdRatioBasedSampler(ratio);
  }

  shouldSample(ctx: Context, traceId: string): SamplingResult {
    const conversation = conversationOf(ctx);
    if (conversation === undefined) return this.byTraceId.shouldSample(ctx, traceId);
    const keep = conversationHash(conversation) < this.threshold;
    return { decision: keep ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD };
  }

  toString(): string {
    return `ConversationRatioSampler(${this.ratio})`;
  }
}

/** Follows a parent's decision; a new trace is kept by its conversation, else its trace id. */
export function conversationSampler(ratio: number): Sampler {
  return new ParentBasedSampler({ root: new ConversationRatioSampler(ratio) });
}
