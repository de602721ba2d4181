// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { memoryProgress, newWriteSecret, PROGRESS_KEY, storedProgress } from "./progress";

function memoryStorage() {
  const items = new Map<string, string>();
  return { items, getItem: (k: string) => items.get(k) ?? null, setItem: (k: string, v: string) => void items.set(k, v) };
}

describe("what a tab remembers", () => {
  test("the seq goes on across reloads of the tab (sessionStorage), so no chunk is taken for a resent one", () => {
    const storage = memoryStorage();
    const { items } = storage;
    const first = storedProgress("s-1", storage);
    assert.deepEqual([first.nextSeq(), first.nextSeq()], [0, 1]);
    first.addBytes(500);
    const reloaded = storedProgress("s-1", storage);
    assert.equal(reloaded.nextSeq(), 2);
    assert.equal(reloaded.bytes, 500);
    assert.equal(storedProgress("s-2", storage).nextSeq(), 0, "another session starts at 0");
    items.set(PROGRESS_KEY, "{not json");
    assert.equal(storedProgress("s-1", storage).nextSeq(), 0);
  });

  test("the write secret is made once per session, kept across reloads, and never shared by two sessions", () => {
    const storage = memoryStorage();
    const first = storedProgress("s-1", storage);
    assert.match(first.writeSecret, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(storedProgress("s-1", storage).writeSecret, first.writeSecret);
    assert.notEqual(storedProgress("s-2", storage).writeSecret, first.writeSecret);
    assert.notEqual(newWriteSecret(), newWriteSecret());
  });

  test("memory progress starts at seq 0", () => {
    assert.equal(memoryProgress().nextSeq(), 0);
  });
});
