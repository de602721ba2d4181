# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""Workers that start together (`uvicorn --workers N`) create the same schema at once: none may fail."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app import db
from app.replay import store


@pytest.mark.parametrize("module", [db, store], ids=["app database", "replay database"])
def test_six_workers_creating_the_schema_at_once_all_succeed(tmp_path: Path, module) -> None:
    """Six engines on one new SQLite file create the schema concurrently, ten times over: no
    "table already exists" reaches a worker (it would die at start-up and reset its connections)."""

    async def race(trial: int) -> list[object]:
        engines = [module.create_engine(f"sqlite:///{tmp_path / f'race-{trial}.db'}") for _ in range(6)]
        try:
            return await asyncio.gather(*(module.create_schema(e) for e in engines), return_exceptions=True)
        finally:
            for engine in engines:
                await engine.dispose()

    failures = [r for trial in range(10) for r in asyncio.run(race(trial)) if isinstance(r, BaseException)]
    assert failures == []
