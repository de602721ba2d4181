// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ROOT_CONTEXT, SpanKind, TraceFlags, trace } from "@opentelemetry/api";
import { AlwaysOnSampler, SamplingDecision } from "@opentelemetry/sdk-trace-base";
import { isUntracedTarget, RouteFilterSampler, serverSampler } from "./sampling";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";

test("the browser telemetry's routes, replay uploads and static files are never traced", () => {
  for (const target of ["/otel/v1/traces", "/otel/config?x=1", "/api/replay/s-1234567", "/_next/static/chunks/a.js", "/favicon.ico"]) {
    assert.ok(isUntracedTarget(target), target);
  }
  for (const target of ["/", "/api/chat", "/replay/s-1234567", "/otelx", "/?next=/otel/"]) assert.ok(!isUntracedTarget(target), target);
});

test("a request for /otel/v1/traces gets no span, and so nothing under it does either", () => {
  const sampler = new RouteFilterSampler(new AlwaysOnSampler());
  const decide = (kind: SpanKind, target: string) =>
    sampler.shouldSample(ROOT_CONTEXT, TRACE_ID, "POST", kind, { "http.target": target }, []).decision;
  assert.equal(decide(SpanKind.SERVER, "/otel/v1/traces"), SamplingDecision.NOT_RECORD);
  assert.equal(decide(SpanKind.SERVER, "/api/chat"), SamplingDecision.RECORD_AND_SAMPLED);
  assert.equal(decide(SpanKind.CLIENT, "/otel/v1/traces"), SamplingDecision.RECORD_AND_SAMPLED);
});

test("the server sampler keeps everything at ratio 1 and nothing new at ratio 0", () => {
  const decide = (ratio: number) =>
    serverSampler(ratio).shouldSample(ROOT_CONTEXT, TRACE_ID, "GET", SpanKind.SERVER, { "http.target": "/" }, []).decision;
  assert.equal(decide(1), SamplingDecision.RECORD_AND_SAMPLED);
  assert.equal(decide(0), SamplingDecision.NOT_RECORD);
});

test("Next.js's own spans outside a request are never root traces; inside one they follow it", () => {
  const sampler = new RouteFilterSampler(new AlwaysOnSampler());
  const framework = { "next.span_type": "LoadComponents.loadRouteModule" };
  const decide = (context: typeof ROOT_CONTEXT, kind: SpanKind, attributes: Record<string, string>) =>
    sampler.shouldSample(context, TRACE_ID, "load route module", kind, attributes, []).decision;
  assert.equal(decide(ROOT_CONTEXT, SpanKind.INTERNAL, framework), SamplingDecision.NOT_RECORD);
  assert.equal(decide(ROOT_CONTEXT, SpanKind.INTERNAL, { "next.span_type": "startServer.startServer" }), SamplingDecision.NOT_RECORD);
  const inRequest = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: TRACE_ID,
    spanId: "b7ad6b7169203331",
    traceFlags: TraceFlags.SAMPLED,
  });
  assert.equal(decide(inRequest, SpanKind.INTERNAL, framework), SamplingDecision.RECORD_AND_SAMPLED);
  assert.equal(decide(ROOT_CONTEXT, SpanKind.SERVER, { "next.span_type": "BaseServer.handleRequest" }), SamplingDecision.RECORD_AND_SAMPLED);
  assert.equal(decide(ROOT_CONTEXT, SpanKind.INTERNAL, {}), SamplingDecision.RECORD_AND_SAMPLED, "the app's own root spans stay");
});
