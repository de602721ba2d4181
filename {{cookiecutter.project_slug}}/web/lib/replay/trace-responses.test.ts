// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseTraceResponse, watchTraceResponses } from "./trace-responses";

const TRACE = "0af7651916cd43dd8448eb211c80319c";

describe("trace ids", () => {
  test("traceresponse gives the trace id of a sampled trace only", () => {
    assert.equal(parseTraceResponse(`00-${TRACE}-b7ad6b7169203331-01`), TRACE);
    assert.equal(parseTraceResponse(`00-${TRACE}-b7ad6b7169203331-00`), undefined);
    assert.equal(parseTraceResponse(`00-${"0".repeat(32)}-b7ad6b7169203331-01`), undefined);
    assert.equal(parseTraceResponse("garbage"), undefined);
    assert.equal(parseTraceResponse(null), undefined);
  });

  test("the fetch watcher reads traceresponse of watched URLs, leaves the response alone, and undoes itself", async () => {
    const answer = (url: string, header: string) =>
      ({ url, headers: new Headers({ traceresponse: header }) }) as unknown as Response;
    const original = (async (input: RequestInfo | URL) => answer(String(input), `00-${TRACE}-b7ad6b7169203331-01`)) as typeof fetch;
    const target = { fetch: original };
    const seen: string[] = [];
    const undo = watchTraceResponses((id) => seen.push(id), (url) => url.includes("/api/chat"), target);
    const response = await target.fetch("http://app.test/api/chat");
    await target.fetch("http://app.test/api/replay/s-1");
    assert.equal(response.url, "http://app.test/api/chat");
    assert.deepEqual(seen, [TRACE]);
    undo();
    assert.equal(target.fetch, original);
  });
});
