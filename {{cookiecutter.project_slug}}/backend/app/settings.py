# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""App settings (database, Cerebe, the limits on clients), read from the environment by pydantic-settings.

Each field's docstring names its environment variable; `Settings.from_env()` reads them and fails
with one line naming each bad variable. Telemetry settings live in telemetry/config.py.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from .telemetry.config import EnvSettings
from .telemetry.replay import DEFAULT_VENDOR, ReplayVendorName

CEREBE_BASE_URL = "{{ cookiecutter.cerebe_base_url }}"
CEREBE_MODEL = "{{ cookiecutter.cerebe_model }}"
# The built-in replay's viewer in the web app (deploy/config/grafana.env has the same prefix).
REPLAY_URL_PREFIX = "{% if cookiecutter.session_replay == 'builtin' and cookiecutter.include_web %}http://localhost:3000/replay/{% endif %}"


class Settings(EnvSettings):
    database_url: str = Field("sqlite:///./app.db", validation_alias="DATABASE_URL")
    """SQLAlchemy URL. Env: DATABASE_URL (sqlite:///... or postgresql://...)."""

    cerebe_base_url: str = Field(CEREBE_BASE_URL, validation_alias="CEREBE_BASE_URL")
    """OpenAI-compatible API; the client posts to {base}/v1/chat/completions. Env: CEREBE_BASE_URL."""

    cerebe_api_key: SecretStr | None = Field(None, validation_alias="CEREBE_API_KEY")
    """Bearer token for Cerebe. Env: CEREBE_API_KEY (never written to any file, never logged)."""

    cerebe_model: str = Field(CEREBE_MODEL, validation_alias="CEREBE_MODEL")
    """Model asked for. Env: CEREBE_MODEL."""

    cerebe_provider: str = Field("openai", validation_alias="CEREBE_PROVIDER")
    """gen_ai.provider.name, and the price table's provider id. Env: CEREBE_PROVIDER."""

    cerebe_timeout: float = Field(30.0, validation_alias="CEREBE_TIMEOUT", gt=0.0, allow_inf_nan=False)
    """Seconds before a Cerebe call is given up (answered 504). Env: CEREBE_TIMEOUT."""

    history_limit: int = Field(20, validation_alias="CHAT_HISTORY_LIMIT", ge=0)
    """How many earlier messages of the conversation are sent along. Env: CHAT_HISTORY_LIMIT."""

    agent_name: str = Field("assistant", validation_alias="AGENT_NAME", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    """gen_ai.agent.name: the chat agent's spans are `invoke_agent <name>`. Env: AGENT_NAME."""

    agent_max_steps: int = Field(8, validation_alias="AGENT_MAX_STEPS", ge=1, le=100)
    """LLM round trips one request may make; past them it answers 502 (code max_steps). Env: AGENT_MAX_STEPS."""

    agent_max_tool_calls: int = Field(16, validation_alias="AGENT_MAX_TOOL_CALLS", ge=0, le=1000)
    """Tool calls one request may run; past them it answers 502 (code max_tool_calls). Env: AGENT_MAX_TOOL_CALLS."""

    agent_tool_timeout: float = Field(10.0, validation_alias="AGENT_TOOL_TIMEOUT", gt=0.0, allow_inf_nan=False)
    """Seconds one tool call may take; past them the request answers 504 (code tool_timeout).
    Env: AGENT_TOOL_TIMEOUT."""

    session_replay: ReplayVendorName = Field(DEFAULT_VENDOR, validation_alias="SESSION_REPLAY")
    """Session replay vendor (telemetry/replay.py VENDORS): whose header names a request's session, and
    whether the built-in replay's routes (/api/replay/...) are mounted ("builtin" only). Env: SESSION_REPLAY."""

    api_docs: bool = Field(False, validation_alias="API_DOCS")
    """Serve /docs, /redoc and /openapi.json (off: the API's map is not handed to every client). Env: API_DOCS."""

    # ---- who the client is (ratelimit.py) and what one client may cost (chat_limits.py) ----------
    forwarded_allow_ips: str = Field("127.0.0.1,::1", validation_alias="FORWARDED_ALLOW_IPS")
    """Proxies whose X-Forwarded-For names the client: comma-separated addresses or networks (the
    web app's proxy; default loopback). Every per-client limit counts that client; a peer not
    listed is the client itself. `python -m app.serve` passes it to uvicorn (which reads the same
    variable). "*" is refused: any client could name itself. Env: FORWARDED_ALLOW_IPS."""

    cerebe_max_connections: int = Field(100, validation_alias="CEREBE_MAX_CONNECTIONS", ge=1)
    """Connections to Cerebe at most (the shared httpx pool), hence LLM calls at once per worker;
    past it /api/chat answers 503 at once instead of queueing. Env: CEREBE_MAX_CONNECTIONS."""

    chat_concurrent_per_client: int = Field(4, validation_alias="CHAT_CONCURRENT_PER_CLIENT", ge=1)
    """LLM calls one client may have running at once (plain and streamed); past it 429, so one
    client cannot hold the pool. Env: CHAT_CONCURRENT_PER_CLIENT."""

    chat_requests_per_minute: int = Field(20, validation_alias="CHAT_REQUESTS_PER_MINUTE", ge=1)
    """/api/chat requests (plain and streamed) per client per minute; past it 429. Env: CHAT_REQUESTS_PER_MINUTE."""

    chat_requests_per_minute_total: int = Field(600, validation_alias="CHAT_REQUESTS_PER_MINUTE_TOTAL", ge=1)
    """/api/chat requests per minute from all clients together (per worker). Env: CHAT_REQUESTS_PER_MINUTE_TOTAL."""

    chat_tokens_per_hour: int = Field(200_000, validation_alias="CHAT_TOKENS_PER_HOUR", ge=1)
    """LLM tokens (input and output) per client per hour: a call is admitted while the client is
    under it, charged an estimate of its input at once and settled with the usage Cerebe reports.
    Env: CHAT_TOKENS_PER_HOUR."""

    chat_tokens_per_hour_total: int = Field(5_000_000, validation_alias="CHAT_TOKENS_PER_HOUR_TOTAL", ge=1)
    """LLM tokens per hour from all clients together (per worker). Env: CHAT_TOKENS_PER_HOUR_TOTAL."""

    # ---- the HTTP server (server.py; applied by `python -m app.serve`) -----------------------------
    server_max_header_bytes: int = Field(16 * 1024, validation_alias="SERVER_MAX_HEADER_BYTES", ge=1024)
    """Request line and headers together, in bytes; past it 431 and the connection is closed (the
    web tier's limit is 16 KiB too). Env: SERVER_MAX_HEADER_BYTES."""

    server_header_timeout: float = Field(10.0, validation_alias="SERVER_HEADER_TIMEOUT", gt=0, allow_inf_nan=False)
    """Seconds a connection may take to send a request's line and headers (from its first byte,
    or from connecting); then 408 and closed. Env: SERVER_HEADER_TIMEOUT."""

    server_body_timeout: float = Field(30.0, validation_alias="SERVER_BODY_TIMEOUT", gt=0, allow_inf_nan=False)
    """Seconds a request body may go without a byte arriving; then the connection is closed.
    Env: SERVER_BODY_TIMEOUT."""

    server_connections_per_client: int = Field(32, validation_alias="SERVER_CONNECTIONS_PER_CLIENT", ge=1)
    """Open connections from one address (trusted proxies excepted: they carry many clients);
    past it 429 and closed. Env: SERVER_CONNECTIONS_PER_CLIENT."""

    server_limit_concurrency: int = Field(1000, validation_alias="SERVER_LIMIT_CONCURRENCY", ge=1)
    """Connections and requests in progress at once per worker (uvicorn --limit-concurrency); past
    it 503. Env: SERVER_LIMIT_CONCURRENCY."""

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses_or_networks(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        for entry in entries:
            if entry == "*":
                raise ValueError("'*' would let any client name itself in X-Forwarded-For; list the proxies")
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return ",".join(entries)

    @field_validator("cerebe_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


class McpSettings(EnvSettings):
    """The telemetry MCP server's settings (app/mcp_server/, `make mcp`); it reads only these."""

    source: Literal["auto", "local", "stack"] = Field("auto", validation_alias="TELEMETRY_MCP_SOURCE")
    """Where answers come from: `local` (the store `make run` writes), `stack` (Tempo, Loki, Prometheus),
    `auto` (the stack when TEMPO_URL is set or Tempo answers on localhost:3200, else local).
    Env: TELEMETRY_MCP_SOURCE."""

    tempo_url: str | None = Field(None, validation_alias="TEMPO_URL")
    """Tempo's HTTP API (TraceQL search, traces by id), e.g. http://localhost:3200. Env: TEMPO_URL."""

    loki_url: str | None = Field(None, validation_alias="LOKI_URL")
    """Loki's base URL, for a trace's log lines and recent error lines. Env: LOKI_URL."""

    prometheus_url: str | None = Field(None, validation_alias="PROMETHEUS_URL")
    """Prometheus's HTTP API, for 5xx counts by route. Env: PROMETHEUS_URL."""

    grafana_url: str | None = Field(None, validation_alias="GRAFANA_URL")
    """Grafana, for links to each trace in Explore (data source uid `tempo`). Env: GRAFANA_URL."""

    replay_url_prefix: str | None = Field(REPLAY_URL_PREFIX or None, validation_alias="REPLAY_URL_PREFIX")
    """A trace's replay session id appended to this is its replay. Env: REPLAY_URL_PREFIX."""

    @field_validator("tempo_url", "loki_url", "prometheus_url", "grafana_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        value = (value or "").strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value or None
