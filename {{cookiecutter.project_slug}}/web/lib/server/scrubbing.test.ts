// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SpanKind } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { REDACTED, ScrubbingSpanExporter, scrubAttributes, scrubSpan, scrubText } from "./scrubbing";

test("scrubText redacts only secret parameters, as the backend's scrub_text does", () => {
  // The same cases as backend/tests/test_telemetry_units.py.
  const cases: [string, string][] = [
    ["/a?token=abc&x=1", `/a?token=${REDACTED}&x=1`],
    ["api_key=K&Password=p", `api_key=${REDACTED}&Password=${REDACTED}`],
    ['GET /p?access_token=zz HTTP/1.1" 200', `GET /p?access_token=${REDACTED} HTTP/1.1" 200`],
    ["/a?mytoken=1&tokens=2", "/a?mytoken=1&tokens=2"],
    ["no query here", "no query here"],
  ];
  for (const [text, expected] of cases) assert.equal(scrubText(text), expected, text);
});

test("URL attributes lose their secrets, sensitive keys and headers are redacted, the rest is untouched", () => {
  const attributes = {
    "http.target": "/api/chat?token=t1",
    "http.url": "http://api:8000/api/chat?sig=s&ok=1",
    "url.full": "http://web/x?code=c",
    "url.query": "password=p",
    "http.request.header.authorization": ["Bearer x"],
    "user.api_key": "k",
    "http.method": "GET",
  };
  assert.deepEqual(scrubAttributes(attributes), {
    "http.target": `/api/chat?token=${REDACTED}`,
    "http.url": `http://api:8000/api/chat?sig=${REDACTED}&ok=1`,
    "url.full": `http://web/x?code=${REDACTED}`,
    "url.query": `password=${REDACTED}`,
    "http.request.header.authorization": [REDACTED],
    "user.api_key": REDACTED,
    "http.method": "GET",
  });
  assert.equal(scrubAttributes({ "http.target": "/api/chat", "http.method": "GET" }), undefined, "no copy when clean");
});

function fakeSpan(name: string, attributes: Record<string, string>): ReadableSpan {
  const context = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: 1 };
  return {
    name,
    kind: SpanKind.SERVER,
    spanContext: () => context,
    attributes,
    events: [{ name: "exception", time: [0, 0], attributes: { "exception.message": "GET /x?token=e failed" } }],
    links: [],
  } as unknown as ReadableSpan;
}

test("the exporter wrapper sends the span name, attributes and events scrubbed", () => {
  let exported: ReadableSpan[] = [];
  const exporter = new ScrubbingSpanExporter({
    export: (spans, done) => {
      exported = spans;
      done({ code: 0 });
    },
    shutdown: () => Promise.resolve(),
  });
  const original = fakeSpan("GET /missing?token=abc", { "http.target": "/missing?token=abc" });
  exporter.export([original], () => undefined);
  const [sent] = exported;
  assert.equal(sent.name, `GET /missing?token=${REDACTED}`);
  assert.equal(sent.attributes["http.target"], `/missing?token=${REDACTED}`);
  assert.equal(sent.events[0].attributes?.["exception.message"], `GET /x?token=${REDACTED} failed`);
  assert.equal(sent.spanContext().spanId, "b7ad6b7169203331", "everything else is the original's");
  assert.equal(original.name, "GET /missing?token=abc", "the original span is left as it was");
  const clean = fakeSpan("GET /", { "http.target": "/" });
  (clean as { events: unknown[] }).events = [];
  assert.equal(scrubSpan(clean), clean);
});
