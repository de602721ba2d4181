// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { hashUnit, sessionSampled } from "./sampling";

describe("which sessions are recorded", () => {
  test("a rate of 1 records every session, 0 none, and NaN none", () => {
    for (const id of ["a", "b", "c"]) {
      assert.equal(sessionSampled(id, 1), true);
      assert.equal(sessionSampled(id, 0), false);
      assert.equal(sessionSampled(id, Number.NaN), false);
    }
  });

  test("a session keeps its answer (a reload does not leave a hole), and the share is close to the rate", () => {
    const ids = Array.from({ length: 4000 }, (_, i) => `5f0c7c0e-3b9a-4f7e-8d52-${String(i).padStart(12, "0")}`);
    const kept = ids.filter((id) => sessionSampled(id, 0.25));
    assert.ok(Math.abs(kept.length / ids.length - 0.25) < 0.03, `${kept.length} of ${ids.length}`);
    assert.deepEqual(ids.filter((id) => sessionSampled(id, 0.25)), kept);
    assert.ok(hashUnit("x") >= 0 && hashUnit("x") < 1);
  });
});
