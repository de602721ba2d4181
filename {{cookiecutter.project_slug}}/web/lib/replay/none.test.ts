// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SESSION_KEY, tabSessionId } from "./none";

function memoryStorage(initial: Record<string, string> = {}) {
  const items = new Map(Object.entries(initial));
  return {
    items,
    getItem: (key: string) => items.get(key) ?? null,
    setItem: (key: string, value: string) => void items.set(key, value),
  };
}

test("a tab keeps its session id across reloads (sessionStorage)", () => {
  const storage = memoryStorage();
  const first = tabSessionId(storage);
  assert.match(first, /^[0-9a-f-]{36}$/);
  assert.equal(storage.items.get(SESSION_KEY), first);
  assert.equal(tabSessionId(storage), first);
});

test("a new tab (empty storage) gets a new id", () => {
  assert.notEqual(tabSessionId(memoryStorage()), tabSessionId(memoryStorage()));
});

test("a stored value that is not an id is replaced", () => {
  const storage = memoryStorage({ [SESSION_KEY]: "<script>" });
  assert.equal(tabSessionId(storage, () => "0f3e4c52-1111-4222-8333-944455556666"), "0f3e4c52-1111-4222-8333-944455556666");
});

test("without usable storage the id lives as long as the page", () => {
  const broken = {
    getItem: () => {
      throw new Error("SecurityError");
    },
    setItem: () => undefined,
  };
  assert.equal(tabSessionId(broken, () => "a-page-only-id"), "a-page-only-id");
  assert.equal(tabSessionId(undefined, () => "no-storage-id"), "no-storage-id");
});
