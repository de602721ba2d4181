# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The telemetry MCP server: a coding agent (Claude Code, Cursor, VS Code) asks what happened.

Started by the command `.mcp.json` names (`.venv/bin/python tools/telemetry_mcp.py`) or `make mcp`,
from the project root, over stdio. Four read-only tools (server.py): get_trace, search_traces,
get_conversation, recent_errors. Two sources, one answer shape (model.py):

- local (local.py): the SQLite store that the backend writes under `make run` (app/telemetry/store.py);
- stack (stack.py): Tempo, Loki and Prometheus over HTTP (TEMPO_URL, LOKI_URL, PROMETHEUS_URL, or the
  local stack's default ports), as the Grafana data sources query them.

Settings: McpSettings in app/settings.py (TELEMETRY_MCP_SOURCE and the URLs); the store's path is
the backend's (TELEMETRY_STORE_PATH, app/telemetry/config.py).
"""

from .server import build_server, main

__all__ = ["build_server", "main"]
