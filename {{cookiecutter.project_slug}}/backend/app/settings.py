"""App settings (database, Cerebe), read from the environment by pydantic-settings.

Each field's docstring names its environment variable; `Settings.from_env()` reads them and fails
with one line naming each bad variable. Telemetry settings live in telemetry/config.py.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from .telemetry.config import EnvSettings

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

    @field_validator("cerebe_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    # Built-in session replay (kept together: the replay package owns these).
    replay_viewer_token: str | None = Field(None, validation_alias="REPLAY_VIEWER_TOKEN")
    """Operator token for reading replays (built-in replay). Unset: no viewer. Env: REPLAY_VIEWER_TOKEN."""

    replay_retention_hours: float = Field(168.0, validation_alias="REPLAY_RETENTION_HOURS", gt=0.0)
    """Replay chunks older than this are deleted (personal data). Env: REPLAY_RETENTION_HOURS."""

    replay_max_chunk_bytes: int = Field(512 * 1024, validation_alias="REPLAY_MAX_CHUNK_BYTES", ge=1)
    """Largest accepted upload, as sent (compressed). Env: REPLAY_MAX_CHUNK_BYTES."""

    replay_max_session_bytes: int = Field(20 * 1024 * 1024, validation_alias="REPLAY_MAX_SESSION_BYTES", ge=1)
    """Recording of a session stops past this many stored bytes. Env: REPLAY_MAX_SESSION_BYTES."""

    replay_chunks_per_minute: int = Field(120, validation_alias="REPLAY_CHUNKS_PER_MINUTE", ge=1)
    """Uploads accepted per session per minute. Env: REPLAY_CHUNKS_PER_MINUTE."""

    replay_allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="REPLAY_ALLOWED_ORIGINS")
    """Origins besides the API's own allowed to upload (comma-separated). Env: REPLAY_ALLOWED_ORIGINS."""

    @field_validator("replay_allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())
        return value
