// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * What the Next.js proxy (proxy.ts, at the app's root) does to every request before a route sees it:
 *
 * - the client's identity: any X-Forwarded-For, X-Real-IP, Forwarded or X-Forwarded-Host/Port/Proto
 *   the client sent is dropped, so Next.js sets X-Forwarded-For to the address of the socket it
 *   accepted (it only fills the header in when the request has none). Route handlers read that one
 *   address (clientAddress below): the rate limits here and the backend's (the /api/* proxy sends it
 *   on) see who connected, not who the client says it is.
 * - the pages' Content-Security-Policy: a fresh nonce per request, which Next.js puts on its own
 *   inline scripts (it reads the nonce from the request's CSP header); no other inline script runs.
 *   Fetches go to this origin only (the browser's OTLP export and the /api/* proxy), plus the replay
 *   vendor's own endpoints when SESSION_REPLAY names Highlight or Sentry.
 */
import type { Env } from "./env";
import { replayVendor } from "./env";

/** Headers through which a client could name another address, host or scheme than its own. */
export const CLIENT_FORWARDING_HEADERS = [
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-port",
  "x-forwarded-proto",
  "x-real-ip",
  "forwarded",
] as const;

/** `incoming` without the forwarding headers a client may have sent. */
export function withoutClientForwarding(incoming: Headers): Headers {
  const headers = new Headers(incoming);
  for (const name of CLIENT_FORWARDING_HEADERS) headers.delete(name);
  return headers;
}

/**
 * The client's address as this server's socket saw it: the X-Forwarded-For Next.js set once
 * proxy.ts dropped the client's own. Should that header still be a list (the proxy did not run for
 * the route), the last entry is the one Next.js would have appended. An IPv4 address on a
 * dual-stack socket loses its ::ffff: prefix, so one client is one key.
 */
export function clientAddress(headers: Headers): string {
  const forwarded = headers.get("x-forwarded-for") ?? "";
  const last = forwarded.split(",").pop()?.trim() ?? "";
  const address = last.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "");
  return address ? address.slice(0, 64) : "unknown";
}

/** The origins of `urls`, skipping what does not parse. */
function origins(urls: readonly string[]): string[] {
  const found = new Set<string>();
  for (const url of urls) {
    try {
      const origin = new URL(url).origin;
      if (origin.startsWith("http")) found.add(origin);
    } catch {
      // not a URL: nothing to allow
    }
  }
  return [...found];
}

/** Highlight's defaults (lib/replay/highlight.ts; its module is browser-only, so not imported here). */
const HIGHLIGHT_DEFAULTS = ["https://pub.highlight.io", "https://otel.highlight.io"];

/** Where the chosen replay vendor's browser SDK sends its data (connect-src). */
export function replayVendorOrigins(env: Env): string[] {
  switch (replayVendor(env)) {
    case "highlight":
      return origins([
        env.HIGHLIGHT_BACKEND_URL?.trim() || HIGHLIGHT_DEFAULTS[0],
        env.HIGHLIGHT_OTLP_ENDPOINT?.trim() || HIGHLIGHT_DEFAULTS[1],
      ]);
    case "sentry":
      return origins([env.SENTRY_DSN?.trim() ?? ""]);
    default:
      return [];
  }
}

/** A nonce for one response: 128 random bits, base64. */
export function newNonce(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
}

/**
 * The pages' policy. 'strict-dynamic' lets the nonced bootstrap load the app's chunks (and the
 * replay vendor's, loaded after hydration); style-src has no 'unsafe-inline' (the app's CSS is a
 * stylesheet); workers from blob: are what Sentry's and Highlight's replay compressors start.
 */
export function pageContentSecurityPolicy(nonce: string, env: Env, development = false): string {
  const connect = ["'self'", ...replayVendorOrigins(env), ...(development ? ["ws:", "wss:"] : [])];
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'${development ? " 'unsafe-eval'" : ""}`,
    `style-src 'self' 'nonce-${nonce}'${development ? " 'unsafe-inline'" : ""}`,
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    `connect-src ${connect.join(" ")}`,
    "worker-src 'self' blob:",
    "frame-src 'none'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

