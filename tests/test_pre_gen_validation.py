"""The pre-generation hook refuses answers that would break the rendered project, before it renders."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from cookiecutter.environment import StrictEnvironment
from cookiecutter.exceptions import FailedHookException
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config

from hooks import pre_gen_project
from hooks.pre_gen_project import validate

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
HOOK_PATH = TEMPLATE_ROOT / "hooks" / "pre_gen_project.py"

# Every derived answer is given explicitly, so one bad value yields exactly one message.
VALID_ANSWERS = {
    "project_name": "Sage App",
    "project_slug": "sage-app",
    "python_package": "sage_app",
    "backend_service_name": "sage-app-api",
    "web_service_name": "sage-app-web",
}

BAD_VALUES = {
    "project_name": [
        ("empty", ""),
        ("65-chars", "n" * 65),
        ("double-quote", 'A "quoted" name'),
        ("backslash", "back\\slash"),
        ("newline", "two\nlines"),
        ("tab", "tab\there"),
        ("braces", "{braces}"),
    ],
    "project_slug": [
        ("empty", ""),
        ("upper-and-space", "My App"),
        ("underscore", "my_app"),
        ("leading-digit", "1app"),
        ("leading-dash", "-app"),
        ("trailing-dash", "app-"),
        ("dot", "my.app"),
        ("trailing-newline", "app\n"),
        ("41-chars", "a" * 41),
    ],
    "python_package": [
        ("upper", "Sage_app"),
        ("dash", "sage-app"),
        ("leading-digit", "1app"),
        ("keyword", "class"),
        ("stdlib-json", "json"),
        ("stdlib-email", "email"),
        ("trailing-newline", "app\n"),
        ("61-chars", "p" * 61),
    ],
    "description": [
        ("201-chars", "d" * 201),
        ("double-quote", 'say "hi"'),
        ("backslash", "C:\\path"),
        ("newline", "line\nbreak"),
        ("braces", "uses {braces}"),
    ],
    "author_name": [
        ("empty", ""),
        ("201-chars", "a" * 201),
        ("double-quote", 'A "B" C'),
        ("newline", "a\nb"),
    ],
    "backend_service_name": [
        ("upper", "Sage-API"),
        ("underscore", "sage_api"),
        ("dot", "sage.api"),
        ("leading-dash", "-api"),
        ("51-chars", "b" * 51),
    ],
    "web_service_name": [
        ("upper", "Sage-Web"),
        ("trailing-dash", "web-"),
        ("51-chars", "w" * 51),
        ("same-as-backend", "sage-app-api"),
    ],
    "highlight_project_id": [
        ("dash", "ve6y-97ge"),
        ("33-chars", "h" * 33),
        ("leading-space", " ve6y97ge"),
        ("trailing-newline", "ve6y97ge\n"),
        ("punctuation", "abc!"),
    ],
    "include_web": [
        ("maybe", "maybe"),
        ("empty", ""),
        ("two", "2"),
        ("none", None),
    ],
    "include_k8s": [
        ("maybe", "maybe"),
        ("empty", ""),
        ("number", 1.5),
    ],
    "deployment_environment": [
        ("empty", ""),
        ("upper", "Prod"),
        ("space", "prod env"),
        ("leading-underscore", "_prod"),
        ("trailing-dash", "prod-"),
        ("64-chars", "e" * 64),
    ],
    "trace_sample_ratio": [
        ("nan", "nan"),
        ("inf", "inf"),
        ("above-one", "1.5"),
        ("negative", "-0.1"),
        ("word", "abc"),
        ("empty", ""),
        ("exponent", "1e-1"),
        ("underscore", "0.2_5"),
        ("padded", " 0.5"),
        ("bool", True),
        ("float-nan", float("nan")),
    ],
    "cerebe_base_url": [
        ("ftp", "ftp://api.example.com"),
        ("no-scheme", "api.openai.com"),
        ("no-host", "https://"),
        ("credentials", "https://user:secret@api.example.com"),
        ("query", "https://api.example.com/v1?key=1"),
        ("empty-query", "https://api.example.com/v1?"),
        ("fragment", "https://api.example.com/#top"),
        ("trailing-space", "https://api.example.com "),
        ("trailing-newline", "https://api.example.com\n"),
        ("bad-port", "https://api.example.com:99999"),
        ("broken-ipv6", "http://[::1"),
        ("201-chars", "https://api.example.com/" + "p" * 177),
    ],
    "cerebe_model": [
        ("empty", ""),
        ("leading-dash", "-gpt"),
        ("space", "gpt 4"),
        ("newline", "gpt\n4"),
        ("129-chars", "m" * 129),
    ],
}

GOOD_VALUES = {
    "project_name": [("unicode", "Café ☕ App"), ("apostrophe", "Sage's App")],
    "project_slug": [("one-letter", "a"), ("digits-and-dashes", "app-2-go")],
    "python_package": [("underscored", "_sage_app2")],
    "description": [("empty", ""), ("apostrophe", "Sage's app")],
    "highlight_project_id": [("blank", ""), ("alphanumeric", "ve6y97ge"), ("numeric", "12345")],
    "include_web": [("bool-false", False), ("word-true", "True"), ("word-no", "no"), ("digit", "0")],
    "include_k8s": [("bool-true", True), ("word-false", "false"), ("word-yes", "yes"), ("digit", "1")],
    "deployment_environment": [("dotted", "prod.eu-1"), ("underscore", "staging_2"), ("digit", "1")],
    "trace_sample_ratio": [
        ("zero", "0"),
        ("one", "1"),
        ("quarter", "0.25"),
        ("zero-point-zero", "0.0"),
        ("one-point-zero", "1.0"),
        ("leading-dot", ".5"),
        ("float", 0.5),
    ],
    "cerebe_base_url": [
        ("localhost-port", "http://localhost:8080"),
        ("path", "https://api.openai.com/v1"),
        ("ipv6", "http://[::1]:8000/"),
    ],
    "cerebe_model": [("router-style", "meta-llama/Llama-3.1-8B-Instruct:free")],
}

# (field, longest accepted value, shortest rejected value)
LENGTH_LIMITS = [
    pytest.param("project_name", "n" * 64, "n" * 65, id="project_name-64"),
    pytest.param("project_slug", "s" * 40, "s" * 41, id="project_slug-40"),
    pytest.param("python_package", "p" * 60, "p" * 61, id="python_package-60"),
    pytest.param("description", "d" * 200, "d" * 201, id="description-200"),
    pytest.param("author_name", "a" * 200, "a" * 201, id="author_name-200"),
    pytest.param("backend_service_name", "b" * 50, "b" * 51, id="backend_service_name-50"),
    pytest.param("web_service_name", "w" * 50, "w" * 51, id="web_service_name-50"),
    pytest.param("highlight_project_id", "h" * 32, "h" * 33, id="highlight_project_id-32"),
    pytest.param("deployment_environment", "e" * 63, "e" * 64, id="deployment_environment-63"),
    pytest.param(
        "cerebe_base_url",
        "https://api.example.com/" + "p" * 176,
        "https://api.example.com/" + "p" * 177,
        id="cerebe_base_url-200",
    ),
    pytest.param("cerebe_model", "m" * 128, "m" * 129, id="cerebe_model-128"),
]

# One bad answer per bake: (field, value).
BAKE_FAILURES = [
    pytest.param("project_slug", "My_App", id="slug-not-a-dns-label"),
    pytest.param("trace_sample_ratio", "1.5", id="ratio-above-one"),
    pytest.param("backend_service_name", "Sage_API", id="service-name-not-a-dns-label"),
    pytest.param("highlight_project_id", "ve6y-97ge!", id="highlight-id-punctuation"),
    pytest.param("project_name", 'A "quoted" \\ name', id="name-with-quote-and-backslash"),
    pytest.param("project_name", "x''' \"boom\"", id="name-closing-the-context-literal"),
    pytest.param("project_name", "two\nlines", id="name-with-newline"),
]


def _params(table: dict[str, list[tuple[str, object]]]) -> list:
    return [
        pytest.param(field, value, id=f"{field}-{label}")
        for field, cases in table.items()
        for label, value in cases
    ]


@pytest.fixture(scope="module")
def defaults() -> dict:
    """The answers cookiecutter gives with --no-input, rendered from cookiecutter.json."""
    context = generate_context(context_file=str(TEMPLATE_ROOT / "cookiecutter.json"))
    return dict(prompt_for_config(context, no_input=True))


def test_it_accepts_the_default_answers(defaults):
    """It accepts the answers cookiecutter.json gives by default."""
    assert validate(defaults) == []


@pytest.mark.parametrize(("field", "value"), _params(BAD_VALUES))
def test_it_rejects_a_bad_answer_with_one_line_naming_the_field(defaults, field, value):
    """It rejects a bad answer with exactly one single-line message that starts with the field."""
    messages = validate({**defaults, field: value})

    assert len(messages) == 1, messages
    assert messages[0].startswith(f"{field}=")
    assert "\n" not in messages[0]


@pytest.mark.parametrize(("field", "value"), _params(GOOD_VALUES))
def test_it_accepts_a_good_answer(defaults, field, value):
    """It accepts a well-formed answer for each field."""
    assert validate({**defaults, field: value}) == []


@pytest.mark.parametrize(("field", "longest_ok", "too_long"), LENGTH_LIMITS)
def test_it_enforces_each_length_limit_exactly(defaults, field, longest_ok, too_long):
    """It accepts a value at the length limit and rejects one character more."""
    assert validate({**defaults, field: longest_ok}) == []
    assert [message.split("=", 1)[0] for message in validate({**defaults, field: too_long})] == [field]


def test_it_names_the_rule_in_words(defaults):
    """It says what a valid slug looks like, not just that the slug is wrong."""
    assert validate({**defaults, "project_slug": "My App"}) == [
        "project_slug='My App': must be a DNS-1123/RFC-1035 label (lowercase letters, digits and '-', "
        "start with a letter, end with a letter or digit), at most 40 characters"
    ]


def test_it_shows_control_characters_escaped_and_cuts_long_values(defaults):
    """It shows a newline as \\n and cuts a huge value, so every message stays one short line."""
    [newline] = validate({**defaults, "project_name": "two\nlines"})
    [huge] = validate({**defaults, "description": "d" * 10_000})

    assert newline.startswith("project_name='two\\nlines': ")
    assert len(huge) < 400
    assert "(10000 characters)" in huge


def test_it_rejects_a_web_service_named_like_the_backend(defaults):
    """It rejects a web service.name equal to the backend's, since both would report as one service."""
    messages = validate({**defaults, "web_service_name": defaults["backend_service_name"]})

    assert len(messages) == 1
    assert messages[0].startswith("web_service_name=")
    assert "must differ from backend_service_name" in messages[0]


def test_it_reports_every_bad_field_at_once(defaults):
    """It reports all bad answers in one run, in cookiecutter.json's order."""
    messages = validate({**defaults, "project_slug": "My App", "trace_sample_ratio": "2"})

    assert [message.split("=", 1)[0] for message in messages] == ["project_slug", "trace_sample_ratio"]


@pytest.mark.parametrize(
    ("answers", "reported"),
    [
        pytest.param({"project_slug": "Bad_Slug!"}, "project_slug", id="slug-with-derived-names"),
        pytest.param({"project_name": 'A "quoted" name'}, "project_name", id="name-with-derived-slug"),
    ],
)
def test_one_mistake_is_one_line_even_when_other_answers_derive_from_it(answers, reported):
    """It reports a bad slug once, not again for the package and service names computed from it."""
    context = generate_context(context_file=str(TEMPLATE_ROOT / "cookiecutter.json"), extra_context=answers)
    messages = validate(dict(prompt_for_config(context, no_input=True)))

    assert [message.split("=", 1)[0] for message in messages] == [reported]


def test_a_derived_answer_given_explicitly_is_still_checked(defaults):
    """It still reports a bad package name the user typed, beside a bad slug."""
    messages = validate({**defaults, "project_slug": "Bad_Slug!", "python_package": "Not-A-Package"})

    assert [message.split("=", 1)[0] for message in messages] == ["project_slug", "python_package"]


def test_it_fails_closed_when_the_context_is_missing():
    """It rejects an empty context (the unrendered hook) instead of waving it through."""
    assert pre_gen_project.CONTEXT == {}
    assert "project_slug" in {message.split("=", 1)[0] for message in validate({})}


def test_main_exits_1_with_error_lines_for_a_bad_context(monkeypatch, capsys, defaults):
    """It exits 1 and prints one ERROR line per bad answer on stderr."""
    bad_answers = {**defaults, "project_slug": "My App", "cerebe_model": ""}
    monkeypatch.setattr(pre_gen_project, "CONTEXT", bad_answers)

    with pytest.raises(SystemExit) as exit_info:
        pre_gen_project.main()

    captured = capsys.readouterr()
    assert exit_info.value.code == 1
    assert captured.out == ""
    assert [line.split("=", 1)[0] for line in captured.err.splitlines()] == [
        "ERROR: project_slug",
        "ERROR: cerebe_model",
    ]


def test_main_returns_quietly_for_a_good_context(monkeypatch, capsys, defaults):
    """It prints nothing and returns for valid answers."""
    monkeypatch.setattr(pre_gen_project, "CONTEXT", defaults)

    assert pre_gen_project.main() is None
    assert capsys.readouterr() == ("", "")


def test_the_rendered_hook_reads_back_hostile_answers_intact():
    """It renders to valid Python whose CONTEXT equals the answers, whatever quotes they contain."""
    answers = {
        **VALID_ANSWERS,
        "project_name": "x''' \"\"\" \\ \\' \n {{ not jinja }} </script> é",
        "include_web": True,
    }
    hook_template = StrictEnvironment().from_string(HOOK_PATH.read_text(encoding="utf-8"))
    rendered = hook_template.render(cookiecutter=answers)
    namespace: dict = {"__name__": "rendered_hook"}

    exec(compile(rendered, "rendered_hook.py", "exec"), namespace)

    assert namespace["CONTEXT"] == answers


def test_the_hook_is_self_contained_with_jinja_in_one_place():
    """It imports only the stdlib and keeps Jinja in one literal, since cookiecutter runs it alone."""
    source = HOOK_PATH.read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])

    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
    assert source.count("{{") == 1
    assert "{%" not in source
    assert "{#" not in source


@pytest.mark.parametrize(("field", "value"), BAKE_FAILURES)
def test_bake_stops_before_rendering_with_one_error_line(cookies, capfd, tmp_path, field, value):
    """It stops cookiecutter with one ERROR line naming the field and leaves no project behind."""
    result = cookies.bake(extra_context={**VALID_ANSWERS, field: value})

    stderr = capfd.readouterr().err
    error_lines = [line for line in stderr.splitlines() if line.startswith("ERROR: ")]
    bake_dirs = list((tmp_path / "cookies").iterdir())
    assert result.exit_code != 0
    assert isinstance(result.exception, FailedHookException)
    assert len(error_lines) == 1, stderr
    assert error_lines[0].startswith(f"ERROR: {field}=")
    assert bake_dirs, "pytest-cookies wrote its output somewhere else"
    assert [child for bake_dir in bake_dirs for child in bake_dir.iterdir()] == []


@pytest.mark.parametrize(
    "vendor", ["", "Highlight", "datadog", "none "], ids=["empty", "capitalised", "unknown", "trailing-space"]
)
def test_cookiecutter_refuses_a_session_replay_outside_its_choices(cookies, tmp_path, vendor):
    """A session_replay not in cookiecutter.json's list stops the bake before anything is rendered,
    with the choices named; so the hook need not (and does not) repeat the vendor list."""
    result = cookies.bake(extra_context={**VALID_ANSWERS, "session_replay": vendor})

    assert result.exit_code != 0
    assert "but the choices are ['builtin', 'none', 'highlight', 'sentry']" in str(result.exception)
    assert [child for bake_dir in (tmp_path / "cookies").iterdir() for child in bake_dir.iterdir()] == []
    assert not [name for name in ('"sentry"', '"builtin"') if name in HOOK_PATH.read_text(encoding="utf-8")]


@pytest.mark.parametrize("vendor", ["builtin", "none", "highlight", "sentry"])
def test_bake_succeeds_with_each_session_replay_choice(cookies, vendor):
    """Every vendor in cookiecutter.json's list renders."""
    assert cookies.bake(extra_context={**VALID_ANSWERS, "session_replay": vendor}).exit_code == 0


def test_bake_succeeds_with_the_default_answers(cookies):
    """It lets cookiecutter render the project for the default answers."""
    result = cookies.bake()

    assert result.exit_code == 0, result.exception
