"""Build the collector, Prometheus and promtool the tests run, from source, into .cache/bin/.

    python -m stack.build          # `make stack-bin`; `make test` runs it before pytest

- `otelcol`: the OpenTelemetry Collector Builder (ocb) of the manifest's release, from
  stack/otelcol-builder.yaml (exactly the components of the template's collector configs);
- `prometheus` and `promtool`: Prometheus 3 (Go module github.com/prometheus/prometheus at
  v0.3MM.P for v3.MM.P) without the web UI's assets and the service-discovery plugins (the
  rendered config scrapes static targets only).

Each is rebuilt only when what it is built from changes (a stamp beside the binary holds the
manifest's hash, or the version and flags). Go's module and build caches live under .cache/go/,
so a second build is seconds. Without Go 1.26+ it stops at once with one line saying what to
install. The image tags in the scaffold's compose and k8s files are these versions
(tests/test_stack_versions.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "stack" / "otelcol-builder.yaml"
CACHE = ROOT / ".cache"
BIN = CACHE / "bin"
GO_MIN = (1, 26)
GO_HINT = "install Go 1.26+ (https://go.dev/dl/) and put `go` on PATH"

PROMETHEUS_VERSION = "3.16.0"  # the image prom/prometheus:v3.16.0
# Static targets only: every service-discovery plugin left out (Prometheus's own build tag).
PROMETHEUS_TAGS = "remove_all_sd,netgo"


def collector_version() -> str:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))["dist"]["version"]


def prometheus_module_version(version: str = PROMETHEUS_VERSION) -> str:
    """Prometheus v3.MM.P is tagged v0.3MM.P for Go modules."""
    major, minor, patch = (int(part) for part in version.split("."))
    return f"v0.{major * 100 + minor}.{patch}"


def say(text: str) -> None:
    print(f"stack-bin: {text}", file=sys.stderr, flush=True)


def go_problem() -> str | None:
    """None when a usable Go is on PATH, else the one line to print."""
    go = shutil.which("go")
    if go is None:
        return f"Go is needed to build the collector and Prometheus the tests run: {GO_HINT}"
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=30).stdout
    match = re.match(r"go(\d+)\.(\d+)", out.strip())
    if not match or (int(match[1]), int(match[2])) < GO_MIN:
        return f"{out.strip() or 'this Go'} is too old to build the collector and Prometheus: {GO_HINT}"
    return None


def go_env() -> dict[str, str]:
    go = CACHE / "go"
    return {
        **os.environ,
        "GOPATH": str(go),
        "GOMODCACHE": str(go / "mod"),
        "GOCACHE": str(go / "build"),
        "GOBIN": str(go / "bin"),
        # Read-only module files would make `make clean` (rm -rf .cache) fail.
        "GOFLAGS": "-modcacherw",
        # Build with the Go on PATH; never download another toolchain.
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }


def run(step: str, command: list[str], cwd: Path) -> None:
    """Run a build step, printing a line every 30 s so a minutes-long compile shows it is alive."""
    say(f"{step} ...")
    started = time.monotonic()
    done = threading.Event()

    def tick() -> None:
        while not done.wait(30):
            say(f"  {step}: {time.monotonic() - started:.0f} s")

    threading.Thread(target=tick, daemon=True).start()
    try:
        result = subprocess.run(command, cwd=cwd, env=go_env(), capture_output=True, text=True)
    finally:
        done.set()
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-8000:])
        raise SystemExit(f"stack-bin: {step} failed (exit {result.returncode}), output above")
    say(f"{step}: done in {time.monotonic() - started:.0f} s")


def up_to_date(binary: Path, stamp: str) -> bool:
    stamp_file = binary.with_name(f".{binary.name}.stamp")
    return binary.exists() and stamp_file.exists() and stamp_file.read_text() == stamp


def mark(binary: Path, stamp: str) -> None:
    binary.with_name(f".{binary.name}.stamp").write_text(stamp)


def build_collector() -> None:
    binary = BIN / "otelcol"
    manifest = MANIFEST.read_bytes()
    stamp = hashlib.sha256(manifest).hexdigest()
    if up_to_date(binary, stamp):
        return
    version = collector_version()
    builder = CACHE / "go" / "bin" / "builder"
    builder_stamp = f"builder {version}"
    if not up_to_date(builder, builder_stamp):
        builder.parent.mkdir(parents=True, exist_ok=True)
        run(
            f"ocb v{version} (go install)",
            ["go", "install", f"go.opentelemetry.io/collector/cmd/builder@v{version}"],
            ROOT,
        )
        mark(builder, builder_stamp)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="otelcol-build-") as work:
        # ocb writes its generated sources to dist.output_path, relative to its working directory.
        shutil.copy(MANIFEST, Path(work) / "manifest.yaml")
        run(
            f"otelcol {version} (ocb: modules and compile)",
            [str(builder), "--config=manifest.yaml"],
            Path(work),
        )
        built = Path(work) / "otelcol-build" / "otelcol"
        BIN.mkdir(parents=True, exist_ok=True)
        shutil.move(built, binary)
    mark(binary, stamp)


def build_prometheus() -> None:
    module = prometheus_module_version()
    stamp = f"{PROMETHEUS_VERSION} {module} tags={PROMETHEUS_TAGS}"
    binaries = [BIN / "prometheus", BIN / "promtool"]
    if all(up_to_date(binary, stamp) for binary in binaries):
        return
    BIN.mkdir(parents=True, exist_ok=True)
    ldflags = f"-X github.com/prometheus/common/version.Version={PROMETHEUS_VERSION}"
    packages = [f"github.com/prometheus/prometheus/cmd/{b.name}@{module}" for b in binaries]
    env_bin = CACHE / "go" / "bin"
    run(
        f"prometheus + promtool {PROMETHEUS_VERSION} ({module}, go install)",
        ["go", "install", f"-tags={PROMETHEUS_TAGS}", f"-ldflags={ldflags}", *packages],
        ROOT,
    )
    for binary in binaries:
        shutil.copy2(env_bin / binary.name, binary)
        mark(binary, stamp)


def main() -> int:
    problem = go_problem()
    if problem:
        say(problem)
        return 1
    CACHE.mkdir(exist_ok=True)
    started = time.monotonic()
    build_collector()
    build_prometheus()
    say(
        f"otelcol {collector_version()}, prometheus/promtool {PROMETHEUS_VERSION} in {BIN.relative_to(ROOT)}/"
        f" ({time.monotonic() - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
