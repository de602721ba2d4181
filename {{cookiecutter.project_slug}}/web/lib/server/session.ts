// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The replay session a request to the Next.js server belongs to, as attributes of its root span:
 * the same headers and attribute names as backend/app/telemetry/replay.py, so the Next.js span
 * and the backend span of one click name the same session.
 */
import type { Attributes } from "@opentelemetry/api";

const MAX_ID_LENGTH = 128;

function clean(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  if (!trimmed || trimmed.length > MAX_ID_LENGTH || /[^\x20-\x7e]/.test(trimmed)) return undefined;
  return trimmed;
}

/** `header(name)` returns a request header's value (lowercase name), or undefined. */
export function sessionAttributes(header: (name: string) => string | undefined): Attributes {
  const attributes: Attributes = {};
  const highlight = header("x-highlight-request");
  if (highlight !== undefined) {
    const [session, request] = highlight.split("/", 2);
    const sessionId = clean(session);
    const requestId = clean(request);
    if (sessionId) attributes["highlight.session_id"] = attributes["session.id"] = sessionId;
    if (requestId) attributes["highlight.trace_id"] = requestId;
  }
  const own = clean(header("x-session-id"));
  if (own && attributes["session.id"] === undefined) attributes["session.id"] = own;
  for (const member of (header("baggage") ?? "").split(",")) {
    const [key, value = ""] = member.trim().split("=", 2);
    const replayId = key === "sentry-replay_id" ? clean(value.split(";")[0]) : undefined;
    if (replayId) {
      attributes["sentry.replay_id"] = replayId;
      if (attributes["session.id"] === undefined) attributes["session.id"] = replayId;
    }
  }
  return attributes;
}
