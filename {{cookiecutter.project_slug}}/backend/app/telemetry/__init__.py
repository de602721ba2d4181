"""Telemetry for the API: call `init_telemetry(app, service_name)` once, right after FastAPI().

Where each signal is configured:
    config.py     every setting and its environment variable
    resource.py   service.name / version / namespace / deployment.environment.name
    traces.py     tracer provider, sampler, OTLP exporter; FastAPI, httpx, SQLAlchemy spans
    metrics.py    meter provider and OTLP metric export
    logs.py       JSON stdout + OTLP logs with trace_id/span_id; loki.py pushes to Loki directly
    llm.py        GenAI spans, token and cost metrics for Cerebe calls
    replay.py     session-replay correlation (swap the vendor here and in web/lib/observability.ts)
    scrubbing.py  what never leaves the process (credentials in headers and query strings)
    testing.py    in-memory exporters and pytest fixtures for your own trace assertions
"""

from .setup import Telemetry, init_telemetry, shutdown_telemetry
from .traces import FASTAPI_NATIVE_TELEMETRY_OFF

__all__ = ["FASTAPI_NATIVE_TELEMETRY_OFF", "Telemetry", "init_telemetry", "shutdown_telemetry"]
