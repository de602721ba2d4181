// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Every setting of the Next.js server, read from its environment at run time (route handlers
 * and instrumentation.ts call these with process.env), never baked in at build time. Each
 * function takes the environment as an argument, so tests pass a plain object.
 *
 *   API_BASE_URL                        where the FastAPI backend listens (default http://localhost:8000)
 *   OTEL_EXPORTER_OTLP_ENDPOINT         the collector's OTLP/HTTP base URL (default http://localhost:4318)
 *   OTEL_EXPORTER_OTLP_{TRACES,LOGS,METRICS}_ENDPOINT  full URL of one signal, wins over the one above
 *   OTEL_EXPORTER_OTLP_HEADERS          `key=value,...` sent to the collector (also ..._TRACES_HEADERS, ...)
 *   OTEL_SERVICE_NAME                   service.name of the server and the browser
 *   OTEL_TRACES_SAMPLER_ARG             share of new traces kept, 0 to 1
 *   OTEL_SDK_DISABLED                   "true": no tracing anywhere, no replay
 *   DEPLOYMENT_ENVIRONMENT              deployment.environment.name
 *   SESSION_REPLAY                      the replay vendor: none, highlight, sentry or builtin (lib/observability.ts);
 *                                       default: the project's rendered answer. A bad value stops start-up.
 *   HIGHLIGHT_PROJECT_ID, HIGHLIGHT_BACKEND_URL, HIGHLIGHT_OTLP_ENDPOINT, SENTRY_DSN
 *                                       session replay (lib/observability.ts)
 *   REPLAY_SAMPLE_RATE                  built-in replay: share of sessions recorded, 0 to 1 (default 1)
 *   REPLAY_MAX_SESSION_BYTES            built-in replay: recording stops past this many bytes sent
 *   GRAFANA_URL                         the replay viewer's links to traces (default http://localhost:3001)
 *   API_MAX_BODY_BYTES                  largest request body the /api/* proxy passes on, as sent (default 512 KiB)
 *   OTLP_MAX_BODY_BYTES                 largest browser OTLP export, once decompressed (default 4 MiB)
 *   OTLP_MAX_ITEMS                      spans, log records or metric data points per export (default 1000)
 *   OTLP_MAX_ATTRIBUTE_LENGTH           longer string attribute values are cut to this (default 4096)
 *   OTLP_RATE_LIMIT                     browser exports per minute per client address (default 120)
 *   OTLP_RATE_LIMIT_TOTAL               browser exports per minute from all clients together (default 6000)
 *   OTLP_MAX_SERIES                     new series (span-metrics keys, metric points) per client per window (default 200)
 *   OTLP_SERIES_WINDOW_SECONDS          that window (default 600)
 */
import {
  DEPLOYMENT_ENVIRONMENT,
  HIGHLIGHT_PROJECT_ID,
  SERVICE_NAME,
  SERVICE_NAMESPACE,
  SESSION_REPLAY,
  TRACE_SAMPLE_RATIO,
} from "../config";
import { isReplayVendorName, REPLAY_VENDOR_NAMES, type ReplayVendorName } from "../observability";
import { API_PATH, type TelemetryConfig, TRACES_PATH } from "../telemetry-config";

export type Env = Readonly<Record<string, string | undefined>>;

export const DEFAULT_API_BASE_URL = "http://localhost:8000";
export const DEFAULT_OTLP_ENDPOINT = "http://localhost:4318";
/** Grafana of the local stack (deploy/k3d/cluster.yaml and docker-compose.yaml publish it on 3001). */
export const DEFAULT_GRAFANA_URL = "http://localhost:3001";
/** The backend's REPLAY_MAX_SESSION_BYTES default: 20 MiB. */
export const DEFAULT_REPLAY_MAX_SESSION_BYTES = 20 * 1024 * 1024;

function setting(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

/** The backend's base URL, without a trailing slash. */
export function apiBaseUrl(env: Env): string {
  return withoutTrailingSlash(setting(env, "API_BASE_URL") ?? DEFAULT_API_BASE_URL);
}

/** The OTLP signals the browser may export through this server (app/otel/v1/[signal]). */
export const OTLP_SIGNALS = ["traces", "logs", "metrics"] as const;
export type OtlpSignal = (typeof OTLP_SIGNALS)[number];

/** The collector's OTLP/HTTP URL for `signal`, per the OpenTelemetry exporter spec. */
export function otlpSignalUrl(env: Env, signal: OtlpSignal): string {
  const own = setting(env, `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`);
  if (own) return own;
  return `${withoutTrailingSlash(setting(env, "OTEL_EXPORTER_OTLP_ENDPOINT") ?? DEFAULT_OTLP_ENDPOINT)}/v1/${signal}`;
}

/** The collector's OTLP/HTTP traces URL. */
export function otlpTracesUrl(env: Env): string {
  return otlpSignalUrl(env, "traces");
}

/** OTEL_EXPORTER_OTLP_HEADERS / OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS: `key=value,key2=value2`, URL-encoded. */
export function otlpHeaders(env: Env, signal: OtlpSignal = "traces"): Record<string, string> {
  const raw = env[`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_HEADERS`] ?? env.OTEL_EXPORTER_OTLP_HEADERS ?? "";
  const headers: Record<string, string> = {};
  for (const pair of raw.split(",")) {
    const at = pair.indexOf("=");
    if (at <= 0) continue;
    headers[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return headers;
}

export function serviceName(env: Env): string {
  return setting(env, "OTEL_SERVICE_NAME") ?? SERVICE_NAME;
}

export function deploymentEnvironment(env: Env): string {
  return setting(env, "DEPLOYMENT_ENVIRONMENT") ?? DEPLOYMENT_ENVIRONMENT;
}

/** OTEL_TRACES_SAMPLER_ARG (or the rendered default) as a number in [0, 1]; unreadable: 1. */
export function sampleRatio(env: Env): number {
  const ratio = Number(setting(env, "OTEL_TRACES_SAMPLER_ARG") ?? TRACE_SAMPLE_RATIO);
  return Number.isFinite(ratio) ? Math.min(1, Math.max(0, ratio)) : 1;
}

/** SESSION_REPLAY (default: the rendered answer); anything but a registered vendor's name throws. */
export function replayVendor(env: Env): ReplayVendorName {
  const name = setting(env, "SESSION_REPLAY") ?? SESSION_REPLAY;
  if (isReplayVendorName(name)) return name;
  throw new Error(`SESSION_REPLAY=${JSON.stringify(name)}: must be one of ${REPLAY_VENDOR_NAMES.join(", ")}`);
}

/** REPLAY_SAMPLE_RATE as a share of sessions recorded in [0, 1]; unset or unreadable: 1, every session. */
export function replaySampleRate(env: Env): number {
  const rate = Number(setting(env, "REPLAY_SAMPLE_RATE") ?? 1);
  return Number.isFinite(rate) ? Math.min(1, Math.max(0, rate)) : 1;
}

/** REPLAY_MAX_SESSION_BYTES: bytes a session may upload before its recording stops (a positive integer). */
export function replayMaxSessionBytes(env: Env): number {
  const bytes = Number(setting(env, "REPLAY_MAX_SESSION_BYTES"));
  return Number.isInteger(bytes) && bytes > 0 ? bytes : DEFAULT_REPLAY_MAX_SESSION_BYTES;
}

function positiveInteger(env: Env, name: string, fallback: number): number {
  const value = Number(setting(env, name));
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

/**
 * The backend's largest body limit (REPLAY_MAX_CHUNK_BYTES, 512 KiB): no body the backend would take
 * is refused here. A route with a smaller limit answers its own 413, which the proxy passes back.
 */
export const DEFAULT_API_MAX_BODY_BYTES = 512 * 1024;

/** API_MAX_BODY_BYTES: the /api/* proxy refuses (413) a body past this many bytes as sent. */
export function apiMaxBodyBytes(env: Env): number {
  return positiveInteger(env, "API_MAX_BODY_BYTES", DEFAULT_API_MAX_BODY_BYTES);
}

/** What the browser OTLP route (lib/server/otlp-forward.ts) accepts. */
export interface OtlpLimits {
  /** Bytes of one export once decompressed; past them: 413. */
  maxBodyBytes: number;
  /** Spans, log records or metric data points in one export; past them: 413. */
  maxItems: number;
  /** String attribute values (and log bodies) are cut to this many characters. */
  maxAttributeLength: number;
  /** Attributes kept per span, event, link, log record or data point (the SDK's default limit). */
  maxAttributes: number;
  /** Exports per minute from one client address, and from all of them; past them: 429. */
  ratePerMinute: number;
  totalRatePerMinute: number;
  /** Distinct series one client address may make per `seriesWindowMs`; past them items are dropped. */
  maxSeries: number;
  seriesWindowMs: number;
}

export function otlpLimits(env: Env): OtlpLimits {
  return {
    maxBodyBytes: positiveInteger(env, "OTLP_MAX_BODY_BYTES", 4 * 1024 * 1024),
    maxItems: positiveInteger(env, "OTLP_MAX_ITEMS", 1000),
    maxAttributeLength: positiveInteger(env, "OTLP_MAX_ATTRIBUTE_LENGTH", 4096),
    maxAttributes: 128,
    ratePerMinute: positiveInteger(env, "OTLP_RATE_LIMIT", 120),
    totalRatePerMinute: positiveInteger(env, "OTLP_RATE_LIMIT_TOTAL", 6000),
    maxSeries: positiveInteger(env, "OTLP_MAX_SERIES", 200),
    seriesWindowMs: positiveInteger(env, "OTLP_SERIES_WINDOW_SECONDS", 600) * 1000,
  };
}

/** GRAFANA_URL, without a trailing slash: where the replay viewer links a session's traces. */
export function grafanaUrl(env: Env): string {
  return withoutTrailingSlash(setting(env, "GRAFANA_URL") ?? DEFAULT_GRAFANA_URL);
}

export function telemetryEnabled(env: Env): boolean {
  return setting(env, "OTEL_SDK_DISABLED")?.toLowerCase() !== "true";
}

/** What GET /otel/config tells the browser. Holds no secret: the page is public. */
export function telemetryConfig(env: Env): TelemetryConfig {
  return {
    enabled: telemetryEnabled(env),
    serviceName: serviceName(env),
    serviceNamespace: SERVICE_NAMESPACE,
    environment: deploymentEnvironment(env),
    sampleRatio: sampleRatio(env),
    tracesPath: TRACES_PATH,
    apiPath: API_PATH,
    replayVendor: replayVendor(env),
    replay: {
      highlight: {
        projectId: setting(env, "HIGHLIGHT_PROJECT_ID") ?? HIGHLIGHT_PROJECT_ID,
        backendUrl: setting(env, "HIGHLIGHT_BACKEND_URL") ?? "",
        otlpEndpoint: setting(env, "HIGHLIGHT_OTLP_ENDPOINT") ?? "",
      },
      sentry: { dsn: setting(env, "SENTRY_DSN") ?? "" },
      builtin: { sampleRate: replaySampleRate(env), maxSessionBytes: replayMaxSessionBytes(env) },
    },
  };
}
