// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { context, propagation, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { flushWhenLeaving, pageContext, SessionSpanProcessor, untracedUrls } from "./otel-web";
import { tabSession } from "./replay/none";

const PAGE = "https://app.example.com";

test("the exporter's route, the rest of /otel/, the replay API and the vendor's URLs are never traced", () => {
  const matchers = untracedUrls(PAGE, ["https://pub.highlight.io", "https://otel.highlight.io"]);
  const untraced = (url: string) => matchers.some((matcher) => matcher.test(url));
  assert.ok(untraced(`${PAGE}/otel/v1/traces`));
  assert.ok(untraced(`${PAGE}/otel/config`));
  assert.ok(untraced(`${PAGE}/api/replay/session-1`), "before the replay vendor has loaded, too");
  assert.ok(untraced("https://pub.highlight.io/"));
  assert.ok(untraced("https://otel.highlight.io/v1/traces"));
  assert.ok(!untraced(`${PAGE}/api/chat`));
  assert.ok(!untraced(`${PAGE}/`));
  assert.ok(!untraced(`https://evil.test/?${PAGE}/otel/`), "matchers are anchored at the start");
});

test("every span starts with the replay session's attributes", () => {
  const exporter = new InMemorySpanExporter();
  let session = undefined as ReturnType<typeof tabSession> | undefined;
  const provider = new BasicTracerProvider({
    spanProcessors: [new SessionSpanProcessor(() => session), new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer("test");
  tracer.startSpan("before the session", {}, context.active()).end();
  session = tabSession("0b3c3a0e-6d0e-4a43-9d44-0f6a6c1d2e3f");
  tracer.startSpan("after").end();
  const [before, after] = exporter.getFinishedSpans();
  assert.equal(before.attributes["session.id"], undefined);
  assert.equal(after.attributes["session.id"], "0b3c3a0e-6d0e-4a43-9d44-0f6a6c1d2e3f");
});

test("spans are flushed when the page is left or hidden, not when it is shown again", () => {
  const page = new EventTarget();
  const doc = Object.assign(new EventTarget(), { visibilityState: "visible" });
  let flushes = 0;
  const stop = flushWhenLeaving(() => flushes++, page, doc);
  page.dispatchEvent(new Event("pagehide"));
  assert.equal(flushes, 1);
  doc.visibilityState = "hidden";
  doc.dispatchEvent(new Event("visibilitychange"));
  assert.equal(flushes, 2);
  doc.visibilityState = "visible";
  doc.dispatchEvent(new Event("visibilitychange"));
  assert.equal(flushes, 2);
  stop();
  page.dispatchEvent(new Event("pagehide"));
  assert.equal(flushes, 2, "no flush after stop()");
});

test("the page context is the server render's traceparent, or the root context without one", () => {
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const doc = (traceparent: string | null) => ({
    querySelector: () => (traceparent === null ? null : { getAttribute: () => traceparent }),
  });
  const parent = trace.getSpanContext(pageContext(doc("00-6fbde7d8f63f09dc541e219b4ef601d9-3e385e9444287ede-01") as never));
  assert.equal(parent?.traceId, "6fbde7d8f63f09dc541e219b4ef601d9");
  assert.equal(parent?.spanId, "3e385e9444287ede");
  assert.equal(parent?.isRemote, true);
  assert.equal(trace.getSpanContext(pageContext(doc(null) as never)), undefined);
  assert.equal(trace.getSpanContext(pageContext(doc("garbage") as never)), undefined);
  propagation.disable();
});
