# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""POST /api/feedback: the event lands in the reply's trace; bad input gets a one-line 4xx."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from app import db
from app.telemetry.testing import SpanKind, TelemetryCapture


def _reply(client: TestClient, conversation_id: str = "fb-1") -> dict:
    response = client.post("/api/chat", json={"conversation_id": conversation_id, "message": "hello"})
    assert response.status_code == 200, response.text
    return response.json()


def test_feedback_emits_the_evaluation_event_on_the_replys_span(
    client: TestClient, telemetry_capture: TelemetryCapture
) -> None:
    """The gen_ai.evaluation.result record carries the reply's trace and span and the score."""
    reply = _reply(client)
    chat_server = telemetry_capture.span(name="POST /api/chat", kind=SpanKind.SERVER)
    response = client.post("/api/feedback", json={"trace_id": reply["trace_id"], "score": -1, "comment": "wrong"})
    assert response.status_code == 204, response.text

    (event,) = [r.log_record for r in telemetry_capture.logs() if r.log_record.event_name == "gen_ai.evaluation.result"]
    assert format(event.trace_id, "032x") == reply["trace_id"]
    assert event.span_id == chat_server.context.span_id
    assert event.attributes["gen_ai.evaluation.name"] == "user_feedback"
    assert event.attributes["gen_ai.evaluation.score.value"] == -1
    assert event.attributes["gen_ai.conversation.id"] == "fb-1"
    assert event.attributes["gen_ai.evaluation.explanation"] == "wrong"


def test_feedback_span_in_the_replys_trace_carries_the_score_for_tail_sampling(
    client: TestClient, telemetry_capture: TelemetryCapture
) -> None:
    """A `feedback` span, child of the reply's server span, says app.feedback.score = -1."""
    reply = _reply(client)
    chat_server = telemetry_capture.span(name="POST /api/chat", kind=SpanKind.SERVER)
    client.post("/api/feedback", json={"trace_id": reply["trace_id"], "score": -1})

    span = telemetry_capture.span(name="feedback")
    assert span.context.trace_id == chat_server.context.trace_id
    assert span.parent.span_id == chat_server.context.span_id
    assert span.attributes["app.feedback.score"] == -1
    request = telemetry_capture.span(name="POST /api/feedback", kind=SpanKind.SERVER)
    assert request.attributes["app.feedback.score"] == -1
    assert [link.context.span_id for link in request.links] == [chat_server.context.span_id]


def test_feedback_counter_is_by_model_and_score(client: TestClient, telemetry_capture: TelemetryCapture) -> None:
    """app.feedback counts one per feedback, labelled with the reply's model and the score."""
    liked, disliked = _reply(client), _reply(client)
    client.post("/api/feedback", json={"trace_id": liked["trace_id"], "score": 1})
    client.post("/api/feedback", json={"trace_id": disliked["trace_id"], "score": -1})
    points = {
        (p.attributes["gen_ai.request.model"], p.attributes["app.feedback.score"]): p.value
        for p in telemetry_capture.metric_points("app.feedback")
    }
    assert points == {("gpt-4o-mini", 1): 1, ("gpt-4o-mini", -1): 1}


def test_one_vote_per_reply_per_client(client: TestClient, telemetry_capture: TelemetryCapture) -> None:
    """A second rating of the same reply from the same client is 409 and records nothing."""
    reply = _reply(client)
    first = client.post("/api/feedback", json={"trace_id": reply["trace_id"], "score": -1})
    again = [client.post("/api/feedback", json={"trace_id": reply["trace_id"], "score": s}) for s in (-1, 1)]
    assert first.status_code == 204 and [a.status_code for a in again] == [409, 409]
    assert "\n" not in again[0].json()["detail"]
    events = [r for r in telemetry_capture.logs() if r.log_record.event_name == "gen_ai.evaluation.result"]
    assert len(events) == 1


def test_the_comment_loses_control_characters_and_secrets(
    client: TestClient, telemetry_capture: TelemetryCapture
) -> None:
    """NUL, CR/LF, ANSI escapes and bidi controls are gone; sk-... keys and password=... redacted."""
    reply = _reply(client)
    comment = "ok\x00\r\nFAKE LOG LINE \x1b[31mred\x1b[0m \u202eevil\u202c sk-abcdefghijklmnop1234 password=hunter2"
    client.post("/api/feedback", json={"trace_id": reply["trace_id"], "score": -1, "comment": comment})
    (event,) = [r.log_record for r in telemetry_capture.logs() if r.log_record.event_name == "gen_ai.evaluation.result"]
    assert event.attributes["gen_ai.evaluation.explanation"] == (
        "ok FAKE LOG LINE red evil [REDACTED] password=[REDACTED]"
    )


def test_the_comment_is_scrubbed(client: TestClient, telemetry_capture: TelemetryCapture) -> None:
    """A secret-looking query parameter in the comment never leaves the process."""
    reply = _reply(client)
    comment = "see https://x.test/cb?token=s3cr3t-value&page=2"
    client.post("/api/feedback", json={"trace_id": reply["trace_id"], "score": -1, "comment": comment})
    (event,) = [r.log_record for r in telemetry_capture.logs() if r.log_record.event_name == "gen_ai.evaluation.result"]
    assert "s3cr3t-value" not in event.attributes["gen_ai.evaluation.explanation"]
    assert "page=2" in event.attributes["gen_ai.evaluation.explanation"]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"trace_id": "0" * 32, "score": 1}, 404, "no reply"),
        ({"trace_id": "A" * 32, "score": 1}, 422, "trace_id"),
        ({"trace_id": "0" * 31, "score": 1}, 422, "trace_id"),
        ({"trace_id": "0" * 32, "score": 0}, 422, "score"),
        ({"trace_id": "0" * 32, "score": "1"}, 422, "score"),
        ({"trace_id": "0" * 32, "score": True}, 422, "score"),
        ({"trace_id": "0" * 32, "score": 1.0}, 422, "score"),
        ({"trace_id": "0" * 32, "score": 1, "comment": "x" * 1001}, 422, "comment"),
        ({"trace_id": "0" * 32, "score": 1, "comment": 5}, 422, "comment"),
        ({"trace_id": "0" * 32}, 422, "score"),
        ({"trace_id": "0" * 32, "score": 1, "extra": 1}, 422, "extra"),
        ([1, 2], 422, "object"),
        ("not json", 422, "JSON"),
    ],
)
def test_bad_input_gets_its_status_and_one_line(client: TestClient, body: object, status: int, reason: str) -> None:
    """Each malformed or unknown body is refused with one line naming what is wrong."""
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    response = client.post("/api/feedback", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and reason.lower() in detail.lower(), detail


def test_an_oversized_body_is_413(client: TestClient) -> None:
    """A body over the cap is refused, whether it declares its length or not."""
    big = json.dumps({"trace_id": "0" * 32, "score": 1, "comment": "x" * 20_000}).encode()
    assert client.post("/api/feedback", content=big).status_code == 413
    assert client.post("/api/feedback", content=iter([big[:4096], big[4096:]])).status_code == 413


def test_a_compressed_body_is_415(client: TestClient) -> None:
    """Compressed bodies are not inflated at all."""
    response = client.post("/api/feedback", content=b"\x1f\x8b", headers={"content-encoding": "gzip"})
    assert response.status_code == 415


def test_create_schema_adds_the_span_columns_to_an_existing_database(tmp_path) -> None:
    """A database made before feedback existed gets span_id and trace_flags at start, rows kept."""

    async def migrate() -> tuple[set[str], int]:
        engine = db.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "CREATE TABLE messages (id INTEGER PRIMARY KEY, conversation_id VARCHAR(128), role VARCHAR(16),"
                    " content TEXT, created_at DATETIME, trace_id VARCHAR(32), model VARCHAR(128),"
                    " input_tokens INTEGER, output_tokens INTEGER, cost_usd FLOAT)"
                )
            )
            await connection.execute(
                text("INSERT INTO messages (conversation_id, role, content) VALUES ('c', 'user', 'x')")
            )
        await db.create_schema(engine)
        await db.create_schema(engine)  # idempotent: every start runs it
        async with engine.connect() as connection:
            columns = await connection.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("messages")})
            rows = (await connection.execute(text("SELECT count(*) FROM messages"))).scalar_one()
        await engine.dispose()
        return columns, rows

    columns, rows = asyncio.run(migrate())
    assert {"span_id", "trace_flags"} <= columns and rows == 1
