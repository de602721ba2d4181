// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import { H } from "highlight.run";
import type { ReplaySession, ReplayVendor } from "./types";

/** Highlight's own defaults; hosted highlight.io shut down on 2026-02-28, so set both URLs to a
 * self-hosted Highlight or to LaunchDarkly Observability (HIGHLIGHT_BACKEND_URL, HIGHLIGHT_OTLP_ENDPOINT). */
export const DEFAULT_BACKEND_URL = "https://pub.highlight.io";
export const DEFAULT_OTLP_ENDPOINT = "https://otel.highlight.io";
/** The header backend/app/telemetry/replay.py reads: `<session secure id>/<request id>`. */
export const HIGHLIGHT_HEADER = "x-highlight-request";

// highlight.run brings its own OpenTelemetry: left alone it records document load, clicks, page
// views, fetch and XHR into a tracer provider of its own, next to ours (duplicate fetch spans,
// spans for its exporter's POSTs). All of that is off: our provider (lib/otel-web.ts) is
// registered first and stays the global one, and Highlight records the replay only.
const NO_HIGHLIGHT_TRACING = {
  instrumentations: {
    "@opentelemetry/instrumentation-document-load": false,
    "@opentelemetry/instrumentation-fetch": false,
    "@opentelemetry/instrumentation-xml-http-request": false,
    "@opentelemetry/instrumentation-user-interaction": false,
  },
} as const;

// productAnalytics is read by H.init but missing from its options type (highlight.run 10.7).
type HighlightInitOptions = NonNullable<Parameters<typeof H.init>[1]> & {
  productAnalytics?: { clicks: boolean; pageViews: boolean; trackEvents: boolean };
};

/** Highlight session replay (self-hosted Highlight, or LaunchDarkly Observability). */
export const highlight: ReplayVendor = {
  name: "highlight",
  ownUrls: ({ highlight: settings }) => [
    settings.backendUrl || DEFAULT_BACKEND_URL,
    settings.otlpEndpoint || DEFAULT_OTLP_ENDPOINT,
  ],
  start({ highlight: settings }, context) {
    if (!settings.projectId) return null;
    const options: HighlightInitOptions = {
      backendUrl: settings.backendUrl || DEFAULT_BACKEND_URL,
      otlpEndpoint: settings.otlpEndpoint || DEFAULT_OTLP_ENDPOINT,
      serviceName: context.serviceName,
      environment: context.environment,
      // Strict privacy: every text node and input is masked in the recording. Record an element
      // anyway by giving it the `data-hl-record` attribute.
      privacySetting: "strict",
      tracingOrigins: [...context.apiPrefixes],
      networkRecording: false,
      otel: NO_HIGHLIGHT_TRACING,
      productAnalytics: { clicks: false, pageViews: false, trackEvents: false },
      sessionShortcut: false,
    };
    const started = H.init(settings.projectId, options);
    const id = started?.sessionSecureID;
    return id ? highlightSession(id) : null;
  },
};

export function highlightSession(id: string): ReplaySession {
  return {
    vendor: "highlight",
    id: () => id,
    spanAttributes: () => ({ "session.id": id, "highlight.session_id": id }),
    headers: (requestId) => ({ [HIGHLIGHT_HEADER]: `${id}/${requestId}` }),
  };
}
