// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
// The browser exports its traces, logs and metrics here (/otel/v1/traces, /logs, /metrics); what
// passes lib/server/otlp-forward.ts's checks goes on to OTEL_EXPORTER_OTLP_ENDPOINT.
import { forwardOtlp } from "../../../../lib/server/otlp-forward";

export const dynamic = "force-dynamic";

export async function POST(request: Request, context: { params: Promise<{ signal: string }> }): Promise<Response> {
  return forwardOtlp(request, (await context.params).signal);
}
