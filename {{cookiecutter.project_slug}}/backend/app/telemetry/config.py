# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Every telemetry setting, read from the environment in one place (pydantic-settings).

The rendered defaults below are what `cookiecutter` was answered with; each one can be overridden
at run time by the environment variable named in its field's docstring. Standard OpenTelemetry
variables keep their standard names (the SDK's own constants) and meaning; the exporters read
the other per-signal ones (OTEL_EXPORTER_OTLP_TRACES_HEADERS, ..._TIMEOUT) themselves.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Self

from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_SDK_DISABLED,
    OTEL_SERVICE_NAME,
    OTEL_TRACES_SAMPLER_ARG,
)
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_NAME = "{{ cookiecutter.backend_service_name }}"
SERVICE_NAMESPACE = "{{ cookiecutter.project_slug }}"
DEPLOYMENT_ENVIRONMENT = "{{ cookiecutter.deployment_environment }}"
OTLP_ENDPOINT = "http://localhost:4318"
TRACE_SAMPLE_RATIO = float("{{ cookiecutter.trace_sample_ratio }}")

# Routes that would only add noise (probes, scrapes, the built-in replay's uploads and reads, which
# would otherwise make a trace every few seconds per browser tab): no spans, no duration metric.
EXCLUDED_URLS = ("/healthz", "/metrics", "/api/replay/")

# The instrumentations' own variables (opentelemetry-util-http reads the same names).
OTEL_PYTHON_FASTAPI_EXCLUDED_URLS = "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS"
OTEL_PYTHON_EXCLUDED_URLS = "OTEL_PYTHON_EXCLUDED_URLS"
OTEL_SEMCONV_STABILITY_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"
OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"


# Set by EnvSettings.from_env(environ): read only that mapping, not the process environment.
_GIVEN_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("given_environ", default=None)


def _local_development(env: Mapping[str, str]) -> bool:
    """No collector configured and not in Kubernetes: the console view is the only one there is."""
    endpoints = (
        OTEL_EXPORTER_OTLP_ENDPOINT,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    )
    return not env.get("KUBERNETES_SERVICE_HOST") and not any(env.get(name) for name in endpoints)


class SettingsError(ValueError):
    """A setting's value is wrong: one line, naming each bad variable, its value and the rule."""


def rule_of(error: Mapping[str, Any]) -> str:
    """The rule a pydantic error states, without pydantic's "Value error, " label."""
    return str(error["msg"]).removeprefix("Value error, ")


class EnvSettings(BaseSettings):
    """Shared by the app's and telemetry's settings: env names are the aliases, empty means unset."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        env_ignore_empty=True,
        validate_by_name=True,
        validate_by_alias=True,
        use_attribute_docstrings=True,
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        # No .env file or secrets directory: `make run` / `make dev` export .env into the environment.
        return (init_settings,) if _GIVEN_ENVIRON.get() is not None else (init_settings, env_settings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Read `environ` (default: the process environment); `overrides` (field names) win over it.

        Raises SettingsError, one line naming each bad variable, instead of pydantic's report.
        """
        token = _GIVEN_ENVIRON.set(environ)
        try:
            values = {} if environ is None else cls._values_in(environ)
            return cls(**{**values, **overrides})
        except ValidationError as error:
            problems = [
                f"{cls._env_name(str(item['loc'][0]))}={item.get('input')!r}: {rule_of(item)}"
                for item in error.errors()
            ]
            raise SettingsError("; ".join(problems)) from None
        finally:
            _GIVEN_ENVIRON.reset(token)

    @classmethod
    def _env_names(cls, field_name: str) -> tuple[str, ...]:
        alias = cls.model_fields[field_name].validation_alias
        if isinstance(alias, AliasChoices):
            return tuple(str(choice) for choice in alias.choices)
        return (alias or field_name,)

    @classmethod
    def _env_name(cls, name: str) -> str:
        return cls._env_names(name)[0] if name in cls.model_fields else name

    @classmethod
    def _values_in(cls, environ: Mapping[str, str]) -> dict[str, str]:
        """Field name -> value for each variable set in `environ` (first of a field's names wins)."""
        values = {}
        for field_name in cls.model_fields:
            for env_name in cls._env_names(field_name):
                if environ.get(env_name, "").strip():
                    values[field_name] = environ[env_name]
                    break
        return values


class TelemetrySettings(EnvSettings):
    """What `init_telemetry` wires; build it with `from_env()`."""

    service_name: str = Field(SERVICE_NAME, validation_alias=OTEL_SERVICE_NAME, min_length=1)
    """service.name. Env: OTEL_SERVICE_NAME (wins over the code's argument, so a deployment can rename)."""

    service_version: str = Field("0.1.0", validation_alias="SERVICE_VERSION")
    """service.version. Env: SERVICE_VERSION (set it to the image tag or git sha in CI)."""

    service_namespace: str = Field(SERVICE_NAMESPACE, validation_alias="SERVICE_NAMESPACE")
    """service.namespace: groups the API and the web app of one project. Env: SERVICE_NAMESPACE."""

    deployment_environment: str = Field(DEPLOYMENT_ENVIRONMENT, validation_alias="DEPLOYMENT_ENVIRONMENT")
    """deployment.environment.name. Env: DEPLOYMENT_ENVIRONMENT."""

    sdk_disabled: bool = Field(False, validation_alias=OTEL_SDK_DISABLED)
    """No providers, no exporters, no instrumentation at all. Env: OTEL_SDK_DISABLED=true."""

    otlp_endpoint: str = Field(OTLP_ENDPOINT, validation_alias=OTEL_EXPORTER_OTLP_ENDPOINT)
    """Base URL of the OTLP/HTTP receiver (the collector). Env: OTEL_EXPORTER_OTLP_ENDPOINT."""

    otlp_traces_endpoint: str | None = Field(None, validation_alias=OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
    """Full URL for spans, instead of {endpoint}/v1/traces. Env: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT."""

    otlp_metrics_endpoint: str | None = Field(None, validation_alias=OTEL_EXPORTER_OTLP_METRICS_ENDPOINT)
    """Full URL for metrics, instead of {endpoint}/v1/metrics. Env: OTEL_EXPORTER_OTLP_METRICS_ENDPOINT."""

    otlp_logs_endpoint: str | None = Field(None, validation_alias=OTEL_EXPORTER_OTLP_LOGS_ENDPOINT)
    """Full URL for logs, instead of {endpoint}/v1/logs. Env: OTEL_EXPORTER_OTLP_LOGS_ENDPOINT."""

    trace_sample_ratio: float = Field(
        TRACE_SAMPLE_RATIO, validation_alias=OTEL_TRACES_SAMPLER_ARG, ge=0.0, le=1.0, allow_inf_nan=False
    )
    """Share of new traces kept (0 to 1); a sampled parent is always followed. Env: OTEL_TRACES_SAMPLER_ARG."""

    excluded_urls: str = Field(
        ",".join(EXCLUDED_URLS),
        validation_alias=AliasChoices(OTEL_PYTHON_FASTAPI_EXCLUDED_URLS, OTEL_PYTHON_EXCLUDED_URLS),
    )
    """Comma-separated URL patterns with no spans and no duration metric (replaces the default list).
    Env: OTEL_PYTHON_FASTAPI_EXCLUDED_URLS, else OTEL_PYTHON_EXCLUDED_URLS."""

    propagators: str | None = Field(None, validation_alias="OTEL_PROPAGATORS")
    """Propagators as the SDK reads them; unset: trace context both ways, baggage inbound only
    (propagation.py). Env: OTEL_PROPAGATORS."""

    semconv_stability_opt_in: str = Field("http,database", validation_alias=OTEL_SEMCONV_STABILITY_OPT_IN)
    """Stable HTTP and DB semantic conventions (http.server.request.duration, db.query.text, ...).
    Env: OTEL_SEMCONV_STABILITY_OPT_IN."""

    header_sanitize_fields: str = Field("", validation_alias=OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS)
    """Comma-separated header names redacted besides scrubbing.SENSITIVE_HEADERS.
    Env: OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS."""

    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    """Level of the app's loggers (DEBUG, INFO, WARNING, ERROR). Env: LOG_LEVEL."""

    log_json_stdout: bool = Field(True, validation_alias="LOG_JSON")
    """One JSON object per line on stdout, with trace_id/span_id. Env: LOG_JSON=false turns it off."""

    loki_url: str | None = Field(None, validation_alias="LOKI_URL")
    """When set, logs are also pushed straight to Loki (base URL). Env: LOKI_URL."""

    loki_username: str | None = Field(None, validation_alias="LOKI_USERNAME")
    """Basic-auth user for LOKI_URL (e.g. Grafana Cloud). Env: LOKI_USERNAME."""

    loki_password: SecretStr | None = Field(None, validation_alias="LOKI_PASSWORD")
    """Basic-auth password for LOKI_URL; never logged. Env: LOKI_PASSWORD."""

    loki_batch_size: int = Field(1000, validation_alias="LOKI_BATCH_SIZE", ge=1)
    """Records per Loki push at most. Env: LOKI_BATCH_SIZE."""

    loki_flush_interval: float = Field(1.0, validation_alias="LOKI_FLUSH_INTERVAL", gt=0.0, allow_inf_nan=False)
    """Seconds a record waits at most for its batch to fill before it is pushed. Env: LOKI_FLUSH_INTERVAL."""

    loki_queue_size: int = Field(10_000, validation_alias="LOKI_QUEUE_SIZE", ge=1)
    """Records waiting for Loki at most; past that new ones are dropped and counted. Env: LOKI_QUEUE_SIZE."""

    otlp_export: bool | None = Field(None, validation_alias="TELEMETRY_OTLP_EXPORT", validate_default=True)
    """Send traces, metrics and logs over OTLP/HTTP to the endpoints above. Env: TELEMETRY_OTLP_EXPORT;
    unset, on when an OTLP endpoint is set in the environment or in Kubernetes: in local development
    nobody runs a collector at the default endpoint, and the console view and the store show it all."""

    console: bool | None = Field(None, validation_alias="TELEMETRY_CONSOLE", validate_default=True)
    """Print each finished request as a span tree on stderr (console.py). Env: TELEMETRY_CONSOLE;
    unset, it is on when no OTLP endpoint is set in the environment and not in Kubernetes."""

    store: bool | None = Field(None, validation_alias="TELEMETRY_STORE", validate_default=True)
    """Keep recent spans and log records in the local store that the telemetry MCP server reads
    (store.py, `make mcp`). Env: TELEMETRY_STORE; unset, on in local development as the console view."""

    store_path: Path | None = Field(None, validation_alias="TELEMETRY_STORE_PATH")
    """The store's SQLite file; unset: <project>/.cache/telemetry/store.sqlite3. Env: TELEMETRY_STORE_PATH."""

    store_max_bytes: int = Field(32 * 1024 * 1024, validation_alias="TELEMETRY_STORE_MAX_BYTES", ge=256 * 1024)
    """Largest size of the store's data (the oldest rows go first). Env: TELEMETRY_STORE_MAX_BYTES."""

    store_max_age_hours: float = Field(
        24.0, validation_alias="TELEMETRY_STORE_MAX_AGE_HOURS", gt=0.0, le=24 * 365, allow_inf_nan=False
    )
    """Rows older than this are deleted. Env: TELEMETRY_STORE_MAX_AGE_HOURS."""

    @field_validator("console", "store")
    @classmethod
    def _console_by_default_in_local_development(cls, value: bool | None) -> bool:
        if value is not None:
            return value
        given = _GIVEN_ENVIRON.get()
        return _local_development(os.environ if given is None else given)

    @field_validator("otlp_export")
    @classmethod
    def _export_unless_local_development(cls, value: bool | None) -> bool:
        if value is not None:
            return value
        given = _GIVEN_ENVIRON.get()
        return not _local_development(os.environ if given is None else given)

    @field_validator("otlp_endpoint")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("loki_url")
    @classmethod
    def _base_url_or_none(cls, value: str | None) -> str | None:
        return (value or "").rstrip("/") or None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """As EnvSettings.from_env; a `service_name` override is the code's name, which
        OTEL_SERVICE_NAME still wins over."""
        coded_name = overrides.pop("service_name", None)
        settings = super().from_env(environ, **overrides)
        if coded_name and "service_name" not in settings.model_fields_set:
            return settings.model_copy(update={"service_name": coded_name})
        return settings
