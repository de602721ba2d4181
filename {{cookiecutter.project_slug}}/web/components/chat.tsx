// Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"use client";

import { type FormEvent, useRef, useState } from "react";
import { flushSync } from "react-dom";
import { randomId } from "../lib/ids";
import { withConversation } from "../lib/conversation";
import { recordClickToFirstToken } from "../lib/request-spans";

/** One tool call of the agent's run (backend/app/api/chat.py ToolStepOut); `ok` is unset while it runs. */
interface ToolStep {
  id: string;
  name: string;
  arguments: string;
  ok?: boolean;
  output?: string;
  error_type?: string | null;
  duration_ms?: number;
}

interface Exchange {
  message: string;
  steps?: ToolStep[];
  reply?: string;
  traceId?: string | null;
  error?: string;
}

interface ChatReply {
  reply: string;
  trace_id: string | null;
  steps?: ToolStep[];
}

/** One server-sent event of POST /api/chat/stream (backend/app/api/chat.py). */
interface StreamEvent {
  delta?: string;
  tool_call?: ToolStep;
  tool_result?: ToolStep;
  done?: boolean;
  trace_id?: string | null;
  detail?: string;
}

/** At most `limit` characters of a tool's arguments or output, for one line of the transcript. */
function clip(text: string | undefined, limit = 120): string {
  if (!text) return "";
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

/** Calls `callback` once the browser has painted the next frame (rAF runs just before that paint). */
function afterNextPaint(callback: () => void): void {
  requestAnimationFrame(() => setTimeout(callback, 0));
}

/** Reads a text/event-stream body, calling `onEvent` with each event's name and parsed data. */
async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (name: string, data: StreamEvent) => void) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")) as StreamEvent);
    }
  }
}

/** A conversation per page load; the backend keeps its history under this id. */
function newConversationId(): string {
  return `web-${randomId()}`;
}

async function errorDetail(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { detail?: unknown };
    if (typeof body.detail === "string") return body.detail;
  } catch {
    // not JSON: fall through to the status line
  }
  return `${response.status} ${response.statusText}`.trim();
}

/**
 * The chat: POST /api/chat (the same-origin proxy to the backend), then the reply and the
 * trace_id to look it up by (Grafana: Explore > Tempo > TraceQL `{ trace:id = "<id>" }`).
 * With "Stream" ticked, POST /api/chat/stream: the reply is shown as its tokens arrive, and the
 * time from the click to the first token painted goes on the request's browser span
 * (`app.click_to_first_token_ms`, lib/request-spans.ts), beside the server's time to first chunk.
 */
export function Chat() {
  const conversationId = useRef<string | null>(null);
  const [draft, setDraft] = useState("");
  const [stream, setStream] = useState(false);
  const [sending, setSending] = useState(false);
  const [exchanges, setExchanges] = useState<Exchange[]>([]);

  async function send(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const message = draft.trim();
    if (!message || sending) return;
    const conversation = (conversationId.current ??= newConversationId());
    setSending(true);
    setDraft("");
    setExchanges((previous) => [...previous, { message }]);
    const update = (change: Partial<Exchange> | ((item: Exchange) => Partial<Exchange>)) =>
      setExchanges((previous) =>
        previous.map((item, i) =>
          i === previous.length - 1 ? { ...item, ...(typeof change === "function" ? change(item) : change) } : item,
        ),
      );
    const body = JSON.stringify({ conversation_id: conversation, message });
    if (stream) {
      await streamReply(conversation, body, event.timeStamp, update);
      setSending(false);
      return;
    }
    let outcome: Partial<Exchange>;
    try {
      const response = await withConversation(conversation, () =>
        fetch("/api/chat", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        }),
      );
      if (response.ok) {
        const body = (await response.json()) as ChatReply;
        outcome = { reply: body.reply, traceId: body.trace_id, steps: body.steps ?? [] };
      } else {
        outcome = { error: await errorDetail(response) };
      }
    } catch (error) {
      outcome = { error: error instanceof Error ? error.message : String(error) };
    }
    update(outcome);
    setSending(false);
  }

  /** POST /api/chat/stream: tokens as they come; the click-to-first-token time on the request's span. */
  async function streamReply(
    conversation: string,
    body: string,
    clickedAt: number,
    update: (change: Partial<Exchange> | ((item: Exchange) => Partial<Exchange>)) => void,
  ) {
    // The init object names this request's browser span (lib/request-spans.ts).
    const init: RequestInit = { method: "POST", headers: { "content-type": "application/json" }, body };
    try {
      const response = await withConversation(conversation, () => fetch("/api/chat/stream", init));
      if (!response.ok || !response.body) {
        update({ error: await errorDetail(response) });
        return;
      }
      let first = true;
      await readEvents(response.body, (name, data) => {
        if (name === "error") {
          update({ error: data.detail ?? "the reply failed", traceId: data.trace_id });
        } else if (data.tool_call) {
          const call = data.tool_call;
          update((item) => ({ steps: [...(item.steps ?? []), call] }));
        } else if (data.tool_result) {
          const result = data.tool_result;
          update((item) => ({ steps: (item.steps ?? []).map((step) => (step.id === result.id ? result : step)) }));
        } else if (data.delta !== undefined) {
          const delta = data.delta;
          if (first) {
            first = false;
            // Commit the first token to the DOM now, so the next paint is the one that shows it.
            flushSync(() => update((item) => ({ reply: (item.reply ?? "") + delta })));
            afterNextPaint(() => recordClickToFirstToken(init, clickedAt, performance.now()));
          } else {
            update((item) => ({ reply: (item.reply ?? "") + delta }));
          }
        } else if (data.done) {
          update((item) => ({ reply: item.reply ?? "", traceId: data.trace_id }));
        }
      });
    } catch (error) {
      update({ error: error instanceof Error ? error.message : String(error) });
    }
  }

  const last = exchanges.length - 1;
  return (
    <main className="chat">
      <ol className="transcript">
        {exchanges.map((item, i) => (
          <li key={i}>
            <p className="message">{item.message}</p>
            {item.steps && item.steps.length > 0 && <ToolSteps steps={item.steps} last={i === last} />}
            {item.reply !== undefined && (
              <p className="reply" data-testid={i === last ? "chat-reply" : undefined}>
                {item.reply}
              </p>
            )}
            {item.error !== undefined && (
              <p className="error" role="alert" data-testid={i === last ? "chat-error" : undefined}>
                {item.error}
              </p>
            )}
            {item.traceId && (
              <p className="trace">
                trace <code data-testid={i === last ? "trace-id" : undefined}>{item.traceId}</code>
              </p>
            )}
            {item.traceId && item.reply !== undefined && conversationId.current && (
              <ReplyFeedback traceId={item.traceId} conversationId={conversationId.current} last={i === last} />
            )}
          </li>
        ))}
      </ol>
      <form onSubmit={send} className="composer">
        <input
          data-testid="chat-input"
          aria-label="Message"
          value={draft}
          onChange={(event) => setDraft(event.target.value)}
          placeholder="Ask something"
          autoComplete="off"
          maxLength={8000}
        />
        <label className="stream">
          <input
            data-testid="chat-stream"
            type="checkbox"
            checked={stream}
            onChange={(event) => setStream(event.target.checked)}
          />
          Stream
        </label>
        <button data-testid="chat-send" type="submit" disabled={sending || !draft.trim()}>
          {sending ? "Sending" : "Send"}
        </button>
      </form>
    </main>
  );
}

/**
 * The tools the agent ran for a reply, in order: name, arguments, and what came back (or the error,
 * which the model also read). Each is one `execute_tool <name>` span in the reply's trace.
 */
function ToolSteps({ steps, last }: { steps: ToolStep[]; last: boolean }) {
  return (
    <ol className="tool-steps" data-testid={last ? "tool-steps" : undefined}>
      {steps.map((step) => {
        const status = step.ok === undefined ? "running" : step.ok ? "ok" : "error";
        return (
          <li key={step.id} className={`tool-step ${status}`} data-testid="tool-step" data-status={status}>
            <code>
              {step.name}({clip(step.arguments, 80)})
            </code>
            {status === "running" && " …"}
            {status === "ok" && ` → ${clip(step.output)}`}
            {status === "error" && ` ✗ ${step.error_type ?? "error"}: ${clip(step.output)}`}
          </li>
        );
      })}
    </ol>
  );
}

/**
 * Thumbs up / down on one reply: POST /api/feedback with the reply's trace_id. The backend records
 * it inside that reply's trace (backend/app/api/feedback.py); one vote per reply.
 */
function ReplyFeedback({ traceId, conversationId, last }: { traceId: string; conversationId: string; last: boolean }) {
  const [sent, setSent] = useState<1 | -1 | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function rate(score: 1 | -1) {
    setSent(score);
    setError(null);
    try {
      const response = await withConversation(conversationId, () =>
        fetch("/api/feedback", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ trace_id: traceId, score }),
        }),
      );
      if (!response.ok) throw new Error(await errorDetail(response));
    } catch (failure) {
      setSent(null);
      setError(failure instanceof Error ? failure.message : String(failure));
    }
  }

  const testId = (name: string) => (last ? name : undefined);
  return (
    <p className="feedback" data-testid={testId("feedback")} data-sent={sent ?? undefined}>
      <button
        type="button"
        aria-label="Good reply"
        aria-pressed={sent === 1}
        disabled={sent !== null}
        onClick={() => void rate(1)}
        data-testid={testId("feedback-up")}
      >
        👍
      </button>
      <button
        type="button"
        aria-label="Bad reply"
        aria-pressed={sent === -1}
        disabled={sent !== null}
        onClick={() => void rate(-1)}
        data-testid={testId("feedback-down")}
      >
        👎
      </button>
      {error && <span role="alert">{error}</span>}
    </p>
  );
}
