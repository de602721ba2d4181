import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { forwardTraces, MAX_OTLP_BODY_BYTES } from "./otlp-forward";

let collector: Server;
let endpoint = "";
let received: { url?: string; headers?: IncomingHttpHeaders; body?: Buffer } = {};

before(async () => {
  collector = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      received = { url: request.url, headers: request.headers, body: Buffer.concat(chunks) };
      response.writeHead(200, { "content-type": "application/json" });
      response.end("{}");
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => collector.close(() => resolve())));

function post(body: BodyInit, contentType: string, headers: Record<string, string> = {}): Request {
  return new Request("http://web.local/otel/v1/traces", {
    method: "POST",
    headers: { "content-type": contentType, ...headers },
    body,
  });
}

test("OTLP/JSON from the browser reaches the collector's /v1/traces unchanged, with its auth", async () => {
  const body = '{"resourceSpans":[]}';
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20c" };
  const response = await forwardTraces(post(body, "application/json"), env);
  assert.equal(response.status, 200);
  assert.equal(received.url, "/v1/traces");
  assert.equal(received.headers?.["content-type"], "application/json");
  assert.equal(received.headers?.authorization, "Bearer c");
  assert.equal(received.headers?.traceparent, undefined, "the forward carries no trace context");
  assert.equal(received.body?.toString(), body);
});

test("anything but OTLP JSON or protobuf is refused", async () => {
  const response = await forwardTraces(post("hi", "text/plain"), { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint });
  assert.equal(response.status, 415);
});

test("an oversized body is refused", async () => {
  const response = await forwardTraces(post(new Uint8Array(MAX_OTLP_BODY_BYTES + 1), "application/x-protobuf"), {
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
  });
  assert.equal(response.status, 413);
});

test("a collector that is down is a 503, which the browser exporter retries", async () => {
  const response = await forwardTraces(post("{}", "application/json"), {
    OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9",
  });
  assert.equal(response.status, 503);
});
