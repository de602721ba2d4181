/**
 * The browser's OTLP exports, forwarded to the collector (app/otel/v1/traces/route.ts). The
 * collector's address is read at request time; the forward itself is never traced.
 */
import { type Env, otlpHeaders, otlpTracesUrl } from "./env";

/** Above this a body is refused (413); the browser exporter sends far less per batch. */
export const MAX_OTLP_BODY_BYTES = 4 * 1024 * 1024;
const MEDIA_TYPES = new Set(["application/json", "application/x-protobuf"]);
const COLLECTOR_TIMEOUT_MS = 10_000;

function plain(status: number, text: string): Response {
  return new Response(`${text}\n`, { status, headers: { "content-type": "text/plain" } });
}

export async function forwardTraces(request: Request, env: Env = process.env): Promise<Response> {
  const mediaType = (request.headers.get("content-type") ?? "").split(";", 1)[0].trim().toLowerCase();
  if (!MEDIA_TYPES.has(mediaType)) return plain(415, "OTLP/HTTP takes application/json or application/x-protobuf");
  if (Number(request.headers.get("content-length") ?? 0) > MAX_OTLP_BODY_BYTES) return plain(413, "too large");
  const body = await request.arrayBuffer();
  if (body.byteLength > MAX_OTLP_BODY_BYTES) return plain(413, "too large");

  const headers = new Headers({ ...otlpHeaders(env), "content-type": mediaType });
  const encoding = request.headers.get("content-encoding");
  if (encoding) headers.set("content-encoding", encoding);
  try {
    const upstream = await fetch(otlpTracesUrl(env), {
      method: "POST",
      headers,
      body,
      cache: "no-store",
      signal: AbortSignal.timeout(COLLECTOR_TIMEOUT_MS),
      opentelemetry: { ignore: true },
    });
    return new Response(await upstream.arrayBuffer(), {
      status: upstream.status,
      headers: { "content-type": upstream.headers.get("content-type") ?? mediaType },
    });
  } catch {
    // 503 tells the browser exporter to retry later, as it would with a collector that is down.
    return plain(503, "collector unreachable");
  }
}
