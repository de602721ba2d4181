# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""Error responses: every 4xx/5xx names its trace in the body, in one JSON shape, on one line."""

from __future__ import annotations

from fastapi.testclient import TestClient
from opentelemetry.trace import SpanKind, StatusCode

from app.telemetry.testing import TelemetryCapture


def _server_span_trace_id(telemetry_capture: TelemetryCapture) -> str:
    telemetry_capture.flush()
    return format(telemetry_capture.span(kind=SpanKind.SERVER).context.trace_id, "032x")


def test_an_llm_failure_names_its_trace_in_the_body(client: TestClient, telemetry_capture) -> None:
    """The 502 body carries the trace id of the request's server span, as the header does."""
    response = client.post("/api/chat", json={"conversation_id": "e1", "message": "boom [stub:500]"})

    assert response.status_code == 502
    body = response.json()
    assert body["trace_id"] == _server_span_trace_id(telemetry_capture)
    assert response.headers["traceresponse"].split("-")[1] == body["trace_id"]


def test_a_validation_error_is_one_line_with_the_trace(client: TestClient, telemetry_capture) -> None:
    """A 422 says what is wrong in one line (not a list of dicts) and names the trace."""
    response = client.post("/api/chat", json={"conversation_id": "e2", "message": "x" * 8001})

    assert response.status_code == 422
    body = response.json()
    assert isinstance(body["detail"], str) and "\n" not in body["detail"]
    assert body["detail"].startswith("message: ")
    assert body["trace_id"] == _server_span_trace_id(telemetry_capture)


def test_malformed_json_is_a_422_with_one_line(client: TestClient) -> None:
    """A body that is not JSON is refused in one line, never a 500."""
    response = client.post("/api/chat", content=b"{not json", headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)


def test_an_unhandled_error_is_a_500_with_the_trace_and_the_exception_on_the_span(
    client: TestClient, telemetry_capture
) -> None:
    """An exception nobody caught: 500 JSON naming the trace, exception event on the server span."""

    @client.app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    response = client.get("/boom")

    assert response.status_code == 500
    body = response.json()
    assert body == {"detail": "internal error", "trace_id": _server_span_trace_id(telemetry_capture)}
    assert response.headers["traceresponse"].split("-")[1] == body["trace_id"]
    server = telemetry_capture.span(kind=SpanKind.SERVER)
    assert server.status.status_code is StatusCode.ERROR
    assert [event.attributes["exception.type"] for event in server.events] == ["RuntimeError"]
    assert "kaput" not in response.text
