// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { getClient } from "@sentry/browser";
import { SESSION_REPLAY } from "./config";
import { isReplayVendorName, loadReplayVendor, REPLAY_VENDOR_NAMES } from "./observability";
import { highlightSession } from "./replay/highlight";
import { tabSession } from "./replay/none";
import { sentrySession } from "./replay/sentry";
import type { ReplayConfig, ReplayContext, ReplaySession, ReplayVendorName } from "./replay/types";
import { sessionAttributes } from "./server/session";

const UNCONFIGURED: ReplayConfig = {
  highlight: { projectId: "", backendUrl: "", otlpEndpoint: "" },
  sentry: { dsn: "" },
  builtin: { sampleRate: 1, maxSessionBytes: 20 * 1024 * 1024 },
};
const CONTEXT: ReplayContext = {
  serviceName: "web",
  environment: "test",
  apiPrefixes: ["https://app.example.com/api/"],
};
const BACKEND_REPLAY = new URL("../../backend/app/telemetry/replay.py", import.meta.url);

describe("the replay-provider switch", () => {
  for (const name of REPLAY_VENDOR_NAMES) {
    test(`"${name}" loads the ${name} vendor`, async () => {
      assert.equal((await loadReplayVendor(name)).name, name);
    });
  }

  test("an unknown vendor is an error, not a silent none", async () => {
    await assert.rejects(loadReplayVendor("fullstory" as ReplayVendorName), /unknown session replay vendor/);
  });

  test("the rendered default is a registered vendor", () => {
    assert.ok(isReplayVendorName(SESSION_REPLAY), SESSION_REPLAY);
  });

  test("the registry names the same vendors as the backend's VENDORS", { skip: !existsSync(BACKEND_REPLAY) }, () => {
    const registry = /^VENDORS: .*?= \{\n(.*?)^\}/ms.exec(readFileSync(BACKEND_REPLAY, "utf8"))?.[1] ?? "";
    const backend = [...registry.matchAll(/^ {4}"([a-z]+)":/gm)].map((match) => match[1]);
    assert.deepEqual([...backend].sort(), [...REPLAY_VENDOR_NAMES].sort());
  });

  test("a vendor without its project id or DSN starts nothing", async () => {
    assert.equal((await loadReplayVendor("highlight")).start(UNCONFIGURED, CONTEXT), null);
    assert.equal((await loadReplayVendor("sentry")).start(UNCONFIGURED, CONTEXT), null);
    assert.equal(getClient(), undefined, "Sentry.init was not called");
    assert.equal((await loadReplayVendor("none")).start(UNCONFIGURED, CONTEXT)?.vendor, "none");
    assert.equal((await loadReplayVendor("builtin")).start(UNCONFIGURED, CONTEXT)?.vendor, "builtin");
  });

  test("each vendor's own URLs are known, so they are never traced", async () => {
    const configured: ReplayConfig = {
      ...UNCONFIGURED,
      highlight: { projectId: "p1", backendUrl: "http://127.0.0.1:9/pub", otlpEndpoint: "http://127.0.0.1:9/otel" },
      sentry: { dsn: "https://key@o1.ingest.example.io/42" },
    };
    assert.deepEqual((await loadReplayVendor("none")).ownUrls(configured), []);
    assert.deepEqual((await loadReplayVendor("highlight")).ownUrls(configured), [
      "http://127.0.0.1:9/pub",
      "http://127.0.0.1:9/otel",
    ]);
    assert.deepEqual((await loadReplayVendor("highlight")).ownUrls(UNCONFIGURED), [
      "https://pub.highlight.io",
      "https://otel.highlight.io",
    ]);
    assert.deepEqual((await loadReplayVendor("sentry")).ownUrls(configured), ["https://o1.ingest.example.io"]);
  });
});

describe("every vendor's session reaches the backend as session.id", () => {
  const sessions: Record<ReplayVendorName, { session: ReplaySession; header: string; vendorKey: string | null }> = {
    none: { session: tabSession("5f0c7c0e-3b9a-4f7e-8d52-2f7c9c1a0b11"), header: "x-session-id", vendorKey: null },
    builtin: { session: tabSession("9d1c7c0e-3b9a-4f7e-8d52-2f7c9c1a0b22", "builtin"), header: "x-session-id", vendorKey: null },
    highlight: { session: highlightSession("hlSecure123"), header: "x-highlight-request", vendorKey: "highlight.session_id" },
    sentry: { session: sentrySession(() => "0123456789abcdef0123456789abcdef"), header: "baggage", vendorKey: "sentry.replay_id" },
  };
  for (const [name, { session, header, vendorKey }] of Object.entries(sessions)) {
    test(`${name}: its header, read as the backend reads it, names the span's session`, () => {
      const headers = session.headers("00f067aa0ba902b7");
      assert.deepEqual(Object.keys(headers), [header]);
      const parsed = sessionAttributes((key) => headers[key], name as ReplayVendorName);
      assert.equal(parsed["session.id"], session.id());
      assert.equal(session.spanAttributes()["session.id"], session.id());
      if (vendorKey) assert.equal(session.spanAttributes()[vendorKey], session.id());
    });
  }

  test("highlight's header carries the request id after the session", () => {
    assert.equal(highlightSession("abc").headers("00f067aa0ba902b7")["x-highlight-request"], "abc/00f067aa0ba902b7");
  });

  test("sentry sends nothing until the replay has an id", () => {
    const session = sentrySession(() => undefined);
    assert.deepEqual(session.headers("00f067aa0ba902b7"), {});
    assert.deepEqual(session.spanAttributes(), {});
  });
});
