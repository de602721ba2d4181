import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { forwardRequestHeaders, forwardResponseHeaders, proxyToApi, upstreamUrl } from "./proxy";

test("the backend URL keeps the path (with /api) and the query", () => {
  const url = new URL("https://app.example.com/api/conversations/c1?limit=5");
  assert.equal(upstreamUrl(url, "http://api:8000").href, "http://api:8000/api/conversations/c1?limit=5");
  assert.equal(upstreamUrl(url, "http://gw:80/backend/").href, "http://gw/backend/api/conversations/c1?limit=5");
});

test("end-to-end headers go upstream (trace context, session, auth); hop-by-hop ones do not", () => {
  const incoming = new Headers({
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "x-session-id": "s1",
    baggage: "sentry-replay_id=r1",
    authorization: "Bearer t",
    connection: "keep-alive, x-hop",
    "x-hop": "1",
    "keep-alive": "timeout=5",
    host: "app.example.com",
    "content-length": "12",
  });
  const forwarded = forwardRequestHeaders(incoming, new URL("https://app.example.com/api/chat"));
  assert.deepEqual(Object.fromEntries(forwarded), {
    authorization: "Bearer t",
    baggage: "sentry-replay_id=r1",
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "x-forwarded-host": "app.example.com",
    "x-forwarded-proto": "https",
    "x-session-id": "s1",
  });
});

test("the answer loses the encoding and length that fetch already undid", () => {
  const headers = forwardResponseHeaders(
    new Headers({ "content-type": "application/json", "content-encoding": "gzip", "content-length": "9", "x-a": "1" }),
  );
  assert.deepEqual(Object.fromEntries(headers), { "content-type": "application/json", "x-a": "1" });
});

describe("proxyToApi against a real server", () => {
  let server: Server;
  let seen: { method?: string; url?: string; headers?: IncomingHttpHeaders; body?: string } = {};
  let base = "";

  before(async () => {
    server = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => (body += chunk));
      request.on("end", () => {
        seen = { method: request.method, url: request.url, headers: request.headers, body };
        response.writeHead(201, { "content-type": "application/json", "x-backend": "yes" });
        response.end(JSON.stringify({ ok: true }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("forwards method, path, query, headers and body, and streams the answer back", async () => {
    const request = new Request("http://web.local/api/chat?x=1", {
      method: "POST",
      headers: { "content-type": "application/json", "x-session-id": "s1" },
      body: JSON.stringify({ message: "hi" }),
    });
    const response = await proxyToApi(request, { API_BASE_URL: base });
    assert.equal(response.status, 201);
    assert.equal(response.headers.get("x-backend"), "yes");
    assert.deepEqual(await response.json(), { ok: true });
    assert.equal(seen.method, "POST");
    assert.equal(seen.url, "/api/chat?x=1");
    assert.equal(seen.body, '{"message":"hi"}');
    assert.equal(seen.headers?.["x-session-id"], "s1");
    assert.equal(seen.headers?.["x-forwarded-host"], "web.local");
  });

  test("an unreachable backend is a 502 with a JSON detail", async () => {
    const response = await proxyToApi(new Request("http://web.local/api/chat"), { API_BASE_URL: "http://127.0.0.1:9" });
    assert.equal(response.status, 502);
    assert.match((await response.json()).detail, /could not be reached/);
  });
});

describe("proxyToApi with a compressed upload (the built-in replay's chunks)", () => {
  let server: Server;
  let received: { headers?: IncomingHttpHeaders; body?: Buffer } = {};
  let base = "";

  before(async () => {
    server = createServer((request, response) => {
      const parts: Buffer[] = [];
      request.on("data", (part: Buffer) => parts.push(part));
      request.on("end", () => {
        received = { headers: request.headers, body: Buffer.concat(parts) };
        response.writeHead(201, { "content-type": "application/json" });
        response.end('{"stored":true}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("the gzip body and its Content-Encoding reach the backend byte for byte, with the origin", async () => {
    const body = gzipSync(JSON.stringify({ seq: 0, events: [{ type: 4, timestamp: 1 }], trace_ids: [] }));
    const request = new Request("http://web.local/api/replay/s-12345678", {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip", origin: "http://web.local" },
      body,
    });
    const response = await proxyToApi(request, { API_BASE_URL: base });
    assert.equal(response.status, 201);
    assert.equal(received.headers?.["content-encoding"], "gzip");
    assert.equal(received.headers?.origin, "http://web.local");
    assert.equal(received.headers?.["x-forwarded-host"], "web.local");
    assert.ok(received.body?.equals(body), "the body arrived unchanged");
  });
});
