// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Which browser requests carry trace context, and the propagators that enforce it.
 *
 * The rule: a request gets `traceparent` (and the replay session's header) only when its URL is
 * under one of the API prefixes, by default this page's origin + `/api/` (the same-origin proxy
 * to the backend). Everything else never does: other paths of this origin (pages, RSC payloads,
 * `/otel/*`), other origins (CDNs, the replay vendor, any third party), other schemes or ports.
 *
 * @opentelemetry/instrumentation-fetch sends trace headers to every same-origin URL and to the
 * cross-origin URLs it is given; ScopedPropagator narrows that to the rule above, reading the
 * request's URL from the fetch span the instrumentation has just made current.
 */
import {
  type Context,
  defaultTextMapSetter,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  trace,
} from "@opentelemetry/api";
import { W3CBaggagePropagator } from "@opentelemetry/core";
import { API_PATH } from "./telemetry-config";

/** The absolute URL prefixes of the API, as seen from a page on `origin`. */
export function apiPrefixes(origin: string, apiPath: string = API_PATH): string[] {
  const path = apiPath.endsWith("/") ? apiPath : `${apiPath}/`;
  return [new URL(path, origin).href];
}

/** True when a request to `url` may carry trace context: it lies under one of `prefixes`. */
export function shouldPropagate(url: string, prefixes: readonly string[]): boolean {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return false; // relative or malformed: never guess
  }
  return prefixes.some((prefix) => {
    const allowed = new URL(prefix);
    if (target.origin !== allowed.origin) return false;
    const base = allowed.pathname.endsWith("/") ? allowed.pathname : `${allowed.pathname}/`;
    return target.pathname.startsWith(base) || target.pathname === base.slice(0, -1);
  });
}

/** The URL of the request a CLIENT span in `context` describes (url.full, or the older http.url). */
export function requestUrl(context: Context): string | undefined {
  const span = trace.getSpan(context) as unknown as { attributes?: Record<string, unknown> } | undefined;
  const url = span?.attributes?.["url.full"] ?? span?.attributes?.["http.url"];
  return typeof url === "string" ? url : undefined;
}

/** Injects with `inner` only for requests whose URL `allow`s it; extraction is untouched. */
export class ScopedPropagator implements TextMapPropagator {
  constructor(
    private readonly inner: TextMapPropagator,
    private readonly allow: (url: string) => boolean,
  ) {}

  inject(context: Context, carrier: unknown, setter: TextMapSetter): void {
    const url = requestUrl(context);
    if (url !== undefined && this.allow(url)) this.inner.inject(context, carrier, setter);
  }

  extract(context: Context, carrier: unknown, getter: TextMapGetter): Context {
    return this.inner.extract(context, carrier, getter);
  }

  fields(): string[] {
    return this.inner.fields();
  }
}

/**
 * The context's own baggage members (the conversation id), then `value` (a replay vendor's):
 * one `baggage` header carries both, where setting it twice would keep only the last.
 */
export function mergedBaggage(context: Context, value: string): string {
  const own: Record<string, string> = {};
  new W3CBaggagePropagator().inject(context, own, defaultTextMapSetter);
  return own.baggage ? `${own.baggage},${value}` : value;
}

/** Writes the headers returned by `headers` (the replay session's), beside traceparent. */
export class HeadersPropagator implements TextMapPropagator {
  constructor(
    private readonly headers: (requestId: string) => Record<string, string>,
    private readonly names: string[],
  ) {}

  inject(context: Context, carrier: unknown, setter: TextMapSetter): void {
    const requestId = trace.getSpan(context)?.spanContext().spanId ?? "";
    for (const [name, value] of Object.entries(this.headers(requestId))) {
      setter.set(carrier, name, name === "baggage" ? mergedBaggage(context, value) : value);
    }
  }

  extract(context: Context): Context {
    return context;
  }

  fields(): string[] {
    return this.names;
  }
}
