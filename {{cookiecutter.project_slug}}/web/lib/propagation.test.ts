// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { context, defaultTextMapSetter, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { apiPrefixes, HeadersPropagator, ScopedPropagator, shouldPropagate } from "./propagation";

const PAGE = "https://app.example.com";
const PREFIXES = apiPrefixes(PAGE);

describe("shouldPropagate: which requests get a traceparent", () => {
  const gets = [
    "https://app.example.com/api/chat",
    "https://app.example.com/api/chat/stream?x=1",
    "https://app.example.com/api/conversations/a%2Fb",
    "https://app.example.com/api",
    "https://app.example.com:443/api/chat",
  ];
  const never = [
    "https://app.example.com/",
    "https://app.example.com/?_rsc=abc",
    "https://app.example.com/apiary",
    "https://app.example.com/otel/v1/traces",
    "https://app.example.com/otel/config",
    "https://app.example.com/_next/static/chunks/a.js",
    "https://app.example.com/api/../otel/v1/traces",
    "http://app.example.com/api/chat",
    "https://app.example.com:8443/api/chat",
    "https://api.example.com/api/chat",
    "https://app.example.com.evil.test/api/chat",
    "https://evil.test/https://app.example.com/api/chat",
    "https://pub.highlight.io/",
    "https://o1.ingest.sentry.io/api/1/envelope/",
    "/api/chat",
    "not a url",
  ];
  for (const url of gets) test(`gets one: ${url}`, () => assert.equal(shouldPropagate(url, PREFIXES), true));
  for (const url of never) test(`never: ${url}`, () => assert.equal(shouldPropagate(url, PREFIXES), false));

  test("the API prefix is the page origin's /api/", () => {
    assert.deepEqual(apiPrefixes("http://127.0.0.1:3000"), ["http://127.0.0.1:3000/api/"]);
    assert.deepEqual(apiPrefixes("http://127.0.0.1:3000", "/backend"), ["http://127.0.0.1:3000/backend/"]);
  });
});

describe("ScopedPropagator", () => {
  const tracer = new BasicTracerProvider().getTracer("test");
  const propagator = new ScopedPropagator(new W3CTraceContextPropagator(), (url) => shouldPropagate(url, PREFIXES));

  function injectFor(attributes: Record<string, string>): Record<string, string> {
    const span = tracer.startSpan("POST", { attributes });
    const carrier: Record<string, string> = {};
    propagator.inject(trace.setSpan(context.active(), span), carrier, defaultTextMapSetter);
    span.end();
    return carrier;
  }

  test("injects for a request to the API", () => {
    const carrier = injectFor({ "url.full": `${PAGE}/api/chat` });
    assert.match(carrier.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  test("injects nothing for any other URL", () => {
    assert.deepEqual(injectFor({ "url.full": `${PAGE}/otel/v1/traces` }), {});
    assert.deepEqual(injectFor({ "url.full": "https://cdn.example.net/api/chat" }), {});
  });

  test("injects nothing when the request's URL is unknown", () => {
    assert.deepEqual(injectFor({}), {});
  });

  test("reads the older http.url attribute too", () => {
    assert.ok(injectFor({ "http.url": `${PAGE}/api/chat` }).traceparent);
  });
});

describe("HeadersPropagator", () => {
  test("writes the session's headers with the span id as the request id", () => {
    const span = new BasicTracerProvider().getTracer("test").startSpan("POST");
    const carrier: Record<string, string> = {};
    const propagator = new HeadersPropagator((requestId) => ({ "x-highlight-request": `s1/${requestId}` }), [
      "x-highlight-request",
    ]);
    propagator.inject(trace.setSpan(context.active(), span), carrier, defaultTextMapSetter);
    assert.equal(carrier["x-highlight-request"], `s1/${span.spanContext().spanId}`);
    assert.deepEqual(propagator.fields(), ["x-highlight-request"]);
  });
});
