"""Browser telemetry: the main-thread time it costs per minute of a session and per traced fetch.

    .venv/bin/python -m bench.browser_cost                       # 60 s sessions, 2 rounds
    .venv/bin/python -m bench.browser_cost --seconds 20 --rounds 1 --json out.json

Mirrors bench/replay_cost.py (same render, build, scripted session and Chrome metrics): two web
apps on one backend, replay off in both (REPLAY_SAMPLE_RATE=0), one with the web app's telemetry
on, one with OTEL_SDK_DISABLED=true (`<html data-telemetry="off">`). Each round runs, on each app in
turn and in a fresh browser context, the scripted session of replay_cost (six chat messages typed,
sent and read, mouse and scroll), then a burst of BURST fetches to /api/chat from the page (the
instrumented window.fetch). Main-thread task and script time come from Chrome's
Performance.getMetrics (TaskDuration, ScriptDuration), read before and after each phase; the
difference between the apps, per minute of session and per fetch of the burst, is the cost.
The browser spans that reached the receiver are counted, to show the fetches were traced.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from bench.replay_cost import PROBES, percentile, scripted_session
from tests.conftest import CACHE_DIR, render
from tests.support.browser import chromium, ensure_web_build, run_web
from tests.support.processes import backend_requirements, clean_env, ensure_venv
from tests.support.web_stack import web_stack

BURST = 30
FETCH_BURST = """
async (n) => {
  for (let i = 0; i < n; i++) {
    const response = await fetch("/api/chat", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ conversation_id: "bench-burst", message: `burst ${i}` }),
    });
    await response.text();
  }
}
"""


def _metrics(cdp) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def _delta_ms(after: dict, before: dict, key: str) -> float:
    return (after[key] - before[key]) * 1000


def one_session(browser, url: str, seconds: float) -> dict:
    context = browser.new_context(viewport={"width": 1280, "height": 640})
    context.add_init_script(PROBES)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto(url)
    page.wait_for_selector("html[data-telemetry]", timeout=20_000)
    state = page.get_attribute("html", "data-telemetry")
    before = _metrics(cdp)
    scripted_session(page, seconds)
    after_session = _metrics(cdp)
    page.evaluate(FETCH_BURST, BURST)
    # The fetch instrumentation ends its span ~300 ms after the body is read, then exports it.
    page.wait_for_timeout(1500)
    after_burst = _metrics(cdp)
    probes = page.evaluate("() => window.__bench")
    page.goto("about:blank")
    context.close()
    return {
        "telemetry": state,
        "session_task_ms": _delta_ms(after_session, before, "TaskDuration"),
        "session_script_ms": _delta_ms(after_session, before, "ScriptDuration"),
        "burst_task_ms": _delta_ms(after_burst, after_session, "TaskDuration"),
        "burst_script_ms": _delta_ms(after_burst, after_session, "ScriptDuration"),
        "long_tasks": len(probes["longTasks"]),
        "lag_p99_ms": percentile(probes["lags"], 0.99),
    }


def browser_spans(receiver) -> int:
    return sum(1 for span in receiver.spans() if span.resource.get("telemetry.sdk.language") == "webjs")


def run(seconds: float, rounds: int) -> dict:
    """Renders, builds, boots; the summary (means over rounds) and every run."""
    with tempfile.TemporaryDirectory(prefix="browser-cost-") as tmp:
        workdir = Path(tmp)
        project = render(workdir / "render", session_replay="builtin")
        python = ensure_venv(CACHE_DIR, backend_requirements(project / "backend" / "pyproject.toml"))
        app = ensure_web_build(project / "web", CACHE_DIR)
        runs: dict[str, list[dict]] = {"on": [], "off": []}
        spans: list[int] = []
        with web_stack(project, app, python, workdir, web_env={"REPLAY_SAMPLE_RATE": "0"}) as stack:
            off_env = clean_env(
                API_BASE_URL=stack.backend.url,
                OTEL_EXPORTER_OTLP_ENDPOINT=stack.rx.endpoint,
                NEXT_TELEMETRY_DISABLED="1",
                REPLAY_SAMPLE_RATE="0",
                OTEL_SDK_DISABLED="true",
            )
            with run_web(app, off_env, workdir / "web-off.log") as off, chromium() as browser:
                for _ in range(rounds):
                    for name, url in (("on", stack.web.url), ("off", off.url)):
                        seen = browser_spans(stack.rx)
                        result = one_session(browser, url, seconds)
                        if name == "on":
                            spans.append(browser_spans(stack.rx) - seen)
                        runs[name].append(result)
                        print(f"{name}: {json.dumps(result)}", flush=True)
    states = {name: {r["telemetry"] for r in rows} for name, rows in runs.items()}
    if states != {"on": {"ready"}, "off": {"off"}}:
        raise RuntimeError(f"telemetry states were {states}, expected on=ready, off=off")

    def mean(name: str, key: str) -> float:
        return statistics.mean(r[key] for r in runs[name])

    minutes = seconds / 60
    return {
        "seconds": seconds,
        "rounds": rounds,
        "burst_fetches": BURST,
        "task_ms_per_min_on": mean("on", "session_task_ms") / minutes,
        "task_ms_per_min_off": mean("off", "session_task_ms") / minutes,
        "task_ms_per_min_added": (mean("on", "session_task_ms") - mean("off", "session_task_ms")) / minutes,
        "script_ms_per_min_added": (mean("on", "session_script_ms") - mean("off", "session_script_ms"))
        / minutes,
        "task_ms_per_fetch_added": (mean("on", "burst_task_ms") - mean("off", "burst_task_ms")) / BURST,
        "script_ms_per_fetch_added": (mean("on", "burst_script_ms") - mean("off", "burst_script_ms")) / BURST,
        "browser_spans_per_round": statistics.mean(spans) if spans else 0,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=2, help="sessions per variant, interleaved")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    summary = run(args.seconds, args.rounds)
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
