# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The collector's OTLP/HTTP receiver is reachable from other pods and containers, on the apps' port."""

from __future__ import annotations

from .project import BACKEND_ENV_FILES, Project, compose_environment, containers
from .urls import OTLP_ENDPOINT_KEY, port_of

# Hosts a receiver may bind so that other pods and containers reach it.
ALL_INTERFACES = frozenset({"0.0.0.0", "::", "[::]", ""})


def app_otlp_ports(project: Project) -> set[int]:
    """Ports the apps send OTLP to: the backend's default, the .env files, k8s and compose env."""
    urls = [project.backend_defaults.get("OTLP_ENDPOINT", ("", 0, ""))[2]]
    for relative in (*BACKEND_ENV_FILES, *project.web_env_files):
        urls += [value for key, value in (project.env_file(relative) or {}).items() if OTLP_ENDPOINT_KEY.search(key)]
    for _, doc in project.workloads:
        for container in containers(doc):
            env = project.container_env(container)
            urls += [value for key, value in env.items() if OTLP_ENDPOINT_KEY.search(key) and "$(" not in value]
    for service in (project.compose or ("", {}))[1].values():
        urls += [value for key, value in compose_environment(service).items() if OTLP_ENDPOINT_KEY.search(key)]
    return {port for port in map(port_of, filter(None, urls)) if port}


def check_collector_receivers(project: Project) -> list[str]:
    """Each collector's OTLP/HTTP receiver binds all interfaces, on a port the apps send to."""
    configs = project.collector_configs
    if not configs:
        return []
    sent_to = app_otlp_ports(project)
    problems = []
    for label, config in configs:
        for receiver, settings in config["receivers"].items():
            if not str(receiver).split("/")[0].startswith("otlp") or not isinstance(settings, dict):
                continue
            protocols = settings.get("protocols")
            if not isinstance(protocols, dict) or "http" not in protocols:
                continue
            where = f"{label}: receiver '{receiver}'"
            endpoint = (protocols["http"] or {}).get("endpoint") if isinstance(protocols["http"], dict | None) else None
            if not isinstance(endpoint, str):
                problems.append(
                    f"{where} has no protocols.http.endpoint, so it binds localhost:4318, unreachable from other "
                    "pods and containers (expected endpoint: 0.0.0.0:4318)"
                )
                continue
            host, _, port = endpoint.rpartition(":")
            if host not in ALL_INTERFACES and not host.startswith("$"):
                problems.append(
                    f"{where} binds {endpoint!r}, unreachable from other pods and containers "
                    f"(expected 0.0.0.0:{port}, or a pod IP from " + "${env:MY_POD_IP})"
                )
            if port.isdigit() and sent_to and int(port) not in sent_to:
                ports = ", ".join(str(p) for p in sorted(sent_to))
                problems.append(
                    f"{where} listens on port {port}, but the apps send OTLP to port {ports} "
                    f"(expected the receiver on port {ports})"
                )
    return problems
