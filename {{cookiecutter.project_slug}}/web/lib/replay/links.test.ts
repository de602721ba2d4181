// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { grafanaSessionUrl, grafanaTraceUrl, sessionRange } from "./links";

const TRACE = "0af7651916cd43dd8448eb211c80319c";

function pane(url: string) {
  const parsed = new URL(url);
  assert.ok(parsed.pathname.endsWith("/explore"), parsed.pathname);
  assert.equal(parsed.searchParams.get("schemaVersion"), "1");
  return Object.values(JSON.parse(parsed.searchParams.get("panes") ?? "{}"))[0] as {
    datasource: string;
    queries: { datasource: { uid: string }; queryType: string; query: string }[];
    range: { from: string; to: string };
  };
}

test("a trace link opens Grafana Explore on the Tempo data source (uid tempo) with the trace id", () => {
  const url = grafanaTraceUrl("http://localhost:3001/", TRACE, { from: 1000, to: 2000 });
  assert.ok(url.startsWith("http://localhost:3001/explore?"));
  const explore = pane(url);
  assert.equal(explore.datasource, "tempo");
  assert.equal(explore.queries[0].datasource.uid, "tempo");
  assert.equal(explore.queries[0].query, TRACE);
  assert.deepEqual(explore.range, { from: "1000", to: "2000" });
  assert.deepEqual(pane(grafanaTraceUrl("https://grafana.example.com/sub", TRACE)).range, { from: "now-1h", to: "now" });
  assert.ok(grafanaTraceUrl("https://grafana.example.com/sub", TRACE).startsWith("https://grafana.example.com/sub/explore?"));
});

test("only a trace id makes a trace link", () => {
  assert.throws(() => grafanaTraceUrl("http://localhost:3001", "x\"}"), /not a trace id/);
});

test("the session link searches TraceQL for the session.id span attribute", () => {
  assert.equal(pane(grafanaSessionUrl("http://localhost:3001", "s-1234")).queries[0].query, '{ span.session.id = "s-1234" }');
});

test("the session's range is its first and last upload, widened", () => {
  assert.deepEqual(sessionRange("2026-11-01T10:00:00+00:00", "2026-11-01T10:05:00+00:00", 1000), {
    from: Date.UTC(2026, 10, 1, 10, 0, 0) - 1000,
    to: Date.UTC(2026, 10, 1, 10, 5, 0) + 1000,
  });
  assert.equal(sessionRange("soon", "later"), undefined);
});
