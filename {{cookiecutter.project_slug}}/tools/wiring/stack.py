# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The local stack: component configs, docker compose and k3d address the same services and ports."""

from __future__ import annotations

import fnmatch

from .project import COLLECTOR_CONFIG_NAMES, Project, compose_environment, name_of
from .urls import OTLP_ENDPOINT_KEY, otlp_http_problem, short_hosts


def _component_configs(project: Project) -> list[tuple[str, object]]:
    """(file, parsed YAML) of the configs the stack mounts: deploy/config/*.yaml (kustomization
    aside) and the collector configs under deploy/."""
    config_dir = project.root / "deploy" / "config"
    paths = {
        path
        for path in project.deploy_yaml
        if (path.parent == config_dir and path.name != "kustomization.yaml")
        or any(fnmatch.fnmatch(path.name, pattern) for pattern in COLLECTOR_CONFIG_NAMES)
    }
    return [(project.rel(path), doc) for path in sorted(paths) for doc in project.yaml_documents(path)]


def check_component_addresses(project: Project) -> list[str]:
    """Each host:port in a component config (collector exporters, Grafana data sources, Tempo's
    remote write) names a k8s Service exposing that port and a compose service of that name."""
    services = project.services
    compose_file, compose_services = project.compose or ("", {})
    problems = []
    for rel, config in _component_configs(project):
        for host, port in short_hosts(config):
            if services and host not in services:
                problems.append(
                    f"{rel}: {host}:{port} names no Service {host!r} in deploy/ "
                    f"(expected one of: {', '.join(sorted(services))})"
                )
            elif services and port not in services[host]:
                exposed = ", ".join(str(p) for p in sorted(services[host]))
                problems.append(f"{rel}: {host}:{port} uses a port Service {host!r} does not expose ({exposed})")
            if compose_file and host not in compose_services:
                problems.append(f"{rel}: {host}:{port} names no service {host!r} in {compose_file}")
    return problems


def check_compose_addresses(project: Project) -> list[str]:
    """In docker compose, env addresses name a compose service and OTLP endpoints are OTLP/HTTP URLs."""
    if not project.compose:
        return []
    compose_file, services = project.compose
    problems = []
    for name, service in services.items():
        for key, value in compose_environment(service).items():
            for host, _port in short_hosts(value):
                if host not in services:
                    problems.append(f"{compose_file}: service '{name}' {key}={value!r} names no compose service")
            if OTLP_ENDPOINT_KEY.search(key) and value and (problem := otlp_http_problem(value)):
                problems.append(f"{compose_file}: service '{name}' {key}={value!r} {problem}")
    return problems


def check_published_ports(project: Project) -> list[str]:
    """k3d maps localhost:H to a NodePort some Service declares; compose publishes H for that service."""
    node_ports: dict[int, tuple[str, object]] = {}
    cluster = None
    for rel, doc in project.k8s_documents:
        if doc["kind"] == "Service":
            for port in (doc.get("spec") or {}).get("ports") or []:
                if isinstance(port, dict) and isinstance(port.get("nodePort"), int):
                    node_ports[port["nodePort"]] = (name_of(doc), port.get("port"))
        elif str(doc.get("apiVersion", "")).startswith("k3d.io/"):
            cluster = (rel, doc)
    if cluster is None:
        return []
    compose_file, services = project.compose or ("", {})
    published = {
        name: {":".join(str(port).split(":")[-2:]) for port in service.get("ports") or []}
        for name, service in services.items()
    }
    problems = []
    for mapping in cluster[1].get("ports") or []:
        # [address:]host:node, e.g. 127.0.0.1:8000:30800
        host, _, node = str(mapping.get("port", "") if isinstance(mapping, dict) else "").rpartition(":")
        host = host.rpartition(":")[2]
        if not (host.isdigit() and node.isdigit()):
            continue
        if int(node) not in node_ports:
            problems.append(f"{cluster[0]}: port {host}:{node} maps to NodePort {node}, which no Service declares")
            continue
        service, port = node_ports[int(node)]
        if compose_file and f"{host}:{port}" not in published.get(service, set()):
            problems.append(
                f"{compose_file}: service '{service}' does not publish {host}:{port} "
                f"(expected the same localhost port as {cluster[0]})"
            )
    return problems
