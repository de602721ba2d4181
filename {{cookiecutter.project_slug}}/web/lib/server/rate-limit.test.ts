// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RateLimiter } from "./rate-limit";

test("a client gets its budget per minute back as time passes", () => {
  let now = 0;
  const limiter = new RateLimiter({ perMinute: 2, totalPerMinute: 100, now: () => now });
  assert.deepEqual([limiter.allow("a"), limiter.allow("a"), limiter.allow("a")], [true, true, false]);
  assert.equal(limiter.allow("b"), true, "another client has its own budget");
  now += 30_000;
  assert.deepEqual([limiter.allow("a"), limiter.allow("a")], [true, false]);
});

test("all clients together meet the total limit, however many keys they make up", () => {
  const limiter = new RateLimiter({ perMinute: 10, totalPerMinute: 5, now: () => 0 });
  const allowed = Array.from({ length: 20 }, (_, i) => limiter.allow(`made-up-${i}`)).filter(Boolean);
  assert.equal(allowed.length, 5);
});

test("the table of clients stays bounded: the least recently seen is forgotten", () => {
  const limiter = new RateLimiter({ perMinute: 1, totalPerMinute: 1_000_000, maxClients: 100, now: () => 0 });
  for (let i = 0; i < 10_000; i += 1) limiter.allow(`c${i}`);
  assert.equal(limiter.size, 100);
});
