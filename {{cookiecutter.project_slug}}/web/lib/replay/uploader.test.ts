// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type Chunk, type Delivery, encodeChunk, ReplayUploader, type Send, type Timers } from "./uploader";
import { storedProgress } from "./progress";

const TRACE = "0af7651916cd43dd8448eb211c80319c";

/** Timers that run only when the test says so. */
function manualTimers() {
  let next = 0;
  const pending = new Map<number, { callback: () => void; ms: number }>();
  const timers: Timers = {
    setTimeout: (callback, ms) => {
      pending.set(++next, { callback, ms });
      return next;
    },
    clearTimeout: (handle) => void pending.delete(handle as number),
  };
  return {
    timers,
    delays: () => [...pending.values()].map((timer) => timer.ms),
    /** Runs every timer due now (not the ones they schedule). */
    fire() {
      const due = [...pending.entries()];
      pending.clear();
      for (const [, timer] of due) timer.callback();
    },
  };
}

/** A Send that answers with the statuses given, in order (then 201), and records each chunk. */
function scriptedSend(statuses: number[] = [], extra: Partial<Delivery> = {}) {
  const sent: { chunk: Chunk; leaving: boolean; body: { seq: number; events: unknown[]; trace_ids: string[] } }[] = [];
  const send: Send = async (chunk, { leaving }) => {
    sent.push({ chunk, leaving, body: JSON.parse(chunk.body) });
    const status = statuses.shift() ?? 201;
    return { status, bytes: chunk.body.length, ...extra };
  };
  return { send, sent };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));
const event = (n: number) => JSON.stringify({ type: 3, timestamp: 1_700_000_000_000 + n, data: { n } });

describe("chunks", () => {
  test("a chunk is the JSON the backend ingests", () => {
    assert.deepEqual(JSON.parse(encodeChunk(7, [event(1), event(2)], [TRACE])), {
      seq: 7,
      events: [JSON.parse(event(1)), JSON.parse(event(2))],
      trace_ids: [TRACE],
    });
  });

  test("events leave soon after the start, then every flush interval, with the trace ids seen since the last chunk", async () => {
    const clock = manualTimers();
    const { send, sent } = scriptedSend();
    const uploader = new ReplayUploader({ send, timers: clock.timers, limits: { firstFlushMs: 1000, flushIntervalMs: 5000 } });
    uploader.start();
    assert.deepEqual(clock.delays(), [1000]);
    uploader.add(event(1));
    uploader.addTraceId(TRACE);
    uploader.addTraceId(TRACE);
    assert.equal(sent.length, 0, "nothing leaves before the interval");
    clock.fire();
    await settle();
    assert.deepEqual(clock.delays(), [5000]);
    uploader.add(event(2));
    clock.fire();
    await settle();
    clock.fire(); // nothing recorded: no empty chunk
    await settle();
    assert.deepEqual(
      sent.map((s) => [s.body.seq, s.body.events.length, s.body.trace_ids]),
      [
        [0, 1, [TRACE]],
        [1, 1, []],
      ],
    );
  });

  test("a chunk leaves early at its event or size limit", async () => {
    const { send, sent } = scriptedSend();
    const uploader = new ReplayUploader({ send, timers: manualTimers().timers, limits: { maxChunkEvents: 3, maxChunkChars: 10_000 } });
    for (let i = 0; i < 7; i++) uploader.add(event(i));
    await settle();
    await settle();
    assert.deepEqual(sent.map((s) => s.body.events.length), [3, 3]);
    assert.deepEqual(uploader.pending, { events: 1, chunks: 0 });

    const big = scriptedSend();
    const bySize = new ReplayUploader({ send: big.send, timers: manualTimers().timers, limits: { maxChunkChars: 200 } });
    bySize.add(JSON.stringify({ type: 2, timestamp: 1, data: "x".repeat(300) }));
    await settle();
    assert.equal(big.sent.length, 1);
  });

  test("chunks leave one at a time, in order", async () => {
    const order: number[] = [];
    let release: () => void = () => undefined;
    const send: Send = (chunk) => {
      order.push(chunk.seq);
      return new Promise((resolve) => {
        release = () => resolve({ status: 201, bytes: 10 });
      });
    };
    const uploader = new ReplayUploader({ send, timers: manualTimers().timers, limits: { maxChunkEvents: 1 } });
    uploader.add(event(1));
    uploader.add(event(2));
    await settle();
    assert.deepEqual(order, [0]);
    release();
    await settle();
    assert.deepEqual(order, [0, 1]);
  });

});

describe("failures", () => {
  test("a failed upload is retried with backoff, then dropped after maxAttempts, and the next one goes on", async () => {
    const clock = manualTimers();
    const { send, sent } = scriptedSend([503, 0, 503, 503]);
    const uploader = new ReplayUploader({
      send,
      timers: clock.timers,
      random: () => 1,
      limits: { maxChunkEvents: 1, maxAttempts: 4, retryBaseMs: 1000 },
    });
    uploader.add(event(1));
    await settle();
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      delays.push(...clock.delays());
      clock.fire();
      await settle();
    }
    assert.deepEqual(delays, [1000, 2000, 4000]);
    assert.equal(sent.length, 4);
    assert.equal(uploader.dropped, 1);
    uploader.add(event(2));
    await settle();
    assert.deepEqual(sent.map((s) => s.body.seq), [0, 0, 0, 0, 1]);
    assert.equal(uploader.sent, 1);
  });

  test("a send that throws counts as no answer, never reaches the page", async () => {
    const clock = manualTimers();
    const send: Send = async () => {
      throw new TypeError("Failed to fetch");
    };
    const uploader = new ReplayUploader({ send, timers: clock.timers, limits: { maxChunkEvents: 1 } });
    uploader.add(event(1));
    await settle();
    assert.equal(clock.delays().length, 1, "a retry is scheduled");
  });

  test("a chunk the API refuses as bad is dropped at once", async () => {
    const { send, sent } = scriptedSend([400]);
    const uploader = new ReplayUploader({ send, timers: manualTimers().timers, limits: { maxChunkEvents: 1 } });
    uploader.add(event(1));
    await settle();
    uploader.add(event(2));
    await settle();
    assert.deepEqual(sent.map((s) => s.body.seq), [0, 1]);
    assert.equal(uploader.dropped, 1);
  });

  test("with the API unreachable, the queue stays bounded", async () => {
    const send: Send = () => new Promise(() => undefined); // never answers
    const uploader = new ReplayUploader({ send, timers: manualTimers().timers, limits: { maxChunkEvents: 1, maxQueuedChunks: 5 } });
    for (let i = 0; i < 50; i++) uploader.add(event(i));
    await settle();
    assert.equal(uploader.pending.chunks, 5);
    assert.equal(uploader.dropped, 45);
  });
});

describe("the size cap", () => {
  test("recording stops once the bytes sent reach the session budget, and stays stopped after a reload", async () => {
    const items = new Map<string, string>();
    const storage = { getItem: (k: string) => items.get(k) ?? null, setItem: (k: string, v: string) => void items.set(k, v) };
    const stops: string[] = [];
    const { send, sent } = scriptedSend([], {});
    const options = {
      send,
      timers: manualTimers().timers,
      limits: { maxChunkEvents: 1, maxSessionBytes: 250 },
      onStop: (reason: string) => stops.push(reason),
    };
    const uploader = new ReplayUploader({ ...options, progress: storedProgress("s-1", storage) });
    for (let i = 0; i < 10; i++) {
      uploader.add(event(i));
      await settle();
    }
    assert.equal(uploader.stopped, "budget");
    assert.deepEqual(stops, ["budget"]);
    assert.ok(sent.length >= 2 && sent.length < 10, `${sent.length} chunks`);
    const before = sent.length;
    uploader.add(event(99));
    await settle();
    assert.equal(sent.length, before, "nothing is sent after the stop");

    const reloaded = new ReplayUploader({ ...options, progress: storedProgress("s-1", storage) });
    assert.equal(reloaded.stopped, "budget");
  });

  test("the backend's session_full stops recording too; storage_full, a wrong secret and 404 as well", async () => {
    for (const [status, code, reason] of [
      [413, "session_full", "budget"],
      [507, "storage_full", "refused"],
      [403, "wrong_write_secret", "refused"],
      [404, undefined, "refused"],
    ] as const) {
      const { send } = scriptedSend([status], { code });
      const uploader = new ReplayUploader({ send, timers: manualTimers().timers, limits: { maxChunkEvents: 1 } });
      uploader.add(event(1));
      await settle();
      assert.equal(uploader.stopped, reason);
    }
  });
});

describe("leaving the page", () => {
  test("everything not yet sent leaves at once, flagged to outlive the page, retries included", async () => {
    const clock = manualTimers();
    const { send, sent } = scriptedSend([503]);
    const uploader = new ReplayUploader({ send, timers: clock.timers, limits: { maxChunkEvents: 2 } });
    uploader.start();
    uploader.add(event(1));
    uploader.add(event(2)); // chunk 0: fails once, waits for its retry
    await settle();
    uploader.add(event(3)); // still in the buffer
    uploader.leave();
    await settle();
    assert.deepEqual(
      sent.map((s) => [s.body.seq, s.leaving]),
      [
        [0, false],
        [0, true],
        [1, true],
      ],
    );
    assert.deepEqual(uploader.pending, { events: 0, chunks: 0 });
    assert.equal(uploader.stopped, undefined, "recording goes on if the page comes back");
  });
});
