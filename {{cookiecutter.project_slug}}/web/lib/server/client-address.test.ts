// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { request as httpRequest, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { clientAddress, installPeerAddress, markPeer, peerHeaders } from "./client-address";

test("the client's forwarding headers go; X-Forwarded-For is the socket's peer, marked", () => {
  const request = {
    headers: {
      "x-forwarded-for": "1.2.3.4",
      "x-real-ip": "1.2.3.4",
      forwarded: "for=1.2.3.4",
      "x-forwarded-host": "evil",
      "x-forwarded-port": "1",
      "x-forwarded-proto": "https",
      "x-web-peer-mark": "guessed",
      traceparent: "kept",
    },
    socket: { remoteAddress: "::ffff:10.1.2.3" },
  } as unknown as Parameters<typeof markPeer>[0];
  markPeer(request);
  const headers = new Headers(request.headers as Record<string, string>);
  assert.deepEqual([...headers.keys()].sort(), ["traceparent", "x-forwarded-for", "x-web-peer-mark"]);
  assert.equal(clientAddress(headers), "10.1.2.3");
});

test("without the process's mark the client is unknown, whatever X-Forwarded-For says", () => {
  assert.equal(clientAddress(new Headers({ "x-forwarded-for": "1.1.1.1" })), "unknown");
  assert.equal(clientAddress(new Headers({ "x-forwarded-for": "1.1.1.1", "x-web-peer-mark": "guess" })), "unknown");
  assert.equal(clientAddress(new Headers(peerHeaders("::1"))), "::1");
});

test("installed, it rewrites what a real HTTP server's handler sees", async () => {
  installPeerAddress();
  installPeerAddress(); // idempotent
  const server = createServer((request, response) => {
    response.end(JSON.stringify({ client: clientAddress(new Headers(request.headers as Record<string, string>)) }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const body = await new Promise<string>((resolve, reject) => {
      const port = (server.address() as AddressInfo).port;
      httpRequest({ port, host: "127.0.0.1", headers: { "x-forwarded-for": "203.0.113.5", "x-real-ip": "203.0.113.5" } }, (response) => {
        let text = "";
        response.on("data", (chunk) => (text += chunk));
        response.on("end", () => resolve(text));
      })
        .on("error", reject)
        .end();
    });
    assert.deepEqual(JSON.parse(body), { client: "127.0.0.1" });
  } finally {
    server.close();
  }
});
