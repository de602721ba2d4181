# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""deploy/: the addresses in each workload's env name a Service and a port it exposes."""

from __future__ import annotations

from urllib.parse import urlsplit

from .project import Project, containers, name_of
from .urls import OTLP_ENDPOINT_KEY, otlp_http_problem, port_of, short_hosts


def _otlp_problem(project: Project, key: str, url: str) -> str | None:
    problem = otlp_http_problem(url)
    if problem:
        return problem
    host, port = urlsplit(url).hostname or "", port_of(url)
    service = host if host in project.services else host.split(".")[0]  # otel-collector.<ns>.svc...
    if service not in project.services:
        known = ", ".join(sorted(project.services)) or "none"
        return f"names no Service {host!r} in deploy/ (expected one of the Services: {known})"
    if port not in project.services[service]:
        exposed = ", ".join(str(p) for p in sorted(project.services[service])) or "none"
        return f"uses port {port}, but Service {service!r} exposes {exposed} (expected a port of Service {service!r})"
    return None


def check_k8s_addresses(project: Project) -> list[str]:
    """OTLP endpoints are OTLP/HTTP URLs of a Service port; other host:port values name a Service port."""
    if not project.services:
        return []
    problems = []
    for rel, doc in project.workloads:
        for container in containers(doc):
            where = f"{rel}: {doc['kind']} '{name_of(doc)}' container '{container.get('name', '')}'"
            env = project.container_env(container)
            grpc = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").lower() == "grpc"
            for key, value in env.items():
                if "$(" in value or not value:
                    continue
                if OTLP_ENDPOINT_KEY.search(key):
                    problem = None if grpc else _otlp_problem(project, key, value)
                    if problem:
                        problems.append(f"{where}: {key}={value!r} {problem}")
                    continue
                for host, port in short_hosts(value):
                    if host not in project.services:
                        problems.append(f"{where}: {key}={value!r} names no Service {host!r} in deploy/")
                    elif port not in project.services[host]:
                        exposed = ", ".join(str(p) for p in sorted(project.services[host]))
                        problems.append(f"{where}: {key}={value!r}: Service {host!r} exposes {exposed}, not {port}")
    return problems
