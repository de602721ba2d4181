"""Every telemetry setting, read from the environment in one place.

The rendered defaults below are what `cookiecutter` was answered with; each one can be overridden
at run time by the environment variable named in its field's docstring. Standard OpenTelemetry
variables (OTEL_*) keep their standard meaning; the exporters read the per-signal ones
(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, ..._HEADERS, ..._TIMEOUT) themselves.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

SERVICE_NAME = "{{ cookiecutter.backend_service_name }}"
SERVICE_NAMESPACE = "{{ cookiecutter.project_slug }}"
DEPLOYMENT_ENVIRONMENT = "{{ cookiecutter.deployment_environment }}"
OTLP_ENDPOINT = "http://localhost:4318"
TRACE_SAMPLE_RATIO = float("{{ cookiecutter.trace_sample_ratio }}")

# Routes that would only add noise (probes, scrapes, the built-in replay's uploads and reads, which
# would otherwise make a trace every few seconds per browser tab): no spans, no duration metric.
EXCLUDED_URLS = ("/healthz", "/metrics", "/api/replay/")


def _flag(value: str | None, default: bool = False) -> bool:
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _ratio(value: str | None, default: float) -> float:
    if value is None or not value.strip():
        return default
    try:
        ratio = float(value)
    except ValueError:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG={value!r}: must be a number from 0 to 1") from None
    if not math.isfinite(ratio) or not 0.0 <= ratio <= 1.0:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG={value!r}: must be a number from 0 to 1")
    return ratio


def _local_development(env: Mapping[str, str]) -> bool:
    """No collector configured and not in Kubernetes: the console view is the only one there is."""
    signals = ("", "TRACES_", "LOGS_", "METRICS_")
    endpoints = [f"OTEL_EXPORTER_OTLP_{signal}ENDPOINT" for signal in signals]
    return not env.get("KUBERNETES_SERVICE_HOST") and not any(env.get(name) for name in endpoints)


@dataclass(frozen=True, kw_only=True)
class TelemetrySettings:
    """What `init_telemetry` wires; build it with `from_env()`."""

    service_name: str = SERVICE_NAME
    """service.name. Env: OTEL_SERVICE_NAME (wins over the argument, so a deployment can rename)."""

    service_version: str = "0.1.0"
    """service.version. Env: SERVICE_VERSION (set it to the image tag or git sha in CI)."""

    service_namespace: str = SERVICE_NAMESPACE
    """service.namespace: groups the API and the web app of one project."""

    deployment_environment: str = DEPLOYMENT_ENVIRONMENT
    """deployment.environment.name. Env: DEPLOYMENT_ENVIRONMENT."""

    sdk_disabled: bool = False
    """No providers, no exporters, no instrumentation at all. Env: OTEL_SDK_DISABLED=true."""

    otlp_endpoint: str = OTLP_ENDPOINT
    """Base URL of the OTLP/HTTP receiver (the collector). Env: OTEL_EXPORTER_OTLP_ENDPOINT."""

    trace_sample_ratio: float = TRACE_SAMPLE_RATIO
    """Share of new traces kept; a sampled parent is always followed. Env: OTEL_TRACES_SAMPLER_ARG."""

    log_level: str = "INFO"
    """Level of the app's loggers. Env: LOG_LEVEL."""

    log_json_stdout: bool = True
    """One JSON object per line on stdout, with trace_id/span_id. Env: LOG_JSON=false turns it off."""

    loki_url: str | None = None
    """When set, logs are also pushed straight to Loki (base URL). Env: LOKI_URL."""

    console: bool = False
    """Print each finished request as a span tree on stderr (console.py). Env: TELEMETRY_CONSOLE;
    unset, it is on when no OTLP endpoint is set in the environment and not in Kubernetes."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> TelemetrySettings:
        """Read the settings from `environ` (default: os.environ); `overrides` win over both."""
        env = os.environ if environ is None else environ
        coded_name = overrides.pop("service_name", None)
        values = {
            "service_name": env.get("OTEL_SERVICE_NAME") or coded_name or SERVICE_NAME,
            "service_version": env.get("SERVICE_VERSION") or cls.service_version,
            "deployment_environment": env.get("DEPLOYMENT_ENVIRONMENT") or DEPLOYMENT_ENVIRONMENT,
            "sdk_disabled": _flag(env.get("OTEL_SDK_DISABLED")),
            "otlp_endpoint": (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or OTLP_ENDPOINT).rstrip("/"),
            "trace_sample_ratio": _ratio(env.get("OTEL_TRACES_SAMPLER_ARG"), TRACE_SAMPLE_RATIO),
            "log_level": (env.get("LOG_LEVEL") or cls.log_level).upper(),
            "log_json_stdout": _flag(env.get("LOG_JSON"), default=True),
            "loki_url": (env.get("LOKI_URL") or "").rstrip("/") or None,
            "console": _flag(env.get("TELEMETRY_CONSOLE"), default=_local_development(env)),
        }
        values.update(overrides)
        return cls(**values)
