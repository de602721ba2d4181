# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The .env.example files agree with the backend's defaults; the web app's name and API URL fit."""

from __future__ import annotations

from .project import BACKEND_ENV_FILES, Project
from .urls import OTLP_ENDPOINT_KEY, otlp_http_problem, port_of

# The port `make run` and `make dev` serve the API on; a root .env.example may move it with API_PORT.
BACKEND_PORT = 8000


def _endpoint_problems(rel: str, env: dict[str, str]) -> list[str]:
    """OTLP endpoints of one env file are OTLP/HTTP URLs, unless the file switches to gRPC."""
    if env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").lower() == "grpc":
        return []
    return [
        f"{rel}: {key}={value!r} {problem}"
        for key, value in env.items()
        if OTLP_ENDPOINT_KEY.search(key) and value and (problem := otlp_http_problem(value))
    ]


def check_backend_env_files(project: Project) -> list[str]:
    """.env.example (and backend/.env.example) name the backend's service and OTLP endpoint."""
    defaults = project.backend_defaults
    expected = {"OTEL_SERVICE_NAME": "SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT": "OTLP_ENDPOINT"}
    problems = []
    for relative in BACKEND_ENV_FILES:
        env = project.env_file(relative)
        if env is None:
            continue
        rel = relative.as_posix()
        problems += _endpoint_problems(rel, env)
        for key, constant in expected.items():
            if not env.get(key) or constant not in defaults:
                continue  # empty: the backend's default applies
            source, _, default = defaults[constant]
            if env[key].rstrip("/") != default.rstrip("/"):
                problems.append(
                    f"{rel}: {key}={env[key]!r} disagrees with {constant} in {source} (expected {default!r})"
                )
    return problems


def backend_port(project: Project) -> int:
    """8000, unless the root .env.example moves the API with API_PORT."""
    value = (project.env_file(BACKEND_ENV_FILES[0]) or {}).get("API_PORT", "")
    return int(value) if value.isdigit() else BACKEND_PORT


def check_web_env_files(project: Project) -> list[str]:
    """web/.env*.example: a service.name of its own, OTLP/HTTP endpoints, API_BASE_URL on the backend's port."""
    backend_name = project.backend_defaults.get("SERVICE_NAME", ("", 0, None))[2]
    port = backend_port(project)
    problems = []
    for relative in project.web_env_files:
        rel, env = relative.as_posix(), project.env_file(relative) or {}
        problems += _endpoint_problems(rel, env)
        for key, value in env.items():
            if key.endswith("OTEL_SERVICE_NAME") and value and value == backend_name:
                problems.append(
                    f"{rel}: {key}={value!r} is the backend's service.name, so both would report as one service "
                    "(expected the web app's own name)"
                )
            if key.endswith("API_BASE_URL") and value and port_of(value) != port:
                problems.append(f"{rel}: {key}={value!r} does not reach the backend's port (expected port {port})")
    return problems
