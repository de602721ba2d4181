# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""`python -m app.mcp_server`: the telemetry MCP server on stdio."""

from .server import main

main()
