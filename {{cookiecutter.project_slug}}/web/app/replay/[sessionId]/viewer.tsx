// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"use client";

import { type FormEvent, useCallback, useEffect, useRef, useState } from "react";
import "rrweb-player/dist/style.css";
import { REPLAY_API_PATH } from "../../../lib/replay/builtin";
import { grafanaSessionUrl, grafanaTraceUrl, sessionRange } from "../../../lib/replay/links";

/** sessionStorage key of the operator token: entered once per tab, gone with it. */
export const TOKEN_KEY = "replay.viewer.token";

/** GET /api/replay/<session id> (backend/app/replay/routes.py). */
interface StoredSession {
  session_id: string;
  events: { type: number; timestamp: number }[];
  trace_ids: string[];
  chunks: number;
  bytes: number;
  first_seen: string;
  last_seen: string;
}

type View =
  | { kind: "loading" }
  | { kind: "token"; error?: string }
  | { kind: "off"; detail: string }
  | { kind: "missing"; detail: string }
  | { kind: "failed"; detail: string }
  | { kind: "ready"; session: StoredSession };

function readToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function keepToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // no storage: the token is asked for again next time
  }
}

async function detailOf(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { detail?: unknown };
    if (typeof body.detail === "string") return body.detail;
  } catch {
    // not JSON
  }
  return `${response.status} ${response.statusText}`.trim();
}

/**
 * Asks the API for the session (through the same-origin proxy), with the operator token when
 * there is one. The API checks the token before anything else, so without one a 404 means the
 * viewer is off (no REPLAY_VIEWER_TOKEN) and a 401 that it wants the token.
 */
async function load(sessionId: string, token: string | null): Promise<View> {
  let response: Response;
  try {
    response = await fetch(`${REPLAY_API_PATH}${encodeURIComponent(sessionId)}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      cache: "no-store",
    });
  } catch (error) {
    return { kind: "failed", detail: error instanceof Error ? error.message : String(error) };
  }
  if (response.ok) return { kind: "ready", session: (await response.json()) as StoredSession };
  const detail = await detailOf(response);
  if (response.status === 401) {
    keepToken(null);
    return { kind: "token", error: token ? "That token was not accepted." : undefined };
  }
  if (response.status === 404) return /viewer is off/.test(detail) ? { kind: "off", detail } : { kind: "missing", detail };
  return { kind: "failed", detail };
}

export function ReplayViewer({ sessionId, grafanaUrl }: { sessionId: string; grafanaUrl: string }) {
  const [view, setView] = useState<View>({ kind: "loading" });
  const [draft, setDraft] = useState("");

  const open = useCallback(
    (token: string | null) => {
      setView({ kind: "loading" });
      void load(sessionId, token).then(setView);
    },
    [sessionId],
  );

  useEffect(() => open(readToken()), [open]);

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const token = draft.trim();
    if (!token) return;
    keepToken(token);
    setDraft("");
    open(token);
  }

  return (
    <main className="replay">
      <h2>
        Session <code data-testid="replay-session">{sessionId}</code>
      </h2>
      {view.kind === "loading" && <p data-testid="replay-status">Loading…</p>}
      {view.kind === "token" && (
        <form onSubmit={submit} className="composer" data-testid="replay-token-form">
          <p data-testid="replay-status">
            Replays are personal data: enter the operator token (REPLAY_VIEWER_TOKEN) to watch this one.
            {view.error && <strong role="alert"> {view.error}</strong>}
          </p>
          <input
            data-testid="replay-token"
            type="password"
            aria-label="Operator token"
            value={draft}
            onChange={(event) => setDraft(event.target.value)}
            autoComplete="off"
          />
          <button data-testid="replay-token-submit" type="submit" disabled={!draft.trim()}>
            Open
          </button>
        </form>
      )}
      {view.kind === "off" && (
        <p data-testid="replay-status" role="alert">
          The replay viewer is off: set REPLAY_VIEWER_TOKEN on the API to turn it on. ({view.detail})
        </p>
      )}
      {view.kind === "missing" && (
        <p data-testid="replay-status" role="alert">
          No replay is stored for this session (not recorded, or past its retention). ({view.detail})
        </p>
      )}
      {view.kind === "failed" && (
        <p data-testid="replay-status" role="alert">
          The replay could not be loaded: {view.detail}
        </p>
      )}
      {view.kind === "ready" && <Replay session={view.session} grafanaUrl={grafanaUrl} />}
    </main>
  );
}

function Replay({ session, grafanaUrl }: { session: StoredSession; grafanaUrl: string }) {
  const target = useRef<HTMLDivElement>(null);
  const [playerError, setPlayerError] = useState<string>();
  const range = sessionRange(session.first_seen, session.last_seen);

  useEffect(() => {
    const element = target.current;
    if (!element) return;
    // A Svelte component: $destroy() takes it and its iframe down.
    let player: { $destroy?: () => void } | undefined;
    let cancelled = false;
    // rrweb-player is loaded on this page only, after the data: the app's pages never carry it.
    import("rrweb-player")
      .then(({ default: Player }) => {
        if (cancelled) return;
        const width = Math.max(320, element.clientWidth);
        // rrweb-player's types leave Svelte's out (svelte is not a dependency at run time).
        player = new Player({
          target: element,
          props: {
            events: session.events as never,
            width,
            height: Math.round(width * 0.6),
            autoPlay: true,
            skipInactive: true,
            mouseTail: false,
          },
        }) as unknown as { $destroy?: () => void };
        element.dataset.ready = "true";
      })
      .catch((error: unknown) => setPlayerError(error instanceof Error ? error.message : String(error)));
    return () => {
      cancelled = true;
      player?.$destroy?.();
      element.replaceChildren();
      delete element.dataset.ready;
    };
  }, [session]);

  return (
    <>
      <p data-testid="replay-status">
        {session.events.length} events in {session.chunks} chunks ({Math.round(session.bytes / 1024)} kB stored),{" "}
        {new Date(session.first_seen).toLocaleString()} to {new Date(session.last_seen).toLocaleString()}.
      </p>
      {playerError && <p role="alert">The player did not load: {playerError}</p>}
      <div ref={target} className="replay-player" data-testid="replay-player" />
      <h3>Traces of this session</h3>
      {session.trace_ids.length === 0 ? (
        <p>No trace was recorded with this session.</p>
      ) : (
        <ul data-testid="replay-traces">
          {session.trace_ids.map((traceId) => (
            <li key={traceId}>
              <a
                data-testid="replay-trace-link"
                data-trace-id={traceId}
                href={grafanaTraceUrl(grafanaUrl, traceId, range)}
                target="_blank"
                rel="noreferrer"
              >
                <code>{traceId}</code>
              </a>
            </li>
          ))}
        </ul>
      )}
      <p>
        <a href={grafanaSessionUrl(grafanaUrl, session.session_id, range)} target="_blank" rel="noreferrer">
          Every trace with this session.id in Grafana
        </a>
      </p>
    </>
  );
}
