# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Database: an async SQLAlchemy engine (SQLite by default, Postgres by URL) and the models."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    Connection,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def async_url(url: str) -> str:
    """`sqlite:///x.db` -> `sqlite+aiosqlite:///x.db`; URLs that name a driver are kept."""
    scheme, sep, rest = url.partition("://")
    return f"{_ASYNC_DRIVERS.get(scheme, scheme)}{sep}{rest}"


def create_engine(url: str) -> AsyncEngine:
    url = async_url(url)
    if url.startswith("sqlite+aiosqlite:///:memory:") or url == "sqlite+aiosqlite://":
        # One shared connection, or every session would see its own empty database.
        return create_async_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    engine = create_async_engine(url, pool_pre_ping=True)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_wal)
    return engine


def _sqlite_wal(connection, _record) -> None:
    """WAL: readers never wait for a writer, and a writer waits for none of them (one file per
    feature that writes a lot: the built-in replay has its own, replay/store.py)."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128), index=True)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))
    trace_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    # The span the reply was produced in, so feedback on it can be recorded inside its trace.
    span_id: Mapped[str | None] = mapped_column(String(16), default=None)
    trace_flags: Mapped[int | None] = mapped_column(Integer, default=None)
    model: Mapped[str | None] = mapped_column(String(128), default=None)
    input_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    output_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    cost_usd: Mapped[float | None] = mapped_column(Float, default=None)
    # LLM round trips behind a reply (an agent run with tools makes several; tokens and cost above
    # are their sum). NULL in rows stored before the agent: one call each.
    llm_calls: Mapped[int | None] = mapped_column(Integer, default=None)
    # On a user message whose reply failed (no assistant row follows): the error.type, so the
    # conversation's usage counts the failed call too.
    error_type: Mapped[str | None] = mapped_column(String(64), default=None)


class FeedbackVote(Base):
    """One rating per reply (its trace id) per client: a second one is refused (api/feedback.py)."""

    __tablename__ = "feedback_votes"
    __table_args__ = (UniqueConstraint("trace_id", "client"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(32))
    client: Mapped[str] = mapped_column(String(64))
    score: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))


async def create_schema(engine: AsyncEngine) -> None:
    """Creates missing tables, then adds missing nullable columns and indexes to existing ones.

    Enough for a schema that only grows by optional columns; use Alembic migrations once it
    changes in any other way.
    """
    await run_schema_step(engine, _create_and_extend)


def _create_and_extend(connection: Connection) -> None:
    Base.metadata.create_all(connection)
    _add_missing_columns(connection)


# What a database says when another process created the same table, index or column first, or
# holds the file while it does (SQLite: switching to WAL does not wait for the busy timeout).
_CREATED_MEANWHILE = ("already exists", "duplicate column", "database is locked")
SCHEMA_ATTEMPTS = 8


async def run_schema_step(engine: AsyncEngine, step: Callable[[Connection], object]) -> None:
    """Runs `step` (create_all and the like) in one transaction. Workers that start together
    (`uvicorn --workers N`) all find a table missing and create it: the losers get "already
    exists" (or find the file locked) and run the step again, which then finds everything in place."""
    for attempt in range(1, SCHEMA_ATTEMPTS + 1):
        try:
            async with engine.begin() as connection:
                await connection.run_sync(step)
            return
        except DBAPIError as exc:
            words = str(exc.orig).lower()
            if attempt == SCHEMA_ATTEMPTS or not any(meanwhile in words for meanwhile in _CREATED_MEANWHILE):
                raise
            await asyncio.sleep(0.05 * attempt)


def _add_missing_columns(connection: Connection) -> None:
    existing = inspect(connection)
    for table in Base.metadata.sorted_tables:
        present = {column["name"] for column in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present and column.nullable:
                kind = column.type.compile(dialect=connection.dialect)
                connection.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
        for index in table.indexes:
            index.create(connection, checkfirst=True)


async def conversation_messages(session: AsyncSession, conversation_id: str, limit: int | None = None) -> list[Message]:
    query = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id.desc())
    if limit is not None:
        query = query.limit(limit)
    rows = (await session.scalars(query)).all()
    return list(reversed(rows))
