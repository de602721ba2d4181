// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The browser's OTLP exports (app/otel/v1/[signal]/route.ts: traces, logs, metrics), checked and
 * forwarded to the collector, whose address and headers are read at request time. In order:
 *
 *   404  a signal other than traces, logs or metrics
 *   415  anything but OTLP/JSON (the browser's exporters send JSON; protobuf is refused too)
 *   429  more than OTLP_RATE_LIMIT exports a minute from one client, or OTLP_RATE_LIMIT_TOTAL from all
 *   413  a body over OTLP_MAX_BODY_BYTES (counted while it streams and inflates), or over
 *        OTLP_MAX_ITEMS spans / log records / data points
 *   400  a body that does not decompress, parse or have OTLP/JSON's shape
 *   403  a resource that claims another service, a metric named like the backend's, a feedback
 *        event (lib/server/otlp-policy.ts)
 *
 * What passes is rebuilt and bounded (otlp-policy.ts): the identity is this server's, and spans or
 * points past the client's OTLP_MAX_SERIES new series per OTLP_SERIES_WINDOW_SECONDS are dropped.
 * The client is the address this server's socket saw (lib/server/client-address.ts). It is sent on as JSON. When the collector
 * cannot take it (down, slow, failing), the export is dropped with a 202, logged once per outage
 * on the server: the browser would otherwise print every failed export in red, and retry it.
 * The forward itself is never traced.
 */
import { SERVICE_NAMESPACE } from "../config";
import { readBoundedBody, RequestRefused, refusal } from "./bounded-body";
import {
  deploymentEnvironment,
  type Env,
  OTLP_SIGNALS,
  type OtlpSignal,
  otlpHeaders,
  otlpLimits,
  otlpSignalUrl,
  serviceName,
} from "./env";
import { sanitizeExport } from "./otlp-policy";
import { RateLimiter } from "./rate-limit";
import { SeriesBudget } from "./series-budget";
import { clientAddress } from "./client-address";

const COLLECTOR_TIMEOUT_MS = 10_000;

let limiter: { key: string; limiter: RateLimiter } | undefined;
let series: { key: string; budget: SeriesBudget } | undefined;
let collectorFailing = false;

function rateLimiter(perMinute: number, totalPerMinute: number): RateLimiter {
  const key = `${perMinute}/${totalPerMinute}`;
  if (limiter?.key !== key) limiter = { key, limiter: new RateLimiter({ perMinute, totalPerMinute }) };
  return limiter.limiter;
}

function seriesBudget(maxSeries: number, windowMs: number): SeriesBudget {
  const key = `${maxSeries}/${windowMs}`;
  if (series?.key !== key) series = { key, budget: new SeriesBudget({ maxSeries, windowMs }) };
  return series.budget;
}

function mediaTypeOf(request: Request): string {
  return (request.headers.get("content-type") ?? "").split(";", 1)[0].trim().toLowerCase();
}

function isSignal(signal: string): signal is OtlpSignal {
  return (OTLP_SIGNALS as readonly string[]).includes(signal);
}

/** Logs the first failure of an outage and the recovery, not every dropped export. */
function noteDelivery(ok: boolean, detail: string): void {
  if (ok === !collectorFailing) return;
  collectorFailing = !ok;
  if (ok) console.info(`browser telemetry: the collector takes exports again (${detail})`);
  else console.warn(`browser telemetry: the collector did not take an export (${detail}); dropping browser exports until it does`);
}

export async function forwardOtlp(request: Request, signal: string, env: Env = process.env): Promise<Response> {
  if (!isSignal(signal)) return refusal(404, `no OTLP signal ${JSON.stringify(signal.slice(0, 40))} here (traces, logs, metrics)`);
  const mediaType = mediaTypeOf(request);
  if (mediaType !== "application/json") {
    return refusal(415, "this route takes OTLP/JSON only (Content-Type: application/json)");
  }
  const limits = otlpLimits(env);
  const client = clientAddress(request.headers);
  if (!rateLimiter(limits.ratePerMinute, limits.totalRatePerMinute).allow(client)) {
    return refusal(429, `more than ${limits.ratePerMinute} exports a minute from this client`, { "retry-after": "60" });
  }
  const budget = seriesBudget(limits.maxSeries, limits.seriesWindowMs);
  let body: string;
  try {
    const bytes = await readBoundedBody(request, limits.maxBodyBytes);
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString("utf8"));
    } catch {
      throw new RequestRefused(400, "body is not JSON");
    }
    body = JSON.stringify(
      sanitizeExport(signal, parsed, {
        serviceName: serviceName(env),
        serviceNamespace: SERVICE_NAMESPACE,
        environment: deploymentEnvironment(env),
        limits,
        admitSeries: (key) => budget.admit(client, key),
      }),
    );
  } catch (error) {
    if (error instanceof RequestRefused) return refusal(error.status, error.message);
    throw error;
  }
  return deliver(signal, body, env);
}

async function deliver(signal: OtlpSignal, body: string, env: Env): Promise<Response> {
  const url = otlpSignalUrl(env, signal);
  try {
    const upstream = await fetch(url, {
      method: "POST",
      headers: { ...otlpHeaders(env, signal), "content-type": "application/json" },
      body,
      cache: "no-store",
      signal: AbortSignal.timeout(COLLECTOR_TIMEOUT_MS),
      opentelemetry: { ignore: true },
    });
    const answer = await upstream.arrayBuffer();
    noteDelivery(upstream.ok, `${new URL(url).origin} answered ${upstream.status}`);
    if (!upstream.ok) return new Response(null, { status: 202 });
    return new Response(answer, { status: upstream.status, headers: { "content-type": "application/json" } });
  } catch (error) {
    noteDelivery(false, `${new URL(url).origin}: ${error instanceof Error ? error.message : String(error)}`);
    return new Response(null, { status: 202 });
  }
}
