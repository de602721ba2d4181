// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The browser's telemetry, started by instrumentation-client.ts, which Next.js runs before the
 * page hydrates, so the first click is traced (a click can only do something once React has
 * hydrated the page):
 *
 *   1. the settings, from `<meta name="telemetry-config">` (written by app/layout.tsx from the
 *      server's environment at request time): no request to wait for;
 *   2. tracing (lib/otel-web.ts), registered as the global provider and propagator, with the
 *      page's errors (lib/browser-errors.ts) and Core Web Vitals (lib/vitals.ts);
 *   3. once the page has loaded, the chunk of the replay vendor the settings name (SESSION_REPLAY,
 *      lib/observability.ts), after tracing,
 *      so a vendor bringing its own OpenTelemetry finds ours in place and cannot replace it.
 *      Until it runs, spans and API requests carry the tab's session id (lib/replay/none.ts):
 *      the very id the "none" and "builtin" vendors go on with.
 *
 * `<html data-telemetry>` says how it went: "ready" (the vendor too), "off" (OTEL_SDK_DISABLED)
 * or "failed".
 */
import { trace } from "@opentelemetry/api";
import { captureErrors } from "./browser-errors";
import { loadReplayVendor } from "./observability";
import { type BrowserTracing, pageContext, startTracing } from "./otel-web";
import { apiPrefixes } from "./propagation";
import { tabSession } from "./replay/none";
import type { ReplaySession } from "./replay/types";
import { readPageConfig, type TelemetryConfig } from "./telemetry-config";
import { captureVitals } from "./vitals";

export const TRACER_NAME = "app.browser";

export interface BrowserTelemetry {
  tracing: BrowserTracing;
  /** The replay vendor's session once it runs, the tab's until then. */
  session(): ReplaySession;
  /** Settles when the replay vendor has started (or failed to). */
  replay: Promise<void>;
}

let started: BrowserTelemetry | undefined | null = null;

/** Starts telemetry once per page, however often it is called; undefined when it is off or failed. */
export function startBrowserTelemetry(): BrowserTelemetry | undefined {
  if (started === null) started = start();
  return started;
}

function start(): BrowserTelemetry | undefined {
  const root = document.documentElement;
  try {
    const config = readPageConfig(document);
    if (!config) throw new Error("the page has no readable <meta name=\"telemetry-config\">");
    if (!config.enabled) {
      root.dataset.telemetry = "off";
      return undefined;
    }
    const origin = window.location.origin;
    let vendorSession: ReplaySession | undefined;
    const tabFallback = tabSession();
    const session = () => vendorSession ?? tabFallback;
    const tracing = startTracing({ config, origin, session });
    const tracer = trace.getTracer(TRACER_NAME);
    const page = () => pageContext(document);
    captureErrors(tracer, page);
    captureVitals(tracer, page, tracing.flush);
    const replay = afterLoad()
      .then(() => startReplay(config, origin, tracing))
      .then((started) => {
        vendorSession = started;
        root.dataset.telemetry = "ready";
      })
      .catch((error: unknown) => {
        // The vendor's chunk did not load (offline, a new deploy): tracing goes on with the tab's session.
        root.dataset.telemetry = "failed";
        console.warn("session replay did not start:", error);
      });
    return { tracing, session, replay };
  } catch (error) {
    root.dataset.telemetry = "failed";
    console.warn("telemetry did not start:", error);
    return undefined;
  }
}

/** Resolves once the page's load event has fired: the replay vendor never competes with hydration. */
function afterLoad(): Promise<void> {
  if (document.readyState === "complete") return Promise.resolve();
  return new Promise((resolve) => window.addEventListener("load", () => resolve(), { once: true }));
}

async function startReplay(config: TelemetryConfig, origin: string, tracing: BrowserTracing): Promise<ReplaySession> {
  const vendor = await loadReplayVendor(config.replayVendor);
  tracing.ignore(vendor.ownUrls(config.replay));
  const session = vendor.start(config.replay, {
    serviceName: config.serviceName,
    environment: config.environment,
    apiPrefixes: apiPrefixes(origin, config.apiPath),
  });
  if (session) return session;
  console.info(`session replay: ${vendor.name} is not configured, using a per-tab session id`);
  return tabSession();
}
