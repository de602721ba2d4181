import assert from "node:assert/strict";
import { test } from "node:test";
import { SERVICE_NAME } from "../config";
import {
  apiBaseUrl,
  grafanaUrl,
  otlpHeaders,
  otlpTracesUrl,
  replayMaxSessionBytes,
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
