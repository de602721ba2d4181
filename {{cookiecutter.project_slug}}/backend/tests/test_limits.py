# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""Request bodies are limited while they stream in: /api/chat refuses an oversized body with 413."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

from fastapi.testclient import TestClient


def endless(piece: bytes = b" " * 65536, pieces: int = 1000) -> Iterator[bytes]:
    """A chunked body of 64 MB (no Content-Length)."""
    yield b'{"conversation_id": "c-limit", "message": "'
    for _ in range(pieces):
        yield piece


def test_an_oversized_chunked_chat_body_is_refused(client: TestClient) -> None:
    """64 MB sent chunked to /api/chat: 413 body_too_large (tests/test_replay_attacks.py, booted,
    shows the server stops reading at the limit)."""
    response = client.post("/api/chat", content=endless(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large" and "\n" not in response.json()["detail"]


def test_a_declared_oversized_chat_body_is_refused_unread(client: TestClient) -> None:
    """A Content-Length over the limit is refused from the headers alone."""
    message = "x" * 100_000
    response = client.post("/api/chat", json={"conversation_id": "c-limit", "message": message})
    assert (response.status_code, response.json()["code"]) == (413, "body_too_large")


def test_an_encoded_chat_body_is_refused_with_415(client: TestClient) -> None:
    """The chat API takes plain JSON: a gzip body (a bomb, or not) is not inflated."""
    raw = gzip.compress(json.dumps({"conversation_id": "c-limit", "message": "hi"}).encode())
    response = client.post("/api/chat", content=raw, headers={"content-encoding": "gzip"})
    assert (response.status_code, response.json()["code"]) == (415, "unsupported_encoding")


def test_a_chat_body_within_the_limit_is_validated_as_before(client: TestClient) -> None:
    """Under the byte limit the 8,000-character rule still answers 422, naming the field."""
    response = client.post("/api/chat", json={"conversation_id": "c-limit", "message": "x" * 8001})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("message: ")
