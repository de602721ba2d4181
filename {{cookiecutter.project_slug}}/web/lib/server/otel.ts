/**
 * Server-side tracing of the Next.js app, registered by instrumentation.ts when the server
 * starts: @vercel/otel with Next.js's own spans and a CLIENT span for every outgoing fetch;
 * traceparent is sent to the backend (API_BASE_URL) only. Spans go over OTLP/HTTP to the
 * collector that OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT, ..._PROTOCOL, ..._HEADERS)
 * names at start-up; @vercel/otel reads those itself, as the OpenTelemetry spec says.
 */
import { type ProxyTracerProvider, trace } from "@opentelemetry/api";
import { registerOTel } from "@vercel/otel";
import { SERVICE_NAMESPACE } from "../config";
import {
  apiBaseUrl,
  deploymentEnvironment,
  type Env,
  otlpTracesUrl,
  sampleRatio,
  serviceName,
  telemetryEnabled,
} from "./env";
import { serverSampler } from "./sampling";

export function registerServerTelemetry(env: Env): void {
  if (!telemetryEnabled(env)) return;
  registerOTel({
    serviceName: serviceName(env),
    attributes: {
      "service.namespace": SERVICE_NAMESPACE,
      "deployment.environment.name": deploymentEnvironment(env),
    },
    traceSampler: serverSampler(sampleRatio(env)),
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
