"""The scaffold's app with one part of its telemetry left out (BENCH_LEAVE_OUT), for attribution.

Used by bench/attribution.py only; `uvicorn --app-dir bench variant_app:app` from backend/.
Each leave-out undoes one part of what create_app wired, through OpenTelemetry's public API
(instrumentors' uninstrument, the root logger's handlers), so it survives a rewrite of
app.telemetry; the one that cannot be expressed that way is isolated in `_without_metrics`.
"""

import logging
import os

from app.main import create_app
from app.telemetry.logs import OtlpLogHandler
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.metrics import NoOpMeterProvider


def _without_otlp_logs() -> None:
    """The OTLP log handler off the root logger: records still go to stdout as JSON."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, OtlpLogHandler)]:
        root.removeHandler(handler)


def _without_metrics() -> None:
    # Relies on app.telemetry.setup.build_meter_provider (an internal: no public option builds
    # the app without a meter provider); patched before create_app so every instrument is a no-op.
    import app.telemetry.setup as setup

    setup.build_meter_provider = lambda *args, **kwargs: NoOpMeterProvider()


LEAVE_OUT = {
    "": (None, None),
    "otlp-logs": (None, _without_otlp_logs),
    "metrics": (_without_metrics, None),
    # Removes the engine's event listeners too (statement, connect and pool hooks).
    "db-spans": (None, lambda: SQLAlchemyInstrumentor().uninstrument()),
    # Before the lifespan builds the app's AsyncClient, so it is never patched.
    "httpx-spans": (None, lambda: HTTPXClientInstrumentor().uninstrument()),
}

before, after = LEAVE_OUT[os.environ.get("BENCH_LEAVE_OUT", "")]
if before:
    before()
app = create_app()
if after:
    after()
