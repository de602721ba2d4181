// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * Keeps credentials out of the Next.js server's spans and logs, and out of the browser telemetry
 * it forwards: the same rules as backend/app/telemetry/scrubbing.py, from the same list of names
 * (sensitive_keys.json, a byte-equal copy of the backend's; sensitive-keys.test.ts checks it).
 *
 * - `key=value` query parameters named in `query_parameters` get the value "[REDACTED]" in URL
 *   attributes (url.full, url.query, http.url, http.target), span names and log lines;
 * - `http.{request,response}.header.<name>` attributes of `headers` become ["[REDACTED]"];
 * - attributes whose key (or its last dotted segment) is in `attributes` become "[REDACTED]".
 */
import type { Attributes, AttributeValue } from "@opentelemetry/api";
import type { ExportResult } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter, TimedEvent } from "@opentelemetry/sdk-trace-base";
import SENSITIVE from "./sensitive_keys.json";

export const REDACTED = "[REDACTED]";
export const SENSITIVE_QUERY_KEYS: readonly string[] = SENSITIVE.query_parameters;
export const SENSITIVE_HEADERS: readonly string[] = SENSITIVE.headers;
const SENSITIVE_ATTRIBUTE_KEYS: ReadonlySet<string> = new Set(SENSITIVE.attributes.map((key) => key.toLowerCase()));
/** Attributes that hold a URL or a query string, old and stable semconv names. */
export const URL_ATTRIBUTES = ["url.full", "url.query", "http.url", "http.target"];
/** Exception events quote URLs too. */
const EVENT_TEXT_ATTRIBUTES = ["exception.message", "exception.stacktrace"];
const HEADER_PREFIXES = ["http.request.header.", "http.response.header."];

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
// The backend's pattern: a listed name at the start or after ? & ; or a space, then `=value`.
const QUERY_SECRET = new RegExp(
  `(?<=^|[?&;\\s])(${SENSITIVE_QUERY_KEYS.map(escape).join("|")})=[^&;#\\s"']*`,
  "gi",
);

/** Redacts secret-looking `key=value` query parameters in a URL, query string or log line. */
export function scrubText(text: string): string {
  if (!text.includes("=")) return text;
  return text.replace(QUERY_SECRET, (_match, key: string) => `${key}=${REDACTED}`);
}

/** True for a key named (whole, or by its last dotted segment) in the shared `attributes` list. */
export function isSensitiveKey(key: string): boolean {
  const lowered = key.toLowerCase();
  return SENSITIVE_ATTRIBUTE_KEYS.has(lowered) || SENSITIVE_ATTRIBUTE_KEYS.has(lowered.slice(lowered.lastIndexOf(".") + 1));
}

function isSensitiveHeaderAttribute(key: string): boolean {
  const prefix = HEADER_PREFIXES.find((candidate) => key.startsWith(candidate));
  return prefix !== undefined && SENSITIVE_HEADERS.includes(key.slice(prefix.length).replaceAll("_", "-"));
}

/**
 * The value `key` may keep: redacted when the key is sensitive, query secrets removed when it
 * names a URL (or is in `textKeys`); the same value (===) when nothing needed changing.
 */
export function scrubAttribute(key: string, value: AttributeValue, textKeys: readonly string[] = URL_ATTRIBUTES): AttributeValue {
  if (isSensitiveHeaderAttribute(key)) return [REDACTED];
  if (isSensitiveKey(key)) return REDACTED;
  if (typeof value === "string" && textKeys.includes(key)) return scrubText(value);
  return value;
}

/** A scrubbed copy of `attributes`, or undefined when nothing needed scrubbing (no copy made). */
export function scrubAttributes(attributes: Attributes, textKeys: readonly string[] = URL_ATTRIBUTES): Attributes | undefined {
  let changed: Attributes | undefined;
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined) continue;
    const scrubbed = scrubAttribute(key, value, textKeys);
    if (scrubbed !== value) {
      changed ??= { ...attributes };
      changed[key] = scrubbed;
    }
  }
  return changed;
}

/** `span` as the exporter must see it: a view over the original with the scrubbed fields. */
export function scrubSpan(span: ReadableSpan): ReadableSpan {
  const name = scrubText(span.name);
  const attributes = scrubAttributes(span.attributes);
  let events: TimedEvent[] | undefined;
  span.events.forEach((event, index) => {
    const scrubbed = event.attributes && scrubAttributes(event.attributes, EVENT_TEXT_ATTRIBUTES);
    if (!scrubbed) return;
    events ??= [...span.events];
    events[index] = { ...event, attributes: scrubbed };
  });
  if (name === span.name && !attributes && !events) return span;
  // The SDK's span keeps its state behind getters and methods: delegate to it, override three fields.
  return Object.create(span, {
    name: { value: name },
    attributes: { value: attributes ?? span.attributes },
    events: { value: events ?? span.events },
  }) as ReadableSpan;
}

/**
 * Wraps the real exporter: spans leave scrubbed. Runs when the batch processor exports, off the
 * request path (a processor's onStart is too early: Next.js renames its server span at the end).
 */
export class ScrubbingSpanExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(spans.map(scrubSpan), resultCallback);
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
