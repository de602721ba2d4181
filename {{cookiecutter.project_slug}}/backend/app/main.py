# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The FastAPI app. `uvicorn app.main:app` serves it; `create_app()` builds one (tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from . import db
from .agent import Agent
from .agent.tools import TOOLS
from .api import chat, feedback
from .cerebe import CerebeClient
from .chat_limits import ChatLimits
from .errors import install_error_handlers
from .replay import mount as mount_replay
from .settings import Settings
from .telemetry import FASTAPI_NATIVE_TELEMETRY_OFF, init_telemetry
from .telemetry.agent import AgentTelemetry
from .telemetry.config import SERVICE_NAME
from .telemetry.replay import use_vendor


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    await db.create_schema(app.state.engine)
    # One client for the app's lifetime: building one per request costs an SSL context each time.
    # Its pool is CEREBE_MAX_CONNECTIONS; chat_limits.py admits no more calls than that at once.
    pool = httpx.Limits(max_connections=settings.cerebe_max_connections, max_keepalive_connections=20)
    async with httpx.AsyncClient(timeout=settings.cerebe_timeout, limits=pool) as http:
        app.state.cerebe = CerebeClient(http, settings, app.state.telemetry.llm)
        telemetry = app.state.telemetry
        agent_telemetry = AgentTelemetry(telemetry.llm, telemetry.meter_provider)
        app.state.agent = Agent(app.state.cerebe, TOOLS, agent_telemetry, settings, app.state.sessions)
        yield
    await app.state.engine.dispose()


def create_app(settings: Settings | None = None, *, telemetry_options: Mapping[str, Any] | None = None) -> FastAPI:
    """Builds the app; `telemetry_options` go to init_telemetry (tests pass in-memory exporters)."""
    settings = settings or Settings.from_env()
    engine = db.create_engine(settings.database_url)

    # API_DOCS: the OpenAPI schema and its pages only when asked for; a public API needs no map.
    docs = {} if settings.api_docs else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(
        title="{{ cookiecutter.project_name }}",
        lifespan=lifespan,
        telemetry=FASTAPI_NATIVE_TELEMETRY_OFF,
        **docs,
    )
    app.state.settings = settings
    app.state.chat_limits = ChatLimits(settings)
    app.state.engine = engine
    app.state.sessions = db.session_factory(engine)
    init_telemetry(app, SERVICE_NAME, engine=engine.sync_engine, **(telemetry_options or {}))
    install_error_handlers(app)

    app.include_router(chat.router)
    feedback.mount(app)
    use_vendor(app, settings.session_replay)
    if settings.session_replay == "builtin":
        mount_replay(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def __getattr__(name: str) -> FastAPI:
    """`app` is built on first access (`uvicorn app.main:app`), not on import: importing
    create_app (tests, scripts) must not start exporters or install log handlers."""
    if name == "app":
        application = globals()["app"] = create_app()
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
