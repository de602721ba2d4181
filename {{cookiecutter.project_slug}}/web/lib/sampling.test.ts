// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { context, defaultTextMapSetter, propagation, ROOT_CONTEXT, SpanKind, TraceFlags, trace } from "@opentelemetry/api";
import { CompositePropagator, W3CBaggagePropagator } from "@opentelemetry/core";
import { SamplingDecision } from "@opentelemetry/sdk-trace-base";
import { StackContextManager } from "@opentelemetry/sdk-trace-web";
import { CONVERSATION_BAGGAGE_KEY, conversationOf, withConversation } from "./conversation";
import { HeadersPropagator } from "./propagation";
import { conversationHash, conversationSampler, conversationThreshold, keepsConversation } from "./sampling";

/** The same file the backend's tests read (backend/tests/test_sampling.py): both must agree with it. */
const VECTORS = JSON.parse(readFileSync(new URL("../../testdata/sampling-vectors.json", import.meta.url), "utf8")) as {
  ratios: number[];
  thresholds: string[];
  cases: { id: string; sha256_prefix: string; keep: boolean[] }[];
};

function inConversation(id: string) {
  return propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage({ [CONVERSATION_BAGGAGE_KEY]: { value: id } }));
}

function decide(ratio: number, ctx = ROOT_CONTEXT, traceId = "0af7651916cd43dd8448eb211c80319c") {
  return conversationSampler(ratio).shouldSample(ctx, traceId, "span", SpanKind.CLIENT, {}, []).decision;
}

test("every (id, ratio) of the shared vectors is decided as listed", () => {
  for (const { id, keep } of VECTORS.cases) {
    VECTORS.ratios.forEach((ratio, i) => assert.equal(keepsConversation(id, ratio), keep[i], `${id} at ${ratio}`));
  }
});

test("the hash is the listed SHA-256 prefix and the thresholds are the listed integers", () => {
  for (const { id, sha256_prefix } of VECTORS.cases) assert.equal(conversationHash(id), BigInt(`0x${sha256_prefix}`), id);
  assert.deepEqual(VECTORS.ratios.map((r) => conversationThreshold(r).toString()), VECTORS.thresholds);
});

test("a conversation in baggage decides, whatever the trace id", () => {
  const half = VECTORS.ratios.indexOf(0.5);
  const kept = VECTORS.cases.find((c) => c.keep[half])!.id;
  const dropped = VECTORS.cases.find((c) => !c.keep[half])!.id;
  for (const traceId of ["00000000000000000000000000000001", "ffffffffffffffffffffffffffffffff", "0af7651916cd43dd8448eb211c80319c"]) {
    assert.equal(decide(0.5, inConversation(kept), traceId), SamplingDecision.RECORD_AND_SAMPLED);
    assert.equal(decide(0.5, inConversation(dropped), traceId), SamplingDecision.NOT_RECORD);
  }
});

test("without a conversation the trace id decides", () => {
  assert.equal(conversationOf(ROOT_CONTEXT), undefined);
  assert.equal(decide(0.5, ROOT_CONTEXT, "00000000000000000000000000000001"), SamplingDecision.RECORD_AND_SAMPLED);
  assert.equal(decide(0.5, ROOT_CONTEXT, "ffffffff000000000000000000000000"), SamplingDecision.NOT_RECORD);
});

test("a parent's decision wins over the conversation", () => {
  const half = VECTORS.ratios.indexOf(0.5);
  const dropped = VECTORS.cases.find((c) => !c.keep[half])!.id;
  const parent = (traceFlags: TraceFlags) =>
    trace.setSpanContext(inConversation(dropped), {
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      traceFlags,
      isRemote: true,
    });
  assert.equal(decide(0.5, parent(TraceFlags.SAMPLED)), SamplingDecision.RECORD_AND_SAMPLED);
  assert.equal(decide(1, parent(TraceFlags.NONE)), SamplingDecision.NOT_RECORD);
});

test("withConversation puts the id in the baggage the sampler and the propagator read", () => {
  // The browser's context manager (registered by WebTracerProvider); fetch's instrumentation starts
  // its span and sets its headers synchronously, inside the call.
  context.setGlobalContextManager(new StackContextManager().enable());
  try {
    assert.equal(withConversation("web-42", () => conversationOf(context.active())), "web-42");
    assert.equal(conversationOf(context.active()), undefined);
  } finally {
    context.disable();
  }
  const carrier: Record<string, string> = {};
  new W3CBaggagePropagator().inject(inConversation("web 42/é"), carrier, defaultTextMapSetter);
  assert.equal(carrier.baggage, "gen_ai.conversation.id=web%2042%2F%C3%A9");
});

test("the conversation and a replay vendor's baggage travel in one baggage header", () => {
  const propagator = new CompositePropagator({
    propagators: [
      new W3CBaggagePropagator(),
      new HeadersPropagator(() => ({ baggage: "sentry-replay_id=r1" }), ["baggage"]),
    ],
  });
  const carrier: Record<string, string> = {};
  propagator.inject(inConversation("web-7"), carrier, defaultTextMapSetter);
  assert.equal(carrier.baggage, "gen_ai.conversation.id=web-7,sentry-replay_id=r1");
});
