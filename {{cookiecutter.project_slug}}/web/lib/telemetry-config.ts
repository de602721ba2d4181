// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import type { ReplayConfig, ReplayVendorName } from "./replay/types";

/** Same-origin path the browser exports OTLP/JSON to; app/otel/v1/traces forwards it to the collector. */
export const TRACES_PATH = "/otel/v1/traces";
/** Same-origin path that serves the browser its TelemetryConfig (app/otel/config). */
export const CONFIG_PATH = "/otel/config";
/**
 * `<meta name="telemetry-config">`: the TelemetryConfig as JSON, written into every page by the
 * root layout (app/layout.tsx), so tracing starts before hydration without waiting on a request.
 */
export const CONFIG_META = "telemetry-config";
/** The API, proxied same-origin by app/api/[...path]: the only requests that get trace headers. */
export const API_PATH = "/api/";

/**
 * What the browser needs to start telemetry. The server builds it from its environment at
 * request time (lib/server/env.ts), so a built app moves between environments unchanged.
 */
export interface TelemetryConfig {
  /** false when OTEL_SDK_DISABLED=true: no tracing, no replay, no correlation headers. */
  enabled: boolean;
  serviceName: string;
  serviceNamespace: string;
  environment: string;
  /** Share of new traces the browser keeps, 0 to 1. */
  sampleRatio: number;
  tracesPath: string;
  apiPath: string;
  /** SESSION_REPLAY: the replay vendor the browser starts (lib/observability.ts). */
  replayVendor: ReplayVendorName;
  replay: ReplayConfig;
}

/** The page's TelemetryConfig (CONFIG_META), or undefined when the page has none or it is unreadable. */
export function readPageConfig(doc: Pick<Document, "querySelector">): TelemetryConfig | undefined {
  const content = doc.querySelector(`meta[name="${CONFIG_META}"]`)?.getAttribute("content");
  if (!content) return undefined;
  try {
    const config = JSON.parse(content) as TelemetryConfig;
    return typeof config === "object" && config !== null && typeof config.enabled === "boolean" ? config : undefined;
  } catch {
    return undefined;
  }
}
