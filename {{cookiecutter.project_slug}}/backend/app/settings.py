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
        )
