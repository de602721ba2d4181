"""The agent in the web chat, in Debian's Chromium: tool steps in the page, and the trace behind them.

One render (replay vendor none), the built app, the stub LLM (which asks for a tool per
`[tool:NAME {args}]` marker), the backend and an OTLP receiver. Chromium sends a two-tool message
plainly and a one-tool message streamed, then reads what the page shows; the assertions compare it
with the spans the receiver decoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CACHE_DIR, render
from tests.support.browser import chromium, ensure_web_build
from tests.support.otlp_receiver import OtlpReceiver, Span
from tests.support.web_stack import web_stack

pytestmark = pytest.mark.boot

TIMEOUT = 20
PLAIN = 'plain [tool:calculate {"expression": "6 * 7"}] [tool:calculate {"expression": "1 / 0"}]'
STREAMED = 'streamed [tool:conversation_usage] [tool:calculate {"expression": "2 ** 10"}]'


@dataclass
class Shown:
    """What the page shows for one exchange: each tool step's status and text, the reply, the trace."""

    steps: list[tuple[str, str]]
    reply: str
    trace_id: str


@dataclass
class AgentPage:
    plain: Shown
    streamed: Shown
    streamed_while_running: list[str]
    page_errors: list[str]
    rx: OtlpReceiver


def _exchange(page, message: str, index: int) -> Shown:
    """Sends `message` and waits for exchange `index` (0-based) to show its trace id."""
    page.fill("[data-testid=chat-input]", message)
    page.click("[data-testid=chat-send]")
    item = page.locator(".transcript > li").nth(index)
    item.locator("[data-testid=trace-id]").wait_for(timeout=TIMEOUT * 1000)
    steps = item.locator("[data-testid=tool-step]")
    return Shown(
        [
            (steps.nth(n).get_attribute("data-status") or "", steps.nth(n).text_content() or "")
            for n in range(steps.count())
        ],
        item.locator(".reply").text_content() or "",
        (item.locator("[data-testid=trace-id]").text_content() or "").strip(),
    )


@pytest.fixture(scope="module")
def shown(backend_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentPage]:
    workdir = tmp_path_factory.mktemp("web-agent")
    project = render(workdir / "out", session_replay="none")
    app = ensure_web_build(project / "web", CACHE_DIR)
    with web_stack(project, app, backend_python, workdir) as stack, chromium() as browser:
        page = browser.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.goto(stack.web.url)
        page.wait_for_selector("html[data-telemetry]", timeout=TIMEOUT * 1000)
        plain = _exchange(page, PLAIN, 0)
        page.check("[data-testid=chat-stream]")
        # Statuses the streamed exchange's steps pass through, sampled by the page itself on each change.
        page.evaluate(
            """() => {
                window.__stepStatuses = [];
                new MutationObserver(() => {
                    const items = document.querySelectorAll('.transcript > li');
                    const last = items[items.length - 1];
                    for (const step of last ? last.querySelectorAll('[data-testid=tool-step]') : [])
                        window.__stepStatuses.push(step.dataset.status);
                }).observe(document.body, { subtree: true, childList: true, attributes: true });
            }"""
        )
        streamed = _exchange(page, STREAMED, 1)
        statuses = page.evaluate("() => window.__stepStatuses")
        agents = lambda rx: [s for s in rx.spans() if s.name.startswith("invoke_agent ")]  # noqa: E731
        stack.rx.wait_for(lambda rx: len(agents(rx)) >= 2, timeout=TIMEOUT)
        yield AgentPage(plain, streamed, statuses, page_errors, stack.rx)


def _tools(rx: OtlpReceiver, trace_id: str) -> list[Span]:
    spans = sorted((s for s in rx.spans() if s.trace_id == trace_id), key=lambda s: s.start_ns)
    (agent,) = [s for s in spans if s.name == "invoke_agent assistant"]
    return [s for s in spans if s.name.startswith("execute_tool ") and s.parent_span_id == agent.span_id]


def test_the_plain_reply_shows_each_tool_step_with_its_outcome(shown: AgentPage) -> None:
    """Two calculate steps: 42, then the division's error; the reply follows them."""
    assert [status for status, _ in shown.plain.steps] == ["ok", "error"]
    assert 'calculate({"expression": "6 * 7"}) → 42' in shown.plain.steps[0][1]
    assert "✗ ZeroDivisionError" in shown.plain.steps[1][1]
    assert shown.plain.reply.startswith("Echo: plain") and "[calculate: 42]" in shown.plain.reply
    assert shown.page_errors == []


def test_the_streamed_reply_shows_steps_as_they_run(shown: AgentPage) -> None:
    """Streaming: each step appears running, then done; the text streams in after the tools."""
    assert [status for status, _ in shown.streamed.steps] == ["ok", "ok"]
    assert shown.streamed.steps[0][1].startswith("conversation_usage({})")
    assert "→ 1024" in shown.streamed.steps[1][1]
    assert "running" in shown.streamed_while_running and "ok" in shown.streamed_while_running
    assert "[calculate: 1024]" in shown.streamed.reply


def test_the_steps_shown_are_the_tool_spans_of_the_shown_trace(shown: AgentPage) -> None:
    """The page's trace id holds one execute_tool span per step shown, in order, failed ones ERROR."""
    for exchange in (shown.plain, shown.streamed):
        tools = _tools(shown.rx, exchange.trace_id)
        assert [s.attributes["gen_ai.tool.name"] for s in tools] == [
            text.split("(", 1)[0] for _, text in exchange.steps
        ]
        failed = [status == "error" for status, _ in exchange.steps]
        assert [s.status_code == "ERROR" for s in tools] == failed
