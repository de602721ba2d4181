// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { clientAddress, newNonce, pageContentSecurityPolicy, replayVendorOrigins, withoutClientForwarding } from "./security-headers";

test("every header through which a client could name its own address, host or scheme is dropped", () => {
  const headers = withoutClientForwarding(
    new Headers({
      "x-forwarded-for": "1.2.3.4",
      "X-Real-IP": "1.2.3.4",
      forwarded: "for=1.2.3.4",
      "x-forwarded-host": "evil",
      "x-forwarded-port": "1",
      "x-forwarded-proto": "https",
      traceparent: "kept",
    }),
  );
  assert.deepEqual(Object.fromEntries(headers), { traceparent: "kept" });
});

test("the client is the address Next.js set, one key per address", () => {
  assert.equal(clientAddress(new Headers({ "x-forwarded-for": "127.0.0.1" })), "127.0.0.1");
  assert.equal(clientAddress(new Headers({ "x-forwarded-for": "::ffff:10.1.2.3" })), "10.1.2.3");
  assert.equal(clientAddress(new Headers({ "x-forwarded-for": "::1" })), "::1");
  assert.equal(clientAddress(new Headers({ "x-forwarded-for": "1.1.1.1, 10.0.0.2" })), "10.0.0.2");
  assert.equal(clientAddress(new Headers()), "unknown");
});

test("the pages' policy allows only nonced scripts, this origin's fetches and no framing", () => {
  const nonce = newNonce();
  assert.notEqual(nonce, newNonce());
  const policy = pageContentSecurityPolicy(nonce, { SESSION_REPLAY: "builtin" });
  assert.match(policy, new RegExp(`script-src 'self' 'nonce-${nonce.replace(/[+/=]/g, "\\$&")}' 'strict-dynamic';`));
  assert.match(policy, /connect-src 'self';/);
  assert.match(policy, /frame-ancestors 'none'/);
  assert.doesNotMatch(policy, /unsafe/);
});

test("a replay vendor's own endpoints may be fetched, and only that vendor's", () => {
  assert.deepEqual(replayVendorOrigins({ SESSION_REPLAY: "sentry", SENTRY_DSN: "https://k@o1.ingest.sentry.io/2" }), [
    "https://o1.ingest.sentry.io",
  ]);
  assert.deepEqual(replayVendorOrigins({ SESSION_REPLAY: "highlight", HIGHLIGHT_BACKEND_URL: "https://hl.example/pub" }), [
    "https://hl.example",
    "https://otel.highlight.io",
  ]);
  assert.deepEqual(replayVendorOrigins({ SESSION_REPLAY: "none", SENTRY_DSN: "https://k@o1.ingest.sentry.io/2" }), []);
});
