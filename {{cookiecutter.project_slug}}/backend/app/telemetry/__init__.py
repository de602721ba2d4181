# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Telemetry for the API: call `init_telemetry(app, service_name)` once, right after FastAPI().

Where each signal is configured:
    config.py     every setting and its environment variable (pydantic-settings)
    resource.py   service.name / version / namespace / deployment.environment.name
    exporters.py  the OTLP exporters: one line per signal while the collector is down
    traces.py     tracer provider and sampler; FastAPI, httpx, SQLAlchemy spans
    metrics.py    meter provider
    logs.py       JSON stdout + OTLP logs with trace_id/span_id; loki.py pushes to Loki directly
    llm.py        GenAI spans, token and cost metrics for Cerebe calls
    agent.py      invoke_agent / execute_tool spans and the agent metrics (app/agent/)
    replay.py     session-replay correlation (swap the vendor here and in web/lib/observability.ts)
    scrubbing.py  what never leaves the process (credentials in headers and query strings)
    testing.py    in-memory exporters and pytest fixtures for your own trace assertions
"""

from .setup import Telemetry, init_telemetry
from .traces import FASTAPI_NATIVE_TELEMETRY_OFF

__all__ = ["FASTAPI_NATIVE_TELEMETRY_OFF", "Telemetry", "init_telemetry"]
