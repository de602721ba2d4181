/**
 * The built-in replay's upload rules, free of rrweb and the DOM so that node tests cover them:
 * which sessions are recorded, how events become chunks, the byte budget, retries and backoff.
 * lib/replay/recorder.ts wires them to rrweb, fetch and the page's lifecycle.
 *
 * A chunk is what backend/app/api/replay.py ingests: `{"seq", "events", "trace_ids"}`, one POST to
 * /api/replay/<session id>. Chunks leave one at a time, in order; a failed one is retried with
 * backoff a few times, then dropped. Nothing here ever throws at the page or waits on it.
 */

export interface UploadLimits {
  /** The first chunk (the page's full snapshot) leaves this soon: a tab killed early still has its page. */
  firstFlushMs: number;
  /** Then a chunk leaves at least this often while events come in. */
  flushIntervalMs: number;
  /** ... or as soon as it holds this many events ... */
  maxChunkEvents: number;
  /** ... or this many characters of JSON (the backend takes 512 KiB as sent, gzip or not). */
  maxChunkChars: number;
  /** Chunks waiting behind a failing one; past this, new chunks are dropped. */
  maxQueuedChunks: number;
  /** Attempts per chunk (the first one included) before it is dropped. */
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Bytes as sent (REPLAY_MAX_SESSION_BYTES): recording of the session stops past this. */
  maxSessionBytes: number;
  /** The backend takes at most 500 trace ids per chunk. */
  maxTraceIdsPerChunk: number;
}

export const DEFAULT_LIMITS: UploadLimits = {
  firstFlushMs: 1_000,
  flushIntervalMs: 5_000,
  maxChunkEvents: 500,
  maxChunkChars: 256 * 1024,
  maxQueuedChunks: 20,
  maxAttempts: 4,
  retryBaseMs: 1_000,
  retryMaxMs: 30_000,
  maxSessionBytes: 20 * 1024 * 1024,
  maxTraceIdsPerChunk: 500,
};

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

/**
 * Milliseconds to wait before attempt `attempt + 1` (attempt counts from 1): exponential with
 * jitter between half and all of the step, capped; the server's Retry-After wins when given.
 */
export function retryDelay(
  attempt: number,
  limits: Pick<UploadLimits, "retryBaseMs" | "retryMaxMs"> = DEFAULT_LIMITS,
  random: () => number = Math.random,
  retryAfterMs?: number,
): number {
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs)) {
    return Math.min(limits.retryMaxMs, Math.max(0, retryAfterMs));
  }
  const step = Math.min(limits.retryMaxMs, limits.retryBaseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(step / 2 + (random() * step) / 2);
}

/** What an upload's answer means for the chunk and the recording. */
export type Outcome = "sent" | "retry" | "drop" | "stop";

/**
 * 2xx: stored (201) or already stored (200). No answer (0), 408, 429 and 5xx: try again later.
 * 413 for the session (not the chunk), 403 (not this origin) and 404 (no built-in replay on this
 * API): nothing later would fare better, so recording stops. Any other 4xx: drop this chunk.
 */
export function outcomeOf(status: number, detail = ""): Outcome {
  if (status >= 200 && status < 300) return "sent";
  if (status === 0 || status === 408 || status === 429 || status >= 500) return "retry";
  if (status === 403 || status === 404) return "stop";
  // backend/app/api/replay.py: "session is over N bytes; ..." as opposed to "chunk is ...".
  if (status === 413 && /^session\b/.test(detail)) return "stop";
  return "drop";
}

/** The trace id in a `traceresponse: 00-<trace>-<span>-<flags>` header, when that trace was sampled. */
export function parseTraceResponse(value: string | null | undefined): string | undefined {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec((value ?? "").trim());
  if (!match || /^0+$/.test(match[1])) return undefined;
  // An unsampled trace was never stored: a link to it would lead nowhere.
  return (Number.parseInt(match[3], 16) & 1) === 1 ? match[1] : undefined;
}

/** The upload body, from events already serialized one by one (no second JSON.stringify). */
export function encodeChunk(seq: number, events: readonly string[], traceIds: readonly string[]): string {
  return `{"seq":${seq},"events":[${events.join(",")}],"trace_ids":${JSON.stringify(traceIds)}}`;
}

export interface Chunk {
  seq: number;
  body: string;
  events: number;
}

/** How one upload went: the HTTP status (0: no answer), the bytes put on the wire. */
export interface Delivery {
  status: number;
  bytes: number;
  detail?: string;
  retryAfterMs?: number;
}

/** Sends one chunk. `leaving`: the page is going away, send it now, as it is, in a request that outlives the page. */
export type Send = (chunk: Chunk, options: { leaving: boolean }) => Promise<Delivery>;

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** What a tab remembers across reloads (sessionStorage): the next seq, bytes sent, and whether the session is full. */
export interface SessionProgress {
  nextSeq(): number;
  addBytes(bytes: number): number;
  readonly bytes: number;
  readonly full: boolean;
  markFull(): void;
}

type Store = Pick<Storage, "getItem" | "setItem">;

/** sessionStorage key of SessionProgress, next to the session id (lib/replay/none.ts). */
export const PROGRESS_KEY = "otel.replay.progress";

/**
 * SessionProgress kept in `storage` under the session's id. A reload goes on with the next seq, so
 * its chunks are not taken for resent ones (the backend keeps one chunk per session and seq).
 */
export function storedProgress(sessionId: string, storage: Store | undefined = globalThis.sessionStorage): SessionProgress {
  let state = { session: sessionId, seq: 0, bytes: 0, full: false };
  try {
    const saved = JSON.parse(storage?.getItem(PROGRESS_KEY) ?? "null");
    if (saved?.session === sessionId && Number.isInteger(saved.seq) && Number.isFinite(saved.bytes)) {
      state = { session: sessionId, seq: saved.seq, bytes: saved.bytes, full: saved.full === true };
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
  };
}

export function memoryProgress(): SessionProgress {
  return storedProgress("memory", undefined);
}

interface Entry {
  chunk: Chunk;
  attempts: number;
}

export type StopReason = "budget" | "refused" | "stopped";

export interface UploaderOptions {
  send: Send;
  progress?: SessionProgress;
  limits?: Partial<UploadLimits>;
  timers?: Timers;
  random?: () => number;
  /** Called once when the uploader stops for good; the recorder stops recording. */
  onStop?: (reason: StopReason) => void;
}

/** Batches serialized events into chunks and uploads them; see the module comment. */
export class ReplayUploader {
  readonly limits: UploadLimits;
  /** Chunks given up on (failed too often, refused, or no room in the queue). */
  dropped = 0;
  sent = 0;
  private events: string[] = [];
  private chars = 0;
  private traceIds: string[] = [];
  private queue: Entry[] = [];
  private inFlight = false;
  private retryTimer: unknown;
  private flushTimer: unknown;
  private stopReason: StopReason | undefined;
  private lastRetryAfter: number | undefined;
  private readonly send: Send;
  private readonly progress: SessionProgress;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly onStop: (reason: StopReason) => void;

  constructor(options: UploaderOptions) {
    this.send = options.send;
    this.progress = options.progress ?? memoryProgress();
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.timers = options.timers ?? {
      setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
      clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
    };
    this.random = options.random ?? Math.random;
    this.onStop = options.onStop ?? (() => undefined);
    if (this.progress.full || this.progress.bytes >= this.limits.maxSessionBytes) this.stop("budget");
  }

  get stopped(): StopReason | undefined {
    return this.stopReason;
  }

  /** Pending work: events not yet in a chunk, and chunks not yet acknowledged. */
  get pending(): { events: number; chunks: number } {
    return { events: this.events.length, chunks: this.queue.length };
  }

  /** Starts the periodic flush. */
  start(): void {
    if (this.stopReason || this.flushTimer !== undefined) return;
    const tick = () => {
      this.flush();
      this.flushTimer = this.stopReason ? undefined : this.timers.setTimeout(tick, this.limits.flushIntervalMs);
    };
    this.flushTimer = this.timers.setTimeout(tick, Math.min(this.limits.firstFlushMs, this.limits.flushIntervalMs));
  }

  /** One rrweb event, already JSON. A full chunk leaves at once. */
  add(eventJson: string): void {
    if (this.stopReason) return;
    this.events.push(eventJson);
    this.chars += eventJson.length + 1;
    if (this.events.length >= this.limits.maxChunkEvents || this.chars >= this.limits.maxChunkChars) this.flush();
  }

  /** A trace the page took part in; it goes with the next chunk. */
  addTraceId(traceId: string): void {
    if (this.stopReason || this.traceIds.includes(traceId)) return;
    if (this.traceIds.length < this.limits.maxTraceIdsPerChunk) this.traceIds.push(traceId);
  }

  /** Cuts a chunk of what has been recorded and starts uploading it. */
  flush(): void {
    this.cut();
    this.pump();
  }

  /**
   * The page is going away (pagehide): every chunk not yet sent leaves now, as it is, in
   * requests that outlive the page. Recording goes on if the page comes back (back/forward cache).
   */
  leave(): void {
    this.cut();
    if (this.retryTimer !== undefined) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const waiting = this.inFlight ? this.queue.slice(1) : this.queue;
    this.queue = this.inFlight ? this.queue.slice(0, 1) : [];
    for (const entry of waiting) {
      void this.attempt(entry, true).then((outcome) => {
        if (outcome !== "sent") this.dropped++;
      });
    }
  }

  /** Stops for good: nothing more is recorded or sent. */
  stop(reason: StopReason = "stopped"): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.events = [];
    this.traceIds = [];
    this.queue = [];
    for (const timer of [this.flushTimer, this.retryTimer]) if (timer !== undefined) this.timers.clearTimeout(timer);
    this.flushTimer = this.retryTimer = undefined;
    if (reason === "budget") this.progress.markFull();
    this.onStop(reason);
  }

  private cut(): void {
    if (this.stopReason || this.events.length === 0) return;
    const seq = this.progress.nextSeq();
    const chunk: Chunk = { seq, body: encodeChunk(seq, this.events, this.traceIds), events: this.events.length };
    this.events = [];
    this.chars = 0;
    this.traceIds = [];
    if (this.queue.length >= this.limits.maxQueuedChunks) {
      this.dropped++;
      return;
    }
    this.queue.push({ chunk, attempts: 0 });
  }

  private pump(): void {
    if (this.stopReason || this.inFlight || this.retryTimer !== undefined) return;
    const entry = this.queue[0];
    if (!entry) return;
    this.inFlight = true;
    void this.attempt(entry, false).then((outcome) => {
      this.inFlight = false;
      if (this.stopReason) return;
      if (outcome === "retry" && entry.attempts < this.limits.maxAttempts) {
        this.retryTimer = this.timers.setTimeout(() => {
          this.retryTimer = undefined;
          this.pump();
        }, retryDelay(entry.attempts, this.limits, this.random, this.lastRetryAfter));
        return;
      }
      if (this.queue[0] === entry) this.queue.shift();
      if (outcome !== "sent") this.dropped++;
      this.pump();
    });
  }

  private async attempt(entry: Entry, leaving: boolean): Promise<Outcome> {
    entry.attempts++;
    let delivery: Delivery;
    try {
      delivery = await this.send(entry.chunk, { leaving });
    } catch {
      delivery = { status: 0, bytes: 0 };
    }
    this.lastRetryAfter = delivery.retryAfterMs;
    const outcome = outcomeOf(delivery.status, delivery.detail);
    if (outcome === "sent") {
      this.sent++;
      if (this.progress.addBytes(delivery.bytes) >= this.limits.maxSessionBytes) this.stop("budget");
    } else if (outcome === "stop") {
      this.stop(delivery.status === 413 ? "budget" : "refused");
    }
    return outcome;
  }
}

interface FetchTarget {
  fetch: typeof fetch;
}

/**
 * Calls `onTraceId` with the sampled trace id of every response whose URL `watched` accepts (the
 * backend sends `traceresponse` on every answer). It wraps `target.fetch`, outside the tracing
 * instrumentation's own wrapper, and never changes a request or its response. Returns an undo.
 */
export function watchTraceResponses(
  onTraceId: (traceId: string) => void,
  watched: (url: string) => boolean,
  target: FetchTarget = globalThis,
): () => void {
  const original = target.fetch;
  const wrapped: typeof fetch = async function (this: unknown, ...args: Parameters<typeof fetch>) {
    const response = await original.apply(this ?? target, args);
    try {
      if (response.url && watched(response.url)) {
        const traceId = parseTraceResponse(response.headers.get("traceresponse"));
        if (traceId) onTraceId(traceId);
      }
    } catch {
      // a response we cannot read is the page's business, not the recorder's
    }
    return response;
  };
  target.fetch = wrapped;
  return () => {
    if (target.fetch === wrapped) target.fetch = original;
  };
}
