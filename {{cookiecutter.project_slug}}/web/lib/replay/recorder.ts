// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The built-in replay's recorder (browser only; lib/replay/builtin.ts loads it after hydration,
 * for recorded sessions only): rrweb records the DOM, lib/replay/uploader.ts batches it into chunks
 * and lib/replay/send.ts uploads them.
 *
 * Privacy: every input and every text node is masked in the browser, before anything is sent
 * (`*` for each character). Give an element `data-replay-unmask` to record its text in clear
 * (never one that shows what a user typed or personal data); `data-replay-block` leaves an
 * element out entirely (a grey box of its size in the replay). Inputs are always masked.
 *
 * Cost: mouse moves and scrolls are sampled, an input's last value is kept, not each keystroke;
 * a chunk leaves every 5 s (or at 500 events), gzip-compressed with CompressionStream where the
 * browser has it. `<html data-replay>` says how it goes: "recording", "stopped", "off", "failed".
 */
import { record } from "rrweb";
import { flushWhenLeaving } from "../otel-web";
import { shouldPropagate } from "../propagation";
import { REPLAY_API_PATH, replayApiUrl } from "./builtin";
import { storedProgress } from "./progress";
import { uploadTo } from "./send";
import { watchTraceResponses } from "./trace-responses";
import { ReplayUploader } from "./uploader";

const UNMASK_SELECTOR = "[data-replay-unmask]";

export interface RecorderOptions {
  sessionId: string;
  origin: string;
  /** The API's URL prefixes: their responses' `traceresponse` headers name the session's traces. */
  apiPrefixes: readonly string[];
  /** REPLAY_MAX_SESSION_BYTES (uncompressed JSON); the uploader's default when undefined. */
  maxSessionBytes?: number;
}

export interface Recording {
  uploader: ReplayUploader;
  stop(): void;
}

export function startRecording({ sessionId, origin, apiPrefixes, maxSessionBytes }: RecorderOptions): Recording {
  const root = document.documentElement;
  const ownPrefix = new URL(REPLAY_API_PATH, origin).href;
  let stopRecording: (() => void) | undefined;
  const undo: (() => void)[] = [];
  const stop = () => {
    stopRecording?.();
    stopRecording = undefined;
    for (const step of undo.splice(0)) step();
  };
  const progress = storedProgress(sessionId);
  const uploader = new ReplayUploader({
    send: uploadTo(replayApiUrl(origin, sessionId), progress.writeSecret),
    progress,
    limits: maxSessionBytes ? { maxSessionBytes } : {},
    onStop: (reason) => {
      stop();
      root.dataset.replay = reason === "budget" ? "full" : "stopped";
    },
  });
  if (uploader.stopped) return { uploader, stop };

  undo.push(
    watchTraceResponses(
      (traceId) => uploader.addTraceId(traceId),
      (url) => !url.startsWith(ownPrefix) && shouldPropagate(url, apiPrefixes),
    ),
    flushWhenLeaving(() => uploader.leave()),
  );
  stopRecording =
    record({
      emit: (event) => uploader.add(JSON.stringify(event)),
      maskAllInputs: true,
      maskTextSelector: "*",
      maskTextFn: (text, element) => (element?.closest(UNMASK_SELECTOR) ? text : text.replace(/\S/g, "*")),
      blockSelector: "[data-replay-block]",
      slimDOMOptions: "all",
      sampling: { mousemove: 100, scroll: 150, media: 800, input: "last" },
      // A full snapshot every 5 minutes: a replay survives a lost chunk, and seeking stays quick.
      checkoutEveryNms: 5 * 60_000,
      recordCanvas: false,
      collectFonts: false,
      // An error inside the recorder is swallowed: it must never reach the page or the user.
      errorHandler: () => true,
    }) ?? undefined;
  uploader.start();
  root.dataset.replay = "recording";
  return { uploader, stop: () => uploader.stop() };
}
