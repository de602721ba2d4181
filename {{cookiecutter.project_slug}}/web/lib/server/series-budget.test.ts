// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SeriesBudget } from "./series-budget";

test("a client makes at most maxSeries new series a window, and may repeat them", () => {
  let now = 0;
  const budget = new SeriesBudget({ maxSeries: 3, windowMs: 60_000, now: () => now });
  const made = Array.from({ length: 10 }, (_, i) => budget.admit("a", `s${i}`));
  assert.deepEqual(made, [true, true, true, false, false, false, false, false, false, false]);
  assert.equal(budget.admit("a", "s1"), true, "a series it already made");
  assert.equal(budget.admit("b", "s9"), true, "another client has its own budget");
  now += 60_000;
  assert.equal(budget.admit("a", "s9"), true, "a new window");
});

test("the table of clients stays bounded", () => {
  const budget = new SeriesBudget({ maxSeries: 1, windowMs: 60_000, maxClients: 50, now: () => 0 });
  for (let i = 0; i < 5_000; i += 1) budget.admit(`c${i}`, "k");
  assert.equal(budget.size, 50);
});
