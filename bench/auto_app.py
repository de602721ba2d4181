"""The scaffold's app with its own telemetry off, for `opentelemetry-instrument` (variants c, c=).

BENCH_AUTO_EQUAL=1 (variant c=) brings it to the scaffold's coverage where no environment variable
can: GenAI spans, token and cost metrics for the Cerebe client on the providers
opentelemetry-instrument installed globally (no auto-instrumentation knows the Cerebe API, so a
user of plain auto-instrumentation would wire this by hand), and one stdout line per record.
"""

import logging
import os
import sys

from app.main import create_app
from app.telemetry.config import TelemetrySettings
from app.telemetry.llm import LLMTelemetry
from opentelemetry import metrics, trace


def _equal_coverage(application):
    # Relies on app.state.telemetry.llm (the LLMTelemetry the lifespan hands to CerebeClient);
    # no public option swaps it once the scaffold's telemetry is disabled.
    application.state.telemetry.llm = LLMTelemetry(trace.get_tracer_provider(), metrics.get_meter_provider())
    # OTEL_PYTHON_LOG_CORRELATION also runs logging.basicConfig: a second, plain-text line per
    # record on stderr beside the app's JSON line. The scaffold writes one line; so does (c=).
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler and handler.stream is sys.stderr:
            root.removeHandler(handler)
    return application


app = create_app(telemetry_options={"settings": TelemetrySettings.from_env({}, sdk_disabled=True)})
if os.environ.get("BENCH_AUTO_EQUAL") == "1":
    app = _equal_coverage(app)
