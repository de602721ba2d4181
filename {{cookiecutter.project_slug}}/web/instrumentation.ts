// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Next.js calls register() once when the server starts: the client address every route sees and
 * the pages' policy (lib/server/request-hook.ts), server-side tracing (lib/server/otel.ts),
 * configured from the environment at that moment. Browser tracing is lib/otel-web.ts.
 * A SESSION_REPLAY naming no vendor stops the server here, in one line, before it serves a page.
 */
export async function register(): Promise<void> {
  if (process.env.NEXT_RUNTIME !== "nodejs") return; // no route of this app runs on the edge
  // First: from here on every request's client is the socket's peer, never a header it wrote,
  // and every page gets its Content-Security-Policy.
  const { installRequestHook } = await import("./lib/server/request-hook");
  installRequestHook(process.env);
  const { replayVendor } = await import("./lib/server/env");
  try {
    replayVendor(process.env);
  } catch (error) {
    // Next.js would log a thrown error and serve on, failing every page: stop instead, in one line.
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  const { registerServerTelemetry } = await import("./lib/server/otel");
  registerServerTelemetry(process.env);
}
