#!/usr/bin/env python3
# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Check that the project's OpenTelemetry wiring still holds together; `make check` runs it.

    python tools/check_wiring.py                  # the project this file belongs to
    python tools/check_wiring.py path/to/project

It reads files only (nothing is imported or started) and prints one line per problem,
`path: what is wrong (what was expected)`. What it checks (tools/wiring/, one module each):

    app             every FastAPI app under backend/app is passed to init_telemetry
    backend         the backend's default service name is a DNS label, its OTLP endpoint OTLP/HTTP (:4318)
    env_files       .env.example files agree with those defaults; web/ has its own name and reaches the API
    service_names   compose and k8s give each app the service name the backend and web/ use, one per app
    k8s             OTLP endpoints and host:port values in workload env name a Service and one of its ports
    collector       the collector's OTLP/HTTP receiver binds all interfaces, on the port the apps send to
    stack           component configs, docker compose and k3d name the same services and ports

Parts that are absent (web/, deploy/, docker-compose.yaml) are skipped. Exit status: 0 when all
checks pass, 1 when a problem was found, 2 when the check could not run. It needs PyYAML (which
cookiecutter brings) and reads .env files with python-dotenv when it is installed (the backend's
dev extras; without it those checks are skipped and the OK line says so).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=PROJECT_ROOT, help="project root (default: %(default)s)")
    root = parser.parse_args(argv).root.resolve()
    # No __pycache__ next to the check: in the template it would be rendered as a file, in the
    # project it would be one more untracked directory.
    sys.dont_write_bytecode = True
    try:
        import wiring  # tools/wiring, next to this file
    except ModuleNotFoundError as error:
        if error.name != "yaml":
            raise
        print("wiring: cannot run: PyYAML is not installed (pip install pyyaml, or make install)", file=sys.stderr)
        return 2
    if not root.is_dir():
        print(f"wiring: cannot run: {root} is not a directory", file=sys.stderr)
        return 2
    problems = wiring.run_checks(root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"wiring: {len(problems)} problem(s) found", file=sys.stderr)
        return 1
    ran, skipped = len(wiring.runnable_checks()), len(wiring.CHECKS) - len(wiring.runnable_checks())
    note = f"; {skipped} skipped: {wiring.DOTENV_MISSING} (make install, then make check)" if skipped else ""
    print(f"wiring: OK ({ran} checks{note})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
