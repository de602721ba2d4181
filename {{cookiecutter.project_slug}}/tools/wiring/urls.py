# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""What an endpoint URL says: its port, whether it is an OTLP/HTTP endpoint, the short host it names."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

OTLP_HTTP_PORT = 4318
OTLP_GRPC_PORT = 4317
# OTEL_EXPORTER_OTLP_ENDPOINT, its per-signal variants, and prefixed copies (NEXT_PUBLIC_...).
OTLP_ENDPOINT_KEY = re.compile(r"OTEL_EXPORTER_OTLP_(?:[A-Z]+_)?ENDPOINT$")
# host:port or scheme://host:port/... with a short host: a k8s Service or compose service name.
SHORT_HOST_URL = re.compile(r"(?:https?://)?([a-z][-a-z0-9]*):(\d+)(?:/\S*)?")
LOCAL_HOSTS = frozenset({"localhost", "0.0.0.0"})


def port_of(url: str) -> int | None:
    """The URL's port, or its scheme's default; None when it has neither."""
    try:
        parts = urlsplit(url)
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None


def otlp_http_problem(url: str) -> str | None:
    """What is wrong with an OTLP/HTTP endpoint, with what was expected; None when it is fine."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"is not a URL with a numeric port (expected http://<host>:{OTLP_HTTP_PORT})"
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return f"is not an http(s) URL with a host (expected http://<host>:{OTLP_HTTP_PORT})"
    if port == OTLP_GRPC_PORT:
        return (
            f"uses port {OTLP_GRPC_PORT}, the OTLP/gRPC port, but the exporter speaks OTLP/HTTP (http/protobuf) "
            f"(expected port {OTLP_HTTP_PORT})"
        )
    if port != OTLP_HTTP_PORT:
        return f"uses port {port or 'default'}, not the OTLP/HTTP port (expected port {OTLP_HTTP_PORT})"
    return None


def short_hosts(value: object) -> Iterator[tuple[str, int]]:
    """(host, port) of every `host:port` or `http://host:port/...` string, in nested data too,
    whose host is a short name (no dots), the way services address each other in k8s and compose."""
    if isinstance(value, dict):
        for item in value.values():
            yield from short_hosts(item)
    elif isinstance(value, list):
        for item in value:
            yield from short_hosts(item)
    elif isinstance(value, str):
        match = SHORT_HOST_URL.fullmatch(value.strip())
        if match and match.group(1) not in LOCAL_HOSTS:
            yield match.group(1), int(match.group(2))
