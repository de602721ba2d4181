# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Starts the telemetry MCP server (backend/app/mcp_server/) on stdio: what `.mcp.json` and `make mcp` run.

A script rather than `python -m app.mcp_server` so that it works from the project root in any venv
holding the backend's dependencies, installed editable or not.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))

from app.mcp_server import main  # noqa: E402 - after the path it is found on

if __name__ == "__main__":
    main()
