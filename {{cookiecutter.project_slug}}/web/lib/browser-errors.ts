// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Uncaught errors and unhandled promise rejections of the page, each as an `exception` span
 * (status ERROR, the exception event with type, message and stack trace) in the trace of the
 * server render that produced the page (lib/otel-web.ts pageContext), or in the trace of the
 * span active when it was thrown. session.id comes with every span (SessionSpanProcessor).
 * Tempo finds them with `{ name = "exception" && resource.service.name = "<web>" }`; the
 * collector's span metrics count them among error spans.
 */
import { type Context, context, SpanStatusCode, trace, type Tracer } from "@opentelemetry/api";
import { ATTR_ERROR_TYPE, ATTR_URL_PATH } from "@opentelemetry/semantic-conventions";

export const EXCEPTION_SPAN = "exception";
/** What one page may report: a loop that throws must not flood the collector. */
export const MAX_ERRORS_PER_PAGE = 50;

/** The page's window, or a stand-in (an EventTarget with a location) in tests. */
type ErrorSource = Pick<Window, "addEventListener" | "removeEventListener"> & { location: { pathname: string } };

/** An Error for what was thrown or rejected (anything can be: a string, undefined, an object). */
export function asError(reason: unknown, fallbackMessage: string): Error {
  if (reason instanceof Error) return reason;
  if (typeof reason === "string") return new Error(reason);
  try {
    return new Error(reason === undefined ? fallbackMessage : JSON.stringify(reason));
  } catch {
    return new Error(fallbackMessage);
  }
}

/** The parent of an error's span: the active span, if any; else the page's trace. */
function parentOf(page: () => Context): Context {
  return trace.getSpan(context.active()) ? context.active() : page();
}

/** Records the page's uncaught errors and unhandled rejections; returns a function that stops it. */
export function captureErrors(tracer: Tracer, page: () => Context, source: ErrorSource = window): () => void {
  let reported = 0;
  const record = (error: Error, kind: "error" | "unhandledrejection") => {
    if (reported >= MAX_ERRORS_PER_PAGE) return;
    reported += 1;
    const span = tracer.startSpan(
      EXCEPTION_SPAN,
      { attributes: { [ATTR_ERROR_TYPE]: error.name || "Error", [ATTR_URL_PATH]: source.location.pathname, "app.error.kind": kind } },
      parentOf(page),
    );
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    span.end();
  };
  const onError = (event: ErrorEvent) => record(asError(event.error ?? event.message, "uncaught error"), "error");
  const onRejection = (event: PromiseRejectionEvent) =>
    record(asError(event.reason, "unhandled rejection"), "unhandledrejection");
  source.addEventListener("error", onError);
  source.addEventListener("unhandledrejection", onRejection);
  return () => {
    source.removeEventListener("error", onError);
    source.removeEventListener("unhandledrejection", onRejection);
  };
}
