// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * The browser fetch span of a request, found by the `init` object the app passed to fetch(), so
 * the app can add what only it knows (when the first token was painted) to the span the fetch
 * instrumentation made. lib/otel-web.ts registers each span as it starts (the instrumentation's
 * requestHook); the app reads it back with the same `init`.
 *
 * The map lives on globalThis: the client instrumentation (instrumentation-client.ts) and the
 * app's components are separate entries of the build, and a module they share could be
 * instantiated once per entry.
 */
import { type Attributes, ROOT_CONTEXT, type Span, trace } from "@opentelemetry/api";

const REGISTRY = Symbol.for("app.request-spans");
/** The span that measures the click-to-first-token time (span metrics chart its duration). */
export const FIRST_TOKEN_SPAN = "chat first token";
export const ATTR_CLICK_TO_FIRST_TOKEN = "app.click_to_first_token_ms";

type Registry = WeakMap<object, Span>;

function registry(): Registry {
  const holder = globalThis as { [REGISTRY]?: Registry };
  holder[REGISTRY] ??= new WeakMap();
  return holder[REGISTRY];
}

/** Remembers `span` as the fetch span of the request made with `init`. */
export function trackRequestSpan(init: object, span: Span): void {
  registry().set(init, span);
}

/** The fetch span of the request made with `init`, while tracing runs. */
export function requestSpan(init: object): Span | undefined {
  return registry().get(init);
}

/**
 * Records the time from the user's click (an event's timeStamp) to the first token painted
 * (performance.now() after that paint) for the request made with `init`: as an attribute of its
 * fetch span, and as a span of that duration under it, which the collector's span metrics turn
 * into a histogram. Without tracing it does nothing.
 */
export function recordClickToFirstToken(init: object, clickedAt: number, paintedAt: number): number | undefined {
  const span = requestSpan(init);
  if (!span) return undefined;
  const elapsed = Math.max(0, paintedAt - clickedAt);
  const attributes: Attributes = { [ATTR_CLICK_TO_FIRST_TOKEN]: Math.round(elapsed * 10) / 10 };
  span.setAttributes(attributes);
  trace
    .getTracer("app.chat")
    .startSpan(FIRST_TOKEN_SPAN, { startTime: clickedAt, attributes }, trace.setSpan(ROOT_CONTEXT, span))
    .end(paintedAt);
  return elapsed;
}
