# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""One service.name per app, the same in the backend, .env files, docker compose and k8s."""

from __future__ import annotations

from pathlib import PurePosixPath

from .project import Project, compose_environment, containers, name_of


def _built_from(service: dict) -> str | None:
    """The directory a compose service builds its image from (backend, web), if it builds one."""
    build = service.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    return PurePosixPath(str(context)).name if context else None


def _one_name_per_workload(named: list[tuple[str, str, str]]) -> list[str]:
    """(file, workload, service.name): a second workload reporting under a name taken is a problem."""
    owner: dict[str, str] = {}
    problems = []
    for where, workload, service_name in named:
        first = owner.setdefault(service_name, workload)
        if first != workload:
            problems.append(
                f"{where}: {workload} sets OTEL_SERVICE_NAME={service_name!r}, which {first} also sets, so both "
                "would report as one service (expected a service.name of its own)"
            )
    return problems


def check_service_names(project: Project) -> list[str]:
    """Compose's backend and web services use the backend's and the web app's names; a k8s workload
    uses the name of the compose service it shares its name with; no two workloads share one."""
    expected = {"backend": project.backend_defaults.get("SERVICE_NAME", ("", 0, None))[2]}
    web_env = project.env_file(project.web_env_files[0]) if project.web_env_files else None
    expected["web"] = (web_env or {}).get("OTEL_SERVICE_NAME") or None
    problems = []
    compose_names: dict[str, str] = {}
    if project.compose:
        compose_file, services = project.compose
        for name, service in services.items():
            value = compose_environment(service).get("OTEL_SERVICE_NAME")
            if not value:
                continue
            compose_names[name] = value
            app = _built_from(service)
            if expected.get(app) and value != expected[app]:
                problems.append(
                    f"{compose_file}: service '{name}' (built from {app}/) sets OTEL_SERVICE_NAME={value!r} "
                    f"(expected {expected[app]!r}, the {app}'s service.name)"
                )
        problems += _one_name_per_workload(
            [(compose_file, f"service '{name}'", value) for name, value in compose_names.items()]
        )
    k8s_named: list[tuple[str, str, str]] = []
    for rel, doc in project.workloads:
        for container in containers(doc):
            value = project.container_env(container).get("OTEL_SERVICE_NAME")
            if not value:
                continue
            workload = name_of(doc)
            k8s_named.append((rel, f"{doc['kind']} '{workload}'", value))
            if workload in compose_names and value != compose_names[workload]:
                problems.append(
                    f"{rel}: {doc['kind']} '{workload}' sets OTEL_SERVICE_NAME={value!r}, but compose service "
                    f"'{workload}' sets {compose_names[workload]!r} (expected the same name in both)"
                )
    problems += _one_name_per_workload(k8s_named)
    return problems
