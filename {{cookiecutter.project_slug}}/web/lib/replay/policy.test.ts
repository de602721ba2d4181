// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { outcomeOf, retryDelay } from "./policy";

describe("retries", () => {
  test("the delay doubles from the base, with jitter in the upper half, up to the cap", () => {
    const limits = { retryBaseMs: 1000, retryMaxMs: 30_000 };
    assert.deepEqual([1, 2, 3, 4].map((n) => retryDelay(n, limits, () => 0)), [500, 1000, 2000, 4000]);
    assert.deepEqual([1, 2, 3, 4].map((n) => retryDelay(n, limits, () => 1)), [1000, 2000, 4000, 8000]);
    assert.equal(retryDelay(20, limits, () => 1), 30_000);
  });

  test("Retry-After wins, within the cap", () => {
    assert.equal(retryDelay(1, { retryBaseMs: 1000, retryMaxMs: 30_000 }, () => 0, 60_000), 30_000);
    assert.equal(retryDelay(1, { retryBaseMs: 1000, retryMaxMs: 30_000 }, () => 0, 7_000), 7_000);
  });

  test("an answer's status and code decide: stored, try again, drop the chunk, or stop recording", () => {
    assert.equal(outcomeOf(201), "sent");
    assert.equal(outcomeOf(200), "sent");
    for (const status of [0, 408, 429, 500, 502, 503]) assert.equal(outcomeOf(status), "retry", String(status));
    assert.equal(outcomeOf(400, "bad_events"), "drop");
    assert.equal(outcomeOf(413, "chunk_too_large"), "drop");
    assert.equal(outcomeOf(413, "session_full"), "stop");
    assert.equal(outcomeOf(429, "too_many_sessions"), "stop");
    assert.equal(outcomeOf(429, "rate_limited"), "retry");
    assert.equal(outcomeOf(403, "wrong_write_secret"), "stop");
    assert.equal(outcomeOf(507, "storage_full"), "stop");
    assert.equal(outcomeOf(403), "stop");
    assert.equal(outcomeOf(404), "stop");
  });
});
