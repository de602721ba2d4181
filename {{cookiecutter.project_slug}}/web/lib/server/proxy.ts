// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The same-origin proxy from the browser to the backend (app/api/[...path]/route.ts): the page
 * calls /api/* on its own origin (no CORS), and the Next.js server forwards to API_BASE_URL, read
 * at request time. The forward uses node:http, not fetch: fetch cannot return an answer the backend
 * sends before the upload is complete (its 413 for an oversized body became a 502 here). The
 * server's instrumentation (@vercel/otel, instrumentation.ts) makes the forward's CLIENT span, on
 * node:http as on fetch, and sends that span's traceparent; the session headers pass through
 * unchanged and name the session on the request's SERVER span too. The client's own forwarding
 * headers never pass: X-Forwarded-For is the address this server saw (forwardRequestHeaders).
 *
 * Request bodies stream through to the backend as they arrive, never buffered here, counted on the
 * way: past API_MAX_BODY_BYTES (as sent; the backend bounds what a compressed body inflates to)
 * the upload is cut without its last chunk, so the backend never sees a complete request, and the
 * client gets a 413 (the backend's own, with its `code`, when it refused the body first). Once the backend has
 * answered, the rest of an upload is no longer read or sent: the answer goes back as it is.
 */
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders } from "node:http";
import * as http from "node:http";
import * as https from "node:https";
import { Readable } from "node:stream";
import { checkDeclaredLength, limitedStream, RequestRefused, refusal } from "./bounded-body";
import { apiBaseUrl, apiMaxBodyBytes, type Env } from "./env";
import { scrubText } from "./scrubbing";
import { CLIENT_FORWARDING_HEADERS, clientAddress, PEER_MARK_HEADER, UNKNOWN_CLIENT } from "./client-address";
import { activeServerSpan } from "./server-span";
import { sessionAttributes } from "./session";

// Hop-by-hop headers (RFC 9110 7.6.1) and those node:http sets itself (the body goes chunked).
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
// node:http hands over the body as sent, still encoded: Content-Encoding goes back with it (the
// browser decodes it; Next.js compresses nothing that is encoded already). Next.js sets the
// length, or sends it chunked.
const NOT_RETURNED = NOT_FORWARDED;
// Statuses whose answer has no body (a Response cannot be built with one).
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);
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

/**
 * The headers to send upstream: end-to-end ones, plus who connected and where. Forwarding headers
 * come from this server alone, never from the client: X-Forwarded-For is the one address this
 * server's socket saw (`client`), so the backend, which trusts that header from this tier only,
 * rate-limits the real peer however the client fills in its own (lib/server/client-address.ts).
 */
export function forwardRequestHeaders(incoming: Headers, requestUrl: URL, client: string): Headers {
  const headers = copyHeaders(incoming, NOT_FORWARDED);
  for (const name of [...CLIENT_FORWARDING_HEADERS, PEER_MARK_HEADER]) headers.delete(name);
  // Unknown (a request the server took before it could mark it): the backend sees this server.
  if (client !== UNKNOWN_CLIENT) headers.set("x-forwarded-for", client);
  headers.set("x-forwarded-host", incoming.get("host") ?? requestUrl.host);
  headers.set("x-forwarded-proto", requestUrl.protocol.replace(":", ""));
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

/** The backend's answer, or why there is none (the connection failed or closed before it). */
type Answer = { response: IncomingMessage } | { error: Error };

function answerOf(upstream: ClientRequest): Promise<Answer> {
  return new Promise((resolve) => {
    upstream.once("response", (response: IncomingMessage) => resolve({ response }));
    upstream.on("error", (error) => resolve({ error }));
    upstream.once("close", () => resolve({ error: new Error("the connection closed before an answer") }));
  });
}

/** Resolves once `upstream` takes more data, or will never again. */
function drained(upstream: ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      upstream.off("drain", done).off("close", done);
      resolve();
    };
    upstream.on("drain", done).on("close", done);
  });
}

/**
 * Streams `body` into `upstream` under back-pressure and ends it; stops reading `body` once the
 * backend has answered. True when the backend got the whole body. Past the limit (or when the
 * client's body fails) the connection's write side is closed with no last chunk: the backend sees
 * an incomplete request, while an answer it already sent can still be read.
 */
async function sendBody(
  body: ReadableStream<Uint8Array>,
  upstream: ClientRequest,
  answer: Promise<Answer>,
): Promise<boolean> {
  const reader = body.getReader();
  let answered = false;
  void answer.then(() => {
    answered = true;
    reader.cancel().catch(() => undefined);
  });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (answered || upstream.destroyed) return false;
      if (done) break;
      if (!upstream.write(value)) await Promise.race([drained(upstream), answer]);
    }
  } catch {
    if (upstream.socket && !answered) upstream.socket.end();
    else upstream.destroy();
    return false;
  }
  upstream.end();
  return true;
}

async function endWithoutBody(upstream: ClientRequest): Promise<boolean> {
  upstream.end();
  return true;
}

/** The backend's answer as a Response whose body streams from it. */
function relayed(response: IncomingMessage, method: string, whenDone: () => void): Response {
  response.once("close", whenDone);
  const headers = new Headers();
  const raw = response.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i], raw[i + 1]);
  const status = response.statusCode ?? 502;
  const hasBody = method !== "HEAD" && !NULL_BODY_STATUSES.has(status);
  if (!hasBody) response.resume();
  return new Response(hasBody ? (Readable.toWeb(response) as ReadableStream<Uint8Array>) : null, {
    status,
    statusText: response.statusMessage,
    headers: forwardResponseHeaders(headers),
  });
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
  const body = request.method === "GET" || request.method === "HEAD" ? null : request.body;
  if (body) {
    try {
      checkDeclaredLength(request.headers, maxBytes);
    } catch (error) {
      if (error instanceof RequestRefused) return refusal(error.status, error.message);
      throw error;
    }
  }
  // A plain object: the instrumentation writes traceparent into it (http.request's options.headers).
  const headers: OutgoingHttpHeaders = Object.fromEntries(
    forwardRequestHeaders(request.headers, requestUrl, clientAddress(request.headers)),
  );
  const upstream = (target.protocol === "https:" ? https : http).request(target, {
    method: request.method,
    headers,
    signal: AbortSignal.any([request.signal, AbortSignal.timeout(UPSTREAM_TIMEOUT_MS)]),
  });
  const answer = answerOf(upstream);
  const counted: { refused?: RequestRefused } = {};
  const sent = body ? sendBody(limitedStream(body, maxBytes, counted), upstream, answer) : endWithoutBody(upstream);
  const result = await answer;
  if ("error" in result) {
    if (counted.refused) return refusal(counted.refused.status, counted.refused.message);
    console.error(`api proxy: ${request.method} ${scrubText(target.href)} failed: ${scrubText(result.error.message)}`);
    return Response.json({ detail: `the API at ${target.origin} could not be reached` }, { status: 502 });
  }
  // Past our limit only the backend's own 413 (sent before it saw the cut) beats ours: another
  // answer may be about the cut itself (a 400 for an incomplete request).
  if (counted.refused && result.response.statusCode !== 413) {
    upstream.destroy();
    return refusal(counted.refused.status, counted.refused.message);
  }
  // A connection whose request was cut cannot carry another one.
  return relayed(result.response, request.method, () => void sent.then((whole) => whole || upstream.destroy()));
}
