// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The pages' Content-Security-Policy, set by the request hook (lib/server/request-hook.ts) on every
 * page request: a fresh nonce per request, which Next.js puts on its own inline scripts (it reads
 * the nonce from the request's CSP header); no other inline script or handler runs. Fetches go to
 * this origin only (the browser's OTLP export and the /api/* proxy), plus the replay vendor's own
 * endpoints when SESSION_REPLAY names Highlight or Sentry. The headers every response carries
 * (X-Frame-Options, nosniff, Referrer-Policy) are in next.config.ts.
 */
import type { Env } from "./env";
import { replayVendor } from "./env";

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

