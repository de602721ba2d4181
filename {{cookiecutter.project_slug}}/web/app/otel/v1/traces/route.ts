// The browser exports its spans here; they go on to OTEL_EXPORTER_OTLP_ENDPOINT (lib/server/otlp-forward.ts).
import { forwardTraces } from "../../../../lib/server/otlp-forward";

export const dynamic = "force-dynamic";

export const POST = (request: Request) => forwardTraces(request);
