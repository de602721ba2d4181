"""Reject unusable answers before cookiecutter renders anything.

A bad slug or service name would otherwise surface much later as a Kubernetes object the API server
refuses, and a stray quote in a name as a syntax error in the generated Python, TOML or JSON.
"""

from __future__ import annotations

import json
import keyword
import math
import re
import sys
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

# The only Jinja in this file. Jinja's tojson escapes ' as \u0027, so no answer can close this
# literal; unrendered (imported by the tests) it holds the placeholder and CONTEXT falls back to {}.
CONTEXT_JSON = r'''{{ cookiecutter | tojson }}'''  # fmt: skip

# Used with fullmatch(): a `^...$` match would let a trailing newline through.
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
PYTHON_PACKAGE = re.compile(r"[a-z_][a-z0-9_]*")
LABEL_VALUE = re.compile(r"[a-z0-9]([-a-z0-9_.]*[a-z0-9])?")
HIGHLIGHT_PROJECT_ID = re.compile(r"[A-Za-z0-9]{1,32}")
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
# Plain decimal notation only: Python's float() also takes '1_0', '1e-1' and non-ASCII digits, which
# the collector and the browser SDK would read differently or not at all.
DECIMAL = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")

BOOLEAN_WORDS = {"true", "false", "yes", "no", "1", "0"}
# Characters that would end or escape the TOML, Python and JSON string literals these values land in.
LITERAL_BREAKERS = set('"\\{}')
SHOWN_VALUE_LIMIT = 80

SLUG_RULE = (
    "must be a DNS-1123/RFC-1035 label (lowercase letters, digits and '-', start with a letter, "
    "end with a letter or digit), at most {limit} characters"
)


def _load_context(text: str) -> dict:
    """Parse the rendered context; the unrendered placeholder (tests import this file) is not JSON: {}."""
    try:
        loaded = json.loads(text)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _is_text(value: object, *, min_len: int, max_len: int) -> bool:
    return (
        isinstance(value, str)
        and min_len <= len(value) <= max_len
        and value.isprintable()
        and not LITERAL_BREAKERS.intersection(value)
    )


def _matches(pattern: re.Pattern[str], value: object, max_len: int) -> bool:
    return isinstance(value, str) and len(value) <= max_len and pattern.fullmatch(value) is not None


def _as_bool(value: object) -> bool | None:
    """Read a boolean answer: a real bool, or one of the words cookiecutter itself accepts."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in BOOLEAN_WORDS:
        return value.lower() in {"true", "yes", "1"}
    return None


def _text_rule(size: str) -> str:
    return "must be " + size + " printable characters without '\"', '\\', '{', '}' or line breaks"


def _show(value: object) -> str:
    """Quote a value on one line: control characters escaped, long values cut."""
    if not isinstance(value, str):
        return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in repr(value))
    escaped = "".join(
        "\\" + ch if ch in "\\'" else ch if ch.isprintable() else repr(ch)[1:-1] for ch in value
    )
    if len(escaped) > SHOWN_VALUE_LIMIT:
        return f"'{escaped[:SHOWN_VALUE_LIMIT]}'... ({len(value)} characters)"
    return f"'{escaped}'"


def check_project_name(value: object) -> str | None:
    if _is_text(value, min_len=1, max_len=64):
        return None
    return _text_rule("1-64")


def check_project_slug(value: object) -> str | None:
    return None if _matches(DNS_LABEL, value, 40) else SLUG_RULE.format(limit=40)


def check_python_package(value: object) -> str | None:
    if not _matches(PYTHON_PACKAGE, value, 60):
        return (
            "must be a lowercase Python identifier (letters, digits and '_', not starting with a digit), "
            "at most 60 characters"
        )
    if keyword.iskeyword(value):
        return "must not be a Python keyword"
    if value in sys.stdlib_module_names:
        return "must not be the name of a standard-library module (it would shadow it)"
    return None


def check_description(value: object) -> str | None:
    return None if _is_text(value, min_len=0, max_len=200) else _text_rule("at most 200")


def check_author_name(value: object) -> str | None:
    return None if _is_text(value, min_len=1, max_len=200) else _text_rule("1-200")


def check_service_name(value: object) -> str | None:
    return None if _matches(DNS_LABEL, value, 50) else SLUG_RULE.format(limit=50)


def check_highlight_project_id(value: object) -> str | None:
    if value == "" or _matches(HIGHLIGHT_PROJECT_ID, value, 32):
        return None
    return "must be blank or 1-32 letters and digits (a Highlight project id such as 've6y97ge')"


def check_boolean(value: object) -> str | None:
    return None if _as_bool(value) is not None else "must be a boolean (true/false, yes/no or 1/0)"


def check_deployment_environment(value: object) -> str | None:
    if _matches(LABEL_VALUE, value, 63):
        return None
    return (
        "must be a Kubernetes label value (lowercase letters, digits, '-', '_' and '.', "
        "start and end with a letter or digit), at most 63 characters"
    )


def check_trace_sample_ratio(value: object) -> str | None:
    if isinstance(value, str) and DECIMAL.fullmatch(value):
        ratio = float(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ratio = float(value)
    else:
        ratio = math.nan
    if math.isfinite(ratio) and 0.0 <= ratio <= 1.0:
        return None
    return "must be a decimal number from 0.0 to 1.0, such as 0.25"


def check_cerebe_base_url(value: object) -> str | None:
    rule = (
        "must be an http(s) URL with a host and no credentials, query, fragment, whitespace, "
        "'\"', '\\', '{' or '}', at most 200 characters"
    )
    if not isinstance(value, str) or len(value) > 200 or not value.isprintable():
        return rule
    if any(ch.isspace() for ch in value) or LITERAL_BREAKERS.intersection(value):
        return rule
    if "?" in value or "#" in value:
        return rule
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError unless the port is a number from 0 to 65535
    except ValueError:
        return rule
    if parts.scheme not in {"http", "https"} or not parts.hostname or "@" in parts.netloc:
        return rule
    return None


def check_cerebe_model(value: object) -> str | None:
    if _matches(MODEL_NAME, value, 128):
        return None
    return (
        "must be 1-128 characters: letters, digits, '.', '_', ':', '/' and '-', "
        "starting with a letter or digit"
    )


# No check for session_replay: it is a choice (cookiecutter.json holds the one list), and cookiecutter
# refuses an answer outside the list before any hook runs.
CHECKS: dict[str, Callable[[object], str | None]] = {
    "project_name": check_project_name,
    "project_slug": check_project_slug,
    "python_package": check_python_package,
    "description": check_description,
    "author_name": check_author_name,
    "backend_service_name": check_service_name,
    "web_service_name": check_service_name,
    "highlight_project_id": check_highlight_project_id,
    "include_web": check_boolean,
    "include_k8s": check_boolean,
    "deployment_environment": check_deployment_environment,
    "trace_sample_ratio": check_trace_sample_ratio,
    "cerebe_base_url": check_cerebe_base_url,
    "cerebe_model": check_cerebe_model,
}


# Answers whose default is computed from another one (cookiecutter.json): when the source answer is
# bad and the derived one still holds its computed value, the user made one mistake, not several.
DERIVED: dict[str, tuple[str, Callable[[str], str]]] = {
    "project_slug": ("project_name", lambda name: name.lower().strip().replace(" ", "-").replace("_", "-")),
    "python_package": ("project_slug", lambda slug: slug.replace("-", "_")),
    "backend_service_name": ("project_slug", lambda slug: f"{slug}-api"),
    "web_service_name": ("project_slug", lambda slug: f"{slug}-web"),
}


def _follows_bad_answer(field: str, value: object, context: Mapping[str, object], bad: set[str]) -> bool:
    source, derive = DERIVED.get(field, ("", None))
    source_value = context.get(source)
    return (
        source in bad
        and isinstance(source_value, str)
        and derive is not None
        and value == derive(source_value)
    )


def validate(context: Mapping[str, object]) -> list[str]:
    """Return one line per invalid answer, `<field>='<value>': <rule>`; empty when all are usable.

    A missing field counts as blank, so a context that failed to load is rejected, never waved through.
    An answer that is bad only because it was computed from a bad answer is not reported again.
    """
    messages, bad = [], set()
    for field, check in CHECKS.items():
        value = context.get(field, "")
        rule = check(value)
        if rule is None and field == "web_service_name" and value == context.get("backend_service_name"):
            rule = "must differ from backend_service_name (both services would report as one)"
        if rule is None:
            continue
        bad.add(field)
        if not _follows_bad_answer(field, value, context, bad):
            messages.append(f"{field}={_show(value)}: {rule}")
    return messages


CONTEXT: dict = _load_context(CONTEXT_JSON)


def main() -> None:
    messages = validate(CONTEXT)
    for message in messages:
        print(f"ERROR: {message}", file=sys.stderr)
    if messages:
        sys.exit(1)


if __name__ == "__main__":
    main()
