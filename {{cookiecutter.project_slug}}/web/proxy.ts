// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
// Next.js runs this before each page (Next 16's "proxy", formerly middleware): the page's
// Content-Security-Policy with a fresh nonce (lib/server/security-headers.ts). The client's
// address is set earlier, for every route, by lib/server/client-address.ts.
import { type NextRequest, NextResponse } from "next/server";
import { newNonce, pageContentSecurityPolicy } from "./lib/server/security-headers";

export function proxy(request: NextRequest): NextResponse {
  const policy = pageContentSecurityPolicy(newNonce(), process.env, process.env.NODE_ENV === "development");
  const headers = new Headers(request.headers);
  headers.set("content-security-policy", policy); // where Next.js reads the nonce for its scripts
  const response = NextResponse.next({ request: { headers } });
  response.headers.set("content-security-policy", policy);
  return response;
}

export const config = {
  // Pages only. Next.js hands a proxy a copy of each request body, read whole first: the routes
  // that take bodies (/api, /otel) stream them and must never pass through here. The replay
  // viewer keeps its own policy (next.config.ts); the build's static files need none.
  matcher: ["/((?!api/|otel/|replay/|_next/static/|_next/image|icon\\.svg).*)"],
};
