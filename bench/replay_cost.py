"""Built-in session replay: what recording a typical session costs, measured in Debian's Chromium.

    /tmp/tvenv/bin/python -m bench.replay_cost              # 60 s per session, recorded and not
    /tmp/tvenv/bin/python -m bench.replay_cost --seconds 20 --rounds 1 --json out.json

Renders the scaffold with session_replay=builtin, builds the web app (cached like the browser
tests), boots the backend, the stub LLM and two web apps on that backend: one records every session
(REPLAY_SAMPLE_RATE=1), the other none (=0). The same scripted session runs in a fresh browser
context on each, in turn: load the chat, then six times type a message at ~14 keys/s, send it,
wait for the reply while the mouse moves (a position every 100 ms for 2.5 s), scroll five notches
down and up; leave the page at the end (the last chunk leaves on pagehide). Reported:

- recorded bytes per minute: the events as JSON (raw), gzip as stored (the API's `bytes`);
- upload overhead: chunks (one request each) per minute and request bodies on the wire (the
  browser's gzip), from the API and from the browser's network log;
- responsiveness, with and without recording: main-thread task and script time (Chrome's
  Performance.getMetrics), long tasks (PerformanceObserver 'longtask') and event-loop lag (a 50 ms
  timer's lateness);
- the recorder's JavaScript, loaded after hydration for recorded sessions only, and all that loads
  after hydration with and without it (gzip -9).

Not part of the test suite: run it on demand; the scaffold README quotes its output.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import CACHE_DIR, render  # noqa: E402
from tests.support.browser import (  # noqa: E402
    chromium,
    ensure_web_build,
    first_load_scripts,
    gzip_size,
    run_web,
)
from tests.support.processes import backend_requirements, clean_env, ensure_venv  # noqa: E402
from tests.support.web_stack import web_stack  # noqa: E402

TOKEN = "bench-operator-token"
MESSAGES = [
    "What does a trace id look like?",
    "Summarise the last deploy in two lines",
    "How many tokens did that cost?",
    "Write a haiku about latency",
    "Which span was the slowest one?",
    "Thanks, that is all for now",
]
# In the page from its first script on: event-loop lag and long tasks. (Event Timing durations are
# not usable headless: with nothing painted while idle, an event "lasts" until the next frame.)
PROBES = """
window.__bench = { lags: [], longTasks: [] };
(() => {
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    window.__bench.lags.push(Math.max(0, now - last - 50));
    last = now;
  }, 50);
  const watch = (type, into) => {
    try {
      new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) into.push(entry.duration);
      }).observe({ type, buffered: true });
    } catch {}
  };
  watch("longtask", window.__bench.longTasks);
})();
"""
METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration", "JSHeapUsedSize")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def wander(page, seconds: float) -> None:
    """A hand on the mouse: a position every 100 ms along a loop around the page."""
    steps = int(seconds * 10)
    for i in range(steps):
        angle = 2 * math.pi * i / steps
        page.mouse.move(640 + 400 * math.cos(angle), 320 + 220 * math.sin(angle))
        page.wait_for_timeout(100)


def scroll(page) -> None:
    """Five wheel notches down and back up, 80 ms apart."""
    for delta in [120] * 5 + [-120] * 5:
        page.mouse.wheel(0, delta)
        page.wait_for_timeout(80)


def scripted_session(page, seconds: float) -> None:
    """Six rounds of type, send, read (moving the mouse) and scroll, spread over `seconds`."""
    cycle = seconds / len(MESSAGES)
    started = time.monotonic()
    for i, message in enumerate(MESSAGES):
        page.click("[data-testid=chat-input]")
        page.keyboard.type(message, delay=70)
        page.click("[data-testid=chat-send]")
        page.wait_for_function(f"document.querySelectorAll('.reply').length >= {i + 1}", timeout=20_000)
        wander(page, 2.5)
        scroll(page)
        rest = started + cycle * (i + 1) - time.monotonic()
        if rest > 0:
            page.wait_for_timeout(rest * 1000)


def one_session(browser, url: str, seconds: float) -> dict:
    context = browser.new_context(viewport={"width": 1280, "height": 640})
    context.add_init_script(PROBES)
    page = context.new_page()
    uploads: list[int] = []
    scripts: list[str] = []
    page.on(
        "request",
        lambda r: uploads.append(len(r.post_data_buffer or b"")) if "/api/replay/" in r.url else None,
    )
    page.on("request", lambda r: scripts.append(r.url) if "/_next/static/chunks/" in r.url else None)
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto(url)
    page.wait_for_selector("html[data-replay]", timeout=20_000)
    state = page.get_attribute("html", "data-replay")
    before = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    scripted_session(page, seconds)
    after = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    probes = page.evaluate("() => window.__bench")
    session_id = page.evaluate("() => sessionStorage.getItem('otel.session.id')")
    page.goto("about:blank")
    context.close()
    return {
        "replay": state,
        "session_id": session_id,
        "task_ms": (after["TaskDuration"] - before["TaskDuration"]) * 1000,
        "script_ms": (after["ScriptDuration"] - before["ScriptDuration"]) * 1000,
        "layout_style_ms": (
            after["LayoutDuration"]
            - before["LayoutDuration"]
            + after["RecalcStyleDuration"]
            - before["RecalcStyleDuration"]
        )
        * 1000,
        "heap_mb": after["JSHeapUsedSize"] / 1e6,
        "long_tasks": len(probes["longTasks"]),
        "long_task_ms": sum(probes["longTasks"]),
        "lag_p50_ms": percentile(probes["lags"], 0.5),
        "lag_p99_ms": percentile(probes["lags"], 0.99),
        "lag_max_ms": max(probes["lags"], default=0.0),
        "upload_requests_seen": len(uploads),
        "upload_body_bytes_seen": sum(uploads),
        "scripts": sorted(set(scripts)),
    }


def stored(base_url: str, session_id: str, timeout: float = 20.0) -> dict:
    """The session from the read API once its chunk count has stopped changing for 2 s."""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        answer = httpx.get(
            f"{base_url}/api/replay/{session_id}", headers={"authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        chunks = answer.json()["chunks"] if answer.status_code == 200 else None
        if chunks != last:
            last, since = chunks, time.monotonic()
        elif chunks and time.monotonic() - since > 2:
            return answer.json()
        time.sleep(0.25)
    raise RuntimeError(f"session {session_id} not stored: {answer.status_code} {answer.text[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=2, help="sessions per variant, interleaved")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="replay-cost-") as tmp:
        workdir = Path(tmp)
        project = render(workdir / "render", session_replay="builtin")
        python = ensure_venv(CACHE_DIR, backend_requirements(project / "backend" / "pyproject.toml"))
        app = ensure_web_build(project / "web", CACHE_DIR)
        results: dict[str, list[dict]] = {"recorded": [], "not recorded": []}
        with web_stack(project, app, python, workdir, backend_env={"REPLAY_VIEWER_TOKEN": TOKEN}) as stack:
            quiet = clean_env(
                API_BASE_URL=stack.backend.url,
                OTEL_EXPORTER_OTLP_ENDPOINT=stack.rx.endpoint,
                NEXT_TELEMETRY_DISABLED="1",
                REPLAY_SAMPLE_RATE="0",
            )
            with run_web(app, quiet, workdir / "web-unrecorded.log") as unrecorded, chromium() as browser:
                for _ in range(args.rounds):
                    for name, url in (("recorded", stack.web.url), ("not recorded", unrecorded.url)):
                        run = one_session(browser, url, args.seconds)
                        if name == "recorded":
                            session = stored(stack.web.url, run["session_id"])
                            events = json.dumps(session["events"], separators=(",", ":")).encode()
                            run.update(
                                chunks=session["chunks"],
                                events=len(session["events"]),
                                raw_bytes=len(events),
                                stored_gzip_bytes=session["bytes"],
                                gzip9_bytes=len(gzip.compress(events, 9)),
                            )
                        results[name].append(run)
                        print(f"{name}: {json.dumps({k: v for k, v in run.items() if k != 'scripts'})}")

        def names(run: dict) -> set[str]:
            return {Path(url.split("?", 1)[0]).name for url in run["scripts"]}

        def later_gzip(run: dict) -> int:
            """gzip -9 of the scripts loaded after hydration (not in the page's first load)."""
            later = names(run) - {path.name for path in first_load_scripts(app)}
            return sum(gzip_size(app / ".next" / "static" / "chunks" / name) for name in later)

        recorder_scripts = names(results["recorded"][0]) - names(results["not recorded"][0])
        recorder_gzip = sum(
            gzip_size(app / ".next" / "static" / "chunks" / name) for name in recorder_scripts
        )
        after_hydration = {name: later_gzip(runs[0]) / 1000 for name, runs in results.items()}

    minutes = args.seconds / 60
    rec, base = results["recorded"], results["not recorded"]

    def mean(rows: list[dict], key: str) -> float:
        return statistics.mean(row[key] for row in rows)

    summary = {
        "seconds": args.seconds,
        "rounds": args.rounds,
        "raw_kb_per_min": mean(rec, "raw_bytes") / 1000 / minutes,
        "stored_gzip_kb_per_min": mean(rec, "stored_gzip_bytes") / 1000 / minutes,
        "events_per_min": mean(rec, "events") / minutes,
        "requests_per_min": mean(rec, "chunks") / minutes,
        "wire_body_kb_per_min": mean(rec, "upload_body_bytes_seen") / 1000 / minutes,
        "recorder_js_gzip_kb": recorder_gzip / 1000,
        "after_hydration_js_gzip_kb": after_hydration,
        "responsiveness": {
            key: {"recorded": mean(rec, key), "not recorded": mean(base, key)}
            for key in (
                "task_ms",
                "script_ms",
                "layout_style_ms",
                "long_tasks",
                "long_task_ms",
                "lag_p50_ms",
                "lag_p99_ms",
                "lag_max_ms",
                "heap_mb",
            )
        },
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
