# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""The chat API against a stub Cerebe: replies, persistence, and clear errors."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_chat_returns_the_llm_reply_and_stores_both_messages(client: TestClient) -> None:
    """It answers with the LLM's reply and keeps the conversation."""
    response = client.post("/api/chat", json={"conversation_id": "c1", "message": "hello there"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reply"] == "Echo: hello there"
    assert len(body["trace_id"]) == 32
    assert body["usage"]["input_tokens"] == 2 and body["usage"]["output_tokens"] == 3

    conversation = client.get("/api/conversations/c1").json()
    assert [(m["role"], m["content"]) for m in conversation["messages"]] == [
        ("user", "hello there"),
        ("assistant", "Echo: hello there"),
    ]


def test_chat_sends_the_history_and_the_api_key(client: TestClient, stub_cerebe) -> None:
    """It sends earlier messages along, with the key as a bearer token."""
    client.post("/api/chat", json={"conversation_id": "c2", "message": "one"})
    client.post("/api/chat", json={"conversation_id": "c2", "message": "two"})
    last = stub_cerebe.requests()[-1]
    assert [m["content"] for m in last["body"]["messages"]] == ["one", "Echo: one", "two"]
    assert last["headers"]["authorization"] == "Bearer test-key-not-secret"


def test_llm_failure_answers_502_and_keeps_the_users_message(client: TestClient) -> None:
    """A 5xx from Cerebe becomes a clear 502; the user's message is not lost."""
    response = client.post("/api/chat", json={"conversation_id": "c3", "message": "boom [stub:500]"})
    assert response.status_code == 502
    assert "saved" in response.json()["detail"]
    messages = client.get("/api/conversations/c3").json()["messages"]
    assert [m["content"] for m in messages] == ["boom [stub:500]"]


def test_llm_rate_limit_and_garbage_and_timeout_are_told_apart(client: TestClient) -> None:
    """429 becomes 503, malformed JSON 502, a slow LLM 504."""
    post = client.post
    assert post("/api/chat", json={"conversation_id": "c4", "message": "[stub:429]"}).status_code == 503
    assert post("/api/chat", json={"conversation_id": "c4", "message": "[stub:garbage]"}).status_code == 502
    assert post("/api/chat", json={"conversation_id": "c4", "message": "[stub:slow=1.5]"}).status_code == 504


def test_bad_input_is_rejected_with_422(client: TestClient) -> None:
    """Empty messages and odd conversation ids never reach the LLM."""
    assert client.post("/api/chat", json={"conversation_id": "c5", "message": ""}).status_code == 422
    assert client.post("/api/chat", json={"conversation_id": "a b", "message": "x"}).status_code == 422
    assert client.post("/api/chat", json={"message": "x"}).status_code == 422


def test_unknown_conversation_is_404(client: TestClient) -> None:
    """It says 404 rather than an empty list for a conversation that never existed."""
    assert client.get("/api/conversations/nope").status_code == 404


def test_healthz(client: TestClient) -> None:
    """It answers the liveness probe."""
    assert client.get("/healthz").json() == {"status": "ok"}
