// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Next.js runs this file in the browser before the page hydrates: browser telemetry
 * (lib/browser-telemetry.ts) is tracing before the first click can happen. Server-side tracing
 * is instrumentation.ts.
 */
import { startBrowserTelemetry } from "./lib/browser-telemetry";

startBrowserTelemetry();
