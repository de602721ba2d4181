"""App settings (database, Cerebe). Telemetry settings live in telemetry/config.py."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

CEREBE_BASE_URL = "{{ cookiecutter.cerebe_base_url }}"
CEREBE_MODEL = "{{ cookiecutter.cerebe_model }}"


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str = "sqlite:///./app.db"
    """SQLAlchemy URL. Env: DATABASE_URL (sqlite:///... or postgresql://...)."""

    cerebe_base_url: str = CEREBE_BASE_URL
    """OpenAI-compatible API; the client posts to {base}/v1/chat/completions. Env: CEREBE_BASE_URL."""

    cerebe_api_key: str | None = None
    """Bearer token for Cerebe. Env: CEREBE_API_KEY (never written to any file)."""

    cerebe_model: str = CEREBE_MODEL
    """Model asked for. Env: CEREBE_MODEL."""

    cerebe_provider: str = "openai"
    """gen_ai.provider.name, and the price table's provider id. Env: CEREBE_PROVIDER."""

    cerebe_timeout: float = 30.0
    """Seconds before a Cerebe call is given up (answered 504). Env: CEREBE_TIMEOUT."""

    history_limit: int = 20
    """How many earlier messages of the conversation are sent along. Env: CHAT_HISTORY_LIMIT."""

    replay_viewer_token: str | None = None
    """Operator token for reading replays (built-in replay). Unset: no viewer. Env: REPLAY_VIEWER_TOKEN."""

    replay_retention_hours: float = 168.0
    """Replay chunks older than this are deleted (personal data). Env: REPLAY_RETENTION_HOURS."""

    replay_max_chunk_bytes: int = 512 * 1024
    """Largest accepted upload, as sent (compressed). Env: REPLAY_MAX_CHUNK_BYTES."""

    replay_max_session_bytes: int = 20 * 1024 * 1024
    """Recording of a session stops past this many stored bytes. Env: REPLAY_MAX_SESSION_BYTES."""

    replay_chunks_per_minute: int = 120
    """Uploads accepted per session per minute. Env: REPLAY_CHUNKS_PER_MINUTE."""

    replay_allowed_origins: tuple[str, ...] = ()
    """Origins besides the API's own allowed to upload (comma-separated). Env: REPLAY_ALLOWED_ORIGINS."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("DATABASE_URL") or cls.database_url,
            cerebe_base_url=(env.get("CEREBE_BASE_URL") or CEREBE_BASE_URL).rstrip("/"),
            cerebe_api_key=env.get("CEREBE_API_KEY") or None,
            cerebe_model=env.get("CEREBE_MODEL") or CEREBE_MODEL,
            cerebe_provider=env.get("CEREBE_PROVIDER") or cls.cerebe_provider,
            cerebe_timeout=float(env.get("CEREBE_TIMEOUT") or cls.cerebe_timeout),
            history_limit=int(env.get("CHAT_HISTORY_LIMIT") or cls.history_limit),
            replay_viewer_token=env.get("REPLAY_VIEWER_TOKEN") or None,
            replay_retention_hours=float(env.get("REPLAY_RETENTION_HOURS") or cls.replay_retention_hours),
            replay_max_chunk_bytes=int(env.get("REPLAY_MAX_CHUNK_BYTES") or cls.replay_max_chunk_bytes),
            replay_max_session_bytes=int(env.get("REPLAY_MAX_SESSION_BYTES") or cls.replay_max_session_bytes),
            replay_chunks_per_minute=int(env.get("REPLAY_CHUNKS_PER_MINUTE") or cls.replay_chunks_per_minute),
            replay_allowed_origins=tuple(
                o.strip().rstrip("/") for o in (env.get("REPLAY_ALLOWED_ORIGINS") or "").split(",") if o.strip()
            ),
        )
