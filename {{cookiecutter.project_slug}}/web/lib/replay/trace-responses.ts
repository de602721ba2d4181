// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The traces a recorded page took part in: a wrapper around the page's `fetch` that reads the
 * `traceresponse` header the backend sends on every answer. Each chunk carries the ids it saw.
 */

/** The trace id in a `traceresponse: 00-<trace>-<span>-<flags>` header, when that trace was sampled. */
export function parseTraceResponse(value: string | null | undefined): string | undefined {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec((value ?? "").trim());
  if (!match || /^0+$/.test(match[1])) return undefined;
  // An unsampled trace was never stored: a link to it would lead nowhere.
  return (Number.parseInt(match[3], 16) & 1) === 1 ? match[1] : undefined;
}

interface FetchTarget {
  fetch: typeof fetch;
}

/**
 * Calls `onTraceId` with the sampled trace id of every response whose URL `watched` accepts. It
 * wraps `target.fetch`, outside the tracing instrumentation's own wrapper, and never changes a
 * request or its response. Returns an undo.
 */
export function watchTraceResponses(
  onTraceId: (traceId: string) => void,
  watched: (url: string) => boolean,
  target: FetchTarget = globalThis,
): () => void {
  const original = target.fetch;
  const wrapped: typeof fetch = async function (this: unknown, ...args: Parameters<typeof fetch>) {
    const response = await original.apply(this ?? target, args);
    try {
      if (response.url && watched(response.url)) {
        const traceId = parseTraceResponse(response.headers.get("traceresponse"));
        if (traceId) onTraceId(traceId);
      }
    } catch {
      // a response we cannot read is the page's business, not the recorder's
    }
    return response;
  };
  target.fetch = wrapped;
  return () => {
    if (target.fetch === wrapped) target.fetch = original;
  };
}
