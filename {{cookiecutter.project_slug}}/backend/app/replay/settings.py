# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Settings of the built-in session replay, from `REPLAY_*` environment variables.

Sizes count decompressed JSON bytes: what a chunk is once inflated, whatever it was sent as. The
disk holds a fraction of that (chunks are stored gzip-compressed).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MiB = 1024 * 1024
# A token guessed at the 1,379 tries a second measured against an unthrottled server must still hold.
MIN_VIEWER_TOKEN_CHARS = 32


class ReplaySettings(BaseSettings):
    """Each field is read from `REPLAY_<NAME>` (e.g. `max_total_bytes` from `REPLAY_MAX_TOTAL_BYTES`);
    an empty variable counts as unset."""

    model_config = SettingsConfigDict(env_prefix="REPLAY_", env_ignore_empty=True, frozen=True, extra="ignore")

    viewer_token: SecretStr | None = None
    """REPLAY_VIEWER_TOKEN: operator token for reading replays, at least 32 characters (e.g.
    `openssl rand -hex 32`; shorter stops the start). Unset: no viewer, reads answer 404."""

    viewer_failures_per_minute: int = Field(10, gt=0)
    """REPLAY_VIEWER_FAILURES_PER_MINUTE: wrong or missing tokens one client may send a minute;
    past it every read from that client is 429 until the minute passes (guessing is throttled)."""

    database_url: str | None = None
    """REPLAY_DATABASE_URL: where replays are stored (SQLAlchemy URL). Unset: `replay.db` beside the
    app's SQLite file (its own file and write lock: a chunk flood never makes an app request wait),
    or the app's database when that is not SQLite (its own connection pool)."""

    retention_hours: float = Field(168.0, gt=0)
    """REPLAY_RETENTION_HOURS: chunks older than this are deleted, at start-up and hourly (personal data)."""

    max_chunk_bytes: int = Field(1 * MiB, gt=0)
    """REPLAY_MAX_CHUNK_BYTES: largest chunk, decompressed (and as sent); past it 413 `chunk_too_large`."""

    max_session_bytes: int = Field(20 * MiB, gt=0)
    """REPLAY_MAX_SESSION_BYTES: a session takes chunks up to this many bytes, then 413 `session_full`."""

    max_total_bytes: int = Field(2048 * MiB, gt=0)
    """REPLAY_MAX_TOTAL_BYTES: all sessions together; past it every chunk gets 507 `storage_full` until the
    retention purge makes room (nothing is evicted: a flood cannot push real sessions out)."""

    chunks_per_minute: int = Field(120, gt=0)
    """REPLAY_CHUNKS_PER_MINUTE: uploads per session and client per minute (per worker); past it 429
    `rate_limited`."""

    new_sessions_per_client_per_hour: int = Field(60, gt=0)
    """REPLAY_NEW_SESSIONS_PER_CLIENT_PER_HOUR: sessions one client address may start per hour (per
    worker); past it 429 `too_many_sessions`. The client is the peer address as uvicorn reports it,
    i.e. X-Forwarded-For when the peer is a trusted proxy (uvicorn's FORWARDED_ALLOW_IPS)."""

    allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """REPLAY_ALLOWED_ORIGINS: origins besides the app's own that may upload (comma-separated)."""

    @field_validator("viewer_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_VIEWER_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_VIEWER_TOKEN_CHARS} characters (e.g. openssl rand -hex 32)")
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())
        return value


def load_replay_settings() -> ReplaySettings:
    """ReplaySettings from the environment; a bad value stops the start with one line naming it."""
    try:
        return ReplaySettings()
    except ValidationError as error:
        from ..telemetry.config import SettingsError, rule_of

        problems = [f"REPLAY_{str(item['loc'][0]).upper()}: {rule_of(item)}" for item in error.errors()]
        raise SettingsError("; ".join(problems)) from None
