# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""`python -m app.serve [uvicorn options]`: uvicorn as this API is meant to run, in every setting.

`make run`, the Dockerfile and the Kubernetes manifests start the API this way. It is uvicorn's
own command line (every option works: --host, --port, --reload, --workers, --env-file, ...) with
these chosen from Settings (settings.py) before yours:

  --http app.server:GuardedHttpToolsProtocol    header size, read times, connections per client (server.py)
  --forwarded-allow-ips $FORWARDED_ALLOW_IPS    whose X-Forwarded-For names the client (default loopback)
  --limit-concurrency $SERVER_LIMIT_CONCURRENCY connections and requests at once per worker, then 503
  --h11-max-incomplete-event-size $SERVER_MAX_HEADER_BYTES   the same header limit under --http h11

`uvicorn app.main:app` still works, without those limits.
"""

from __future__ import annotations

import sys

from uvicorn.main import main as uvicorn_command

from .replay.settings import load_replay_settings
from .settings import Settings
from .telemetry.config import SettingsError, TelemetrySettings

PROTOCOL = "app.server:GuardedHttpToolsProtocol"


def uvicorn_arguments(settings: Settings) -> list[str]:
    return [
        "app.main:app",
        "--http",
        PROTOCOL,
        "--proxy-headers",
        "--forwarded-allow-ips",
        settings.forwarded_allow_ips,
        "--limit-concurrency",
        str(settings.server_limit_concurrency),
        "--h11-max-incomplete-event-size",
        str(settings.server_max_header_bytes),
    ]


def _load_env_file(argv: list[str]) -> None:
    """`--env-file PATH` (make run): read before Settings, as uvicorn reads it only later."""
    for index, arg in enumerate(argv):
        path = argv[index + 1] if arg == "--env-file" and index + 1 < len(argv) else None
        if arg.startswith("--env-file="):
            path = arg.split("=", 1)[1]
        if path:
            from dotenv import load_dotenv  # uvicorn[standard] brings python-dotenv

            load_dotenv(path)


def checked_settings() -> Settings:
    """Every setting the app will read, checked here, before uvicorn starts: under --reload (make
    run) a bad value found later, in the reloader's child, is a traceback and a parent that keeps
    waiting for a code change. Raises SettingsError (one line)."""
    settings = Settings.from_env()
    TelemetrySettings.from_env()
    if settings.session_replay == "builtin":  # the only vendor that reads REPLAY_*
        load_replay_settings()
    return settings


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    _load_env_file(argv)
    try:
        settings = checked_settings()
    except SettingsError as error:
        sys.exit(f"error: {error}")
    uvicorn_command.main(args=[*uvicorn_arguments(settings), *argv], prog_name="python -m app.serve")


if __name__ == "__main__":
    main()
