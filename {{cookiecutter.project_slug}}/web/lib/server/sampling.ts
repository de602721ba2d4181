/**
 * Which requests to the Next.js server are traced. The browser telemetry's own routes (/otel/*)
 * and the built-in replay's uploads (/api/replay/*) never are: a span for each export would be
 * noise, and a loop once anything traced them back; the backend follows, as the traceparent it
 * gets says "not sampled". Static files are not either. Everything else follows the parent's
 * decision, or the ratio.
 */
import { type Attributes, type Context, type Link, SpanKind } from "@opentelemetry/api";
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

/** Drops SERVER spans of untraced targets (and so everything under them); asks `delegate` otherwise. */
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
    return this.delegate.shouldSample(context, traceId, spanName, spanKind, attributes, links);
  }

  toString(): string {
    return `RouteFilterSampler(${this.delegate.toString()})`;
  }
}

/** Parent-based, `ratio` of new traces, never the untraced targets. */
export function serverSampler(ratio: number): Sampler {
  return new RouteFilterSampler(new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }));
}
