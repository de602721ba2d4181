// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import { tabSession, tabSessionId } from "./none";
import type { ReplayConfig, ReplayContext, ReplaySession, ReplayVendor } from "./types";
import { sessionSampled } from "./sampling";

/** backend/app/replay/routes.py, reached through the web app's same-origin /api proxy. */
export const REPLAY_API_PATH = "/api/replay/";
/** Pages never recorded: the replay viewer (web/app/replay), where an operator watches a replay. */
export const UNRECORDED_PATHS = ["/replay/"];

/** Where a session's chunks are uploaded (and, with the operator token, read back). */
export function replayApiUrl(origin: string, sessionId: string): string {
  return new URL(`${REPLAY_API_PATH}${encodeURIComponent(sessionId)}`, origin).href;
}

/** Whether this page of this session is recorded: a share `sampleRate` of sessions, never the viewer. */
export function shouldRecord(sessionId: string, pathname: string, sampleRate: number): boolean {
  if (UNRECORDED_PATHS.some((path) => pathname.startsWith(path))) return false;
  return sessionSampled(sessionId, sampleRate);
}

/**
 * The built-in replay: rrweb in the browser (lib/replay/recorder.ts, a chunk of its own, loaded
 * only for a recorded session), stored by the backend (backend/app/replay/) and played by
 * the web app's viewer (app/replay/[sessionId]). The session id is the tab's, sent as
 * `x-session-id` like the "none" vendor's, so every trace of the tab names the replay.
 */
export const builtin: ReplayVendor = {
  name: "builtin",
  // The uploads are never traced and never carry trace headers: exporting makes no spans to export.
  ownUrls: () => (globalThis.location ? [new URL(REPLAY_API_PATH, globalThis.location.origin).href] : []),
  start(config: ReplayConfig, context: ReplayContext): ReplaySession {
    const id = tabSessionId();
    const settings = config.builtin ?? { sampleRate: 1, maxSessionBytes: undefined };
    if (typeof window !== "undefined") {
      const root = document.documentElement;
      if (shouldRecord(id, window.location.pathname, settings.sampleRate)) {
        import("./recorder")
          .then(({ startRecording }) =>
            startRecording({
              sessionId: id,
              origin: window.location.origin,
              apiPrefixes: context.apiPrefixes,
              maxSessionBytes: settings.maxSessionBytes,
            }),
          )
          .catch((error: unknown) => {
            // The recorder's chunk did not load (offline, a new deploy): the page goes on unrecorded.
            root.dataset.replay = "failed";
            console.warn("session replay did not start:", error);
          });
      } else {
        root.dataset.replay = "off";
      }
    }
    return tabSession(id, "builtin");
  },
};
