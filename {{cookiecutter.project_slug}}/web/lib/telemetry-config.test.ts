// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { readPageConfig } from "./telemetry-config";

const page = (content: string | null) => ({
  querySelector: (selector: string) =>
    selector === 'meta[name="telemetry-config"]' && content !== null ? { getAttribute: () => content } : null,
});

test("the page's config is read from its meta tag", () => {
  assert.deepEqual(readPageConfig(page('{"enabled":false}') as never), { enabled: false });
});

test("a missing, malformed or foreign config is no config", () => {
  assert.equal(readPageConfig(page(null) as never), undefined);
  assert.equal(readPageConfig(page("{not json") as never), undefined);
  assert.equal(readPageConfig(page('"enabled"') as never), undefined);
  assert.equal(readPageConfig(page("null") as never), undefined);
});
