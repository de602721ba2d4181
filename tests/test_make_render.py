"""`make render`, README's first command: says where the project went, and one line per mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]


def make_render(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = ["make", "--no-print-directory", "-C", str(TEMPLATE_DIR), "render", f"OUT={out}"]
    command += [f"PY={sys.executable}", f"ARGS={' '.join(args)}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_it_names_the_directory_it_rendered(tmp_path: Path) -> None:
    """It prints the real slug's directory in its next-steps line, not a placeholder."""
    result = make_render(tmp_path, "project_name='Acme Chat'")

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "acme-chat" / "backend").is_dir()
    assert f"Next: cd {tmp_path}/acme-chat && make install && make test" in result.stdout
    assert "<project_slug>" not in result.stdout


def test_a_bad_answer_is_one_error_line_and_no_traceback(tmp_path: Path) -> None:
    """It shows the hook's single ERROR line for a bad slug, no traceback, and writes nothing."""
    result = make_render(tmp_path, "project_slug=Bad_Slug!")

    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert result.returncode != 0
    assert len(errors) == 1 and errors[0].startswith("ERROR: project_slug="), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert list(tmp_path.iterdir()) == []


def test_rendering_over_an_existing_project_says_what_to_do(tmp_path: Path) -> None:
    """It refuses to overwrite a rendered project and names the ways forward, update included."""
    assert make_render(tmp_path).returncode == 0
    (tmp_path / "sage-app" / "mine.txt").write_text("user work")

    again = make_render(tmp_path)

    assert again.returncode != 0
    hint = [line for line in again.stderr.splitlines() if line.startswith("render: ")]
    assert len(hint) == 1 and "already exists" in hint[0] and "make update" in hint[0], again.stderr
    assert (tmp_path / "sage-app" / "mine.txt").read_text() == "user work"
