// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The client's identity on this server: the address of the socket it accepted, never a header the
 * client wrote. Next.js keeps an incoming X-Forwarded-For and only fills the header in when there
 * is none, and a route handler cannot see the socket; a proxy.ts (middleware) that dropped the
 * header would also make Next.js read every request body whole for it. So the request hook
 * (lib/server/request-hook.ts) calls markPeer() for every request the HTTP server takes, before
 * Next.js sees it: the client's forwarding headers (X-Forwarded-For, X-Real-IP, Forwarded,
 * X-Forwarded-Host/Port/Proto) are dropped and X-Forwarded-For is set to the socket's peer, with a
 * mark only this process knows. clientAddress() trusts X-Forwarded-For only with that mark: a
 * request that came in before the hook was installed counts as "unknown" (one shared identity),
 * never as the address it names.
 *
 * The rate limits of the browser OTLP route and the backend's (the /api/* proxy sends the address
 * on) all use this one identity. Behind a load balancer every client is the balancer's address:
 * the per-client limits then act as one total limit.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";

/** Headers through which a client could name another address, host or scheme than its own. */
export const CLIENT_FORWARDING_HEADERS = [
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-port",
  "x-forwarded-proto",
  "x-real-ip",
  "forwarded",
] as const;
/** Carries the process's mark from the HTTP server to the route handlers; never sent upstream. */
export const PEER_MARK_HEADER = "x-web-peer-mark";
export const UNKNOWN_CLIENT = "unknown";
// Route handlers and instrumentation.ts are bundled apart: the mark lives on globalThis.
const MARK = Symbol.for("sage-obs.web.peer-mark");

type Marked = typeof globalThis & { [MARK]?: string };

function mark(): string {
  const global = globalThis as Marked;
  global[MARK] ??= randomBytes(16).toString("hex");
  return global[MARK];
}

/** An IPv4 address on a dual-stack socket loses its ::ffff: prefix, so one client is one key. */
export function normalizeAddress(address: string | undefined): string {
  const plain = (address ?? "").replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "");
  return plain ? plain.slice(0, 64) : UNKNOWN_CLIENT;
}

/** Rewrites `request`'s headers as described above. */
export function markPeer(request: Pick<IncomingMessage, "headers" | "socket">): void {
  const headers = request.headers;
  for (const name of [...CLIENT_FORWARDING_HEADERS, PEER_MARK_HEADER]) delete headers[name];
  headers["x-forwarded-for"] = normalizeAddress(request.socket?.remoteAddress);
  headers[PEER_MARK_HEADER] = mark();
}

/** The client's address, as markPeer() set it; "unknown" for a request it did not see. */
export function clientAddress(headers: Headers): string {
  const marked = (globalThis as Marked)[MARK];
  if (!marked || headers.get(PEER_MARK_HEADER) !== marked) return UNKNOWN_CLIENT;
  return normalizeAddress(headers.get("x-forwarded-for") ?? undefined);
}

/** Headers of a request as the HTTP server passes it on from `address` (for tests). */
export function peerHeaders(address: string): Record<string, string> {
  return { "x-forwarded-for": address, [PEER_MARK_HEADER]: mark() };
}
