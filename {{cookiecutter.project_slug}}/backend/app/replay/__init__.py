# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The built-in session replay, backend side: one package the app mounts with one call.

    from .replay import mount
    mount(app)          # routes (routes.py), storage (store.py), purge (purge.py), REPLAY_* settings

The contract with the browser (web/lib/replay/):
- `POST /api/replay/<session id>`: one chunk `{"seq", "events", "trace_ids"}` (JSON, gzip allowed)
  with the session's `X-Replay-Write-Secret`; 201 stored, 200 already stored (a resent seq).
- `GET /api/replay/<session id>` with `Authorization: Bearer $REPLAY_VIEWER_TOKEN`: the session.
- Refusals: a 4xx/507 `{"detail": "<one line>", "code": "<machine-readable>"}` (see routes.py).
- Spans: the routes make none; telemetry/replay.py puts `session.id` on the app's other spans.

Rendered only with `session_replay=builtin`; hooks/post_gen_project.py removes the package otherwise.
"""

from __future__ import annotations

from fastapi import FastAPI

from .. import db
from .routes import ReplayState, router
from .settings import ReplaySettings, load_replay_settings
from .store import SqlReplayStore, create_engine, replay_database_url


def mount(app: FastAPI, settings: ReplaySettings | None = None) -> None:
    """Adds the replay routes and the retention purge to `app`, storing in the replay's own database
    (REPLAY_DATABASE_URL; see store.replay_database_url for the default)."""
    settings = settings or load_replay_settings()
    engine = create_engine(settings.database_url or replay_database_url(app.state.settings.database_url))
    app.state.replay = ReplayState(settings, SqlReplayStore(db.session_factory(engine)), engine)
    app.include_router(router)


__all__ = ["ReplaySettings", "mount"]
