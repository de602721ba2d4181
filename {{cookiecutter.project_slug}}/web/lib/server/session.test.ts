// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ReplayVendorName } from "../observability";
import { sessionAttributes } from "./session";

const read = (headers: Record<string, string>, vendor: ReplayVendorName = "builtin") =>
  sessionAttributes((name) => headers[name], vendor);

test("x-highlight-request names the Highlight session and request", () => {
  assert.deepEqual(read({ "x-highlight-request": "sess1/req9" }, "highlight"), {
    "highlight.session_id": "sess1",
    "session.id": "sess1",
    "highlight.trace_id": "req9",
  });
});

test("x-session-id names the session when no vendor does", () => {
  assert.deepEqual(read({ "x-session-id": "tab-1234" }), { "session.id": "tab-1234" });
  assert.deepEqual(read({ "x-session-id": "tab-1234", "x-highlight-request": "hl/1" }, "highlight")["session.id"], "hl");
});

test("only the configured vendor's header is read, as on the backend", () => {
  const headers = { "x-session-id": "tab-1234", "x-highlight-request": "hl/1", baggage: "sentry-replay_id=r42" };
  assert.deepEqual(read(headers, "builtin"), { "session.id": "tab-1234" });
  assert.deepEqual(read(headers, "none"), { "session.id": "tab-1234" });
  assert.equal(read(headers, "sentry")["session.id"], "r42");
  assert.equal(read(headers, "highlight")["session.id"], "hl");
});

test("without an argument the vendor is SESSION_REPLAY's", () => {
  const headers = { "x-highlight-request": "hl/1" };
  const saved = process.env.SESSION_REPLAY;
  try {
    process.env.SESSION_REPLAY = "highlight";
    assert.equal(sessionAttributes((name) => headers[name as keyof typeof headers])["session.id"], "hl");
    process.env.SESSION_REPLAY = "none";
    assert.deepEqual(sessionAttributes((name) => headers[name as keyof typeof headers]), {});
  } finally {
    if (saved === undefined) delete process.env.SESSION_REPLAY;
    else process.env.SESSION_REPLAY = saved;
  }
});

test("Sentry's replay id is read from baggage", () => {
  assert.deepEqual(read({ baggage: "sentry-trace_id=abc, sentry-replay_id=r42;prop=1" }, "sentry"), {
    "sentry.replay_id": "r42",
    "session.id": "r42",
  });
});

test("ids that are empty, too long or not printable are ignored", () => {
  assert.deepEqual(read({ "x-session-id": "  " }), {});
  assert.deepEqual(read({ "x-session-id": "x".repeat(129) }), {});
  assert.deepEqual(read({ "x-session-id": "a\u0007b" }), {});
  assert.deepEqual(read({}), {});
});
