// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { clientAddress } from "./client-address";
import { installRequestHook, isPageRequest } from "./request-hook";

test("pages are GETs and HEADs outside the JSON routes, the build's files and the replay viewer", () => {
  assert.equal(isPageRequest("GET", "/"), true);
  assert.equal(isPageRequest("HEAD", "/about?x=1"), true);
  assert.equal(isPageRequest("POST", "/"), false);
  for (const url of ["/api/chat", "/otel/v1/traces", "/_next/static/chunks/a.js", "/replay/s-1"]) {
    assert.equal(isPageRequest("GET", url), false, url);
  }
});

function get(port: number, path: string, headers: Record<string, string>): Promise<{ headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    httpRequest({ port, host: "127.0.0.1", path, headers }, (response) => {
      let body = "";
      response.on("data", (chunk) => (body += chunk));
      response.on("end", () => resolve({ headers: response.headers, body }));
    })
      .on("error", reject)
      .end();
  });
}

test("installed, a real HTTP server's handler sees the peer, and its pages carry a nonce policy", async () => {
  installRequestHook({ SESSION_REPLAY: "none" });
  installRequestHook({}); // once only
  const server = createServer((request, response) => {
    const headers = new Headers(request.headers as Record<string, string>);
    response.end(JSON.stringify({ client: clientAddress(headers), csp: headers.get("content-security-policy") }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    const spoofed = { "x-forwarded-for": "203.0.113.5", "x-real-ip": "203.0.113.5", "content-security-policy": "default-src *" };
    const page = await get(port, "/", spoofed);
    const seen = JSON.parse(page.body);
    assert.equal(seen.client, "127.0.0.1");
    assert.match(String(page.headers["content-security-policy"]), /script-src 'self' 'nonce-[^']+' 'strict-dynamic'/);
    assert.equal(seen.csp, page.headers["content-security-policy"], "Next.js reads the same nonce from the request");
    const api = await get(port, "/api/chat", spoofed);
    assert.deepEqual(JSON.parse(api.body), { client: "127.0.0.1", csp: null });
    assert.equal(api.headers["content-security-policy"], undefined);
  } finally {
    server.close();
  }
});
