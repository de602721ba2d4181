// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { trace } from "@opentelemetry/api";
import { recordClickToFirstToken, requestSpan, trackRequestSpan } from "./request-spans";

test("the click-to-first-token time goes on the request's span and into a span of its own", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  const init = { method: "POST" };
  const fetchSpan = provider.getTracer("fetch").startSpan("HTTP POST");
  trackRequestSpan(init, fetchSpan);
  assert.equal(requestSpan(init), fetchSpan);
  assert.equal(recordClickToFirstToken(init, 100, 342.25), 242.25);
  fetchSpan.end();
  const [first, fetched] = exporter.getFinishedSpans();
  assert.equal(fetched.attributes["app.click_to_first_token_ms"], 242.3);
  assert.equal(first.name, "chat first token");
  assert.equal(first.parentSpanContext?.spanId, fetchSpan.spanContext().spanId);
  trace.disable();
});

test("without a traced request nothing is recorded", () => {
  assert.equal(recordClickToFirstToken({}, 1, 2), undefined);
});
