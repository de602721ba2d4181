// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Server-side tracing of the Next.js app, registered by instrumentation.ts when the server
 * starts: @vercel/otel with Next.js's own spans and a CLIENT span for every outgoing fetch;
 * traceparent is sent to the backend (API_BASE_URL) only. Spans go over OTLP/HTTP to the
 * collector that OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT, ..._PROTOCOL, ..._HEADERS)
 * names at start-up, through ScrubbingSpanExporter (no query secret leaves, lib/server/scrubbing.ts).
 * ServerSpanTracker lets route handlers find their request's SERVER span (lib/server/server-span.ts).
 */
import { type ProxyTracerProvider, trace } from "@opentelemetry/api";
import { BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { OTLPHttpJsonTraceExporter, OTLPHttpProtoTraceExporter, registerOTel } from "@vercel/otel";
import { SERVICE_NAMESPACE } from "../config";
import {
  apiBaseUrl,
  deploymentEnvironment,
  type Env,
  otlpHeaders,
  otlpTracesUrl,
  sampleRatio,
  serviceName,
  telemetryEnabled,
} from "./env";
import { serverSampler } from "./sampling";
import { ScrubbingSpanExporter } from "./scrubbing";
import { ServerSpanTracker } from "./server-span";

/** The OTLP/HTTP exporter the environment asks for (protobuf unless ..._PROTOCOL=http/json). */
export function otlpTraceExporter(env: Env): SpanExporter {
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf";
  const config = { url: otlpTracesUrl(env), headers: otlpHeaders(env) };
  return protocol.trim() === "http/json" ? new OTLPHttpJsonTraceExporter(config) : new OTLPHttpProtoTraceExporter(config);
}

export function registerServerTelemetry(env: Env): void {
  if (!telemetryEnabled(env)) return;
  registerOTel({
    serviceName: serviceName(env),
    attributes: {
      "service.namespace": SERVICE_NAMESPACE,
      "deployment.environment.name": deploymentEnvironment(env),
    },
    traceSampler: serverSampler(sampleRatio(env)),
    // Instead of "auto", which would export without scrubbing.
    spanProcessors: [new ServerSpanTracker(), new BatchSpanProcessor(new ScrubbingSpanExporter(otlpTraceExporter(env)))],
    instrumentationConfig: {
      fetch: {
        propagateContextUrls: [`${apiBaseUrl(env)}/`],
        ignoreUrls: [otlpTracesUrl(env)],
      },
    },
  });
  // `next start` stops on SIGTERM/SIGINT without flushing OpenTelemetry; the spans still queued
  // (up to OTEL_BSP_SCHEDULE_DELAY, 5 s by default) would be lost. Start a flush as it begins its
  // graceful stop, which waits for open requests first.
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => void flushTraces());
}

/** Exports every ended span now. */
export async function flushTraces(): Promise<void> {
  const provider = (trace.getTracerProvider() as ProxyTracerProvider).getDelegate() as {
    forceFlush?: () => Promise<void>;
  };
  await provider.forceFlush?.().catch(() => undefined);
}
