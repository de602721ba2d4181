// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import { getClient, init, replayIntegration } from "@sentry/browser";
import type { ReplaySession, ReplayVendor } from "./types";

/** Sentry's replay id travels in W3C baggage; backend/app/telemetry/replay.py reads it there. */
export const BAGGAGE_HEADER = "baggage";

/** Sentry Session Replay, with error reporting. Sentry's own tracing stays off: ours is the one. */
export const sentry: ReplayVendor = {
  name: "sentry",
  ownUrls: ({ sentry: settings }) => (settings.dsn ? [dsnOrigin(settings.dsn)] : []),
  start({ sentry: settings }, context) {
    if (!settings.dsn) return null;
    const replay = replayIntegration({
      // Strict privacy: all text and inputs masked, media blocked. Unmask an element with the
      // `data-sentry-unmask` attribute.
      maskAllText: true,
      maskAllInputs: true,
      blockAllMedia: true,
    });
    if (!getClient()) {
      init({
        dsn: settings.dsn,
        environment: context.environment,
        integrations: [replay],
        replaysSessionSampleRate: 1.0,
        replaysOnErrorSampleRate: 1.0,
        // No sentry-trace/baggage of Sentry's own: traceparent comes from our propagator.
        tracePropagationTargets: [],
      });
    }
    return sentrySession(() => replay.getReplayId());
  },
};

export function sentrySession(replayId: () => string | undefined): ReplaySession {
  // Until Sentry has started recording there is no replay id yet; the session then has none.
  const id = () => replayId() ?? "";
  return {
    vendor: "sentry",
    id,
    spanAttributes: () => (id() ? { "session.id": id(), "sentry.replay_id": id() } : {}),
    headers: (): Record<string, string> => (id() ? { [BAGGAGE_HEADER]: `sentry-replay_id=${id()}` } : {}),
  };
}

function dsnOrigin(dsn: string): string {
  try {
    return new URL(dsn).origin;
  } catch {
    return dsn;
  }
}
