// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { builtin, replayApiUrl, shouldRecord } from "./builtin";

test("chunks go to the same-origin API proxy under the session's id", () => {
  assert.equal(replayApiUrl("http://127.0.0.1:3000", "5f0c7c0e-3b9a"), "http://127.0.0.1:3000/api/replay/5f0c7c0e-3b9a");
});

test("the viewer's own pages are never recorded; other pages by the sample rate", () => {
  assert.equal(shouldRecord("s-1", "/replay/s-2", 1), false);
  assert.equal(shouldRecord("s-1", "/", 1), true);
  assert.equal(shouldRecord("s-1", "/", 0), false);
  assert.equal(shouldRecord("s-1", "/replayed", 1), true);
});

test("outside a browser the vendor starts no recorder, and still names the session", () => {
  const config = {
    highlight: { projectId: "", backendUrl: "", otlpEndpoint: "" },
    sentry: { dsn: "" },
    builtin: { sampleRate: 1, maxSessionBytes: 1000 },
  };
  const session = builtin.start(config, { serviceName: "web", environment: "test", apiPrefixes: [] });
  assert.equal(session?.vendor, "builtin");
  assert.deepEqual(session?.headers("00f067aa0ba902b7"), { "x-session-id": session?.id() });
  assert.deepEqual(builtin.ownUrls(config), []);
});
