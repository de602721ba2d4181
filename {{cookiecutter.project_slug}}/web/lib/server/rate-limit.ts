// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Requests per minute per client, in bounded memory: a token bucket per client key, at most
 * `maxClients` of them, plus one bucket for all clients together. When the table is full the
 * least recently seen client is forgotten (it starts again with a full bucket), so a flood of
 * made-up keys costs a bounded table and still meets the total limit.
 */
export interface RateLimiterOptions {
  perMinute: number;
  totalPerMinute: number;
  maxClients?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly clients = new Map<string, Bucket>();
  private readonly total: Bucket;
  private readonly maxClients: number;
  private readonly now: () => number;

  constructor(private readonly options: RateLimiterOptions) {
    this.maxClients = options.maxClients ?? 10_000;
    this.now = options.now ?? Date.now;
    this.total = { tokens: options.totalPerMinute, at: this.now() };
  }

  /** Takes one request from `client`'s and the total budget; false when either is spent. */
  allow(client: string): boolean {
    const now = this.now();
    let bucket = this.clients.get(client);
    if (bucket) {
      this.clients.delete(client); // re-inserted below: the Map's order is least recently seen first
    } else {
      bucket = { tokens: this.options.perMinute, at: now };
      if (this.clients.size >= this.maxClients) this.clients.delete(this.clients.keys().next().value as string);
    }
    this.clients.set(client, bucket);
    refill(bucket, this.options.perMinute, now);
    refill(this.total, this.options.totalPerMinute, now);
    if (bucket.tokens < 1 || this.total.tokens < 1) return false;
    bucket.tokens -= 1;
    this.total.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.clients.size;
  }
}

function refill(bucket: Bucket, perMinute: number, now: number): void {
  bucket.tokens = Math.min(perMinute, bucket.tokens + ((now - bucket.at) * perMinute) / 60_000);
  bucket.at = now;
}
