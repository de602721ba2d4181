"use client";

import { type FormEvent, useRef, useState } from "react";
import { randomId } from "../lib/ids";
import { withConversation } from "../lib/conversation";

interface Exchange {
  message: string;
  reply?: string;
  traceId?: string | null;
  error?: string;
}

interface ChatReply {
  reply: string;
  trace_id: string | null;
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
 */
export function Chat() {
  const conversationId = useRef<string | null>(null);
  const [draft, setDraft] = useState("");
  const [sending, setSending] = useState(false);
  const [exchanges, setExchanges] = useState<Exchange[]>([]);

  async function send(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const message = draft.trim();
    if (!message || sending) return;
    conversationId.current ??= newConversationId();
    setSending(true);
    setDraft("");
    setExchanges((previous) => [...previous, { message }]);
    let outcome: Partial<Exchange>;
    try {
      const conversation = conversationId.current;
      const response = await withConversation(conversation, () =>
        fetch("/api/chat", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ conversation_id: conversation, message }),
        }),
      );
      if (response.ok) {
        const body = (await response.json()) as ChatReply;
        outcome = { reply: body.reply, traceId: body.trace_id };
      } else {
        outcome = { error: await errorDetail(response) };
      }
    } catch (error) {
      outcome = { error: error instanceof Error ? error.message : String(error) };
    }
    setExchanges((previous) => previous.map((item, i) => (i === previous.length - 1 ? { ...item, ...outcome } : item)));
    setSending(false);
  }

  const last = exchanges.length - 1;
  return (
    <main className="chat">
      <ol className="transcript">
        {exchanges.map((item, i) => (
          <li key={i}>
            <p className="message">{item.message}</p>
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
        <button data-testid="chat-send" type="submit" disabled={sending || !draft.trim()}>
          {sending ? "Sending" : "Send"}
        </button>
      </form>
    </main>
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
