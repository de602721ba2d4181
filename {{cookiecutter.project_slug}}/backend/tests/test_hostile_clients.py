# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""What a hostile client cannot do in-process (the template's tests/test_hostile_backend.py sends
the same attacks to real uvicorn): switch tracing off, read the API's map, flood a log line."""

from __future__ import annotations

import logging
import secrets

from fastapi.testclient import TestClient

from app.main import create_app
from app.telemetry.logs import MAX_LIBRARY_ARG_CHARS, PrepareRecordFilter
from app.telemetry.propagation import UNSAMPLED_CALLER_LINK_REASON
from app.telemetry.testing import SpanKind, TelemetryCapture


def test_an_unsampled_traceparent_starts_a_linked_trace_of_our_own(
    client: TestClient, telemetry_capture: TelemetryCapture
) -> None:
    """`00-<id>-<id>-00`: the request is recorded in a new trace, linked to the caller's, and the
    answer names the new trace (body and traceresponse), never the caller's."""
    caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    response = client.post(
        "/api/chat",
        json={"conversation_id": "hide", "message": "hello"},
        headers={"traceparent": f"00-{caller_trace}-{caller_span}-00"},
    )
    assert response.status_code == 200
    server = telemetry_capture.span(name="POST /api/chat", kind=SpanKind.SERVER)
    ours = format(server.context.trace_id, "032x")
    assert response.json()["trace_id"] == ours != caller_trace
    assert response.headers["traceresponse"].split("-")[1] == ours
    (link,) = server.links
    assert (format(link.context.trace_id, "032x"), format(link.context.span_id, "016x")) == (caller_trace, caller_span)
    assert link.attributes["app.link.reason"] == UNSAMPLED_CALLER_LINK_REASON


def test_a_sampled_traceparent_is_still_followed(client: TestClient, telemetry_capture: TelemetryCapture) -> None:
    """A sampled caller (the browser, through the web app) keeps its trace: one trace end to end."""
    caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    response = client.get("/api/conversations/none", headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"})
    assert response.json()["trace_id"] == caller_trace
    server = telemetry_capture.span(kind=SpanKind.SERVER)
    assert format(server.parent.span_id, "016x") == caller_span and not server.links


def test_api_docs_are_off_unless_asked_for(client: TestClient, settings) -> None:
    """/docs, /redoc, /openapi.json: 404 by default; API_DOCS=true serves them."""
    paths = ("/docs", "/redoc", "/openapi.json")
    assert [client.get(p).status_code for p in paths] == [404, 404, 404]
    app = create_app(settings.model_copy(update={"api_docs": True}), telemetry_options=TelemetryCapture().options())
    with TestClient(app) as documented:
        assert [documented.get(p).status_code for p in paths] == [200, 200, 200]


def test_a_library_quoting_a_huge_header_is_cut_short() -> None:
    """The OTel propagator logs an oversized baggage header whole: its argument is cut."""
    record = logging.LogRecord(
        "opentelemetry.baggage.propagation",
        logging.WARNING,
        __file__,
        1,
        "Baggage header `%s` too long",
        ("z" * 100_000,),
        None,
    )
    PrepareRecordFilter().filter(record)
    assert len(record.getMessage()) < MAX_LIBRARY_ARG_CHARS + 100
