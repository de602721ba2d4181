# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""App settings (database, Cerebe), read from the environment by pydantic-settings.

Each field's docstring names its environment variable; `Settings.from_env()` reads them and fails
with one line naming each bad variable. Telemetry settings live in telemetry/config.py.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from .telemetry.config import EnvSettings
from .telemetry.replay import DEFAULT_VENDOR, ReplayVendorName

CEREBE_BASE_URL = "{{ cookiecutter.cerebe_base_url }}"
CEREBE_MODEL = "{{ cookiecutter.cerebe_model }}"


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

    agent_name: str = Field("assistant", validation_alias="AGENT_NAME", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    """gen_ai.agent.name: the chat agent's spans are `invoke_agent <name>`. Env: AGENT_NAME."""

    agent_max_steps: int = Field(8, validation_alias="AGENT_MAX_STEPS", ge=1, le=100)
    """LLM round trips one request may make; past them it answers 502 (code max_steps). Env: AGENT_MAX_STEPS."""

    agent_max_tool_calls: int = Field(16, validation_alias="AGENT_MAX_TOOL_CALLS", ge=0, le=1000)
    """Tool calls one request may run; past them it answers 502 (code max_tool_calls). Env: AGENT_MAX_TOOL_CALLS."""

    agent_tool_timeout: float = Field(10.0, validation_alias="AGENT_TOOL_TIMEOUT", gt=0.0, allow_inf_nan=False)
    """Seconds one tool call may take; past them the request answers 504 (code tool_timeout).
    Env: AGENT_TOOL_TIMEOUT."""

    session_replay: ReplayVendorName = Field(DEFAULT_VENDOR, validation_alias="SESSION_REPLAY")
    """Session replay vendor (telemetry/replay.py VENDORS): whose header names a request's session, and
    whether the built-in replay's routes (/api/replay/...) are mounted ("builtin" only). Env: SESSION_REPLAY."""

    @field_validator("cerebe_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")
