// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Browser tracing: one WebTracerProvider, document-load and fetch spans, OTLP/JSON to this
 * origin's /otel/v1/traces (forwarded to the collector by the Next.js server: no CORS, and
 * ad blockers leave a first-party path alone). Started by instrumentation-client.ts before the
 * page hydrates, so the first click is traced.
 *
 * - The page load joins the trace of the server render that produced it: the root layout writes
 *   the render's `<meta name="traceparent">` (app/layout.tsx), the document-load instrumentation
 *   takes it as the parent, and pageContext() gives it to the page's other spans (errors, vitals).
 * - Trace context, baggage (the conversation id: lib/sampling.ts) and the replay session's header
 *   go only to the API (lib/propagation.ts).
 * - The exporter's own requests, the rest of /otel/*, and the replay vendor's requests are never
 *   traced (the vendor's URLs are known once its chunk has loaded: ignore()), so exporting never
 *   produces spans to export.
 * - Every span carries the replay session (`session.id`, lib/observability.ts).
 * - Each fetch span is findable by the request's init object (lib/request-spans.ts).
 * - Ended spans are flushed when the page is hidden or left (pagehide, visibilitychange), with a
 *   keepalive request that outlives the page. A fetch span ends ~300 ms after its response body
 *   (the instrumentation waits for resource timings), so it is exported with the next batch or
 *   at the flush on leaving, not at once.
 */
import { type Attributes, type Context, propagation, ROOT_CONTEXT } from "@opentelemetry/api";
import {
  CompositePropagator,
  TRACE_PARENT_HEADER,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { registerInstrumentations } from "@opentelemetry/instrumentation";
import { DocumentLoadInstrumentation } from "@opentelemetry/instrumentation-document-load";
import { FetchInstrumentation } from "@opentelemetry/instrumentation-fetch";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  type ReadableSpan,
  type Span,
  type SpanProcessor,
  WebTracerProvider,
} from "@opentelemetry/sdk-trace-web";
import { apiPrefixes, HeadersPropagator, ScopedPropagator, shouldPropagate } from "./propagation";
import type { ReplaySession } from "./replay/types";
import { trackRequestSpan } from "./request-spans";
import { conversationSampler } from "./sampling";
import type { TelemetryConfig } from "./telemetry-config";

/** Header names the replay sessions may send (lib/replay/*), declared as the propagator's fields. */
const SESSION_HEADERS = ["x-session-id", "x-highlight-request", "baggage"];

export interface BrowserTracing {
  provider: WebTracerProvider;
  /** Never traces, nor gives trace headers to, requests to these URL prefixes (a replay vendor's). */
  ignore(urls: readonly string[]): void;
  /** Exports every ended span now. */
  flush(): Promise<void>;
  /** Flushes, then stops tracing and removes the page listeners. */
  shutdown(): Promise<void>;
}

export interface StartTracingOptions {
  config: TelemetryConfig;
  /** The page's origin, e.g. window.location.origin. */
  origin: string;
  /** The replay session, read as each span starts and each request leaves (it may start later). */
  session: () => ReplaySession | undefined;
}

/** Puts the replay session's attributes on every span as it starts. */
export class SessionSpanProcessor implements SpanProcessor {
  constructor(private readonly session: () => ReplaySession | undefined) {}

  onStart(span: Span, _parentContext: Context): void {
    const attributes: Attributes | undefined = this.session()?.spanAttributes();
    if (attributes) span.setAttributes(attributes);
  }

  onEnd(_span: ReadableSpan): void {}

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * URL matchers of everything tracing must never touch: /otel/* and the built-in replay's
 * /api/replay/* of this origin (known before any vendor loads: the replay viewer reads a session
 * as soon as it opens, before `load`), and `extra`.
 */
export function untracedUrls(origin: string, extra: readonly string[] = []): RegExp[] {
  return prefixMatchers([new URL("/otel/", origin).href, new URL("/api/replay/", origin).href, ...extra]);
}

function prefixMatchers(urls: readonly string[]): RegExp[] {
  return urls.filter(Boolean).map((url) => new RegExp(`^${escapeRegExp(url)}`));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The context of the server render that produced this page (its `<meta name="traceparent">`),
 * or the root context when the page has none (telemetry off on the server, or not sampled there).
 */
export function pageContext(doc: Pick<Document, "querySelector"> = document): Context {
  const traceparent = doc.querySelector(`meta[name="${TRACE_PARENT_HEADER}"]`)?.getAttribute("content") ?? "";
  return propagation.extract(ROOT_CONTEXT, { [TRACE_PARENT_HEADER]: traceparent });
}

/** Starts browser tracing and registers it as the global tracer provider and propagator. */
export function startTracing({ config, origin, session }: StartTracingOptions): BrowserTracing {
  const prefixes = apiPrefixes(origin, config.apiPath);
  const exporter = new OTLPTraceExporter({ url: new URL(config.tracesPath, origin).href });
  const batch = new BatchSpanProcessor(exporter, {
    scheduledDelayMillis: 1000,
    // Flushing on leaving the page is done below, explicitly, for every provider state.
    disableAutoFlushOnDocumentHide: true,
  });
  const provider = new WebTracerProvider({
    // The defaults name the SDK (telemetry.sdk.language "webjs" tells browser spans apart).
    resource: defaultResource().merge(
      resourceFromAttributes({
        "service.name": config.serviceName,
        "service.namespace": config.serviceNamespace,
        "deployment.environment.name": config.environment,
      }),
    ),
    sampler: conversationSampler(config.sampleRatio),
    spanProcessors: [new SessionSpanProcessor(session), batch],
  });
  provider.register({
    propagator: new ScopedPropagator(
      new CompositePropagator({
        propagators: [
          new W3CTraceContextPropagator(),
          new W3CBaggagePropagator(),
          new HeadersPropagator((requestId) => session()?.headers(requestId) ?? {}, SESSION_HEADERS),
        ],
      }),
      (url) => shouldPropagate(url, prefixes),
    ),
  });
  const fetchInstrumentation = new FetchInstrumentation({
    ignoreUrls: untracedUrls(origin),
    clearTimingResources: true,
    requestHook: (span, request) => trackRequestSpan(request, span),
  });
  const unregister = registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [new DocumentLoadInstrumentation(), fetchInstrumentation],
  });

  const flush = () => provider.forceFlush().catch(() => undefined);
  const stopFlushing = flushWhenLeaving(flush);

  return {
    provider,
    ignore(urls) {
      const config = fetchInstrumentation.getConfig();
      const ignoreUrls = [...(config.ignoreUrls ?? []), ...prefixMatchers(urls)];
      fetchInstrumentation.setConfig({ ...config, ignoreUrls });
    },
    flush,
    async shutdown() {
      stopFlushing();
      unregister();
      await provider.shutdown();
    },
  };
}

type Listener = () => void;
interface PageEvents {
  addEventListener(type: string, listener: Listener): void;
  removeEventListener(type: string, listener: Listener): void;
}

/**
 * Calls `flush` when the page is hidden (tab switched, app backgrounded: it may never come back)
 * or left (pagehide, also for the back/forward cache). Returns a function that stops it.
 */
export function flushWhenLeaving(
  flush: () => unknown,
  page: PageEvents = window,
  doc: PageEvents & { visibilityState: string } = document,
): () => void {
  const onPageHide = () => void flush();
  const onVisibility = () => {
    if (doc.visibilityState === "hidden") void flush();
  };
  page.addEventListener("pagehide", onPageHide);
  doc.addEventListener("visibilitychange", onVisibility);
  return () => {
    page.removeEventListener("pagehide", onPageHide);
    doc.removeEventListener("visibilitychange", onVisibility);
  };
}
