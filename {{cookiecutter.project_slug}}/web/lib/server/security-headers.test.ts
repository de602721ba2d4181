// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { newNonce, pageContentSecurityPolicy, replayVendorOrigins } from "./security-headers";

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
