# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The backend's own defaults: a service name Kubernetes accepts, an OTLP/HTTP base URL."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .project import BACKEND_SETTINGS, Project
from .urls import otlp_http_problem

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def check_backend_defaults(project: Project) -> list[str]:
    """SERVICE_NAME is a DNS-1123 label; OTLP_ENDPOINT is an OTLP/HTTP base URL on port 4318, no path."""
    defaults = project.backend_defaults
    problems = [
        f"{BACKEND_SETTINGS[0].as_posix()}: the backend's default {name} was not found "
        f'(expected {name} = "..." or a settings field {name.lower()}: str = "...")'
        for name in ("SERVICE_NAME", "OTLP_ENDPOINT")
        if name not in defaults
    ]
    if "SERVICE_NAME" in defaults:
        rel, line, name = defaults["SERVICE_NAME"]
        if not DNS_LABEL.fullmatch(name):
            problems.append(
                f"{rel}:{line}: SERVICE_NAME={name!r} is not a DNS-1123 label "
                "(expected lowercase letters, digits and '-', at most 63, starting and ending alphanumeric)"
            )
    if "OTLP_ENDPOINT" in defaults:
        rel, line, url = defaults["OTLP_ENDPOINT"]
        problem = otlp_http_problem(url)
        if problem is None and urlsplit(url).path.rstrip("/"):
            problem = "has a path, but it is the base URL the exporter appends /v1/traces to (expected no path)"
        if problem:
            problems.append(f"{rel}:{line}: OTLP_ENDPOINT={url!r} {problem}")
    return problems
