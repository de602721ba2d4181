// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import { randomId } from "../ids";
import type { ReplaySession, ReplayVendor, ReplayVendorName } from "./types";

/** sessionStorage key of the tab's session id. */
export const SESSION_KEY = "otel.session.id";
/** The header backend/app/telemetry/replay.py reads when no replay vendor names the session. */
export const SESSION_HEADER = "x-session-id";

const SESSION_ID = /^[A-Za-z0-9-]{8,128}$/;

type SessionStore = Pick<Storage, "getItem" | "setItem">;

/**
 * The tab's session id: kept in sessionStorage, so it survives reloads and navigation in that tab
 * and a new tab gets a new one. Without usable storage (privacy modes) it lives as long as the page.
 */
export function tabSessionId(
  storage: SessionStore | undefined = globalThis.sessionStorage,
  newId: () => string = randomId,
): string {
  try {
    const existing = storage?.getItem(SESSION_KEY);
    if (existing && SESSION_ID.test(existing)) return existing;
    const id = newId();
    storage?.setItem(SESSION_KEY, id);
    return id;
  } catch {
    return newId();
  }
}

/** A session without a recording: its id still groups a tab's traces and reaches the backend. */
export function tabSession(id: string = tabSessionId(), vendor: ReplayVendorName = "none"): ReplaySession {
  return {
    vendor,
    id: () => id,
    spanAttributes: () => ({ "session.id": id }),
    headers: () => ({ [SESSION_HEADER]: id }),
  };
}

/** No replay vendor: traces, a per-tab session id, and `x-session-id` on API requests. */
export const none: ReplayVendor = {
  name: "none",
  ownUrls: () => [],
  start: () => tabSession(),
};
