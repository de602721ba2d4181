# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""App settings (database, Cerebe), read from the environment by pydantic-settings.

Each field's docstring names its environment variable; `Settings.from_env()` reads them and fails
with one line naming each bad variable. Telemetry settings live in telemetry/config.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from .telemetry.config import EnvSettings
from .telemetry.replay import DEFAULT_VENDOR, ReplayVendorName

CEREBE_BASE_URL = "{{ cookiecutter.cerebe_base_url }}"
CEREBE_MODEL = "{{ cookiecutter.cerebe_model }}"
# The built-in replay's viewer in the web app (deploy/config/grafana.env has the same prefix).
REPLAY_URL_PREFIX = "{% if cookiecutter.session_replay == 'builtin' and cookiecutter.include_web %}http://localhost:3000/replay/{% endif %}"


class Settings(EnvSettings):
    database_url: str = Field("sqlite:///./app.db", validation_alias="DATABASE_URL")
    """SQLAlchemy URL. Env: DATABASE_URL (sqlite:///... or postgresql://...)."""

    cerebe_base_url: str = Field(CEREBE_BASE_URL, validation_alias="CEREBE_BASE_URL")
    """OpenAI-compatible API; the client posts to {base}/v1/chat/completions. Env: CEREBE_BASE_URL."""

    cerebe_api_key: SecretStr | None = Field(None, validation_alias="CEREBE_API_KEY")
    """Bearer token for Cerebe. Env: CEREBE_API_KEY (never written to any file, never logged)."""

    cerebe_model: str = Field(CEREBE_MODEL, validation_alias="CEREBE_MODEL")
    """Model asked for. Env: CEREBE_MODEL."""

    cerebe_provider: str = Field("openai", validation_alias="CEREBE_PROVIDER")
    """gen_ai.provider.name, and the price table's provider id. Env: CEREBE_PROVIDER."""

    cerebe_timeout: float = Field(30.0, validation_alias="CEREBE_TIMEOUT", gt=0.0, allow_inf_nan=False)
    """Seconds before a Cerebe call is given up (answered 504). Env: CEREBE_TIMEOUT."""

    history_limit: int = Field(20, validation_alias="CHAT_HISTORY_LIMIT", ge=0)
    """How many earlier messages of the conversation are sent along. Env: CHAT_HISTORY_LIMIT."""

    session_replay: ReplayVendorName = Field(DEFAULT_VENDOR, validation_alias="SESSION_REPLAY")
    """Session replay vendor (telemetry/replay.py VENDORS): whose header names a request's session, and
    whether the built-in replay's routes (/api/replay/...) are mounted ("builtin" only). Env: SESSION_REPLAY."""

    @field_validator("cerebe_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


class McpSettings(EnvSettings):
    """The telemetry MCP server's settings (app/mcp_server/, `make mcp`); it reads only these."""

    source: Literal["auto", "local", "stack"] = Field("auto", validation_alias="TELEMETRY_MCP_SOURCE")
    """Where answers come from: `local` (the store `make run` writes), `stack` (Tempo, Loki, Prometheus),
    `auto` (the stack when TEMPO_URL is set or Tempo answers on localhost:3200, else local).
    Env: TELEMETRY_MCP_SOURCE."""

    tempo_url: str | None = Field(None, validation_alias="TEMPO_URL")
    """Tempo's HTTP API (TraceQL search, traces by id), e.g. http://localhost:3200. Env: TEMPO_URL."""

    loki_url: str | None = Field(None, validation_alias="LOKI_URL")
    """Loki's base URL, for a trace's log lines and recent error lines. Env: LOKI_URL."""

    prometheus_url: str | None = Field(None, validation_alias="PROMETHEUS_URL")
    """Prometheus's HTTP API, for 5xx counts by route. Env: PROMETHEUS_URL."""

    grafana_url: str | None = Field(None, validation_alias="GRAFANA_URL")
    """Grafana, for links to each trace in Explore (data source uid `tempo`). Env: GRAFANA_URL."""

    replay_url_prefix: str | None = Field(REPLAY_URL_PREFIX or None, validation_alias="REPLAY_URL_PREFIX")
    """A trace's replay session id appended to this is its replay. Env: REPLAY_URL_PREFIX."""

    @field_validator("tempo_url", "loki_url", "prometheus_url", "grafana_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        value = (value or "").strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value or None
