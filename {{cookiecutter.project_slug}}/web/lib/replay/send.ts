// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * One chunk's POST to /api/replay/<session id>: gzip-compressed when the browser can (and the page
 * is not leaving), with the session's write secret, answered as a Delivery for the uploader.
 */
import type { Chunk, Delivery, Send } from "./uploader";

/** The browser lets a page keep 64 KiB of keepalive request bodies in flight; stay under it. */
export const KEEPALIVE_MAX_BYTES = 60 * 1024;
/** backend/app/replay/routes.py: only the tab that started a session may append to it. */
export const WRITE_SECRET_HEADER = "x-replay-write-secret";

/** A Send that POSTs each chunk to `url` with `writeSecret`; `request` is the page's fetch. */
export function uploadTo(url: string, writeSecret: string, request: typeof fetch = (...args) => fetch(...args)): Send {
  return async (chunk: Chunk, { leaving }): Promise<Delivery> => {
    const headers: Record<string, string> = { "content-type": "application/json", [WRITE_SECRET_HEADER]: writeSecret };
    const plain = new TextEncoder().encode(chunk.body);
    let body: Uint8Array = plain;
    const zipped = leaving ? undefined : await gzip(plain);
    if (zipped) {
      body = zipped;
      headers["content-encoding"] = "gzip";
    }
    const response = await request(url, {
      method: "POST",
      headers,
      body: body as BodyInit,
      credentials: "same-origin",
      keepalive: body.byteLength <= KEEPALIVE_MAX_BYTES,
    });
    // The backend counts a session's bytes uncompressed: so does the uploader's budget.
    if (response.ok) return { status: response.status, bytes: plain.byteLength };
    const code = await response
      .json()
      .then((answer: { code?: unknown }) => (typeof answer.code === "string" ? answer.code : undefined))
      .catch(() => undefined);
    const retryAfter = Number(response.headers.get("retry-after"));
    return { status: response.status, bytes: plain.byteLength, code, retryAfterMs: retryAfter > 0 ? retryAfter * 1000 : undefined };
  };
}

/** gzip with CompressionStream (native, off the JavaScript heap); undefined where there is none. */
async function gzip(data: Uint8Array): Promise<Uint8Array | undefined> {
  if (typeof CompressionStream === "undefined") return undefined;
  try {
    const stream = new Blob([data as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch {
    return undefined;
  }
}
