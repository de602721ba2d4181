// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import type { NextConfig } from "next";

/**
 * The replay viewer (app/replay) rebuilds DOM that a browser sent in: it must not make the
 * operator's browser fetch anything from elsewhere (images, stylesheets, fonts, frames that an
 * attacker's recording points at). rrweb-player's frame is a sandboxed about:blank document (no
 * allow-scripts: nothing replayed runs), which inherits this policy, so both allow only this
 * origin. Next.js's own inline bootstrap scripts need 'unsafe-inline' (a nonce would need a
 * middleware on every request); `next dev` also needs eval and its websocket.
 */
const development = process.env.NODE_ENV === "development";
const REPLAY_VIEWER_CSP = [
  "default-src 'self'",
  `script-src 'self' 'unsafe-inline'${development ? " 'unsafe-eval'" : ""}`,
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "media-src 'self' blob:",
  `connect-src 'self'${development ? " ws: wss:" : ""}`,
  "frame-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'self'",
].join("; ");

// API_BASE_URL and OTEL_EXPORTER_OTLP_ENDPOINT are read by route handlers at request time
// (lib/server/env.ts), not here: rewrites and env entries in this file are fixed at build time.
const nextConfig: NextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  async headers() {
    return [
      // Every response: never framed, never MIME-sniffed, referrers cut to the origin elsewhere.
      // The pages' Content-Security-Policy carries a per-request nonce: lib/server/request-hook.ts sets it.
      {
        source: "/:path*",
        headers: [
          { key: "X-Frame-Options", value: "DENY" },
          { key: "X-Content-Type-Options", value: "nosniff" },
          { key: "Referrer-Policy", value: "strict-origin-when-cross-origin" },
        ],
      },
      // Listed last: its Referrer-Policy wins over the one above.
      {
        source: "/replay/:path*",
        headers: [
          { key: "Content-Security-Policy", value: REPLAY_VIEWER_CSP },
          { key: "Referrer-Policy", value: "no-referrer" },
        ],
      },
    ];
  },
};

export default nextConfig;
