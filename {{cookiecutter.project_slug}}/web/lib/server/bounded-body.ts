// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Request bodies read with a byte limit that holds while they stream in: chunked bodies have no
 * Content-Length to check first, and a compressed one is counted as it inflates (a 10 KB gzip can
 * inflate to 10 MB), so past the limit the read stops and nothing more is buffered or inflated.
 * Either helper throws (or errors its stream with) a RequestRefused: a 4xx status and a one-line reason.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";

/** A request answered with a 4xx `status` and `message` as its one-line reason. */
export class RequestRefused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A plain-text answer of one line. */
export function refusal(status: number, reason: string, headers: Record<string, string> = {}): Response {
  return new Response(`${reason}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
}

const DECODERS = { gzip: createGunzip, "x-gzip": createGunzip, deflate: createInflate, br: createBrotliDecompress };
type Encoding = keyof typeof DECODERS | "identity";

function encodingOf(headers: Headers): Encoding {
  const encoding = (headers.get("content-encoding") ?? "identity").trim().toLowerCase() || "identity";
  if (encoding === "identity" || encoding in DECODERS) return encoding as Encoding;
  throw new RequestRefused(415, `Content-Encoding ${JSON.stringify(encoding.slice(0, 40))} is not accepted (gzip, deflate, br or none)`);
}

function declaredLength(headers: Headers): number | undefined {
  const value = headers.get("content-length");
  return value !== null && /^\d+$/.test(value.trim()) ? Number(value) : undefined;
}

/** Refuses at once a body whose declared length is already over `maxBytes`. */
export function checkDeclaredLength(headers: Headers, maxBytes: number): void {
  const declared = declaredLength(headers);
  if (declared !== undefined && declared > maxBytes) {
    throw new RequestRefused(413, `body is ${declared} bytes; the limit is ${maxBytes}`);
  }
}

/**
 * The body of `request`, decompressed per its Content-Encoding, at most `maxBytes` of it.
 * Throws RequestRefused: 413 past the limit (counted after decompression), 415 for an unknown
 * encoding, 400 for a body that does not decompress or was cut short.
 */
export async function readBoundedBody(request: Request, maxBytes: number): Promise<Buffer> {
  const encoding = encodingOf(request.headers);
  if (encoding === "identity") checkDeclaredLength(request.headers, maxBytes);
  if (!request.body) return Buffer.alloc(0);
  const source = Readable.fromWeb(request.body as import("node:stream/web").ReadableStream);
  const decoder = encoding === "identity" ? undefined : DECODERS[encoding]();
  const parts: Buffer[] = [];
  let size = 0;
  const what = decoder ? " once decompressed" : "";
  try {
    // The decoder works under back-pressure: it inflates one 16 KiB piece at a time, as it is read.
    const decoded = decoder ?? source;
    const piped = decoder ? pipeline(source, decoder) : Promise.resolve();
    piped.catch(() => undefined); // its error, if any, surfaces in the loop below
    for await (const part of decoded as AsyncIterable<Buffer>) {
      size += part.length;
      if (size > maxBytes) throw new RequestRefused(413, `body is over the limit of ${maxBytes} bytes${what}`);
      parts.push(part);
    }
    await piped;
  } catch (error) {
    if (error instanceof RequestRefused) throw error;
    const code = String((error as { code?: unknown }).code ?? "");
    if (decoder && (code.startsWith("Z_") || code.includes("BROTLI"))) {
      throw new RequestRefused(400, `body is not valid ${encoding}`);
    }
    throw new RequestRefused(400, "body ended before it was complete");
  } finally {
    decoder?.destroy();
    source.destroy();
  }
  return Buffer.concat(parts, size);
}

/**
 * `body` passed through as it streams, erroring with a 413 RequestRefused once more than `maxBytes`
 * went by (bytes as sent: a proxy forwards them without decoding). `state.refused` says whether
 * that happened, for the caller that only sees its fetch fail.
 */
export function limitedStream(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  state: { refused?: RequestRefused },
): ReadableStream<Uint8Array> {
  let size = 0;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(part, controller) {
        size += part.byteLength;
        if (size > maxBytes) {
          state.refused = new RequestRefused(413, `body is over the limit of ${maxBytes} bytes`);
          controller.error(state.refused);
          return;
        }
        controller.enqueue(part);
      },
    }),
  );
}
