// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, test } from "node:test";
import { gzipSync } from "node:zlib";
import { SERVICE_NAME, SERVICE_NAMESPACE } from "../config";
import { peerHeaders } from "./client-address";
import { forwardOtlp } from "./otlp-forward";

let collector: Server;
let endpoint = "";
let received: { url?: string; headers?: IncomingHttpHeaders; body?: Buffer }[] = [];

before(async () => {
  collector = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ url: request.url, headers: request.headers, body: Buffer.concat(chunks) });
      response.writeHead(200, { "content-type": "application/json" });
      response.end("{}");
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => collector.close(() => resolve())));
beforeEach(() => {
  received = [];
});

// Each test is its own client, so the per-client rate limit of one never meets another's.
let clients = 0;
function post(body: BodyInit, headers: Record<string, string> = {}, path = "traces"): Request {
  clients += 1;
  return new Request(`http://web.local/otel/v1/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...peerHeaders(`10.0.0.${clients}`), ...headers },
    body,
    duplex: "half",
  } as RequestInit);
}

const str = (value: string) => ({ stringValue: value });
const kv = (key: string, value: string) => ({ key, value: str(value) });

function traces(service = SERVICE_NAME, spans: object[] = [span()]) {
  return {
    resourceSpans: [
      {
        resource: { attributes: [kv("service.name", service), kv("telemetry.sdk.language", "webjs")] },
        scopeSpans: [{ scope: { name: "@opentelemetry/instrumentation-fetch" }, spans }],
      },
    ],
  };
}

function span(attributes: object[] = [kv("url.full", "http://web.local/api/chat")]) {
  return {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: "b7ad6b7169203331",
    name: "HTTP POST",
    kind: 3,
    startTimeUnixNano: "1",
    endTimeUnixNano: "2",
    attributes,
    events: [],
    links: [],
    status: { code: 0 },
  };
}

const env = (extra: Record<string, string> = {}) => ({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, ...extra });
const forwarded = () => JSON.parse(received[0].body?.toString() ?? "null");
const attribute = (list: { key: string; value: { stringValue?: string } }[], key: string) =>
  list.find((a) => a.key === key)?.value.stringValue;

test("the browser's OTLP/JSON reaches the collector's /v1/traces with the server's auth and no trace context", async () => {
  const response = await forwardOtlp(post(JSON.stringify(traces())), "traces", env({ OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20c" }));
  assert.equal(response.status, 200);
  assert.equal(received[0].url, "/v1/traces");
  assert.equal(received[0].headers?.authorization, "Bearer c");
  assert.equal(received[0].headers?.traceparent, undefined);
  const sent = forwarded().resourceSpans[0];
  assert.equal(attribute(sent.resource.attributes, "service.name"), SERVICE_NAME);
  assert.equal(attribute(sent.resource.attributes, "service.namespace"), SERVICE_NAMESPACE, "a missing namespace is set");
  assert.equal(attribute(sent.scopeSpans[0].spans[0].attributes, "url.full"), "http://web.local/api/chat");
  assert.equal(sent.scopeSpans[0].spans[0].traceId, "0af7651916cd43dd8448eb211c80319c");
});

test("logs and metrics take the same route to their own collector paths", async () => {
  const logs = {
    resourceLogs: [
      { resource: { attributes: [] }, scopeLogs: [{ scope: { name: "browser" }, logRecords: [{ severityText: "ERROR", body: str("boom"), attributes: [] }] }] },
    ],
  };
  const metrics = {
    resourceMetrics: [
      {
        resource: { attributes: [] },
        scopeMetrics: [{ scope: { name: "vitals" }, metrics: [{ name: "web_vitals.lcp", gauge: { dataPoints: [{ asDouble: 1.5, attributes: [] }] } }] }],
      },
    ],
  };
  assert.equal((await forwardOtlp(post(JSON.stringify(logs), {}, "logs"), "logs", env())).status, 200);
  assert.equal((await forwardOtlp(post(JSON.stringify(metrics), {}, "metrics"), "metrics", env())).status, 200);
  assert.deepEqual(received.map((r) => r.url), ["/v1/logs", "/v1/metrics"]);
  assert.equal(JSON.parse(received[0].body?.toString() ?? "").resourceLogs[0].scopeLogs[0].logRecords[0].body.stringValue, "boom");
  assert.equal((await forwardOtlp(post("{}", {}, "profiles"), "profiles", env())).status, 404);
});

test("protobuf and anything else but OTLP/JSON is refused with 415", async () => {
  for (const type of ["application/x-protobuf", "text/plain"]) {
    const response = await forwardOtlp(post("x", { "content-type": type }), "traces", env());
    assert.equal(response.status, 415);
    assert.match(await response.text(), /^this route takes OTLP\/JSON only.*\n$/);
  }
  assert.equal(received.length, 0);
});

test("a resource claiming another service is refused whole with 403, and nothing reaches the collector", async () => {
  const response = await forwardOtlp(post(JSON.stringify(traces("sage-app-api"))), "traces", env());
  assert.equal(response.status, 403);
  assert.equal(await response.text(), `resource service.name "sage-app-api" is not this web app's ("${SERVICE_NAME}"); export refused\n`);
  const namespace = traces();
  namespace.resourceSpans[0].resource.attributes.push(kv("service.namespace", "other"));
  assert.equal((await forwardOtlp(post(JSON.stringify(namespace)), "traces", env())).status, 403);
  assert.equal(received.length, 0);
});

test("a chunked body over the limit is refused with 413 before the rest of it is read", async () => {
  let pulled = 0;
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled += 1;
      controller.enqueue(new Uint8Array(64 * 1024).fill(0x20));
    },
  });
  const response = await forwardOtlp(post(endless), "traces", env({ OTLP_MAX_BODY_BYTES: String(1024 * 1024) }));
  assert.equal(response.status, 413);
  assert.equal(await response.text(), "body is over the limit of 1048576 bytes\n");
  assert.ok(pulled < 40, `${pulled} chunks of 64 KiB were read`);
});

test("a gzip bomb is refused with 413 once its inflated bytes pass the limit", async () => {
  const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20)); // 64 MiB of spaces, ~64 KB compressed
  const response = await forwardOtlp(post(bomb, { "content-encoding": "gzip" }), "traces", env({ OTLP_MAX_BODY_BYTES: String(1024 * 1024) }));
  assert.equal(response.status, 413);
  assert.equal(await response.text(), "body is over the limit of 1048576 bytes once decompressed\n");
  const small = await forwardOtlp(post(gzipSync(JSON.stringify(traces())), { "content-encoding": "gzip" }), "traces", env());
  assert.equal(small.status, 200, "an honest gzip export passes");
  const broken = await forwardOtlp(post(Buffer.from("not gzip"), { "content-encoding": "gzip" }), "traces", env());
  assert.equal(broken.status, 400);
});

test("more spans than OTLP_MAX_ITEMS in one export is a 413", async () => {
  const many = traces(SERVICE_NAME, Array.from({ length: 11 }, () => span()));
  const response = await forwardOtlp(post(JSON.stringify(many)), "traces", env({ OTLP_MAX_ITEMS: "10" }));
  assert.equal(response.status, 413);
  assert.match(await response.text(), /^more than 10 spans, log records or data points in one export/);
});

test("attributes are bounded in size and number, sensitive ones redacted, query secrets scrubbed", async () => {
  const attributes = [
    kv("url.full", "http://web.local/api/chat?token=s3cret&x=1"),
    kv("long", "x".repeat(10_000)),
    kv("user.password", "hunter2"),
    ...Array.from({ length: 200 }, (_, i) => kv(`a${i}`, "v")),
  ];
  const response = await forwardOtlp(post(JSON.stringify(traces(SERVICE_NAME, [span(attributes)]))), "traces", env({ OTLP_MAX_ATTRIBUTE_LENGTH: "100" }));
  assert.equal(response.status, 200);
  const sent = forwarded().resourceSpans[0].scopeSpans[0].spans[0].attributes;
  assert.equal(attribute(sent, "url.full"), "http://web.local/api/chat?token=[REDACTED]&x=1");
  assert.equal(attribute(sent, "long")?.length, 100);
  assert.equal(attribute(sent, "user.password"), "[REDACTED]");
  assert.equal(sent.length, 128);
  assert.ok(!received[0].body?.toString().includes("s3cret"));
});

test("what is not OTLP/JSON's shape is a 400 with the place it went wrong", async () => {
  const response = await forwardOtlp(post(JSON.stringify({ resourceSpans: [{ scopeSpans: {} }] })), "traces", env());
  assert.equal(response.status, 400);
  assert.equal(await response.text(), "not OTLP/JSON: resourceSpans[0].scopeSpans is not a list\n");
  assert.equal((await forwardOtlp(post("{"), "traces", env())).status, 400);
});

test("a client past OTLP_RATE_LIMIT exports a minute gets 429s; other clients do not", async () => {
  const limited = env({ OTLP_RATE_LIMIT: "3" });
  const statuses = [];
  for (let i = 0; i < 5; i += 1) {
    const request = post(JSON.stringify(traces()), peerHeaders("192.0.2.7"));
    statuses.push((await forwardOtlp(request, "traces", limited)).status);
  }
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  assert.equal((await forwardOtlp(post(JSON.stringify(traces())), "traces", limited)).status, 200);
});

test("with no collector the export is dropped with a 202 (no red line in the console), logged once", async () => {
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (line: string) => warnings.push(line);
  try {
    const down = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" };
    for (let i = 0; i < 3; i += 1) {
      const response = await forwardOtlp(post(JSON.stringify(traces())), "traces", down);
      assert.equal(response.status, 202);
    }
  } finally {
    console.warn = warn;
  }
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0], /^browser telemetry: the collector did not take an export/);
});

function metrics(points: object[], name = "browser.vital", resource = [kv("service.name", SERVICE_NAME)]) {
  return {
    resourceMetrics: [
      {
        resource: { attributes: resource },
        scopeMetrics: [{ scope: { name: "t" }, metrics: [{ name, gauge: { dataPoints: points } }] }],
      },
    ],
  };
}

test("the identity is rewritten: one service.name, the server's, and no item attribute claims another", async () => {
  const export_ = traces(SERVICE_NAME, [span([kv("service.name", "sage-app-api"), kv("service_name", "x"), kv("job", "api"), kv("ok", "1")])]);
  export_.resourceSpans[0].resource.attributes.push(kv("service.name", SERVICE_NAME), kv("deployment.environment.name", "prod"));
  const response = await forwardOtlp(post(JSON.stringify(export_)), "traces", env({ DEPLOYMENT_ENVIRONMENT: "staging" }));
  assert.equal(response.status, 200);
  const block = forwarded().resourceSpans[0];
  const keys = block.resource.attributes.map((a: { key: string }) => a.key);
  assert.equal(keys.filter((k: string) => k === "service.name").length, 1);
  assert.equal(attribute(block.resource.attributes, "service.namespace"), SERVICE_NAMESPACE);
  assert.equal(attribute(block.resource.attributes, "deployment.environment.name"), "staging");
  assert.deepEqual(block.scopeSpans[0].spans[0].attributes, [kv("ok", "1")]);
});

test("a resource listing the web app and then the backend is refused whole", async () => {
  const export_ = traces(SERVICE_NAME);
  export_.resourceSpans[0].resource.attributes.push(kv("service.name", "sage-app-api"));
  const response = await forwardOtlp(post(JSON.stringify(export_)), "traces", env());
  assert.equal(response.status, 403);
  assert.equal(received.length, 0);
});

test("data points lose identity attributes; metrics named like the backend's are refused", async () => {
  const point = { asDouble: 1, timeUnixNano: "1", attributes: [kv("service.name", "sage-app-api"), kv("page", "/")] };
  assert.equal((await forwardOtlp(post(JSON.stringify(metrics([point]))), "metrics", env())).status, 200);
  assert.deepEqual(forwarded().resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].attributes, [kv("page", "/")]);
  received = [];
  for (const name of ["gen_ai.client.cost", "http.server.request.duration", "app.feedback", "gen_ai_client_cost_USD_total"]) {
    const response = await forwardOtlp(post(JSON.stringify(metrics([point], name))), "metrics", env());
    assert.equal(response.status, 403, name);
    assert.match(await response.text(), /is named like the backend's; export refused/);
  }
  assert.equal(received.length, 0);
});

test("feedback-shaped log records are refused", async () => {
  const logs = (record: object) => ({
    resourceLogs: [{ resource: { attributes: [kv("service.name", SERVICE_NAME)] }, scopeLogs: [{ scope: { name: "t" }, logRecords: [record] }] }],
  });
  for (const record of [
    { eventName: "gen_ai.evaluation.result", body: str("x") },
    { body: str("x"), attributes: [kv("gen_ai.evaluation.score.value", "-1")] },
    { body: str("x"), attributes: [kv("app.feedback.score", "-1")] },
  ]) {
    const response = await forwardOtlp(post(JSON.stringify(logs(record)), {}, "logs"), "logs", env());
    assert.equal(response.status, 403);
    assert.match(await response.text(), /is a feedback event .*; export refused/);
  }
  assert.equal(received.length, 0);
});

test("a client makes at most OTLP_MAX_SERIES new series: the points past them are dropped", async () => {
  const points = Array.from({ length: 500 }, (_, i) => ({ asDouble: 1, timeUnixNano: "1", attributes: [kv("id", `v${i}`)] }));
  const limited = env({ OTLP_MAX_SERIES: "20" });
  const sent: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    received = [];
    const request = post(JSON.stringify(metrics(points.slice(i * 100, (i + 1) * 100))), peerHeaders("192.0.2.77"));
    assert.equal((await forwardOtlp(request, "metrics", limited)).status, 200);
    const metric = received.length ? forwarded().resourceMetrics[0].scopeMetrics[0].metrics[0] : undefined;
    sent.push(metric ? metric.gauge.dataPoints.length : 0);
  }
  assert.deepEqual(sent, [20, 0, 0]);
  const spans = Array.from({ length: 50 }, (_, i) => ({ ...span(), name: `span ${i}` }));
  received = [];
  await forwardOtlp(post(JSON.stringify(traces(SERVICE_NAME, spans)), peerHeaders("192.0.2.78")), "traces", limited);
  assert.equal(forwarded().resourceSpans[0].scopeSpans[0].spans.length, 20);
});
