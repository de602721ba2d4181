// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SERVICE_NAME, SESSION_REPLAY } from "../config";
import { REPLAY_VENDOR_NAMES } from "../observability";
import {
  apiBaseUrl,
  apiMaxBodyBytes,
  grafanaUrl,
  otlpHeaders,
  otlpLimits,
  otlpSignalUrl,
  otlpTracesUrl,
  replayMaxSessionBytes,
  replayVendor,
  replaySampleRate,
  sampleRatio,
  telemetryConfig,
  telemetryEnabled,
} from "./env";

test("API_BASE_URL is read as given, without a trailing slash; localhost:8000 by default", () => {
  assert.equal(apiBaseUrl({}), "http://localhost:8000");
  assert.equal(apiBaseUrl({ API_BASE_URL: "http://api.internal:8000/" }), "http://api.internal:8000");
  assert.equal(apiBaseUrl({ API_BASE_URL: "  " }), "http://localhost:8000");
});

test("the collector's traces URL follows the OTLP exporter spec", () => {
  assert.equal(otlpTracesUrl({}), "http://localhost:4318/v1/traces");
  assert.equal(otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }), "http://collector:4318/v1/traces");
  assert.equal(
    otlpTracesUrl({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://traces:4318/custom",
    }),
    "http://traces:4318/custom",
  );
});

test("OTLP headers: key=value pairs, URL-decoded", () => {
  assert.deepEqual(otlpHeaders({ OTEL_EXPORTER_OTLP_HEADERS: "authorization=Basic%20abc, x-tenant=t1,broken" }), {
    authorization: "Basic abc",
    "x-tenant": "t1",
  });
  assert.deepEqual(otlpHeaders({}), {});
});

test("the sample ratio is clamped to [0, 1], and an unreadable one keeps everything", () => {
  assert.equal(sampleRatio({ OTEL_TRACES_SAMPLER_ARG: "0.25" }), 0.25);
  assert.equal(sampleRatio({ OTEL_TRACES_SAMPLER_ARG: "7" }), 1);
  assert.equal(sampleRatio({ OTEL_TRACES_SAMPLER_ARG: "-1" }), 0);
  assert.equal(sampleRatio({ OTEL_TRACES_SAMPLER_ARG: "most" }), 1);
});

test("OTEL_SDK_DISABLED=true turns telemetry off, anything else leaves it on", () => {
  assert.equal(telemetryEnabled({ OTEL_SDK_DISABLED: "TRUE" }), false);
  assert.equal(telemetryEnabled({ OTEL_SDK_DISABLED: "false" }), true);
  assert.equal(telemetryEnabled({}), true);
});

test("the browser's config comes from the environment at call time and holds no server secret", () => {
  const env = {
    OTEL_SERVICE_NAME: "shop-web",
    HIGHLIGHT_PROJECT_ID: "p1",
    HIGHLIGHT_BACKEND_URL: "http://127.0.0.1:9",
    API_BASE_URL: "http://api.internal:8000",
    OTEL_EXPORTER_OTLP_HEADERS: "authorization=secret",
    OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector.internal:4318",
  };
  const config = telemetryConfig(env);
  assert.equal(config.serviceName, "shop-web");
  assert.equal(config.tracesPath, "/otel/v1/traces");
  assert.equal(config.apiPath, "/api/");
  assert.deepEqual(config.replay.highlight, { projectId: "p1", backendUrl: "http://127.0.0.1:9", otlpEndpoint: "" });
  const served = JSON.stringify(config);
  for (const secret of ["secret", "api.internal", "collector.internal"]) assert.ok(!served.includes(secret), secret);
  assert.equal(telemetryConfig({}).serviceName, SERVICE_NAME);
});

test("the built-in replay's settings: sample rate clamped to [0, 1], byte budget a positive integer", () => {
  assert.deepEqual(telemetryConfig({}).replay.builtin, { sampleRate: 1, maxSessionBytes: 20 * 1024 * 1024 });
  assert.equal(replaySampleRate({ REPLAY_SAMPLE_RATE: "0.1" }), 0.1);
  assert.equal(replaySampleRate({ REPLAY_SAMPLE_RATE: "3" }), 1);
  assert.equal(replaySampleRate({ REPLAY_SAMPLE_RATE: "some" }), 1);
  assert.equal(replaySampleRate({ REPLAY_SAMPLE_RATE: "0" }), 0);
  assert.equal(replayMaxSessionBytes({ REPLAY_MAX_SESSION_BYTES: "1048576" }), 1048576);
  assert.equal(replayMaxSessionBytes({ REPLAY_MAX_SESSION_BYTES: "-5" }), 20 * 1024 * 1024);
});

test("GRAFANA_URL is the local stack's Grafana (port 3001) unless set", () => {
  assert.equal(grafanaUrl({}), "http://localhost:3001");
  assert.equal(grafanaUrl({ GRAFANA_URL: "https://grafana.example.com/" }), "https://grafana.example.com");
});

test("each OTLP signal has its URL and headers: its own variable first, then the shared one", () => {
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: "http://logs:3100/otlp/v1/logs",
    OTEL_EXPORTER_OTLP_HEADERS: "x-all=1",
    OTEL_EXPORTER_OTLP_METRICS_HEADERS: "x-metrics=1",
  };
  assert.equal(otlpSignalUrl(env, "logs"), "http://logs:3100/otlp/v1/logs");
  assert.equal(otlpSignalUrl(env, "metrics"), "http://collector:4318/v1/metrics");
  assert.deepEqual(otlpHeaders(env, "metrics"), { "x-metrics": "1" });
  assert.deepEqual(otlpHeaders(env, "logs"), { "x-all": "1" });
});

test("the body and OTLP limits are positive integers, with defaults for anything else", () => {
  assert.equal(apiMaxBodyBytes({}), 512 * 1024);
  assert.equal(apiMaxBodyBytes({ API_MAX_BODY_BYTES: "2048" }), 2048);
  assert.equal(apiMaxBodyBytes({ API_MAX_BODY_BYTES: "0" }), 512 * 1024);
  assert.deepEqual(otlpLimits({}), {
    maxBodyBytes: 4 * 1024 * 1024,
    maxItems: 1000,
    maxAttributeLength: 4096,
    maxAttributes: 128,
    ratePerMinute: 120,
    totalRatePerMinute: 6000,
    maxSeries: 200,
    seriesWindowMs: 600_000,
  });
  assert.equal(otlpLimits({ OTLP_RATE_LIMIT: "7", OTLP_MAX_ITEMS: "1.5" }).ratePerMinute, 7);
  assert.equal(otlpLimits({ OTLP_MAX_ITEMS: "1.5" }).maxItems, 1000);
});

test("SESSION_REPLAY picks the replay vendor at run time; unset, the rendered answer", () => {
  assert.equal(replayVendor({}), SESSION_REPLAY);
  assert.equal(replayVendor({ SESSION_REPLAY: " " }), SESSION_REPLAY);
  for (const name of REPLAY_VENDOR_NAMES) {
    assert.equal(replayVendor({ SESSION_REPLAY: name }), name);
    assert.equal(telemetryConfig({ SESSION_REPLAY: name }).replayVendor, name);
  }
});

test("a SESSION_REPLAY that names no vendor is one clear error naming the valid ones", () => {
  for (const bad of ["fullstory", "Builtin", "constructor", "__proto__"]) {
    assert.throws(
      () => telemetryConfig({ SESSION_REPLAY: bad }),
      { message: `SESSION_REPLAY=${JSON.stringify(bad)}: must be one of ${REPLAY_VENDOR_NAMES.join(", ")}` },
    );
  }
});
