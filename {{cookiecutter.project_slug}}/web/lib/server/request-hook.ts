// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * What happens to every request this Node.js process's HTTP server takes, before Next.js sees it.
 * instrumentation.ts installs it once at start (Next.js awaits register() before it handles a
 * request; one taken in the instant before is left as it came, and counts as an unknown client).
 *
 * - markPeer (lib/server/client-address.ts): the client is the socket's peer, never a header it
 *   sent.
 * - the page policy (lib/server/security-headers.ts): a GET or HEAD of a page gets a
 *   Content-Security-Policy with a fresh nonce, on the response and on the request, where Next.js
 *   reads the nonce for its own inline scripts.
 *
 * Why here and not in a Next.js proxy.ts (middleware): Next.js reads a request body whole for a
 * proxy before the route runs (the /api/* and /otel/* routes stream theirs, with their own limits),
 * records a SERVER span of its own per request, and a proxy cannot see the socket's address.
 */
import * as http from "node:http";
import { markPeer } from "./client-address";
import type { Env } from "./env";
import { newNonce, pageContentSecurityPolicy } from "./security-headers";

const INSTALLED = Symbol.for("sage-obs.web.request-hook");
// Paths that are not pages: JSON routes, the build's static files, and the replay viewer, which
// keeps its own policy (next.config.ts).
const NOT_PAGES = ["/api/", "/otel/", "/_next/", "/replay/"];

/** True for a request whose answer is an HTML page of this app. */
export function isPageRequest(method: string | undefined, url: string | undefined): boolean {
  if (method !== "GET" && method !== "HEAD") return false;
  const path = (url ?? "/").split("?", 1)[0];
  return !NOT_PAGES.some((prefix) => path.startsWith(prefix));
}

/** Applies both to one request (exported for tests). */
export function onRequest(request: http.IncomingMessage, response: http.ServerResponse, env: Env): void {
  markPeer(request);
  delete request.headers["content-security-policy"]; // only ever this server's
  delete request.headers["content-security-policy-report-only"];
  if (!isPageRequest(request.method, request.url)) return;
  const policy = pageContentSecurityPolicy(newNonce(), env, env.NODE_ENV === "development");
  request.headers["content-security-policy"] = policy;
  response.setHeader("Content-Security-Policy", policy);
}

/** Installs the hook on every HTTP server of this process (once; later calls do nothing). */
export function installRequestHook(env: Env = process.env): void {
  const global = globalThis as typeof globalThis & { [INSTALLED]?: boolean };
  if (global[INSTALLED]) return;
  global[INSTALLED] = true;
  type Emit = (this: http.Server, event: string | symbol, ...args: unknown[]) => boolean;
  const emit = http.Server.prototype.emit as Emit;
  http.Server.prototype.emit = function (this: http.Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event === "request") onRequest(args[0] as http.IncomingMessage, args[1] as http.ServerResponse, env);
    return emit.call(this, event, ...args);
  } as typeof http.Server.prototype.emit;
}
