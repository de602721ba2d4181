// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The same-origin proxy from the browser to the backend (app/api/[...path]/route.ts): the page
 * calls /api/* on its own origin (no CORS), and the Next.js server forwards to API_BASE_URL, read
 * at request time. The server's fetch instrumentation (instrumentation.ts) makes a CLIENT span
 * for the forward and sends its own traceparent; the session headers pass through unchanged and
 * name the session on the request's SERVER span too.
 *
 * Request bodies stream through to the backend as they arrive, never buffered here, counted on the
 * way: past API_MAX_BODY_BYTES (as sent; the backend bounds what a compressed body inflates to)
 * the forward is aborted, so the backend never sees a complete request, and the client gets a 413.
 */
import { checkDeclaredLength, limitedStream, RequestRefused, refusal } from "./bounded-body";
import { apiBaseUrl, apiMaxBodyBytes, type Env } from "./env";
import { scrubText } from "./scrubbing";
import { activeServerSpan } from "./server-span";
import { sessionAttributes } from "./session";

// Hop-by-hop headers (RFC 9110 7.6.1) and those the fetch below sets itself.
const NOT_FORWARDED = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
]);
// The body is decoded by fetch, so its encoding and length no longer describe it.
const NOT_RETURNED = new Set([...NOT_FORWARDED, "content-encoding"]);
const UPSTREAM_TIMEOUT_MS = 120_000;

function copyHeaders(source: Headers, dropped: ReadonlySet<string>): Headers {
  const named = (source.get("connection") ?? "")
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  const result = new Headers();
  source.forEach((value, name) => {
    if (!dropped.has(name) && !named.includes(name)) result.append(name, value);
  });
  return result;
}

/** The headers to send upstream: end-to-end ones, plus where the request came in. */
export function forwardRequestHeaders(incoming: Headers, requestUrl: URL): Headers {
  const headers = copyHeaders(incoming, NOT_FORWARDED);
  if (!headers.has("x-forwarded-host")) headers.set("x-forwarded-host", requestUrl.host);
  if (!headers.has("x-forwarded-proto")) headers.set("x-forwarded-proto", requestUrl.protocol.replace(":", ""));
  return headers;
}

/** The headers to return to the browser. */
export function forwardResponseHeaders(upstream: Headers): Headers {
  return copyHeaders(upstream, NOT_RETURNED);
}

/** The backend URL for a request to this server: same path (with /api) and query, on API_BASE_URL. */
export function upstreamUrl(requestUrl: URL, baseUrl: string): URL {
  const base = new URL(baseUrl);
  const basePath = base.pathname.replace(/\/+$/, "");
  return new URL(`${basePath}${requestUrl.pathname}${requestUrl.search}`, base.origin);
}

/**
 * Forwards `request` to the backend and streams the answer back; 413 for a body over
 * API_MAX_BODY_BYTES, 502 when the backend cannot be reached.
 */
export async function proxyToApi(request: Request, env: Env = process.env): Promise<Response> {
  const requestUrl = new URL(request.url);
  const target = upstreamUrl(requestUrl, apiBaseUrl(env));
  const maxBytes = apiMaxBodyBytes(env);
  activeServerSpan()?.setAttributes(sessionAttributes((name) => request.headers.get(name) ?? undefined));
  const counted: { refused?: RequestRefused } = {};
  let body: ReadableStream<Uint8Array> | undefined;
  if (request.body && request.method !== "GET" && request.method !== "HEAD") {
    try {
      checkDeclaredLength(request.headers, maxBytes);
    } catch (error) {
      if (error instanceof RequestRefused) return refusal(error.status, error.message);
      throw error;
    }
    body = limitedStream(request.body, maxBytes, counted);
  }
  let upstream: Response;
  try {
    upstream = await fetch(target, {
      method: request.method,
      headers: forwardRequestHeaders(request.headers, requestUrl),
      body,
      duplex: "half",
      redirect: "manual",
      cache: "no-store",
      signal: AbortSignal.any([request.signal, AbortSignal.timeout(UPSTREAM_TIMEOUT_MS)]),
    } as RequestInit);
  } catch (error) {
    if (counted.refused) return refusal(counted.refused.status, counted.refused.message);
    const reason = error instanceof Error ? error.message : String(error);
    console.error(`api proxy: ${request.method} ${scrubText(target.href)} failed: ${scrubText(reason)}`);
    return Response.json({ detail: `the API at ${target.origin} could not be reached` }, { status: 502 });
  }
  return new Response(upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: forwardResponseHeaders(upstream.headers),
  });
}
