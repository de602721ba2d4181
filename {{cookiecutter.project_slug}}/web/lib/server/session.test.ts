// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { sessionAttributes } from "./session";

const read = (headers: Record<string, string>) => sessionAttributes((name) => headers[name]);

test("x-highlight-request names the Highlight session and request", () => {
  assert.deepEqual(read({ "x-highlight-request": "sess1/req9" }), {
    "highlight.session_id": "sess1",
    "session.id": "sess1",
    "highlight.trace_id": "req9",
  });
});

test("x-session-id names the session when no vendor does", () => {
  assert.deepEqual(read({ "x-session-id": "tab-1234" }), { "session.id": "tab-1234" });
  assert.deepEqual(read({ "x-session-id": "tab-1234", "x-highlight-request": "hl/1" })["session.id"], "hl");
});

test("Sentry's replay id is read from baggage", () => {
  assert.deepEqual(read({ baggage: "sentry-trace_id=abc, sentry-replay_id=r42;prop=1" }), {
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
