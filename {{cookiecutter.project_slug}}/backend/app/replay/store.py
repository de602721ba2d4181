# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Storage of the built-in session replay: sessions, their chunks of rrweb events, their traces.

`ReplayStore` is the interface the routes use; `SqlReplayStore` keeps them in a database of their
own (REPLAY_DATABASE_URL; by default `<app db>-replay.db` beside the app's SQLite file), so a flood
of chunks holds the replay's write lock, never the app's.
Object storage (S3, GCS) can replace it by implementing the same methods. A chunk holds its events
as validated JSON (gzip-compressed): it is served back byte for byte, never parsed again, so what
was stored always reads back. A session row holds the hash of its write secret and its byte count
(the budgets are checked against it). Replay data is personal data: it is purged after retention.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Protocol

from sqlalchemy import (
    DateTime,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .. import db


class ReplayBase(DeclarativeBase):
    """The replay's own tables, created in its own database (not the app's db.Base)."""


def replay_database_url(app_database_url: str) -> str:
    """`sqlite:///dir/app.db` -> `sqlite:///dir/app-replay.db`; in-memory stays in memory (a database
    of its own); another database (Postgres) is shared, through an engine and pool of its own."""
    scheme, sep, rest = app_database_url.partition("://")
    if not scheme.startswith("sqlite") or rest in {"", "/", "/:memory:"} or rest.startswith("/:memory:"):
        return app_database_url
    path, query_sep, query = rest.partition("?")
    stem, dot, suffix = path.rpartition(".")
    path = f"{stem}-replay.{suffix}" if dot and "/" not in suffix else f"{path}-replay"
    return f"{scheme}{sep}{path}{query_sep}{query}"


async def create_schema(engine: AsyncEngine) -> None:
    await db.run_schema_step(engine, ReplayBase.metadata.create_all)


def create_engine(url: str) -> AsyncEngine:
    return db.create_engine(url)


class ReplaySession(ReplayBase):
    __tablename__ = "replay_sessions"

    session_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    bytes: Mapped[int] = mapped_column(Integer, default=0)


class ReplayChunk(ReplayBase):
    __tablename__ = "replay_chunks"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(128), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    size: Mapped[int] = mapped_column(Integer)
    """Bytes of the events' JSON, uncompressed: what the budgets count."""
    events_gzip: Mapped[bytes] = mapped_column(LargeBinary)
    trace_ids: Mapped[str] = mapped_column(Text, default="[]")


@dataclass(frozen=True)
class Chunk:
    session_id: str
    seq: int
    events_json: bytes
    """A JSON array of rrweb events, already validated and serialized (served as it is)."""
    trace_ids: list[str]

    @property
    def size(self) -> int:
        return len(self.events_json)


@dataclass(frozen=True)
class NewSession:
    """What a session's first chunk brings along: who started it, and the hash of its write secret."""

    secret_sha256: str
    client: str


@dataclass(frozen=True)
class SessionState:
    secret_sha256: str
    bytes: int


@dataclass(frozen=True)
class SessionSummary:
    chunks: int
    bytes: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class StoredChunk:
    seq: int
    events_json: bytes
    trace_ids: list[str]


class Added(Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    """(session, seq) was stored already: a resent chunk."""
    TAKEN = "taken"
    """Another upload created the session first: look it up again."""


class ReplayStore(Protocol):
    async def add(self, chunk: Chunk, received_at: datetime, new_session: NewSession | None = None) -> Added:
        """Stores the chunk whole, or not at all, with its session when `new_session` is given."""

    async def session(self, session_id: str) -> SessionState | None: ...

    async def total_bytes(self) -> int: ...

    async def summary(self, session_id: str) -> SessionSummary | None: ...

    async def chunk_after(self, session_id: str, seq: int) -> StoredChunk | None:
        """The session's chunk with the lowest seq above `seq` (one at a time: bounded memory)."""

    async def purge_before(self, cutoff: datetime) -> int:
        """Deletes chunks received before `cutoff`, and sessions left empty; returns how many chunks."""


class SqlReplayStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, chunk: Chunk, received_at: datetime, new_session: NewSession | None = None) -> Added:
        # Off the event loop: compressing a full chunk takes tens of milliseconds.
        data = await asyncio.to_thread(gzip.compress, chunk.events_json, 6)
        async with self._sessions() as session:
            if new_session is not None:
                session.add(
                    ReplaySession(
                        session_id=chunk.session_id,
                        secret_sha256=new_session.secret_sha256,
                        client=new_session.client[:64],
                        created_at=received_at,
                        bytes=0,
                    )
                )
                try:
                    await session.flush()
                except IntegrityError:
                    await session.rollback()
                    return Added.TAKEN
            session.add(
                ReplayChunk(
                    session_id=chunk.session_id,
                    seq=chunk.seq,
                    received_at=received_at,
                    size=chunk.size,
                    events_gzip=data,
                    trace_ids=json.dumps(chunk.trace_ids),
                )
            )
            try:
                await session.execute(
                    update(ReplaySession)
                    .where(ReplaySession.session_id == chunk.session_id)
                    .values(bytes=ReplaySession.bytes + chunk.size)
                )
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return Added.DUPLICATE
        return Added.STORED

    async def session(self, session_id: str) -> SessionState | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(ReplaySession.secret_sha256, ReplaySession.bytes).where(
                        ReplaySession.session_id == session_id
                    )
                )
            ).first()
        return SessionState(secret_sha256=row[0], bytes=row[1]) if row else None

    async def total_bytes(self) -> int:
        async with self._sessions() as session:
            total = await session.scalar(select(func.coalesce(func.sum(ReplaySession.bytes), 0)))
        return int(total or 0)

    async def summary(self, session_id: str) -> SessionSummary | None:
        async with self._sessions() as session:
            count, size, first, last = (
                await session.execute(
                    select(
                        func.count(),
                        func.coalesce(func.sum(ReplayChunk.size), 0),
                        func.min(ReplayChunk.received_at),
                        func.max(ReplayChunk.received_at),
                    ).where(ReplayChunk.session_id == session_id)
                )
            ).one()
        if not count:
            return None
        return SessionSummary(chunks=count, bytes=int(size), first_seen=_aware(first), last_seen=_aware(last))

    async def chunk_after(self, session_id: str, seq: int) -> StoredChunk | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(ReplayChunk.seq, ReplayChunk.events_gzip, ReplayChunk.trace_ids)
                    .where(ReplayChunk.session_id == session_id, ReplayChunk.seq > seq)
                    .order_by(ReplayChunk.seq)
                    .limit(1)
                )
            ).first()
        if row is None:
            return None
        events_json = await asyncio.to_thread(gzip.decompress, row[1])
        return StoredChunk(seq=row[0], events_json=events_json, trace_ids=json.loads(row[2]))

    async def purge_before(self, cutoff: datetime) -> int:
        chunk_of_session = ReplayChunk.session_id == ReplaySession.session_id
        async with self._sessions() as session:
            result = await session.execute(delete(ReplayChunk).where(ReplayChunk.received_at < cutoff))
            await session.execute(delete(ReplaySession).where(~exists().where(chunk_of_session)))
            remaining = select(func.coalesce(func.sum(ReplayChunk.size), 0)).where(chunk_of_session)
            await session.execute(update(ReplaySession).values(bytes=remaining.scalar_subquery()))
            await session.commit()
        return result.rowcount or 0


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; they were stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
