"""The scaffold's app with its own telemetry off, for `opentelemetry-instrument` (variant c)."""

from app.main import create_app
from app.telemetry.config import TelemetrySettings

app = create_app(telemetry_options={"settings": TelemetrySettings.from_env({}, sdk_disabled=True)})
