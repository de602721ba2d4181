// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * What a tab remembers about its recorded session across reloads (sessionStorage): the next seq,
 * the bytes sent, whether the session is full, and the session's write secret.
 */

/** The tab's recording state; see the module comment. */
export interface SessionProgress {
  nextSeq(): number;
  addBytes(bytes: number): number;
  readonly bytes: number;
  readonly full: boolean;
  markFull(): void;
  /**
   * Sent with every chunk (X-Replay-Write-Secret): the backend binds the session to it on the first
   * chunk, so only this tab can append. Made here, before any upload, so that retries and the
   * chunks a leaving page sends at once all carry it.
   */
  readonly writeSecret: string;
}

type Store = Pick<Storage, "getItem" | "setItem">;

/** sessionStorage key of SessionProgress, next to the session id (lib/replay/none.ts). */
export const PROGRESS_KEY = "otel.replay.progress";
const SECRET = /^[A-Za-z0-9_-]{32,128}$/;

/** 32 random bytes, base64url: what the backend accepts as a write secret. */
export function newWriteSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * SessionProgress kept in `storage` under the session's id. A reload goes on with the next seq, so
 * its chunks are not taken for resent ones (the backend keeps one chunk per session and seq), and
 * with the same write secret.
 */
export function storedProgress(sessionId: string, storage: Store | undefined = globalThis.sessionStorage): SessionProgress {
  let state = { session: sessionId, seq: 0, bytes: 0, full: false, secret: newWriteSecret() };
  try {
    const saved = JSON.parse(storage?.getItem(PROGRESS_KEY) ?? "null");
    if (saved?.session === sessionId && Number.isInteger(saved.seq) && Number.isFinite(saved.bytes) && SECRET.test(saved.secret)) {
      state = { session: sessionId, seq: saved.seq, bytes: saved.bytes, full: saved.full === true, secret: saved.secret };
    }
  } catch {
    // unreadable: start over
  }
  const save = () => {
    try {
      storage?.setItem(PROGRESS_KEY, JSON.stringify(state));
    } catch {
      // storage full or forbidden: the progress lives as long as the page
    }
  };
  save();
  return {
    nextSeq() {
      const seq = state.seq++;
      save();
      return seq;
    },
    addBytes(bytes: number) {
      state.bytes += bytes;
      save();
      return state.bytes;
    },
    get bytes() {
      return state.bytes;
    },
    get full() {
      return state.full;
    },
    markFull() {
      state.full = true;
      save();
    },
    get writeSecret() {
      return state.secret;
    },
  };
}

export function memoryProgress(): SessionProgress {
  return storedProgress("memory", undefined);
}
