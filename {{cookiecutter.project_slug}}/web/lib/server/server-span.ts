// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The Next.js SERVER span of the request a piece of code runs in. Route handlers run under
 * Next.js's internal spans ("executing api route", ...), so trace.getActiveSpan() is not the span
 * that describes the request; attributes that describe it (session.id) belong on its SERVER span.
 * ServerSpanTracker, a span processor, remembers each span's SERVER ancestor while it is open.
 */
import { type Context, type Span, SpanKind, trace } from "@opentelemetry/api";
import type { ReadableSpan, SpanProcessor } from "@opentelemetry/sdk-trace-base";

// Weak: a span that ended and was exported is collected with its entry, whatever happens. Global:
// Next.js bundles instrumentation.ts and each route apart, each with its own copy of this module.
const REGISTRY = Symbol.for("sage.server-spans");
const serverSpans: WeakMap<Span, Span> = ((globalThis as Record<symbol, unknown>)[REGISTRY] ??= new WeakMap()) as WeakMap<Span, Span>;

export class ServerSpanTracker implements SpanProcessor {
  onStart(span: Span & { kind?: SpanKind }, parentContext: Context): void {
    if (span.kind === SpanKind.SERVER) {
      serverSpans.set(span, span);
      return;
    }
    const parent = trace.getSpan(parentContext);
    const server = parent && serverSpans.get(parent);
    if (server) serverSpans.set(span, server);
  }

  onEnd(_span: ReadableSpan): void {}

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** The SERVER span above (or at) the active span; the active span when there is none. */
export function activeServerSpan(): Span | undefined {
  const active = trace.getActiveSpan();
  return (active && serverSpans.get(active)) ?? active;
}
