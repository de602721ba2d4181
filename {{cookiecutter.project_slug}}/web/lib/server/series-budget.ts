// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * New series per client per window, in bounded memory. Every distinct span-metrics key or metric
 * point (lib/server/otlp-policy.ts) is a series in Prometheus once it arrives, and each one costs
 * the TSDB for hours: a client may make `maxSeries` distinct ones per `windowMs`, then only repeat
 * those until the window turns. Keys are kept as 64-bit hashes (never the values a client chose),
 * at most `maxClients` clients, the least recently seen forgotten first.
 */
import { createHash } from "node:crypto";

export interface SeriesBudgetOptions {
  maxSeries: number;
  windowMs: number;
  maxClients?: number;
  now?: () => number;
}

interface Window {
  start: number;
  seen: Set<string>;
}

export class SeriesBudget {
  private readonly clients = new Map<string, Window>();
  private readonly maxClients: number;
  private readonly now: () => number;

  constructor(private readonly options: SeriesBudgetOptions) {
    this.maxClients = options.maxClients ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** True when `key` is a series `client` already made in this window, or a new one within its budget. */
  admit(client: string, key: string): boolean {
    const now = this.now();
    let window = this.clients.get(client);
    if (window) this.clients.delete(client); // re-inserted below: least recently seen first
    if (!window || now - window.start >= this.options.windowMs) window = { start: now, seen: new Set() };
    if (!this.clients.has(client) && this.clients.size >= this.maxClients) {
      this.clients.delete(this.clients.keys().next().value as string);
    }
    this.clients.set(client, window);
    const hash = createHash("sha256").update(key).digest("base64").slice(0, 11);
    if (window.seen.has(hash)) return true;
    if (window.seen.size >= this.options.maxSeries) return false;
    window.seen.add(hash);
    return true;
  }

  get size(): number {
    return this.clients.size;
  }
}
