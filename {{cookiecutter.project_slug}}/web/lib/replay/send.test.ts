// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { describe, test } from "node:test";
import { uploadTo, WRITE_SECRET_HEADER } from "./send";

const SECRET = "k".repeat(43);

function recordingFetch(answer: () => Response) {
  const calls: { url: string; init: RequestInit }[] = [];
  const request = (async (url: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(url), init: init ?? {} });
    return answer();
  }) as typeof fetch;
  return { calls, request };
}

describe("sending a chunk", () => {
  test("it POSTs the chunk gzipped with the session's write secret, and counts its uncompressed bytes", async () => {
    const { calls, request } = recordingFetch(() => new Response(null, { status: 201 }));
    const body = JSON.stringify({ seq: 0, events: [{ type: 4, timestamp: 1, data: { text: "é".repeat(100) } }], trace_ids: [] });
    const delivery = await uploadTo("http://app.test/api/replay/s-1", SECRET, request)({ seq: 0, body, events: 1 }, { leaving: false });
    const headers = calls[0].init.headers as Record<string, string>;
    assert.equal(headers[WRITE_SECRET_HEADER], SECRET);
    assert.equal(headers["content-encoding"], "gzip");
    assert.equal(gunzipSync(calls[0].init.body as Uint8Array).toString(), body);
    assert.deepEqual(delivery, { status: 201, bytes: Buffer.byteLength(body) });
  });

  test("a leaving page sends plain JSON in a keepalive request, secret included", async () => {
    const { calls, request } = recordingFetch(() => new Response(null, { status: 201 }));
    await uploadTo("http://app.test/api/replay/s-1", SECRET, request)({ seq: 3, body: "{}", events: 1 }, { leaving: true });
    const headers = calls[0].init.headers as Record<string, string>;
    assert.equal(headers["content-encoding"], undefined);
    assert.equal(headers[WRITE_SECRET_HEADER], SECRET);
    assert.equal(calls[0].init.keepalive, true);
  });

  test("a refusal gives the backend's code and Retry-After, not its English", async () => {
    const refusal = { detail: "session is over 20971520 bytes; recording stops", code: "session_full" };
    const { request } = recordingFetch(() => Response.json(refusal, { status: 413, headers: { "retry-after": "7" } }));
    const delivery = await uploadTo("http://app.test/api/replay/s-1", SECRET, request)({ seq: 1, body: "{}", events: 1 }, { leaving: false });
    assert.deepEqual(delivery, { status: 413, bytes: 2, code: "session_full", retryAfterMs: 7000 });
    const { request: plain } = recordingFetch(() => new Response("Bad gateway", { status: 502 }));
    const failed = await uploadTo("http://app.test/api/replay/s-1", SECRET, plain)({ seq: 1, body: "{}", events: 1 }, { leaving: false });
    assert.equal(failed.code, undefined);
  });
});
