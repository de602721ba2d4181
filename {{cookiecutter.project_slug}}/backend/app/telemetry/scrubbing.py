# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Keeps credentials out of spans and logs: the one place that decides what is sensitive.

Headers are only recorded when OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_* asks for them, and
then SENSITIVE_HEADERS are always replaced by the instrumentation's "[REDACTED]". Query strings are
recorded by default (url.query, url.full), so their secret-looking values are redacted here, before
the exporter sends the span, and in log messages (uvicorn's access log prints the full path).
Attributes named like credentials (SENSITIVE_ATTRIBUTE_KEYS) are redacted whole. The names come
from sensitive_keys.json, which the Next.js server shares.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.semconv.attributes.url_attributes import URL_FULL, URL_QUERY

REDACTED = "[REDACTED]"

# The one list of sensitive names, shared with the Next.js server (web/lib/server/scrubbing.ts):
# a JSON file because both images read it (the web image gets a byte-equal copy, see its "about").
_SENSITIVE = json.loads(resources.files(__package__).joinpath("sensitive_keys.json").read_text("utf-8"))
SENSITIVE_HEADERS = tuple(_SENSITIVE["headers"])
# Query parameter names whose values are credentials. Matched as whole names, case-insensitive.
SENSITIVE_QUERY_KEYS = tuple(_SENSITIVE["query_parameters"])
# Span attribute and log record keys (whole, or their last dotted segment) whose values are redacted.
SENSITIVE_ATTRIBUTE_KEYS = frozenset(key.lower() for key in _SENSITIVE["attributes"])

# Span attributes that hold a URL or a query string, old and stable semconv names.
URL_ATTRIBUTES = (URL_FULL, URL_QUERY, "http.url", "http.target")
# Exception events quote URLs too (httpx errors do).
_EVENT_TEXT_ATTRIBUTES = ("exception.message", "exception.stacktrace")
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")
# `extra=` fields of a log record become its attributes; none of the standard fields is sensitive.
_SENSITIVE_RECORD_FIELDS = tuple(SENSITIVE_ATTRIBUTE_KEYS)

_QUERY_SECRET = re.compile(
    r"(?i)(?P<key>(?:^|(?<=[?&;\s]))(?:" + "|".join(re.escape(k) for k in SENSITIVE_QUERY_KEYS) + r"))="
    r"(?P<value>[^&;#\s\"']*)"
)


def scrub_text(text: str) -> str:
    """Redacts secret-looking `key=value` query parameters in a URL, query string or log line."""
    if "=" not in text:
        return text
    return _QUERY_SECRET.sub(lambda m: f"{m.group('key')}={REDACTED}", text)


# Credentials by their shape, wherever they stand in free text (a feedback comment, a pasted log).
_SECRET_SHAPES = re.compile(
    r"\b(?:"
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"  # OpenAI / Anthropic API keys
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|AKIA[0-9A-Z]{16}"  # AWS access key ids
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"  # JWTs
    r")"
    r"|(?i:\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"  # a bearer token as pasted from a header
)
# `password: hunter2`, `api_key = abc`: a sensitive name, then ':' or '=' and a value (whole names).
_NAMED_SECRET = re.compile(
    r"(?i)\b(?P<key>"
    + "|".join(
        re.escape(k) for k in sorted(SENSITIVE_ATTRIBUTE_KEYS | set(SENSITIVE_QUERY_KEYS), key=len, reverse=True)
    )
    + r")"
    r"(?P<sep>\s*[:=]\s*)(?P<value>[^\s&;,\"']+)"
)
# ANSI escape sequences (CSI and OSC), removed whole so no fragment of one is left to re-arm.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
# Bidirectional controls (Trojan Source, CVE-2021-42574) and the other invisible format marks.
_BIDI_AND_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_LINE_BREAKS = re.compile("[\t\n\r\u2028\u2029]+")


def clean_free_text(text: str) -> str:
    """Free text from a client (a feedback comment) made safe to log and show: ANSI escapes, control
    and bidi characters removed, line breaks and tabs made spaces (one line, no forged log lines),
    credentials redacted by name (`password=...`, `api_key: ...`) and by shape (`sk-...`, JWTs)."""
    text = _ANSI.sub("", text)
    text = _LINE_BREAKS.sub(" ", text)
    text = _BIDI_AND_CONTROLS.sub("", text)
    text = _NAMED_SECRET.sub(lambda m: f"{m.group('key')}{m.group('sep')}{REDACTED}", text)
    return _SECRET_SHAPES.sub(REDACTED, text)


def is_sensitive_key(key: str) -> bool:
    """True for an attribute key named (whole, or by its last dotted segment) in SENSITIVE_ATTRIBUTE_KEYS."""
    lowered = key.lower()
    return lowered in SENSITIVE_ATTRIBUTE_KEYS or lowered.rsplit(".", 1)[-1] in SENSITIVE_ATTRIBUTE_KEYS


def header_sanitize_fields(extra: str = "") -> list[str]:
    """SENSITIVE_HEADERS plus `extra`, comma-separated (OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS)."""
    return [*SENSITIVE_HEADERS, *(field.strip() for field in extra.split(",") if field.strip())]


def _scrub_attributes(attributes: Mapping[str, Any] | None, keys: Iterable[str]) -> dict[str, Any] | None:
    """A scrubbed copy, or None when nothing needed scrubbing (the common case: no copy)."""
    if not attributes:
        return None
    changed: dict[str, Any] = {}
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, str) and "=" in value and (scrubbed := scrub_text(value)) != value:
            changed[key] = scrubbed
    for key in attributes:
        if key.startswith(_HEADER_PREFIXES):
            if key.rsplit(".", 1)[-1].replace("_", "-") in SENSITIVE_HEADERS:
                changed[key] = (REDACTED,)
        elif is_sensitive_key(key):
            changed[key] = REDACTED
    return {**attributes, **changed} if changed else None


class ScrubbingSpanExporter(SpanExporter):
    """Wraps the real exporter: redacts query secrets and sensitive headers before spans leave.

    Runs in the batch processor's thread, off the request path; spans that need nothing are
    passed through as they are. (A SpanProcessor.on_start cannot do this: the ASGI
    instrumentation sets the URL attributes again after the span has started.)
    """

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([_scrub_span(span) for span in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def scrub_span(span: ReadableSpan) -> ReadableSpan:
    """The span with query secrets and sensitive headers redacted (itself when nothing needed it)."""
    return _scrub_span(span)


def _scrub_span(span: ReadableSpan) -> ReadableSpan:
    attributes = _scrub_attributes(span.attributes, URL_ATTRIBUTES)
    events = None
    for index, event in enumerate(span.events):
        scrubbed = _scrub_attributes(event.attributes, _EVENT_TEXT_ATTRIBUTES)
        if scrubbed is not None:
            events = list(span.events) if events is None else events
            events[index] = Event(event.name, scrubbed, event.timestamp)
    if attributes is None and events is None:
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes if attributes is None else attributes,
        events=span.events if events is None else events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class ScrubbingLogFilter(logging.Filter):
    """Redacts query secrets in a record's message, and sensitive `extra=` fields, before any handler ships it.

    One instance sits on every handler (handler filters are the only ones propagated records
    pass); it remembers the last record it scrubbed, so a record is scrubbed once, not per handler.
    A race between threads can only cause a second, harmless scrub, never a skipped one.
    """

    def __init__(self) -> None:
        super().__init__()
        self._last: logging.LogRecord | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record is self._last:
            return True
        self._last = record
        fields = record.__dict__
        for key in _SENSITIVE_RECORD_FIELDS:
            if key in fields:
                fields[key] = REDACTED
        if record.args:
            message = record.getMessage()
            if "=" in message:
                scrubbed = scrub_text(message)
                if scrubbed != message:
                    record.msg, record.args = scrubbed, None
        elif isinstance(record.msg, str) and "=" in record.msg:
            record.msg = scrub_text(record.msg)
        return True
