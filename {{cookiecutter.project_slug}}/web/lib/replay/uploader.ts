// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The built-in replay's uploader, free of rrweb and the DOM so that node tests cover it: how events
 * become chunks, the byte budget, one upload at a time, retries and backoff (lib/replay/policy.ts).
 * lib/replay/recorder.ts wires it to rrweb, lib/replay/send.ts and the page's lifecycle.
 *
 * A chunk is what backend/app/replay/routes.py ingests: `{"seq", "events", "trace_ids"}`, one POST to
 * /api/replay/<session id>. Chunks leave one at a time, in order; a failed one is retried with
 * backoff a few times, then dropped. Nothing here ever throws at the page or waits on it.
 */
import { outcomeOf, type Outcome, retryDelay } from "./policy";
import { memoryProgress, type SessionProgress } from "./progress";

export interface UploadLimits {
  /** The first chunk (the page's full snapshot) leaves this soon: a tab killed early still has its page. */
  firstFlushMs: number;
  /** Then a chunk leaves at least this often while events come in. */
  flushIntervalMs: number;
  /** ... or as soon as it holds this many events ... */
  maxChunkEvents: number;
  /** ... or this many characters of JSON (the backend takes 1 MiB of JSON, REPLAY_MAX_CHUNK_BYTES). */
  maxChunkChars: number;
  /** Chunks waiting behind a failing one; past this, new chunks are dropped. */
  maxQueuedChunks: number;
  /** Attempts per chunk (the first one included) before it is dropped. */
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Bytes of JSON, uncompressed, as the backend counts them (REPLAY_MAX_SESSION_BYTES): recording stops past this. */
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

/** The upload body, from events already serialized one by one (no second JSON.stringify). */
export function encodeChunk(seq: number, events: readonly string[], traceIds: readonly string[]): string {
  return `{"seq":${seq},"events":[${events.join(",")}],"trace_ids":${JSON.stringify(traceIds)}}`;
}

export interface Chunk {
  seq: number;
  body: string;
  events: number;
}

/** How one upload went: the HTTP status (0: no answer), the chunk's bytes of JSON, the refusal's code. */
export interface Delivery {
  status: number;
  /** Uncompressed JSON bytes, what the backend's session budget counts (whatever went on the wire). */
  bytes: number;
  /** The backend's machine-readable refusal code (`session_full`, `chunk_too_large`, ...). */
  code?: string;
  retryAfterMs?: number;
}

/** Sends one chunk. `leaving`: the page is going away, send it now, as it is, in a request that outlives the page. */
export type Send = (chunk: Chunk, options: { leaving: boolean }) => Promise<Delivery>;

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
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
    const outcome = outcomeOf(delivery.status, delivery.code);
    if (outcome === "sent") {
      this.sent++;
      if (this.progress.addBytes(delivery.bytes) >= this.limits.maxSessionBytes) this.stop("budget");
    } else if (outcome === "stop") {
      this.stop(delivery.code === "session_full" ? "budget" : "refused");
    }
    return outcome;
  }
}
