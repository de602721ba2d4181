"""Storage of the built-in session replay: chunks of rrweb events, and the traces of a session.

`ReplayStore` is the interface the API uses; `SqlReplayStore` keeps chunks in the app's database
(gzip-compressed, as they arrived). Object storage (S3, GCS) can replace it by implementing the same
four methods. Replay data is personal data: it is purged after the retention period.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import DateTime, Integer, LargeBinary, String, Text, UniqueConstraint, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base


class ReplayChunk(Base):
    __tablename__ = "replay_chunks"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(128), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    size: Mapped[int] = mapped_column(Integer)
    events_gzip: Mapped[bytes] = mapped_column(LargeBinary)
    trace_ids: Mapped[str] = mapped_column(Text, default="[]")


@dataclass(frozen=True)
class Chunk:
    session_id: str
    seq: int
    events: list[dict]
    trace_ids: list[str]


@dataclass(frozen=True)
class StoredSession:
    session_id: str
    events: list[dict]
    trace_ids: list[str]
    chunks: int
    bytes: int
    first_seen: datetime
    last_seen: datetime


class ReplayStore(Protocol):
    async def add(self, chunk: Chunk, received_at: datetime) -> bool:
        """Stores the chunk whole, or not at all; False when (session, seq) was already stored."""

    async def session_bytes(self, session_id: str) -> int: ...

    async def get(self, session_id: str) -> StoredSession | None: ...

    async def purge_before(self, cutoff: datetime) -> int:
        """Deletes chunks received before `cutoff`; returns how many."""


class SqlReplayStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, chunk: Chunk, received_at: datetime) -> bool:
        data = gzip.compress(json.dumps(chunk.events, separators=(",", ":")).encode(), compresslevel=6)
        row = ReplayChunk(
            session_id=chunk.session_id,
            seq=chunk.seq,
            received_at=received_at,
            size=len(data),
            events_gzip=data,
            trace_ids=json.dumps(chunk.trace_ids),
        )
        async with self._sessions() as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return False
        return True

    async def session_bytes(self, session_id: str) -> int:
        async with self._sessions() as session:
            total = await session.scalar(
                select(func.coalesce(func.sum(ReplayChunk.size), 0)).where(ReplayChunk.session_id == session_id)
            )
        return int(total or 0)

    async def get(self, session_id: str) -> StoredSession | None:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(ReplayChunk).where(ReplayChunk.session_id == session_id).order_by(ReplayChunk.seq)
                )
            ).all()
        if not rows:
            return None
        events: list[dict] = []
        trace_ids: list[str] = []
        for row in rows:
            events.extend(json.loads(gzip.decompress(row.events_gzip)))
            trace_ids.extend(t for t in json.loads(row.trace_ids) if t not in trace_ids)
        events.sort(key=lambda event: event.get("timestamp", 0))
        return StoredSession(
            session_id=session_id,
            events=events,
            trace_ids=trace_ids,
            chunks=len(rows),
            bytes=sum(row.size for row in rows),
            first_seen=min(_aware(row.received_at) for row in rows),
            last_seen=max(_aware(row.received_at) for row in rows),
        )

    async def purge_before(self, cutoff: datetime) -> int:
        async with self._sessions() as session:
            result = await session.execute(delete(ReplayChunk).where(ReplayChunk.received_at < cutoff))
            await session.commit()
        return result.rowcount or 0


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; they were stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
