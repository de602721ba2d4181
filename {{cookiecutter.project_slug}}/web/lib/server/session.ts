// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The replay session a request to the Next.js server belongs to, as attributes of its root span:
 * the same rule, headers and attribute names as backend/app/telemetry/replay.py, so the Next.js
 * span and the backend span of one click name the same session. Only the vendor SESSION_REPLAY
 * names (lib/server/env.ts) is read, else our own `x-session-id`; other vendors' headers are not.
 */
import type { Attributes } from "@opentelemetry/api";
import type { ReplayVendorName } from "../observability";
import { replayVendor } from "./env";

const MAX_ID_LENGTH = 128;

type Header = (name: string) => string | undefined;

function clean(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  if (!trimmed || trimmed.length > MAX_ID_LENGTH || /[^\x20-\x7e]/.test(trimmed)) return undefined;
  return trimmed;
}

/** `x-highlight-request: <session>/<request>`, sent by highlight.run. */
function highlight(header: Header): Attributes {
  const value = header("x-highlight-request");
  if (value === undefined) return {};
  const [session, request] = value.split("/", 2);
  const attributes: Attributes = {};
  const sessionId = clean(session);
  const requestId = clean(request);
  if (sessionId) attributes["highlight.session_id"] = attributes["session.id"] = sessionId;
  if (requestId) attributes["highlight.trace_id"] = requestId;
  return attributes;
}

/** Sentry's replay id, in the W3C baggage it sends. */
function sentry(header: Header): Attributes {
  for (const member of (header("baggage") ?? "").split(",")) {
    const [key, value = ""] = member.trim().split("=", 2);
    const replayId = key === "sentry-replay_id" ? clean(value.split(";")[0]) : undefined;
    if (replayId) return { "sentry.replay_id": replayId, "session.id": replayId };
  }
  return {};
}

// Each vendor's reader of its own header (null: it sends only `x-session-id`). Typed by the
// registry in lib/observability.ts, so a vendor added there fails to compile until it is here.
const SESSION_READERS = {
  none: null,
  builtin: null,
  highlight,
  sentry,
} satisfies Record<ReplayVendorName, ((header: Header) => Attributes) | null>;

/**
 * `header(name)` returns a request header's value (lowercase name), or undefined. The vendor's
 * own header wins; without one, `x-session-id` names the session.
 */
export function sessionAttributes(header: Header, vendor: ReplayVendorName = replayVendor(process.env)): Attributes {
  const attributes = SESSION_READERS[vendor]?.(header) ?? {};
  const own = clean(header("x-session-id"));
  if (own && attributes["session.id"] === undefined) attributes["session.id"] = own;
  return attributes;
}
