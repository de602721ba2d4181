// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Core Web Vitals (LCP, INP, CLS, TTFB, from the `web-vitals` package) as spans in the trace of
 * the server render that produced the page, one span per reported value:
 *
 *   name           `web-vital LCP` (INP, CLS, TTFB)
 *   duration       the value, for the three measured in milliseconds: LCP and TTFB from the
 *                  navigation's start, INP from the interaction's start. The collector's span
 *                  metrics (dimension http.route) make them histograms, so Grafana charts the
 *                  p75 per route in PromQL (deploy/config/dashboards/service-red.json).
 *   attributes     web_vital.name, web_vital.value (CLS has only this: it is no duration),
 *                  web_vital.rating (good, needs-improvement, poor), web_vital.id, http.route,
 *                  and session.id like every browser span.
 *
 * web-vitals reports LCP, CLS and INP when the page is hidden or left; the span is flushed then,
 * since the page may never come back.
 */
import { type Context, type Tracer } from "@opentelemetry/api";
import { ATTR_HTTP_ROUTE } from "@opentelemetry/semantic-conventions";
import { type Metric, onCLS, onINP, onLCP, onTTFB } from "web-vitals";

export const VITAL_SPAN_PREFIX = "web-vital ";

/** A path segment that names one thing rather than a route: a number, an id, a hash. */
const ID_SEGMENT = /^(?=.*\d)[A-Za-z0-9_-]{8,}$|^\d+$/;

/**
 * The route of `pathname`, low-cardinality for metrics: segments that look like ids become
 * `[id]` (/replay/3f2c...-9a1b becomes /replay/[id]), as Next.js's route folders would name them.
 */
export function routeOf(pathname: string): string {
  const route = pathname
    .split("/")
    .map((segment) => (ID_SEGMENT.test(segment) ? "[id]" : segment))
    .join("/");
  return route.length > 1 ? route.replace(/\/+$/, "") : "/";
}

/** Where a vital's span starts, in performance.now() time: when the measured interval began. */
function startOf(metric: Metric): number {
  if (metric.name === "INP") return metric.entries[0]?.startTime ?? performance.now() - metric.value;
  if (metric.name === "LCP" || metric.name === "TTFB") return 0;
  return performance.now();
}

/** Records one reported vital as a span under `parent`. */
export function recordVital(tracer: Tracer, parent: Context, metric: Metric, pathname: string): void {
  const start = startOf(metric);
  const timed = metric.name !== "CLS";
  tracer
    .startSpan(
      `${VITAL_SPAN_PREFIX}${metric.name}`,
      {
        startTime: start,
        attributes: {
          "web_vital.name": metric.name,
          "web_vital.value": metric.value,
          "web_vital.rating": metric.rating,
          "web_vital.id": metric.id,
          [ATTR_HTTP_ROUTE]: routeOf(pathname),
        },
      },
      parent,
    )
    .end(timed ? start + metric.value : start);
}

/** Reports the page's vitals as they become final; `flush` runs after each one reported while hidden. */
export function captureVitals(tracer: Tracer, page: () => Context, flush: () => unknown): void {
  const report = (metric: Metric) => {
    recordVital(tracer, page(), metric, window.location.pathname);
    if (document.visibilityState === "hidden") void flush();
  };
  onLCP(report);
  onINP(report);
  onCLS(report);
  onTTFB(report);
}
