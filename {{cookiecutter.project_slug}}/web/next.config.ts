import type { NextConfig } from "next";

// API_BASE_URL and OTEL_EXPORTER_OTLP_ENDPOINT are read by route handlers at request time
// (lib/server/env.ts), not here: rewrites and env entries in this file are fixed at build time.
const nextConfig: NextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
};

export default nextConfig;
