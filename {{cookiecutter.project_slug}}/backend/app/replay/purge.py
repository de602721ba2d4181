# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Replays are personal data: chunks past REPLAY_RETENTION_HOURS are deleted, at start-up and hourly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from opentelemetry.instrumentation.utils import suppress_instrumentation

from .store import ReplayStore, create_schema

logger = logging.getLogger(__name__)
PURGE_EVERY_SECONDS = 3600.0


async def purge_forever(store: ReplayStore, retention: timedelta, every_seconds: float = PURGE_EVERY_SECONDS) -> None:
    while True:
        try:
            # Like uploads and reads, the hourly purge makes no spans: replay traces nothing of its own.
            with suppress_instrumentation():
                purged = await store.purge_before(datetime.now(UTC) - retention)
            if purged:
                logger.info("replay chunks purged", extra={"purged": purged})
        except Exception:  # noqa: BLE001 - a failed purge is retried next hour, the app goes on
            logger.exception("replay purge failed")
        await asyncio.sleep(every_seconds)


@asynccontextmanager
async def purging(app: FastAPI) -> AsyncIterator[None]:
    """The replay router's lifespan (merged into the app's): its schema, then the hourly purge."""
    replay = app.state.replay
    await create_schema(replay.engine)
    retention = timedelta(hours=replay.settings.retention_hours)
    purger = asyncio.create_task(purge_forever(replay.store, retention))
    yield
    purger.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await purger
    await replay.engine.dispose()


__all__ = ["purge_forever", "purging"]
