// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Context, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { asError, captureErrors, MAX_ERRORS_PER_PAGE } from "./browser-errors";

const PAGE_TRACE = { traceId: "6fbde7d8f63f09dc541e219b4ef601d9", spanId: "3e385e9444287ede", traceFlags: 1, isRemote: true };

function setup() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const source = Object.assign(new EventTarget(), { location: { pathname: "/chat" } });
  const page = (): Context => trace.setSpanContext(ROOT_CONTEXT, PAGE_TRACE);
  const stop = captureErrors(provider.getTracer("test"), page, source as unknown as Window);
  return { exporter, source, stop };
}

function rejection(reason: unknown): Event {
  return Object.assign(new Event("unhandledrejection"), { reason });
}

test("an uncaught error becomes an exception span in the page's trace", () => {
  const { exporter, source } = setup();
  source.dispatchEvent(Object.assign(new Event("error"), { error: new TypeError("bad"), message: "bad" }));
  const [span] = exporter.getFinishedSpans();
  assert.equal(span.name, "exception");
  assert.equal(span.spanContext().traceId, PAGE_TRACE.traceId);
  assert.equal(span.parentSpanContext?.spanId, PAGE_TRACE.spanId);
  assert.equal(span.status.code, 2);
  assert.equal(span.attributes["error.type"], "TypeError");
  assert.equal(span.attributes["url.path"], "/chat");
  assert.equal(span.events[0].name, "exception");
  assert.equal(span.events[0].attributes?.["exception.message"], "bad");
});

test("a rejection with a non-Error reason is still recorded, with its reason as the message", () => {
  const { exporter, source } = setup();
  source.dispatchEvent(rejection({ code: 7 }));
  source.dispatchEvent(rejection(undefined));
  const [object, nothing] = exporter.getFinishedSpans();
  assert.equal(object.attributes["app.error.kind"], "unhandledrejection");
  assert.equal(object.events[0].attributes?.["exception.message"], '{"code":7}');
  assert.equal(nothing.events[0].attributes?.["exception.message"], "unhandled rejection");
});

test("a page reports at most MAX_ERRORS_PER_PAGE errors, and none after stop()", () => {
  const { exporter, source, stop } = setup();
  for (let i = 0; i < MAX_ERRORS_PER_PAGE + 10; i++) source.dispatchEvent(rejection(new Error(`e${i}`)));
  assert.equal(exporter.getFinishedSpans().length, MAX_ERRORS_PER_PAGE);
  exporter.reset();
  stop();
  source.dispatchEvent(rejection(new Error("late")));
  assert.equal(exporter.getFinishedSpans().length, 0);
});

test("asError keeps Errors, wraps strings and survives unserialisable reasons", () => {
  const error = new RangeError("x");
  assert.equal(asError(error, "f"), error);
  assert.equal(asError("text", "f").message, "text");
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.equal(asError(cyclic, "fallback").message, "fallback");
});
