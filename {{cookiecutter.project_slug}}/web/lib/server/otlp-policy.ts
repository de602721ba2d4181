// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * What of a browser's OTLP/JSON export this server passes on: only this web app's own telemetry,
 * bounded. Anyone can POST to /otel/v1/*, so the export is treated as hostile:
 *
 * - its resources must be the web app's: a `service.name` or `service.namespace` that names
 *   another service refuses the whole export (403: an honest browser never sends one, and
 *   rewriting it would file a forged backend error under the web app). The identity is then
 *   rewritten, not trusted: every copy of the identity keys (IDENTITY_KEYS) is removed and exactly
 *   one of each is set, this server's (a resource listing service.name twice, [web, api], would
 *   otherwise be filed by Tempo under the last one);
 * - no span, event, link, log record or data point attribute may claim an identity either: keys
 *   that become the same Prometheus label as an identity key (service.name, service_name, job,
 *   instance, ...) are removed, as Prometheus lets a point attribute win over the resource's;
 * - nothing the backend alone reports: metrics named like the backend's (gen_ai.*, http.server.*,
 *   app.*: cost, 5xx counts and feedback feed the SLO and cost alerts) and feedback-shaped log
 *   records (the `gen_ai.evaluation.result` event, gen_ai.evaluation.* or app.feedback.*
 *   attributes: feedback goes through POST /api/feedback) refuse the export (403); such attributes
 *   on spans, events and points are removed;
 * - new series are bounded: a span's span-metrics key (name, kind, status, http.route, method) or a
 *   data point's (metric name and attributes) counts against the client's series budget
 *   (`admitSeries`, lib/server/series-budget.ts); items past it are dropped;
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
  /** deployment.environment.name of every resource. */
  environment: string;
  limits: OtlpLimits;
  /** False once the client may make no new series; undefined: no budget. */
  admitSeries?: (key: string) => boolean;
}

type Json = Record<string, unknown>;
const MAX_VALUE_DEPTH = 4;
const MAX_KEY_LENGTH = 256;
const SERVICE_KEYS = ["service.name", "service.namespace"] as const;
/** Resource attributes that say who sent the telemetry: set by this server, never taken from the export. */
export const IDENTITY_KEYS = [
  "service.name",
  "service.namespace",
  "service.instance.id",
  "deployment.environment",
  "deployment.environment.name",
] as const;
/**
 * A key as Prometheus's OTLP translation makes it a label (UnderscoreEscaping: every character
 * outside [a-zA-Z0-9_] becomes `_`), lowercased and with runs of `_` collapsed, so `service.name`,
 * `service_name` and `Service-Name` all compare as `service_name`.
 */
export function labelForm(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]+/g, "_");
}
// Labels an item attribute may not become: the identity's, and the target labels Prometheus
// derives from it (job = service.namespace/service.name, instance = service.instance.id).
const RESERVED_LABELS = new Set([...IDENTITY_KEYS.map(labelForm), "job", "instance"]);
// What the backend's feedback route emits (backend/app/api/feedback.py): never from a browser.
const FEEDBACK_PREFIXES = ["gen_ai_evaluation", "app_feedback"];
// Metric names the backend owns, in label form: its alerts (cost, 5xx, LLM errors) and dashboards
// sum them over every service, so a browser-sent one would count as the backend's.
const BACKEND_METRIC_PREFIXES = ["gen_ai_", "http_server_", "app_", "db_", "rpc_", "traces_", "target_info", "llm"];

function claimsIdentity(key: string): boolean {
  const label = labelForm(key);
  return RESERVED_LABELS.has(label) || label.startsWith("_");
}

function isFeedbackKey(key: string): boolean {
  const label = labelForm(key);
  return FEEDBACK_PREFIXES.some((prefix) => label.startsWith(prefix));
}

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
      for (const found of attributes.filter((kv) => labelForm(kv.key as string) === labelForm(key))) {
        const claimed = (found.value as Json).stringValue;
        if (claimed !== expected[key]) {
          throw new RequestRefused(
            403,
            `resource ${key} ${JSON.stringify(String(claimed ?? "").slice(0, 64))} is not this web app's (${JSON.stringify(expected[key])}); export refused`,
          );
        }
      }
    }
    const identity: Record<string, string> = { ...expected, "deployment.environment.name": this.policy.environment };
    const kept = attributes.filter((kv) => !claimsIdentity(kv.key as string));
    for (const [key, value] of Object.entries(identity)) kept.push({ key, value: { stringValue: value } });
    return { attributes: kept };
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
    out.attributes = this.itemAttributes(item.attributes, `${where}.attributes`);
    return out;
  }

  /** An item's attributes without the keys that claim an identity or a feedback. */
  itemAttributes(raw: unknown, where: string): Json[] {
    return this.attributes(raw, where).filter((kv) => !claimsIdentity(kv.key as string) && !isFeedbackKey(kv.key as string));
  }

  /** The span, or null when it would make a series past the client's budget. */
  span(raw: unknown, where: string): Json | null {
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
      })
      .filter((event) => !isFeedbackKey(event.name));
    out.links = list(span.links, `${where}.links`)
      .slice(0, this.policy.limits.maxAttributes)
      .map((link, i) => this.common(object(link, `${where}.links[${i}]`), `${where}.links[${i}]`, ["traceId", "spanId", "traceState", "flags", "droppedAttributesCount"]));
    // What the collector's span_metrics connector makes a series of (deploy/config/otel-collector-config.yaml).
    const dimension = (key: string) => JSON.stringify((out.attributes as Json[]).find((kv) => kv.key === key)?.value ?? null);
    const series = ["span", out.name, out.kind ?? 0, (out.status as Json | undefined)?.code ?? 0, dimension("http.route"), dimension("http.request.method")];
    return this.admit(JSON.stringify(series)) ? out : null;
  }

  admit(key: string): boolean {
    return this.policy.admitSeries ? this.policy.admitSeries(key) : true;
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
    const feedback = [typeof out.eventName === "string" ? out.eventName : "", ...this.attributes(record.attributes, `${where}.attributes`).map((kv) => kv.key as string)].find(isFeedbackKey);
    if (feedback !== undefined) {
      throw new RequestRefused(403, `${where} is a feedback event (${JSON.stringify(feedback.slice(0, 64))}); feedback goes through POST /api/feedback; export refused`);
    }
    if (record.body !== undefined) out.body = this.value(record.body, `${where}.body`, 0, true);
    return out;
  }

  /** The metric, or null when none of its points fits the client's series budget. */
  metric(raw: unknown, where: string): Json | null {
    const metric = object(raw, where);
    const out: Json = { name: this.text(metric.name ?? "", `${where}.name`) };
    const label = labelForm(out.name as string);
    if (BACKEND_METRIC_PREFIXES.some((prefix) => label.startsWith(prefix))) {
      throw new RequestRefused(403, `metric ${JSON.stringify((out.name as string).slice(0, 64))} is named like the backend's; export refused`);
    }
    for (const field of ["description", "unit"]) if (metric[field] !== undefined) out[field] = this.text(metric[field], `${where}.${field}`);
    for (const kind of METRIC_DATA) {
      if (metric[kind] === undefined) continue;
      const data = object(metric[kind], `${where}.${kind}`);
      const points = list(data.dataPoints, `${where}.${kind}.dataPoints`);
      this.count(points.length, `${where}.${kind}`);
      const kept: Json = {};
      for (const field of METRIC_DATA_FIELDS) if (data[field] !== undefined) kept[field] = data[field];
      kept.dataPoints = points
        .map((point, i) => {
          const p = object(point, `${where}.${kind}.dataPoints[${i}]`);
          const numbers: Json = {};
          for (const field of POINT_FIELDS) if (p[field] !== undefined) numbers[field] = p[field];
          return { ...numbers, attributes: this.itemAttributes(p.attributes, `${where}.${kind}.dataPoints[${i}].attributes`) };
        })
        .filter((point) => {
          const labels = (point.attributes as Json[]).map((kv) => [kv.key, kv.value]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
          return this.admit(JSON.stringify(["metric", out.name, kind, labels]));
        });
      if ((kept.dataPoints as Json[]).length === 0) return null;
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
          [layout.items]: list(scopeBlock[layout.items], `${at}.${layout.items}`)
            .map((one, i) => item(one, `${at}.${layout.items}[${i}]`))
            .filter((one) => one !== null),
        };
      }),
    };
  });
  return { [layout.resources]: resources };
}
