// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Which requests to the Next.js server are traced. The browser telemetry's own routes (/otel/*)
 * and the built-in replay's uploads (/api/replay/*) never are: a span for each export would be
 * noise, and a loop once anything traced them back; the backend follows, as the traceparent it
 * gets says "not sampled". Static files are not either. Nor is Next.js's own work outside any
 * request (start-up, "register instrumentation", "load route module", ...): each would be a
 * one-span root trace of no use in Tempo. Everything else follows the parent's decision, or the
 * ratio.
 */
import { type Attributes, type Context, type Link, SpanKind, trace } from "@opentelemetry/api";
import {
  ParentBasedSampler,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  TraceIdRatioBasedSampler,
} from "@opentelemetry/sdk-trace-base";

export const UNTRACED_PATHS = ["/otel/", "/api/replay/", "/_next/static/", "/_next/image", "/favicon.ico"];

/** True for a request target (path and query) that is never traced. */
export function isUntracedTarget(target: string): boolean {
  const path = target.split("?", 1)[0];
  return UNTRACED_PATHS.some((prefix) => path.startsWith(prefix));
}

/**
 * True for a span Next.js starts with no parent that is not a request: its tracer marks every
 * span it makes with `next.span_type`, and a request's span is the SERVER one.
 */
export function isFrameworkRoot(context: Context, spanKind: SpanKind, attributes: Attributes): boolean {
  return (
    spanKind !== SpanKind.SERVER &&
    typeof attributes["next.span_type"] === "string" &&
    trace.getSpanContext(context) === undefined
  );
}

/**
 * Drops SERVER spans of untraced targets and Next.js's root spans outside requests (and so
 * everything under them); asks `delegate` otherwise.
 */
export class RouteFilterSampler implements Sampler {
  constructor(private readonly delegate: Sampler) {}

  shouldSample(
    context: Context,
    traceId: string,
    spanName: string,
    spanKind: SpanKind,
    attributes: Attributes,
    links: Link[],
  ): SamplingResult {
    // Next.js names the request target `http.target` on its root span when it starts it.
    const target = attributes["http.target"] ?? attributes["url.path"];
    if (spanKind === SpanKind.SERVER && typeof target === "string" && isUntracedTarget(target)) {
      return { decision: SamplingDecision.NOT_RECORD };
    }
    if (isFrameworkRoot(context, spanKind, attributes)) return { decision: SamplingDecision.NOT_RECORD };
    return this.delegate.shouldSample(context, traceId, spanName, spanKind, attributes, links);
  }

  toString(): string {
    return `RouteFilterSampler(${this.delegate.toString()})`;
  }
}

/** Parent-based, `ratio` of new traces, never the untraced targets nor framework roots. */
export function serverSampler(ratio: number): Sampler {
  return new RouteFilterSampler(new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }));
}
