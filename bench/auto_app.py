"""The scaffold's app with its own telemetry off, for `opentelemetry-instrument` (variants c, c=).

BENCH_AUTO_GENAI=1 (variant c=) also gives the Cerebe client GenAI spans, token and cost metrics
on the providers opentelemetry-instrument installed globally: no auto-instrumentation knows the
Cerebe API, so a user of plain auto-instrumentation would wire this by hand to match the scaffold.
"""

import os

from app.main import create_app
from app.telemetry.config import TelemetrySettings
from app.telemetry.llm import LLMTelemetry
from opentelemetry import metrics, trace


def _with_genai_on_globals(application):
    # Relies on app.state.telemetry.llm (the LLMTelemetry the lifespan hands to CerebeClient);
    # no public option swaps it once telemetry is disabled.
    application.state.telemetry.llm = LLMTelemetry(trace.get_tracer_provider(), metrics.get_meter_provider())
    return application


app = create_app(telemetry_options={"settings": TelemetrySettings.from_env({}, sdk_disabled=True)})
if os.environ.get("BENCH_AUTO_GENAI") == "1":
    app = _with_genai_on_globals(app)
