// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * What an upload's answer means (backend/app/replay/routes.py), and when to try again. The backend's
 * refusals carry a machine-readable `code` beside their one-line `detail`; the policy reads the code.
 */

/** What an upload's answer means for the chunk and the recording. */
export type Outcome = "sent" | "retry" | "drop" | "stop";

/**
 * Refusals after which nothing later in this session would fare better: the session is full, this
 * browser may not start more sessions or write into this one, or the replay storage is full.
 */
const STOPPING_CODES = new Set(["session_full", "too_many_sessions", "wrong_write_secret", "cross_origin", "storage_full"]);

/**
 * 2xx: stored (201) or already stored (200). A stopping code, 403, 404 (no built-in replay on this
 * API) and 507: recording stops. No answer (0), 408, 429 (too many chunks) and 5xx: try again
 * later. Any other 4xx (a bad or too large chunk): drop this chunk, go on with the next.
 */
export function outcomeOf(status: number, code = ""): Outcome {
  if (status >= 200 && status < 300) return "sent";
  if (STOPPING_CODES.has(code) || status === 403 || status === 404 || status === 507) return "stop";
  if (status === 0 || status === 408 || status === 429 || status >= 500) return "retry";
  return "drop";
}

/**
 * Milliseconds to wait before attempt `attempt + 1` (attempt counts from 1): exponential with
 * jitter between half and all of the step, capped; the server's Retry-After wins when given.
 */
export function retryDelay(
  attempt: number,
  limits: { retryBaseMs: number; retryMaxMs: number },
  random: () => number = Math.random,
  retryAfterMs?: number,
): number {
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs)) {
    return Math.min(limits.retryMaxMs, Math.max(0, retryAfterMs));
  }
  const step = Math.min(limits.retryMaxMs, limits.retryBaseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(step / 2 + (random() * step) / 2);
}
