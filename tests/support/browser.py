"""The rendered Next.js app and Debian's Chromium, for browser end-to-end tests.

    app = ensure_web_build(project / "web", CACHE_DIR)      # npm ci + next build, cached
    with run_web(app, env, log_path) as web, chromium() as browser:
        page = browser.new_page(); page.goto(web.url)

Builds are cached under ``.cache/web-<hash of the web sources>/`` (sources, node_modules, .next),
so a second run with unchanged sources starts the built app at once. node_modules is installed
once per package-lock.json (``npm ci`` with the npm cache in ``.cache/npm``) and hard-linked into
later builds that share the lockfile. Chromium is Debian's (``apt-get install chromium``), driven
by the Python ``playwright`` package; no browser is ever downloaded.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import clean_env, free_port, wait_until_serving

CHROMIUM = Path("/usr/bin/chromium")
# Quiet offline: no component updates, sync, safe-browsing or other background requests.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Not sources of the build: what npm and next make, and the container files.
SKIPPED = {"node_modules", ".next", "next-env.d.ts", "tsconfig.tsbuildinfo", "Dockerfile", ".dockerignore"}
KEEP_BUILDS = 4
NPM_TIMEOUT = 600


def _sources(web: Path) -> list[Path]:
    return sorted(
        path
        for path in web.rglob("*")
        if path.is_file() and not SKIPPED & set(path.relative_to(web).parts) and path.name not in SKIPPED
    )


def source_hash(web: Path) -> str:
    """A hash of every source file of the web app (names and bytes), not of what npm or next made."""
    digest = hashlib.sha256()
    for path in _sources(web):
        digest.update(path.relative_to(web).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _npm(args: list[str], cwd: Path, cache_dir: Path) -> None:
    env = clean_env(npm_config_cache=str(cache_dir / "npm"), NEXT_TELEMETRY_DISABLED="1", CI="1")
    result = subprocess.run(
        ["npm", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=NPM_TIMEOUT
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"npm {' '.join(args)} failed in {cwd}:\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
        )


def _lock_hash(web: Path) -> str:
    return hashlib.sha256((web / "package-lock.json").read_bytes()).hexdigest()[:16]


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link a node_modules tree (npm never rewrites installed files in place)."""
    try:
        subprocess.run(["cp", "-al", str(source), str(target)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(source, target, symlinks=True)


def _prune(cache_dir: Path, keep: Path) -> None:
    """Keep the most recently used builds; older ones, and staging left by a crash, go."""
    for stale in cache_dir.glob("web-*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    builds = sorted(
        (p for p in cache_dir.glob("web-*") if (p / ".ready").exists() and p != keep),
        key=lambda p: (p / ".ready").stat().st_mtime,
        reverse=True,
    )
    for old in builds[KEEP_BUILDS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def ensure_web_build(web: Path, cache_dir: Path) -> Path:
    """A directory holding `web`'s sources, installed and built (`npm ci && npm run build`)."""
    root = cache_dir / f"web-{source_hash(web)}"
    ready = root / ".ready"
    if ready.exists():
        ready.touch()
        return root
    shutil.rmtree(root, ignore_errors=True)
    staging = cache_dir / f"{root.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(web, staging, ignore=shutil.ignore_patterns(*SKIPPED))
    lock = _lock_hash(web)
    donor = next(
        (
            p
            for p in cache_dir.glob("web-*/.lock")
            if p.read_text() == lock and (p.parent / ".ready").exists()
        ),
        None,
    )
    if donor is not None:
        _link_tree(donor.parent / "node_modules", staging / "node_modules")
    else:
        _npm(["ci", "--no-audit", "--no-fund", "--prefer-offline"], staging, cache_dir)
    _npm(["run", "build"], staging, cache_dir)
    (staging / ".lock").write_text(lock)
    staging.rename(root)
    ready.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
    _prune(cache_dir, keep=root)
    return root


def link_node_modules(build: Path, web: Path) -> None:
    """Give a rendered web/ the installed node_modules of its build (for `npm test` there)."""
    target = web / "node_modules"
    if not target.exists():
        target.symlink_to(build / "node_modules", target_is_directory=True)


@dataclass
class WebApp:
    url: str
    process: subprocess.Popen
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_web(app: Path, env: dict[str, str], log_path: Path, timeout: float = 60.0) -> Iterator[WebApp]:
    """`npm start -- -p PORT` in a built app (the runtime contract); SIGTERM to its process group on exit."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["npm", "start", "--", "-p", str(port), "-H", "127.0.0.1"],
            cwd=app,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    web = WebApp(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(web, timeout)
        yield web
    finally:
        _stop_group(process)


def _wait_ready(web: WebApp, timeout: float) -> None:
    wait_until_serving("web app", web.process, f"{web.url}/otel/config", web.output, timeout)


def _stop_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def chromium() -> Iterator[object]:
    """Headless Debian Chromium under Playwright (a playwright.sync_api.Browser)."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} not found: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


SCRIPT_SRC = re.compile(r'<script[^>]+src="(/_next/static/chunks/[^"]+\.js)"')


def gzip_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def first_load_scripts(app: Path, route_html: str = "index.html") -> list[Path]:
    """The scripts a prerendered page loads before hydration (its <script src> tags)."""
    html = (app / ".next" / "server" / "app" / route_html).read_text()
    return [
        app / ".next" / "static" / src.removeprefix("/_next/static/")
        for src in dict.fromkeys(SCRIPT_SRC.findall(html))
    ]
