// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Session replay, browser side: the registry of replay vendors. The server's SESSION_REPLAY
 * (lib/server/env.ts, default: the project's rendered answer, lib/config.ts) picks one at run time
 * and the browser reads it from its TelemetryConfig; the backend's twin is
 * backend/app/telemetry/replay.py, which reads the same variable.
 *
 * Every vendor is loaded after hydration, in a chunk of its own, and only the chosen one is
 * ever downloaded. Each one hands the browser tracing (lib/otel-web.ts) a ReplaySession whose id
 * goes on every browser span as `session.id` and to the backend in a header, so a trace leads to
 * its replay and a replay to its traces.
 *
 *   "none"       no recording; a per-tab session id, sent as `x-session-id`
 *   "highlight"  highlight.run; HIGHLIGHT_PROJECT_ID, HIGHLIGHT_BACKEND_URL, HIGHLIGHT_OTLP_ENDPOINT;
 *                sends `x-highlight-request: <session>/<request>`
 *   "sentry"     @sentry/browser Session Replay; SENTRY_DSN; sends `baggage: sentry-replay_id=<id>`
 *   "builtin"    rrweb, recorded here and stored by the backend (backend/app/replay/),
 *                played by the viewer at /replay/<session id>; REPLAY_SAMPLE_RATE,
 *                REPLAY_MAX_SESSION_BYTES; the per-tab session id, sent as `x-session-id`
 *
 * A vendor that is not configured (no project id or DSN) falls back to "none", so traces still
 * carry a session id. A new vendor is one entry here (and its file in lib/replay/), one in the
 * backend's VENDORS, and its choice in the template's cookiecutter.json.
 */
import type { ReplayVendor } from "./replay/types";

export const REPLAY_VENDORS = {
  none: async () => (await import("./replay/none")).none,
  highlight: async () => (await import("./replay/highlight")).highlight,
  sentry: async () => (await import("./replay/sentry")).sentry,
  builtin: async () => (await import("./replay/builtin")).builtin,
} satisfies Record<string, () => Promise<ReplayVendor>>;

export type ReplayVendorName = keyof typeof REPLAY_VENDORS;

export const REPLAY_VENDOR_NAMES = Object.keys(REPLAY_VENDORS) as ReplayVendorName[];

export function isReplayVendorName(name: unknown): name is ReplayVendorName {
  return typeof name === "string" && Object.hasOwn(REPLAY_VENDORS, name);
}

export async function loadReplayVendor(name: ReplayVendorName): Promise<ReplayVendor> {
  if (!isReplayVendorName(name)) {
    throw new Error(`unknown session replay vendor ${JSON.stringify(name)} (${REPLAY_VENDOR_NAMES.join(", ")})`);
  }
  return REPLAY_VENDORS[name]();
}
