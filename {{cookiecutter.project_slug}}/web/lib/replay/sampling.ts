// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/** Which sessions the built-in replay records: a share of them, decided by the session id. */

/** FNV-1a of `text`, as a number in [0, 1): the same session always lands at the same point. */
export function hashUnit(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash / 0x1_0000_0000;
}

/**
 * Whether a session is recorded, for a share `rate` of sessions (REPLAY_SAMPLE_RATE). Decided by
 * the session id, so a tab keeps its answer across reloads instead of leaving holes in a replay.
 */
export function sessionSampled(sessionId: string, rate: number): boolean {
  if (!(rate > 0)) return false;
  if (rate >= 1) return true;
  return hashUnit(sessionId) < rate;
}
