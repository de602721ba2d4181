// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
// Next.js runs this before every route (Next 16's "proxy", formerly middleware): the client's own
// forwarding headers are dropped, so X-Forwarded-For is the socket's peer; pages get a CSP with a
// fresh nonce. What and why: lib/server/security-headers.ts.
import { type NextRequest, NextResponse } from "next/server";
import { newNonce, pageContentSecurityPolicy, withoutClientForwarding } from "./lib/server/security-headers";

// Routes that answer data, not pages (the replay viewer keeps its own policy, next.config.ts).
const NOT_PAGES = ["/api/", "/otel/", "/replay/"];

export function proxy(request: NextRequest): NextResponse {
  const headers = withoutClientForwarding(request.headers);
  const path = request.nextUrl.pathname;
  if (NOT_PAGES.some((prefix) => path.startsWith(prefix))) {
    return NextResponse.next({ request: { headers } });
  }
  const policy = pageContentSecurityPolicy(newNonce(), process.env, process.env.NODE_ENV === "development");
  headers.set("content-security-policy", policy); // where Next.js reads the nonce for its scripts
  const response = NextResponse.next({ request: { headers } });
  response.headers.set("content-security-policy", policy);
  return response;
}

export const config = {
  // Everything but the build's static files: those carry no identity and need no policy.
  matcher: ["/((?!_next/static|_next/image).*)"],
};
