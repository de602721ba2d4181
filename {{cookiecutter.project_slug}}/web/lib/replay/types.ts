// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import type { Attributes } from "@opentelemetry/api";
import type { ReplayVendorName } from "../observability";

/** The registry's vendor names (lib/observability.ts): the one list of them in the web app. */
export type { ReplayVendorName };

/** Vendor settings, from the server's environment (lib/server/env.ts). Empty strings mean unset. */
export interface ReplayConfig {
  /** HIGHLIGHT_PROJECT_ID, HIGHLIGHT_BACKEND_URL, HIGHLIGHT_OTLP_ENDPOINT. */
  highlight: { projectId: string; backendUrl: string; otlpEndpoint: string };
  /** SENTRY_DSN. */
  sentry: { dsn: string };
  /** REPLAY_SAMPLE_RATE (share of sessions recorded, 0 to 1), REPLAY_MAX_SESSION_BYTES (as sent). */
  builtin: { sampleRate: number; maxSessionBytes: number };
}

/** What a vendor learns about the app when it starts. */
export interface ReplayContext {
  serviceName: string;
  environment: string;
  /** Absolute URL prefixes of the app's API: where the vendor may attach its own request header. */
  apiPrefixes: readonly string[];
}

/** A running replay session, read at the moment a span starts or a request leaves. */
export interface ReplaySession {
  vendor: ReplayVendorName;
  /** The replay's session id (it may change when the vendor starts a new session). */
  id(): string;
  /** Attributes for every browser span: session.id, plus the vendor's own key. */
  spanAttributes(): Attributes;
  /**
   * Headers for a request that also gets a traceparent, naming the session to the backend
   * (backend/app/telemetry/replay.py reads them). `requestId` identifies this one request.
   */
  headers(requestId: string): Record<string, string>;
}

export interface ReplayVendor {
  name: ReplayVendorName;
  /** URLs the vendor's SDK sends to: never traced, never given trace headers. */
  ownUrls(config: ReplayConfig): string[];
  /** Starts recording; null when the vendor is not configured (no project id or DSN). */
  start(config: ReplayConfig, context: ReplayContext): ReplaySession | null;
}
