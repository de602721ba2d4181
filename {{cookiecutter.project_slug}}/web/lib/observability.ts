// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Session replay: the one file to edit to swap the vendor (with its backend twin,
 * backend/app/telemetry/replay.py, whose PROVIDER names the same vendor).
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
 *   "builtin"    rrweb, recorded here and stored by the backend (backend/app/api/replay.py),
 *                played by the viewer at /replay/<session id>; REPLAY_SAMPLE_RATE,
 *                REPLAY_MAX_SESSION_BYTES; the per-tab session id, sent as `x-session-id`
 *
 * A vendor that is not configured (no project id or DSN) falls back to "none", so traces still
 * carry a session id. To drop a vendor's package from package.json, delete its case below and its
 * file in lib/replay/ too.
 */
import type { ReplayVendor, ReplayVendorName } from "./replay/types";

export const REPLAY_VENDOR: ReplayVendorName = "{{ cookiecutter.session_replay }}";

export async function loadReplayVendor(name: ReplayVendorName = REPLAY_VENDOR): Promise<ReplayVendor> {
  switch (name) {
    case "highlight":
      return (await import("./replay/highlight")).highlight;
    case "sentry":
      return (await import("./replay/sentry")).sentry;
    case "none":
      return (await import("./replay/none")).none;
    case "builtin":
      return (await import("./replay/builtin")).builtin;
    default:
      throw new Error(`unknown session replay vendor ${JSON.stringify(name)} (none, highlight, sentry or builtin)`);
  }
}
