"""The rendered stack for real: backend -> the real collector -> the real Prometheus 3, and stand-ins
for Tempo and Loki (AGPL: not built here).

One run (module fixture) with the collector as compose runs it with tail sampling on (the rendered
config plus the rendered overlay, two --config) and Prometheus with the rendered config, rules
and flags. Only listening addresses and peers' addresses are set from outside (`--set`), and the
rule evaluation interval is 1 s instead of 15 s (the rules are the rendered file). Tempo's
stand-in is a second collector receiving OTLP gRPC as Tempo does and forwarding it to an OTLP
receiver that decodes it; Loki's is an OTLP/HTTP receiver on the path the exporter posts to.

Traffic: ordinary chats in conversations chosen so that the conversation policy keeps some and
drops the rest, failing LLM calls (500 and 429 from the stub: the API answers 5xx), one slow
chat (over the 10 s latency policy), one costly chat (a long message to a model genai-prices
prices at 30/60 USD per million tokens), a chat rated thumbs-down, agent runs whose tool works or
raises, and streamed chats.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import CACHE_DIR
from tests.support.browser import chromium, ensure_web_build, run_web
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import LOAD_TEST_LIMITS, clean_env, run_backend, run_stub_llm
from tests.support.stack import Prometheus, run_collector, run_prometheus, sink_config
from tests.test_deploy_collector import fnv1a_64_as_int64
from tests.test_deploy_dashboards import dashboards, opened_queries

pytestmark = pytest.mark.boot

MODEL = "gpt-4"
SERVICE = "sage-app-api"
ORDINARY_KEPT, ORDINARY_DROPPED = 4, 16
SLOW_SECONDS = 10.5  # over the latency policy's 10 000 ms
COSTLY_MESSAGE = "word " * 1500  # 1 500 input + 1 501 output tokens of gpt-4: 0.135 USD (> 0.05)
FAULTS = ["[stub:500]"] * 6 + ["[stub:429]"] * 6
TOOL_CALL = '[tool:calculate {"expression": "%s"}]'  # the stub asks for the agent's calculate tool
# Resolves in the second idle period from now: web-vitals reads INP in an idle callback.
IDLE_TWICE = "() => new Promise((resolve) => requestIdleCallback(() => requestIdleCallback(() => resolve())))"


def sampling_threshold(project: Path) -> int:
    """The conversation policy's FNV threshold, read from the rendered overlay."""
    overlay = yaml.safe_load(
        (project / "deploy" / "config" / "otel-collector-tail-sampling.yaml").read_text(encoding="utf-8")
    )
    (policy,) = [
        p for p in overlay["processors"]["tail_sampling"]["policies"] if p["name"] == "conversations"
    ]
    return int(policy["ottl_condition"]["span"][0].rsplit("<", 1)[1])


def conversations(prefix: str, threshold: int, kept: int, dropped: int) -> tuple[list[str], list[str]]:
    """Conversation ids the conversation policy keeps (FNV-1a below the threshold) and drops."""
    keep, drop, n = [], [], 0
    while len(keep) < kept or len(drop) < dropped:
        name = f"{prefix}-{n}"
        target = keep if fnv1a_64_as_int64(name) < threshold else drop
        if len(target) < (kept if target is keep else dropped):
            target.append(name)
        n += 1
    return keep, drop


@dataclass
class Run:
    kept_by_conversation: list[str] = field(default_factory=list)  # trace ids
    dropped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    slow: str = ""
    costly: str = ""
    rated: str = ""
    failed_tool: str = ""  # a reply whose agent run had a tool fail (the run itself answered 200)
    streamed: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # traces of requests other than chats
    statuses: dict[str, int] = field(default_factory=dict)  # trace id -> HTTP status
    chat_requests: int = 0
    started: float = 0.0
    traffic_end: float = 0.0
    tempo: OtlpReceiver | None = None
    loki: OtlpReceiver | None = None
    prometheus: Prometheus | None = None
    collector_log: Path | None = None
    project: Path | None = None
    decided: float = 0.0

    def must_keep(self) -> set[str]:
        return {
            *self.kept_by_conversation,
            *self.errors,
            self.slow,
            self.costly,
            self.rated,
            self.failed_tool,
        }


def chat(client: httpx.Client, conversation: str, message: str) -> tuple[str, int]:
    response = client.post("/api/chat", json={"conversation_id": conversation, "message": message})
    trace_id = response.json()["trace_id"]
    return trace_id, response.status_code


def stream(client: httpx.Client, conversation: str) -> str:
    with client.stream(
        "POST", "/api/chat/stream", json={"conversation_id": conversation, "message": "tell me a story"}
    ) as response:
        assert response.status_code == 200
        response.read()
        return response.headers["traceresponse"].split("-")[1]


def drive_browser(browser, url: str) -> str:
    """A person on the chat page: load it, click, stream a reply, leave (web vitals are flushed)."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(url, wait_until="load")
    page.click("[data-testid=chat-input]")  # an interaction: INP has something to measure
    page.wait_for_function("() => performance.getEntriesByType('first-input').length > 0")
    page.check("[data-testid=chat-stream]")
    page.fill("[data-testid=chat-input]", "stream me a reply")
    page.click("[data-testid=chat-send]")
    page.wait_for_selector("[data-testid=trace-id]", timeout=30_000)
    trace_id = (page.text_content("[data-testid=trace-id]") or "").strip()
    page.evaluate(IDLE_TWICE)
    page.wait_for_timeout(800)  # the fetch span ends ~300 ms after the response body (FACTS.md)
    page.goto("about:blank")  # hidden, then left: LCP, CLS and INP become final and are flushed
    context.close()
    return trace_id


def drive(url: str, project: Path, run: Run) -> None:
    threshold = sampling_threshold(project)
    keep, drop = conversations("e2e-ordinary", threshold, ORDINARY_KEPT, ORDINARY_DROPPED)
    _, special = conversations("e2e-special", threshold, 0, 5 + len(FAULTS))
    with httpx.Client(base_url=url, timeout=60) as client, ThreadPoolExecutor(4) as pool:
        slow = pool.submit(chat, client, special[0], f"[stub:slow={SLOW_SECONDS}] hello")
        for conversation in keep + drop:
            trace_id, status = chat(client, conversation, "hello")
            run.statuses[trace_id] = status
            (run.kept_by_conversation if conversation in keep else run.dropped).append(trace_id)
        run.costly, run.statuses[run.costly] = chat(client, special[1], COSTLY_MESSAGE)
        run.rated, run.statuses[run.rated] = chat(client, special[2], "hello")
        rating = client.post("/api/feedback", json={"trace_id": run.rated, "score": -1, "comment": "wrong"})
        assert rating.status_code == 204, rating.text
        run.other.append(rating.headers["traceresponse"].split("-")[1])
        # Agent runs: one tool call that works (an ordinary trace: dropped), one that raises (kept).
        worked, run.statuses[worked] = chat(client, special[3], f"{TOOL_CALL % '2 ** 10'} hello")
        run.dropped.append(worked)
        run.failed_tool, run.statuses[run.failed_tool] = chat(
            client, special[4], f"{TOOL_CALL % '1 / 0'} hello"
        )
        run.streamed = [stream(client, conversation) for conversation in ("e2e-stream-0", "e2e-stream-1")]
        run.slow, run.statuses[run.slow] = slow.result()
        # Last, and kept: once it reached Tempo, every chat trace before it has been decided.
        for conversation, marker in zip(special[5:], FAULTS, strict=True):
            trace_id, run.statuses[trace_id] = chat(client, conversation, f"{marker} hello")
            run.errors.append(trace_id)
    run.chat_requests = len(run.statuses)


def server_traces(receiver: OtlpReceiver) -> set[str]:
    return {s.trace_id for s in receiver.spans() if s.kind == "SERVER" and s.name == "POST /api/chat"}


def web_env(backend_url: str, collector_url: str) -> dict[str, str]:
    return clean_env(
        API_BASE_URL=backend_url,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector_url,
        OTEL_BSP_SCHEDULE_DELAY="500",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        NEXT_TELEMETRY_DISABLED="1",
    )


@dataclass
class Pipeline:
    tempo: OtlpReceiver  # what the Tempo stand-in received, decoded
    loki: OtlpReceiver
    prometheus: Prometheus
    collector_url: str  # OTLP/HTTP, for the apps
    backend_url: str


@contextmanager
def pipeline(project: Path, backend_python: Path, workdir: Path, configs: list[Path]) -> Iterator[Pipeline]:
    """Tempo and Loki stand-ins, the real Prometheus, the real collector with `configs`, the stub
    LLM and the backend exporting to the collector (metrics every second)."""
    with OtlpReceiver() as tempo_rx, OtlpReceiver() as loki_rx:
        tempo_config = sink_config(workdir / "tempo-stand-in.yaml", tempo_rx.endpoint)
        with (
            run_collector([tempo_config], workdir / "tempo-stand-in.log") as tempo,
            run_prometheus(project, workdir, evaluation_interval="1s") as prometheus,
        ):
            overrides = {
                "exporters::otlp_grpc/tempo::endpoint": tempo.grpc,
                "exporters::otlp_http/loki::endpoint": loki_rx.endpoint,
                "exporters::otlp_http/prometheus::endpoint": f"{prometheus.url}/api/v1/otlp",
            }
            with (
                run_collector(configs, workdir / "collector.log", overrides=overrides) as collector,
                run_stub_llm(backend_python, project) as llm,
            ):
                env = clean_env(
                    OTEL_EXPORTER_OTLP_ENDPOINT=collector.http,
                    OTEL_METRIC_EXPORT_INTERVAL="1000",
                    CEREBE_BASE_URL=llm.url,
                    CEREBE_MODEL=MODEL,
                    DATABASE_URL=f"sqlite:///{workdir / 'e2e.db'}",
                    **LOAD_TEST_LIMITS,  # one test client sends every request
                )
                with run_backend(backend_python, project, env, workdir / "backend.log") as backend:
                    yield Pipeline(tempo_rx, loki_rx, prometheus, collector.http, backend.url)


@pytest.fixture(scope="module")
def run(
    default_project: Path, backend_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """The collector with tail sampling (config + overlay), the web app and Chromium too."""
    workdir = tmp_path_factory.mktemp("stack-e2e")
    app = ensure_web_build(default_project / "web", CACHE_DIR)
    config_dir = default_project / "deploy" / "config"
    configs = [config_dir / "otel-collector-config.yaml", config_dir / "otel-collector-tail-sampling.yaml"]
    result = Run(started=time.time(), project=default_project, collector_log=workdir / "collector.log")
    with (
        pipeline(default_project, backend_python, workdir, configs) as stack,
        run_web(app, web_env(stack.backend_url, stack.collector_url), workdir / "web.log") as web,
        chromium() as browser,
    ):
        result.other.append(drive_browser(browser, web.url))
        drive(stack.backend_url, default_project, result)
        result.traffic_end = time.time()
        # Tail sampling decides 60 s (decision_wait) after a trace's first span, in order; the
        # last request was kept: once it arrived, every chat is decided. Meanwhile the apps keep
        # exporting their cumulative metrics.
        stack.tempo.wait_for(lambda rx: server_traces(rx) >= result.must_keep(), timeout=180)
        result.decided = time.time()
        result.tempo, result.loki, result.prometheus = stack.tempo, stack.loki, stack.prometheus
        yield result


def test_without_tail_sampling_every_trace_log_and_metric_reaches_its_store(
    default_project: Path, backend_python: Path, tmp_path: Path
):
    """The default config (what `make dev` runs): every chat trace at Tempo, its logs at Loki, its
    HTTP metric in Prometheus, through the real collector."""
    config = default_project / "deploy" / "config" / "otel-collector-config.yaml"
    with pipeline(default_project, backend_python, tmp_path, [config]) as stack:
        with httpx.Client(base_url=stack.backend_url, timeout=30) as client:
            sent = {
                chat(client, f"default-{n}", marker)[0]
                for n, marker in enumerate(["hi", "hi", "[stub:500] hi"])
            }
        stack.tempo.wait_for(lambda rx: server_traces(rx) >= sent, timeout=30)
        stack.loki.wait_for(lambda rx: {r.trace_id for r in rx.logs()} >= sent, timeout=30)
        query = f'sum(http_server_request_duration_seconds_count{{service_name="{SERVICE}"}})'
        deadline = time.monotonic() + 30
        while not (found := stack.prometheus.query(query)) or float(found[0]["value"][1]) < len(sent):
            assert time.monotonic() < deadline, found
            time.sleep(0.5)
    assert server_traces(stack.tempo) == sent
    assert (tmp_path / "collector.log").read_text().count("\terror\t") == 0


def test_tail_sampling_keeps_errors_slow_costly_and_rated_traces_and_the_conversations_it_should(run):
    """Errors, the slow, the costly, the rated trace and the one with a failed tool reach Tempo, with
    exactly the conversations whose FNV hash the policy keeps; no other chat trace does."""
    assert sorted(run.statuses[t] for t in run.errors) == [502] * 6 + [503] * 6
    expected = run.must_keep()
    arrived = server_traces(run.tempo)
    assert len(expected) == ORDINARY_KEPT + 4 + len(FAULTS)
    assert run.statuses[run.failed_tool] == 200
    assert arrived - set(run.streamed) == expected, (
        f"missing {expected - arrived}, unexpected {arrived - expected - set(run.streamed)}"
    )
    assert not arrived & set(run.dropped)
    (tool,) = [
        s for s in run.tempo.spans() if s.trace_id == run.failed_tool and s.name.startswith("execute_tool")
    ]
    assert (tool.name, tool.status_code, tool.attributes["error.type"]) == (
        "execute_tool calculate",
        "ERROR",
        "ZeroDivisionError",
    )


def test_span_metrics_count_every_request_before_sampling(run):
    """Prometheus's span-metrics series count every chat, the sampled-out ones included."""
    expr = (
        f'sum(traces_span_metrics_calls_total{{service_name="{SERVICE}", span_kind="SPAN_KIND_SERVER",'
        ' span_name="POST /api/chat"})'
    )
    deadline = time.monotonic() + 60
    while True:
        found = run.prometheus.query(expr)
        if found and float(found[0]["value"][1]) == run.chat_requests:
            break
        assert time.monotonic() < deadline, f"{expr}: {found}, sent {run.chat_requests}"
        time.sleep(1)
    http = run.prometheus.query(
        f'sum(http_server_request_duration_seconds_count{{service_name="{SERVICE}", http_route="/api/chat"}})'
    )
    assert float(http[0]["value"][1]) == run.chat_requests


def test_logs_reach_loki_with_their_trace_ids(run):
    """The backend's log records arrive at Loki's OTLP path through the collector, trace ids kept."""
    traced = {record.trace_id for record in run.loki.logs()}
    assert set(run.dropped) <= traced  # logs are never sampled
    assert all(r.resource.get("service.name") for r in run.loki.logs())
    run.loki.assert_no_errors()
    run.tempo.assert_no_errors()


def test_every_dashboard_panel_and_rule_returns_series_for_the_traffic(run):
    """Each PromQL panel of each shipped dashboard, and each recording rule, has data on real Prometheus."""
    at = run.decided
    empty = []
    for name, board in dashboards(run.project).items():
        for source, query in opened_queries(board):
            if source == "prometheus" and not run.prometheus.api("query", query=query, time=at)["result"]:
                empty.append(f"{name}: {query}")
    for group in run.prometheus.rule_groups():
        for rule in group["rules"]:
            assert rule["health"] == "ok", rule
            if (
                rule["type"] == "recording"
                and not run.prometheus.api("query", query=rule["query"], time=at)["result"]
            ):
                empty.append(f"rule {rule['name']}: {rule['query']}")
    assert empty == []


def test_the_api_availability_and_llm_error_alerts_fire_under_the_fault(run):
    """The rendered SLO rules load, and the fast-burn alerts of the API and the LLM go pending/firing."""
    wanted = {"APIErrorBudgetBurnFast", "LLMErrorBudgetBurnFast"}
    deadline = time.monotonic() + 30
    while True:
        states = {a["labels"]["alertname"]: a["state"] for a in run.prometheus.alerts()}
        if all(states.get(name) in {"pending", "firing"} for name in wanted):
            break
        ratios = {
            f"{rule}{{slo={slo}}}": run.prometheus.query(f'{rule}{{slo="{slo}"}}')
            for rule in ("slo:sli_error:ratio_rate5m", "slo:sli_error:ratio_rate1h")
            for slo in ("api-availability", "llm-errors")
        }
        assert time.monotonic() < deadline, f"{states}; {ratios}"
        time.sleep(1)


def test_exemplars_come_back_with_the_backends_trace_ids(run):
    """The HTTP and GenAI latency histograms keep exemplars whose trace ids are the backend's."""
    sent = set(run.statuses)
    for metric in (
        "http_server_request_duration_seconds_bucket",
        "gen_ai_client_operation_duration_seconds_bucket",
    ):
        found = run.prometheus.exemplars(f'{metric}{{service_name="{SERVICE}"}}', since=run.started)
        trace_ids = {e["labels"].get("trace_id") for series in found for e in series["exemplars"]}
        assert trace_ids & sent, f"{metric}: {json.dumps(found)[:2000]}"
        assert trace_ids <= sent | set(run.streamed) | set(run.other), metric


def test_the_collector_logged_no_error(run):
    """Nothing the collector did with the rendered config was an error (exports, OTTL, pipelines)."""
    output = run.collector_log.read_text(errors="replace")
    assert "\terror\t" not in output, output[-5000:]
