/**
 * Starts the browser's telemetry after hydration (components/telemetry.tsx imports this module
 * lazily, so none of it is in the page's first-load JavaScript):
 *
 *   1. GET /otel/config: the settings, from the server's environment at run time;
 *   2. the replay vendor's chunk (lib/observability.ts);
 *   3. tracing (lib/otel-web.ts), registered as the global provider and propagator;
 *   4. the replay vendor, after tracing, so a vendor bringing its own OpenTelemetry finds ours
 *      in place and cannot replace it.
 *
 * `<html data-telemetry>` says how it went: "ready", "off" (OTEL_SDK_DISABLED) or "failed".
 */
import { loadReplayVendor } from "./observability";
import { type BrowserTracing, startTracing } from "./otel-web";
import { apiPrefixes } from "./propagation";
import { tabSession } from "./replay/none";
import type { ReplaySession } from "./replay/types";
import { CONFIG_PATH, type TelemetryConfig } from "./telemetry-config";

export interface BrowserTelemetry {
  tracing: BrowserTracing;
  session: ReplaySession;
}

let started: Promise<BrowserTelemetry | undefined> | undefined;

/** Starts telemetry once per page, however often it is called. */
export function startBrowserTelemetry(): Promise<BrowserTelemetry | undefined> {
  started ??= start();
  return started;
}

async function start(): Promise<BrowserTelemetry | undefined> {
  const root = document.documentElement;
  try {
    const config = await loadConfig();
    if (!config.enabled) {
      root.dataset.telemetry = "off";
      return undefined;
    }
    const origin = window.location.origin;
    const vendor = await loadReplayVendor();
    let session: ReplaySession | undefined;
    const tracing = startTracing({
      config,
      origin,
      session: () => session,
      ignoreUrls: vendor.ownUrls(config.replay),
    });
    session = vendor.start(config.replay, {
      serviceName: config.serviceName,
      environment: config.environment,
      apiPrefixes: apiPrefixes(origin, config.apiPath),
    }) ?? undefined;
    if (!session) {
      console.info(`session replay: ${vendor.name} is not configured, using a per-tab session id`);
      session = tabSession();
    }
    root.dataset.telemetry = "ready";
    return { tracing, session };
  } catch (error) {
    root.dataset.telemetry = "failed";
    console.warn("telemetry did not start:", error);
    return undefined;
  }
}

async function loadConfig(): Promise<TelemetryConfig> {
  const response = await fetch(CONFIG_PATH, { cache: "no-store" });
  if (!response.ok) throw new Error(`${CONFIG_PATH} answered ${response.status}`);
  return (await response.json()) as TelemetryConfig;
}
