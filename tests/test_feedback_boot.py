"""Feedback on a reply, on the wire: real uvicorn, the event and span decoded from OTLP.

One run (module fixture): a chat reply, a thumbs down on it, every kind of bad input, bodies
over the cap (declared and chunked), then a burst until the rate limit answers; a graceful stop.
"""

from __future__ import annotations

import json
import select
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.otlp_receiver import LogRecord, Metric, OtlpReceiver, Span
from tests.support.processes import clean_env, run_backend, run_stub_llm

pytestmark = pytest.mark.boot

UNKNOWN = "0123456789abcdef0123456789abcdef"
BAD_BODIES = {
    "unknown trace": (json.dumps({"trace_id": UNKNOWN, "score": 1}), 404),
    "score 0": (json.dumps({"trace_id": UNKNOWN, "score": 0}), 422),
    "score 2": (json.dumps({"trace_id": UNKNOWN, "score": 2}), 422),
    "score as text": (json.dumps({"trace_id": UNKNOWN, "score": "-1"}), 422),
    "score true": (json.dumps({"trace_id": UNKNOWN, "score": True}), 422),
    "no score": (json.dumps({"trace_id": UNKNOWN}), 422),
    "comment too long": (json.dumps({"trace_id": UNKNOWN, "score": 1, "comment": "x" * 1001}), 422),
    "comment a number": (json.dumps({"trace_id": UNKNOWN, "score": 1, "comment": 7}), 422),
    "upper-case trace id": (json.dumps({"trace_id": UNKNOWN.upper(), "score": 1}), 422),
    "trace id a list": (json.dumps({"trace_id": [UNKNOWN], "score": 1}), 422),
    "malformed JSON": ('{"trace_id": "', 422),
    "empty body": ("", 422),
    "a JSON array": ("[1]", 422),
    "not UTF-8": ("\udcff", 422),
}


@dataclass
class FeedbackRun:
    reply: dict
    feedback_status: int
    bad: dict[str, tuple[int, str]]
    declared_too_long: tuple[int, str]
    chunked_too_long: tuple[int, str]
    burst: list[int]
    burst_detail: str
    spans: list[Span]
    logs: list[LogRecord]
    metrics: list[Metric]
    receiver_errors: list[str]

    def chat_server_span(self) -> Span:
        (found,) = [s for s in self.spans if s.kind == "SERVER" and s.name == "POST /api/chat"]
        return found


def _raw_request(url: str, head: bytes, chunks: list[bytes]) -> tuple[int, str]:
    """Sends `head` and then `chunks`, never the end of the body; returns the status and body.

    A server that buffered the whole body before answering would never answer: the socket's
    timeout fails the test instead of hanging it.
    """
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in chunks:
            if select.select([sock], [], [], 0.05)[0]:
                break  # answered mid-upload: stop sending
            sock.sendall(chunk)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.split(b"\r\n\r\n", 1)[1].decode()


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@pytest.fixture(scope="module")
def run(default_project: Path, backend_python: Path, tmp_path_factory: pytest.TempPathFactory) -> FeedbackRun:
    workdir = tmp_path_factory.mktemp("feedback")
    with OtlpReceiver() as otlp, run_stub_llm(backend_python, default_project) as llm:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            CEREBE_BASE_URL=llm.url,
            DATABASE_URL=f"sqlite:///{workdir / 'feedback.db'}",
        )
        with run_backend(backend_python, default_project, env, workdir / "backend.log") as backend:
            with httpx.Client(base_url=backend.url, timeout=10) as client:
                reply = client.post("/api/chat", json={"conversation_id": "fb-boot", "message": "hello"})
                assert reply.status_code == 200, reply.text
                trace_id = reply.json()["trace_id"]
                thumbs_down = {"trace_id": trace_id, "score": -1, "comment": "wrong; see ?api_key=abc123"}
                feedback_status = client.post("/api/feedback", json=thumbs_down).status_code
                bad = {}
                for what, (body, _) in BAD_BODIES.items():
                    response = client.post(
                        "/api/feedback",
                        content=body.encode(errors="surrogateescape"),
                        headers={"content-type": "application/json"},
                    )
                    bad[what] = (response.status_code, response.json()["detail"])
            host = urlsplit(backend.url).netloc.encode()
            declared = _raw_request(
                backend.url,
                b"POST /api/feedback HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: application/json\r\n"
                b"Content-Length: 50000000\r\n\r\n",
                [b" " * 1024],
            )
            chunked = _raw_request(
                backend.url,
                b"POST /api/feedback HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n",
                [b"400\r\n" + b" " * 1024 + b"\r\n"] * 64,
            )
            with httpx.Client(base_url=backend.url, timeout=10) as client:
                burst = [
                    client.post("/api/feedback", json={"trace_id": trace_id, "score": 1}) for _ in range(40)
                ]
        return FeedbackRun(
            reply=reply.json(),
            feedback_status=feedback_status,
            bad=bad,
            declared_too_long=declared,
            chunked_too_long=chunked,
            burst=[r.status_code for r in burst],
            burst_detail=burst[-1].json()["detail"],
            spans=otlp.spans(),
            logs=otlp.logs(),
            metrics=otlp.metrics(),
            receiver_errors=otlp.errors,
        )


def test_the_evaluation_event_arrives_in_the_replys_trace(run: FeedbackRun) -> None:
    """gen_ai.evaluation.result arrives with the reply's trace id and span id and the score."""
    assert run.feedback_status == 204
    assert run.receiver_errors == []
    (event,) = [
        r
        for r in run.logs
        if r.event_name == "gen_ai.evaluation.result"
        and r.attributes.get("gen_ai.evaluation.score.value") == -1
    ]
    assert event.trace_id == run.reply["trace_id"]
    assert event.span_id == run.chat_server_span().span_id
    assert event.attributes["gen_ai.evaluation.name"] == "user_feedback"
    assert event.attributes["gen_ai.conversation.id"] == "fb-boot"
    assert "abc123" not in event.attributes["gen_ai.evaluation.explanation"]


def test_a_feedback_span_in_the_replys_trace_marks_it_for_the_tail_sampler(run: FeedbackRun) -> None:
    """A `feedback` span below the reply's server span carries app.feedback.score = -1."""
    chat = run.chat_server_span()
    negative = [s for s in run.spans if s.name == "feedback" and s.attributes.get("app.feedback.score") == -1]
    assert [(s.trace_id, s.parent_span_id) for s in negative] == [(chat.trace_id, chat.span_id)]
    requests = [
        s
        for s in run.spans
        if s.name == "POST /api/feedback" and s.attributes.get("app.feedback.score") == -1
    ]
    assert len(requests) == 1
    assert [(trace_id, span_id) for trace_id, span_id, _ in requests[0].links] == [
        (chat.trace_id, chat.span_id)
    ]


def test_the_feedback_counter_arrives_by_model_and_score(run: FeedbackRun) -> None:
    """app.feedback counts the thumbs down, by model and score (the burst's second ratings of the
    same reply are refused, so none of them counts)."""
    (counter,) = [m for m in run.metrics if m.name == "app.feedback"]
    totals = {
        (p["attributes"]["gen_ai.request.model"], p["attributes"]["app.feedback.score"]): p["value"]
        for p in counter.data_points
    }
    assert totals == {("gpt-4o-mini", -1): 1} and 204 not in run.burst


def test_every_bad_input_gets_its_4xx_with_one_line(run: FeedbackRun) -> None:
    """404 for an unknown reply, 422 for the rest; never a 500; the reason is one line."""
    assert {what: status for what, (status, _) in run.bad.items()} == {
        what: status for what, (_, status) in BAD_BODIES.items()
    }
    for what, (_, detail) in run.bad.items():
        assert isinstance(detail, str) and detail and "\n" not in detail, (what, detail)


def test_bodies_over_the_cap_are_413_before_they_are_read_whole(run: FeedbackRun) -> None:
    """A declared 50 MB body and an endless chunked body are both answered 413 mid-upload."""
    assert run.declared_too_long[0] == 413 and "limit" in run.declared_too_long[1]
    assert run.chunked_too_long[0] == 413 and "over" in run.chunked_too_long[1]


def test_a_client_sending_too_much_feedback_is_rate_limited(run: FeedbackRun) -> None:
    """Past its budget a client gets 429 with a one-line reason; before that, 409: it rated this
    reply already (one rating per reply per client)."""
    first_refused = run.burst.index(429)
    assert set(run.burst[:first_refused]) == {409} and set(run.burst[first_refused:]) == {429}
    assert "\n" not in run.burst_detail and "retry" in run.burst_detail
