"""`make render`: cookiecutter without prompts, with the answers given as key=value, and plain errors.

    python tools/render.py OUT_DIR [key=value ...] [--overwrite-if-exists]

Prints where the project went and what to run next; on a bad answer the hook's one ERROR line per
mistake is the whole output (no cookiecutter traceback under it); on an existing project directory,
one line saying what to do instead.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from cookiecutter.exceptions import FailedHookException, OutputDirExistsException
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]


def parse(argv: list[str]) -> tuple[Path, dict[str, str], bool]:
    if not argv:
        raise SystemExit("usage: render.py OUT_DIR [key=value ...] [--overwrite-if-exists]")
    out, answers, overwrite = Path(argv[0]), {}, False
    for arg in argv[1:]:
        if arg in ("--overwrite-if-exists", "-f"):
            overwrite = True
        elif "=" in arg:
            key, value = arg.split("=", 1)
            answers[key] = value
        else:
            raise SystemExit(f"render: {arg!r} is not key=value (e.g. project_name='Acme Chat')")
    return out, answers, overwrite


def main(argv: list[str]) -> int:
    out, answers, overwrite = parse(argv)
    # cookiecutter logs its own traceback for a failed hook; the hook already said what was wrong.
    logging.getLogger("cookiecutter").addHandler(logging.NullHandler())
    logging.getLogger("cookiecutter").propagate = False
    try:
        project = Path(
            cookiecutter(
                str(TEMPLATE),
                no_input=True,
                output_dir=str(out),
                extra_context=answers,
                overwrite_if_exists=overwrite,
            )
        )
    except FailedHookException:
        print("render: stopped, nothing written (fix the answer named above)", file=sys.stderr)
        return 1
    except OutputDirExistsException as exc:
        print(
            f"render: {str(exc).removeprefix('Error: ')}. Remove it, render elsewhere "
            "(make render OUT=<dir>), or re-render over it "
            "(make render ARGS=--overwrite-if-exists); to bring template changes into a project you "
            "have edited, run `make update` in it instead.",
            file=sys.stderr,
        )
        return 1
    where = project.relative_to(Path.cwd()) if project.is_relative_to(Path.cwd()) else project
    print(f"Rendered into {where}/. Next: cd {where} && make install && make test")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
