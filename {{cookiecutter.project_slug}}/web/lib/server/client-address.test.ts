// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { clientAddress, markPeer, peerHeaders } from "./client-address";

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
