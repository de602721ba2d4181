// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { forwardRequestHeaders, forwardResponseHeaders, proxyToApi, upstreamUrl } from "./proxy";

test("the backend URL keeps the path (with /api) and the query", () => {
  const url = new URL("https://app.example.com/api/conversations/c1?limit=5");
  assert.equal(upstreamUrl(url, "http://api:8000").href, "http://api:8000/api/conversations/c1?limit=5");
  assert.equal(upstreamUrl(url, "http://gw:80/backend/").href, "http://gw/backend/api/conversations/c1?limit=5");
});

test("end-to-end headers go upstream (trace context, session, auth); hop-by-hop and the client's forwarding ones do not", () => {
  const incoming = new Headers({
    "x-forwarded-for": "203.0.113.9, 198.51.100.1",
    "x-real-ip": "203.0.113.9",
    forwarded: "for=203.0.113.9",
    "x-forwarded-host": "evil.example",
    "x-forwarded-proto": "gopher",
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
  const forwarded = forwardRequestHeaders(incoming, new URL("https://app.example.com/api/chat"), "192.0.2.10");
  assert.deepEqual(Object.fromEntries(forwarded), {
    authorization: "Bearer t",
    baggage: "sentry-replay_id=r1",
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "x-forwarded-for": "192.0.2.10",
    "x-forwarded-host": "app.example.com",
    "x-forwarded-proto": "https",
    "x-session-id": "s1",
  });
});

test("the answer keeps its encoding (the body goes back as sent) and loses its length and hop-by-hop headers", () => {
  const headers = forwardResponseHeaders(
    new Headers({
      "content-type": "application/json",
      "content-encoding": "gzip",
      "content-length": "9",
      "transfer-encoding": "chunked",
      connection: "keep-alive",
      "x-a": "1",
    }),
  );
  assert.deepEqual(Object.fromEntries(headers), {
    "content-encoding": "gzip",
    "content-type": "application/json",
    "x-a": "1",
  });
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
    assert.equal(seen.headers?.["x-forwarded-for"], undefined, "no address seen: none is made up");
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

describe("proxyToApi with bodies as a hostile client sends them", () => {
  let server: Server;
  let base = "";
  let arrived: { bytes: number; complete: boolean }[] = [];
  let firstBytes: () => void = () => undefined;

  before(async () => {
    server = createServer((request, response) => {
      const seen = { bytes: 0, complete: false };
      arrived.push(seen);
      request.on("data", (part: Buffer) => {
        seen.bytes += part.length;
        firstBytes();
      });
      request.on("end", () => {
        seen.complete = true;
        response.writeHead(200, { "content-type": "application/json" });
        response.end('{"ok":true}');
      });
      request.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const upload = (body: BodyInit, headers: Record<string, string> = {}) =>
    new Request("http://web.local/api/replay/s-12345678", { method: "POST", headers, body, duplex: "half" } as RequestInit);

  test("a chunked body past API_MAX_BODY_BYTES is a 413; the backend never gets a complete request", async () => {
    arrived = [];
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        controller.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const response = await proxyToApi(upload(endless), { API_BASE_URL: base, API_MAX_BODY_BYTES: String(256 * 1024) });
    assert.equal(response.status, 413);
    assert.equal(await response.text(), "body is over the limit of 262144 bytes\n");
    assert.ok(pulled < 20, `${pulled} chunks of 64 KiB were read`);
    assert.ok(arrived.every((seen) => !seen.complete), "the backend saw a complete request");
  });

  test("a declared Content-Length past the limit is a 413 before the backend is asked", async () => {
    arrived = [];
    const request = upload(new Uint8Array(2048), { "content-length": "2048" });
    const response = await proxyToApi(request, { API_BASE_URL: base, API_MAX_BODY_BYTES: "1024" });
    assert.equal(response.status, 413);
    assert.equal(arrived.length, 0);
  });

  test("the body streams through: the backend has its first bytes before the client sent the last", async () => {
    arrived = [];
    const backendHasBytes = new Promise<void>((resolve) => (firstBytes = resolve));
    let sent = 0;
    const slow = new ReadableStream<Uint8Array>({
      async pull(controller) {
        sent += 1;
        if (sent === 1) return controller.enqueue(new TextEncoder().encode('{"part":'));
        const deadline = new Promise<"late">((resolve) => setTimeout(() => resolve("late"), 5_000).unref());
        assert.notEqual(await Promise.race([backendHasBytes, deadline]), "late", "the proxy buffered the body");
        controller.enqueue(new TextEncoder().encode("1}"));
        controller.close();
      },
    });
    const response = await proxyToApi(upload(slow), { API_BASE_URL: base });
    assert.equal(response.status, 200);
    // (The aborted upload of the first test may be seen by the server late: only complete ones count.)
    assert.deepEqual(arrived.filter((seen) => seen.complete), [{ bytes: 10, complete: true }]);
  });
});

const chatUpload = (body: ReadableStream<Uint8Array>) =>
  new Request("http://web.local/api/chat", { method: "POST", body, duplex: "half" } as RequestInit);

describe("proxyToApi when the backend answers before the upload is over", () => {
  let server: Server;
  let base = "";
  let received = 0;

  before(async () => {
    // Refuses the body after its first 64 KiB, as the backend's read_body does, reading no further.
    server = createServer((request, response) => {
      received = 0;
      request.on("data", (part: Buffer) => {
        received += part.length;
        if (received > 64 * 1024 && !response.headersSent) {
          request.pause();
          response.writeHead(413, { "content-type": "application/json", connection: "close" });
          response.end('{"detail":"body is over 65536 bytes","code":"body_too_large"}');
        }
      });
      request.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("the backend's 413 goes back as it is, and the rest of the upload is not read", async () => {
    let pulled = 0;
    let cancelled: () => void = () => undefined;
    const stopped = new Promise<void>((resolve) => (cancelled = resolve));
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        controller.enqueue(new Uint8Array(16 * 1024));
      },
      cancel: () => cancelled(),
    });
    const request = chatUpload(endless);
    // The proxy's limit is far above the backend's: only the backend's answer can end this upload.
    const response = await proxyToApi(request, { API_BASE_URL: base, API_MAX_BODY_BYTES: String(1024 * 1024 * 1024) });
    assert.equal(response.status, 413);
    assert.deepEqual(await response.json(), { detail: "body is over 65536 bytes", code: "body_too_large" });
    const deadline = new Promise<"late">((resolve) => setTimeout(() => resolve("late"), 5_000).unref());
    assert.notEqual(await Promise.race([stopped, deadline]), "late", "the client's body was still being read");
    const after = pulled;
    assert.ok(after * 16 * 1024 < 64 * 1024 * 1024, `${after} chunks of 16 KiB were read`);
  });

  test("past the proxy's own limit as well, the 413 the backend sent first is the answer", async () => {
    const endless = new ReadableStream<Uint8Array>({
      pull: (controller) => controller.enqueue(new Uint8Array(16 * 1024)),
    });
    const request = chatUpload(endless);
    const response = await proxyToApi(request, { API_BASE_URL: base, API_MAX_BODY_BYTES: String(96 * 1024) });
    assert.equal(response.status, 413);
    assert.equal((await response.json()).code, "body_too_large");
  });
});

describe("proxyToApi relaying the backend's answer", () => {
  let server: Server;
  let base = "";
  let release: () => void = () => undefined;
  const packed = gzipSync(JSON.stringify({ packed: true }));

  before(async () => {
    server = createServer((request, response) => {
      if (request.url === "/api/stream") {
        // The second token only once the test has read the first one through the proxy.
        response.writeHead(200, { "content-type": "text/event-stream" });
        response.write("data: first\n\n");
        new Promise<void>((resolve) => (release = resolve)).then(() => response.end("data: second\n\n"));
      } else if (request.url === "/api/packed") {
        response.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
        response.end(packed);
      } else {
        response.writeHead(204);
        response.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("a streamed answer streams: its first token arrives while the backend is still writing", async () => {
    const response = await proxyToApi(new Request("http://web.local/api/stream"), { API_BASE_URL: base });
    assert.equal(response.headers.get("content-type"), "text/event-stream");
    const reader = response.body!.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value), "data: first\n\n");
    release();
    let rest = "";
    for (let part = await reader.read(); !part.done; part = await reader.read()) {
      rest += new TextDecoder().decode(part.value);
    }
    assert.equal(rest, "data: second\n\n");
  });

  test("an encoded answer goes back encoded, byte for byte, with its Content-Encoding", async () => {
    const response = await proxyToApi(new Request("http://web.local/api/packed"), { API_BASE_URL: base });
    assert.equal(response.headers.get("content-encoding"), "gzip");
    const body = Buffer.from(await response.arrayBuffer());
    assert.ok(body.equals(packed), "the body was decoded or changed");
    assert.deepEqual(JSON.parse(gunzipSync(body).toString()), { packed: true });
  });

  test("an answer without a body (204) goes back without one", async () => {
    const response = await proxyToApi(new Request("http://web.local/api/feedback", { method: "POST", body: "{}" }), {
      API_BASE_URL: base,
    });
    assert.equal(response.status, 204);
    assert.equal(response.body, null);
  });
});
