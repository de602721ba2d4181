"""Drop the parts that were switched off, then prove the rendered project's telemetry is wired.

Running the project's own `tools/check_wiring.py` (the one `make check` runs later) right after
rendering turns a template bug, such as an app that never reaches init_telemetry or a manifest
pointing at a Service that does not exist, into a failed render instead of a silent, span-less app.
Cookiecutter runs this file alone, from the rendered project's directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

# The only Jinja in this file. Jinja's tojson escapes ' as \u0027, so no answer can close this
# literal; unrendered (imported by the tests) it holds the placeholder and CONTEXT falls back to {}.
CONTEXT_JSON = r'''{{ cookiecutter | tojson }}'''  # fmt: skip

CHECK_SCRIPT = Path("tools", "check_wiring.py")
CHECK_TIMEOUT_SECONDS = 120
BOOLEAN_WORDS = {"true", "false", "yes", "no", "1", "0"}
# What each switched-off option takes away; the paths need not exist (a part may not be written yet).
REMOVALS = {
    "include_web": (Path("web"),),
    "include_k8s": (Path("deploy"), Path("docker-compose.yaml")),
}
WIRING_BROKEN = (
    "ERROR: the rendered project's OpenTelemetry wiring is broken (see above); this is a template bug"
)


def _load_context(text: str) -> dict:
    """Parse the rendered context; the unrendered placeholder (tests import this file) is not JSON: {}."""
    try:
        loaded = json.loads(text)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _is_on(value: object) -> bool:
    """A switch is on unless it clearly says off: a missing or unreadable answer removes nothing."""
    if isinstance(value, str) and value.lower() in BOOLEAN_WORDS:
        return value.lower() in {"true", "yes", "1"}
    return value is not False


def plan_removals(context: Mapping[str, object]) -> list[Path]:
    """Paths, relative to the project, of the parts whose include_* switch is off.

    Every session-replay vendor's plug-in stays, the built-in replay's package too: SESSION_REPLAY
    switches vendor at run time, and the session_replay answer is only its default."""
    return [
        path for option, paths in REMOVALS.items() if not _is_on(context.get(option, True)) for path in paths
    ]


def remove(project: Path, paths: list[Path]) -> None:
    """Delete each path under `project`; a path that is not there is skipped."""
    for relative in paths:
        path = project / relative
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def check_wiring(project: Path) -> tuple[int, str]:
    """(exit status, output) of the project's own tools/check_wiring.py."""
    script = project / CHECK_SCRIPT
    if not script.is_file():
        return 2, f"{CHECK_SCRIPT.as_posix()}: not found in the rendered project"
    try:
        completed = subprocess.run(
            [sys.executable, str(script), str(project)],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 2, f"{CHECK_SCRIPT.as_posix()}: still running after {CHECK_TIMEOUT_SECONDS}s"
    return completed.returncode, (completed.stdout + completed.stderr).strip()


CONTEXT: dict = _load_context(CONTEXT_JSON)


def main() -> None:
    project = Path.cwd()
    remove(project, plan_removals(CONTEXT))
    status, output = check_wiring(project)
    if status == 0:
        print(output)
        return
    print(output, file=sys.stderr)
    print(WIRING_BROKEN, file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
