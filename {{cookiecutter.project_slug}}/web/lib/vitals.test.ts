// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { Metric } from "web-vitals";
import { recordVital, routeOf } from "./vitals";

test("routes keep their names and lose their ids", () => {
  assert.equal(routeOf("/"), "/");
  assert.equal(routeOf("/chat/"), "/chat");
  assert.equal(routeOf("/replay/0b3c3a0e-6d0e-4a43-9d44-0f6a6c1d2e3f"), "/replay/[id]");
  assert.equal(routeOf("/orders/12345/items"), "/orders/[id]/items");
  assert.equal(routeOf("/settings/notifications"), "/settings/notifications");
});

test("a vital in milliseconds is a span of that duration, CLS a span with its value", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const page = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: "6fbde7d8f63f09dc541e219b4ef601d9",
    spanId: "3e385e9444287ede",
    traceFlags: 1,
    isRemote: true,
  });
  const metric = (name: Metric["name"], value: number) =>
    ({ name, value, rating: "good", id: `v5-${name}`, delta: value, entries: [], navigationType: "navigate" }) as unknown as Metric;
  recordVital(provider.getTracer("test"), page, metric("TTFB", 120), "/replay/0b3c3a0e-6d0e-4a43-9d44-0f6a6c1d2e3f");
  recordVital(provider.getTracer("test"), page, metric("CLS", 0.12), "/");
  const [ttfb, cls] = exporter.getFinishedSpans();
  assert.equal(ttfb.name, "web-vital TTFB");
  assert.equal(ttfb.spanContext().traceId, "6fbde7d8f63f09dc541e219b4ef601d9");
  assert.equal(ttfb.attributes["http.route"], "/replay/[id]");
  assert.equal(ttfb.attributes["web_vital.value"], 120);
  const durationMs = ttfb.duration[0] * 1e3 + ttfb.duration[1] / 1e6;
  assert.ok(Math.abs(durationMs - 120) < 0.01, `${durationMs}`);
  assert.equal(cls.attributes["web_vital.value"], 0.12);
  assert.deepEqual(cls.duration, [0, 0]);
});
