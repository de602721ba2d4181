"""A thumbs down clicked in Debian's Chromium arrives as an evaluation event inside the reply's trace.

The whole app (tests/support/web_stack.py): the built Next.js app, the backend under uvicorn, the
stub LLM and an OTLP receiver. Chromium sends a message, clicks 👎 on the reply, and the test reads
what the receiver decoded: the gen_ai.evaluation.result record and the `feedback` span, both in
the trace whose id the page showed, below the backend span that made the reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CACHE_DIR
from tests.support.browser import chromium, ensure_web_build
from tests.support.otlp_receiver import LogRecord, Span
from tests.support.web_stack import web_stack

pytestmark = pytest.mark.boot

EVENT = "gen_ai.evaluation.result"


@dataclass
class ClickRun:
    shown_trace_id: str
    feedback_status: int
    request_baggage: dict[str, str]
    llm_baggage: list[str]
    spans: list[Span]
    logs: list[LogRecord]
    page_errors: list[str]

    def reply_server_span(self) -> Span:
        (span,) = {
            s.span_id: s for s in self.spans if s.kind == "SERVER" and s.name == "POST /api/chat"
        }.values()
        return span


def _event_arrived(logs: list[LogRecord], trace_id: str) -> bool:
    return any(r.event_name == EVENT and r.trace_id == trace_id for r in logs)


@pytest.fixture(scope="module")
def clicked(
    default_project: Path, backend_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> ClickRun:
    workdir = tmp_path_factory.mktemp("feedback-e2e")
    app = ensure_web_build(default_project / "web", CACHE_DIR)
    baggage: dict[str, str] = {}
    page_errors: list[str] = []
    with web_stack(default_project, app, backend_python, workdir) as stack, chromium() as browser:
        page = browser.new_page()
        page.on("pageerror", lambda error: page_errors.append(str(error)))

        def keep_baggage(request) -> None:
            if request.url.startswith(f"{stack.web.url}/api/"):
                baggage[request.url.rsplit("/", 1)[-1]] = request.headers.get("baggage", "")

        page.on("request", keep_baggage)
        page.goto(stack.web.url)
        page.wait_for_selector("html[data-telemetry]", timeout=20_000)
        assert page.get_attribute("html", "data-telemetry") == "ready", stack.web.output()
        page.fill("[data-testid=chat-input]", "rate me")
        page.click("[data-testid=chat-send]")
        page.wait_for_selector("[data-testid=chat-reply]", timeout=20_000)
        shown = (page.text_content("[data-testid=trace-id]") or "").strip()
        with page.expect_response(f"{stack.web.url}/api/feedback") as answer:
            page.click("[data-testid=feedback-down]")
        status = answer.value.status
        stack.rx.wait_for(lambda rx: _event_arrived(rx.logs(), shown), timeout=20)
        llm_baggage = [
            r["headers"].get("baggage", "")
            for r in stack.llm.requests()
            if r["path"] == "/v1/chat/completions"
        ]
    # Read after the servers stopped: what they flushed on SIGTERM arrived too.
    return ClickRun(shown, status, baggage, llm_baggage, stack.rx.spans(), stack.rx.logs(), page_errors)


def test_the_click_records_the_event_in_the_replys_trace(clicked: ClickRun) -> None:
    """The thumbs down arrives as gen_ai.evaluation.result on the span that produced the reply."""
    assert clicked.feedback_status == 204
    assert clicked.page_errors == []
    reply = clicked.reply_server_span()
    assert reply.trace_id == clicked.shown_trace_id
    (event,) = [r for r in clicked.logs if r.event_name == EVENT]
    assert (event.trace_id, event.span_id) == (reply.trace_id, reply.span_id)
    assert event.attributes["gen_ai.evaluation.name"] == "user_feedback"
    assert event.attributes["gen_ai.evaluation.score.value"] == -1
    assert event.attributes["gen_ai.conversation.id"].startswith("web-")


def test_the_replys_trace_gets_the_span_the_tail_sampler_keeps(clicked: ClickRun) -> None:
    """A `feedback` span with app.feedback.score = -1 lands in the reply's trace, below its span."""
    reply = clicked.reply_server_span()
    feedback = [s for s in clicked.spans if s.name == "feedback"]
    assert {(s.trace_id, s.parent_span_id, s.attributes["app.feedback.score"]) for s in feedback} == {
        (reply.trace_id, reply.span_id, -1)
    }


def test_both_requests_carry_the_conversation_in_baggage(clicked: ClickRun) -> None:
    """The chat and the feedback request name the same conversation in W3C baggage: the event's."""
    chat, feedback = clicked.request_baggage["chat"], clicked.request_baggage["feedback"]
    assert chat.startswith("gen_ai.conversation.id=web-")
    assert feedback == chat
    (event,) = [r for r in clicked.logs if r.event_name == EVENT]
    assert chat == f"gen_ai.conversation.id={event.attributes['gen_ai.conversation.id']}"


def test_the_conversation_reaches_the_backend_through_the_proxy(clicked: ClickRun) -> None:
    """The Next.js proxy passes the baggage on: the backend's server span names the conversation."""
    conversation = clicked.request_baggage["chat"].removeprefix("gen_ai.conversation.id=")
    assert clicked.reply_server_span().attributes["gen_ai.conversation.id"] == conversation


def test_the_baggage_stops_at_the_backend(clicked: ClickRun) -> None:
    """The backend's call to the LLM provider carries no baggage: the conversation id stays home."""
    assert clicked.llm_baggage == [""]
