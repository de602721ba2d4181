"""The scaffold's app with one part of its telemetry left out (BENCH_LEAVE_OUT), for attribution.

Used by bench/attribution.py only; `uvicorn --app-dir bench variant_app:app` from backend/.
"""

import os

import app.telemetry.setup as setup
import app.telemetry.traces as traces
from app.main import create_app
from opentelemetry.metrics import NoOpMeterProvider

leave_out = os.environ.get("BENCH_LEAVE_OUT", "")
if leave_out == "otlp-logs":
    configure = setup.logs.configure_logging
    setup.logs.configure_logging = lambda settings, provider: configure(settings, None)
elif leave_out == "metrics":
    setup.build_meter_provider = lambda *args, **kwargs: NoOpMeterProvider()
elif leave_out == "db-spans":
    traces.instrument_sqlalchemy = lambda *args, **kwargs: None
elif leave_out == "httpx-spans":
    traces.instrument_httpx = lambda *args, **kwargs: None

app = create_app()
