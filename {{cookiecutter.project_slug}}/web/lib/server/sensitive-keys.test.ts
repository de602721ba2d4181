// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

// The backend and the web app are built as separate images (docker-compose.yaml: `build: backend`,
// `build: web`), so neither can read a file of the other at run time: the web app keeps a copy.
test("lib/server/sensitive_keys.json is a byte-equal copy of the backend's", () => {
  const source = new URL("../../../backend/app/telemetry/sensitive_keys.json", import.meta.url);
  const copy = new URL("./sensitive_keys.json", import.meta.url);
  assert.ok(
    readFileSync(copy).equals(readFileSync(source)),
    "run: cp backend/app/telemetry/sensitive_keys.json web/lib/server/sensitive_keys.json",
  );
});
