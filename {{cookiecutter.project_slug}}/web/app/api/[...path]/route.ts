// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
// Every /api/* request goes to the backend at API_BASE_URL (lib/server/proxy.ts).
import { proxyToApi } from "../../../lib/server/proxy";

export const dynamic = "force-dynamic";

export const GET = (request: Request) => proxyToApi(request);
export const HEAD = GET;
export const POST = GET;
export const PUT = GET;
export const PATCH = GET;
export const DELETE = GET;
export const OPTIONS = GET;
