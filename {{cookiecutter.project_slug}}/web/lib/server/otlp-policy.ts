// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * What of a browser's OTLP/JSON export this server passes on: only this web app's own telemetry,
 * bounded. Anyone can POST to /otel/v1/*, so the export is treated as hostile:
 *
 * - its resources must be the web app's: a `service.name` or `service.namespace` that names
 *   another service refuses the whole export (403: an honest browser never sends one, and
 *   rewriting it would file a forged backend error under the web app); missing ones are set;
 * - at most `maxItems` spans, log records or metric data points (413), `maxAttributes` attributes
 *   per span, event, link, record or point, string values cut to `maxAttributeLength`, nested
 *   values at most MAX_VALUE_DEPTH deep;
 * - attributes are scrubbed like the server's own spans (lib/server/scrubbing.ts);
 * - anything that is not OTLP/JSON's shape is refused (400), fields it does not know are dropped.
 */
import { RequestRefused } from "./bounded-body";
import type { OtlpLimits, OtlpSignal } from "./env";
import { isSensitiveKey, REDACTED, scrubText, URL_ATTRIBUTES } from "./scrubbing";

export interface OtlpPolicy {
  serviceName: string;
  serviceNamespace: string;
  limits: OtlpLimits;
}

type Json = Record<string, unknown>;
const MAX_VALUE_DEPTH = 4;
const MAX_KEY_LENGTH = 256;
const SERVICE_KEYS = ["service.name", "service.namespace"] as const;

// Where each signal keeps its items, and the fields of an item worth keeping.
const LAYOUT: Record<OtlpSignal, { resources: string; scopes: string; items: string }> = {
  traces: { resources: "resourceSpans", scopes: "scopeSpans", items: "spans" },
  logs: { resources: "resourceLogs", scopes: "scopeLogs", items: "logRecords" },
  metrics: { resources: "resourceMetrics", scopes: "scopeMetrics", items: "metrics" },
};
const METRIC_DATA = ["gauge", "sum", "histogram", "exponentialHistogram", "summary"];
const METRIC_DATA_FIELDS = ["aggregationTemporality", "isMonotonic"];
const POINT_FIELDS = [
  "startTimeUnixNano",
  "timeUnixNano",
  "asDouble",
  "asInt",
  "flags",
  "count",
  "sum",
  "min",
  "max",
  "bucketCounts",
  "explicitBounds",
  "scale",
  "zeroCount",
  "zeroThreshold",
  "positive",
  "negative",
  "quantileValues",
];
const MAX_ID_LENGTH = 64;

function invalid(where: string, what: string): never {
  throw new RequestRefused(400, `not OTLP/JSON: ${where} ${what}`);
}

function object(value: unknown, where: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) invalid(where, "is not an object");
  return value as Json;
}

function list(value: unknown, where: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) invalid(where, "is not a list");
  return value;
}

class Sanitizer {
  items = 0;

  constructor(private readonly policy: OtlpPolicy) {}

  text(value: unknown, where: string, scrub = false): string {
    if (typeof value !== "string") invalid(where, "is not a string");
    const cut = value.length > this.policy.limits.maxAttributeLength ? value.slice(0, this.policy.limits.maxAttributeLength) : value;
    return scrub ? scrubText(cut) : cut;
  }

  count(n: number, where: string): void {
    this.items += n;
    if (this.items > this.policy.limits.maxItems) {
      throw new RequestRefused(413, `more than ${this.policy.limits.maxItems} spans, log records or data points in one export (at ${where})`);
    }
  }

  /** An AnyValue, bounded; `scrub` removes query secrets from its strings. */
  value(raw: unknown, where: string, depth: number, scrub: boolean): Json {
    const value = object(raw, where);
    if ("stringValue" in value) return { stringValue: this.text(value.stringValue, `${where}.stringValue`, scrub) };
    for (const scalar of ["boolValue", "intValue", "doubleValue"]) {
      if (scalar in value) {
        const kind = typeof value[scalar];
        if (kind !== "number" && kind !== "boolean" && kind !== "string") invalid(`${where}.${scalar}`, "is not a scalar");
        return { [scalar]: kind === "string" ? this.text(value[scalar], where) : value[scalar] };
      }
    }
    if ("bytesValue" in value) return { bytesValue: this.text(value.bytesValue, `${where}.bytesValue`) };
    if (depth >= MAX_VALUE_DEPTH) return { stringValue: "[nested too deep]" };
    if ("arrayValue" in value) {
      const values = list(object(value.arrayValue, `${where}.arrayValue`).values, `${where}.arrayValue.values`);
      return {
        arrayValue: {
          values: values.slice(0, this.policy.limits.maxAttributes).map((v, i) => this.value(v, `${where}[${i}]`, depth + 1, scrub)),
        },
      };
    }
    if ("kvlistValue" in value) {
      const values = object(value.kvlistValue, `${where}.kvlistValue`).values;
      return { kvlistValue: { values: this.attributes(values, `${where}.kvlistValue`, depth + 1) } };
    }
    return {};
  }

  /** A KeyValue list: bounded in count, key and value size; sensitive keys redacted, URLs scrubbed. */
  attributes(raw: unknown, where: string, depth = 0): Json[] {
    const kept: Json[] = [];
    for (const [i, entry] of list(raw, where).slice(0, this.policy.limits.maxAttributes).entries()) {
      const kv = object(entry, `${where}[${i}]`);
      const key = this.text(kv.key, `${where}[${i}].key`).slice(0, MAX_KEY_LENGTH);
      if (isSensitiveKey(key)) {
        kept.push({ key, value: { stringValue: REDACTED } });
        continue;
      }
      const value = kv.value === undefined ? {} : this.value(kv.value, `${where}[${i}].value`, depth, URL_ATTRIBUTES.includes(key));
      kept.push({ key, value });
    }
    return kept;
  }

  /** The resource's attributes with the web app's service identity, or a 403. */
  resource(raw: unknown, where: string): Json {
    const resource = raw === undefined ? {} : object(raw, where);
    const attributes = this.attributes(resource.attributes, `${where}.attributes`);
    const expected = { "service.name": this.policy.serviceName, "service.namespace": this.policy.serviceNamespace };
    for (const key of SERVICE_KEYS) {
      const found = attributes.find((kv) => kv.key === key);
      if (!found) {
        attributes.push({ key, value: { stringValue: expected[key] } });
        continue;
      }
      const claimed = (found.value as Json).stringValue;
      if (claimed !== expected[key]) {
        throw new RequestRefused(
          403,
          `resource ${key} ${JSON.stringify(String(claimed ?? "").slice(0, 64))} is not this web app's (${JSON.stringify(expected[key])}); export refused`,
        );
      }
    }
    return { attributes };
  }

  /** The named scalar fields of `item` (ids, times, counts), its attributes; the rest is dropped. */
  private common(item: Json, where: string, keep: readonly string[]): Json {
    const out: Json = {};
    for (const field of keep) {
      const value = item[field];
      if (value === undefined) continue;
      if (typeof value === "number") out[field] = value;
      else if (typeof value === "string") out[field] = value.slice(0, MAX_ID_LENGTH);
      else invalid(`${where}.${field}`, "is not a number or string");
    }
    out.attributes = this.attributes(item.attributes, `${where}.attributes`);
    return out;
  }

  span(raw: unknown, where: string): Json {
    const span = object(raw, where);
    this.count(1, where);
    const out = this.common(span, where, [
      "traceId",
      "spanId",
      "parentSpanId",
      "traceState",
      "flags",
      "kind",
      "startTimeUnixNano",
      "endTimeUnixNano",
      "droppedAttributesCount",
      "droppedEventsCount",
      "droppedLinksCount",
    ]);
    out.name = this.text(span.name ?? "", `${where}.name`, true);
    if (span.status !== undefined) {
      const status = object(span.status, `${where}.status`);
      const code = status.code ?? 0;
      if (typeof code !== "number" && typeof code !== "string") invalid(`${where}.status.code`, "is not a status code");
      out.status = { code, ...(status.message === undefined ? {} : { message: this.text(status.message, `${where}.status.message`, true) }) };
    }
    out.events = list(span.events, `${where}.events`)
      .slice(0, this.policy.limits.maxAttributes)
      .map((event, i) => {
        const e = object(event, `${where}.events[${i}]`);
        return { ...this.common(e, `${where}.events[${i}]`, ["timeUnixNano", "droppedAttributesCount"]), name: this.text(e.name ?? "", `${where}.events[${i}].name`) };
      });
    out.links = list(span.links, `${where}.links`)
      .slice(0, this.policy.limits.maxAttributes)
      .map((link, i) => this.common(object(link, `${where}.links[${i}]`), `${where}.links[${i}]`, ["traceId", "spanId", "traceState", "flags", "droppedAttributesCount"]));
    return out;
  }

  logRecord(raw: unknown, where: string): Json {
    const record = object(raw, where);
    this.count(1, where);
    const out = this.common(record, where, [
      "timeUnixNano",
      "observedTimeUnixNano",
      "severityNumber",
      "severityText",
      "traceId",
      "spanId",
      "flags",
      "droppedAttributesCount",
      "eventName",
    ]);
    if (typeof out.severityText === "string") out.severityText = out.severityText.slice(0, 32);
    if (typeof out.eventName === "string") out.eventName = this.text(out.eventName, `${where}.eventName`);
    if (record.body !== undefined) out.body = this.value(record.body, `${where}.body`, 0, true);
    return out;
  }

  metric(raw: unknown, where: string): Json {
    const metric = object(raw, where);
    const out: Json = { name: this.text(metric.name ?? "", `${where}.name`) };
    for (const field of ["description", "unit"]) if (metric[field] !== undefined) out[field] = this.text(metric[field], `${where}.${field}`);
    for (const kind of METRIC_DATA) {
      if (metric[kind] === undefined) continue;
      const data = object(metric[kind], `${where}.${kind}`);
      const points = list(data.dataPoints, `${where}.${kind}.dataPoints`);
      this.count(points.length, `${where}.${kind}`);
      const kept: Json = {};
      for (const field of METRIC_DATA_FIELDS) if (data[field] !== undefined) kept[field] = data[field];
      kept.dataPoints = points.map((point, i) => {
        const p = object(point, `${where}.${kind}.dataPoints[${i}]`);
        const numbers: Json = {};
        for (const field of POINT_FIELDS) if (p[field] !== undefined) numbers[field] = p[field];
        return { ...numbers, attributes: this.attributes(p.attributes, `${where}.${kind}.dataPoints[${i}].attributes`) };
      });
      out[kind] = kept;
      break;
    }
    return out;
  }
}

/**
 * The export as it may go on to the collector, rebuilt from what `raw` (parsed OTLP/JSON) holds;
 * throws RequestRefused with the status and reason otherwise.
 */
export function sanitizeExport(signal: OtlpSignal, raw: unknown, policy: OtlpPolicy): Json {
  const layout = LAYOUT[signal];
  const sanitizer = new Sanitizer(policy);
  const document = object(raw, "the body");
  const item = { traces: sanitizer.span, logs: sanitizer.logRecord, metrics: sanitizer.metric }[signal].bind(sanitizer);
  const resources = list(document[layout.resources], layout.resources).map((entry, r) => {
    const where = `${layout.resources}[${r}]`;
    const block = object(entry, where);
    return {
      resource: sanitizer.resource(block.resource, `${where}.resource`),
      ...(typeof block.schemaUrl === "string" ? { schemaUrl: block.schemaUrl.slice(0, MAX_KEY_LENGTH) } : {}),
      [layout.scopes]: list(block[layout.scopes], `${where}.${layout.scopes}`).map((scopeEntry, s) => {
        const at = `${where}.${layout.scopes}[${s}]`;
        const scopeBlock = object(scopeEntry, at);
        const scope = scopeBlock.scope === undefined ? {} : object(scopeBlock.scope, `${at}.scope`);
        return {
          scope: {
            name: sanitizer.text(scope.name ?? "", `${at}.scope.name`),
            ...(scope.version === undefined ? {} : { version: sanitizer.text(scope.version, `${at}.scope.version`) }),
          },
          [layout.items]: list(scopeBlock[layout.items], `${at}.${layout.items}`).map((one, i) => item(one, `${at}.${layout.items}[${i}]`)),
        };
      }),
    };
  });
  return { [layout.resources]: resources };
}
