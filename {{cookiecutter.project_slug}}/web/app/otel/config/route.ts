// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
// The browser's telemetry settings, from this server's environment now (lib/server/env.ts).
import { telemetryConfig } from "../../../lib/server/env";

export const dynamic = "force-dynamic";

export function GET(): Response {
  return Response.json(telemetryConfig(process.env), { headers: { "cache-control": "no-store" } });
}
