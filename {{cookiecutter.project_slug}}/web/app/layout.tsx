// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import { context, propagation } from "@opentelemetry/api";
import type { Metadata } from "next";
import { connection } from "next/server";
import type { ReactNode } from "react";
import { PROJECT_NAME } from "../lib/config";
import { telemetryEnabled, telemetryConfig } from "../lib/server/env";
import { CONFIG_META } from "../lib/telemetry-config";
import "./globals.css";

export const metadata: Metadata = { title: PROJECT_NAME };

/**
 * The trace context of this server render, for the page's `<meta name="traceparent">`: the
 * browser's document-load span (lib/otel-web.ts) takes it as its parent, so one trace shows the
 * render, the page load and its resources.
 */
function renderTraceContext(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

export default async function RootLayout({ children }: { children: ReactNode }) {
  // Rendered per request, never prerendered: the settings come from this server's environment
  // now, and the traceparent names this request's render.
  await connection();
  const config = telemetryConfig(process.env);
  const { traceparent } = telemetryEnabled(process.env) ? renderTraceContext() : {};
  return (
    <html lang="en">
      <head>
        <meta name={CONFIG_META} content={JSON.stringify(config)} />
        {traceparent && <meta name="traceparent" content={traceparent} />}
      </head>
      <body>
        <header className="site">
          <h1>{PROJECT_NAME}</h1>
        </header>
        {children}
      </body>
    </html>
  );
}
