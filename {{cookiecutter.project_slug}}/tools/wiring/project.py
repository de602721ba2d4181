# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""The project as the checks see it: each file read and parsed once, nothing imported or run."""

from __future__ import annotations

import ast
import fnmatch
import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import yaml

try:
    from dotenv import dotenv_values
except ImportError:  # the CLI runs the checks that do not need .env files and says so
    dotenv_values = None

BACKEND_APP = Path("backend", "app")
# Where the backend's defaults live: module constants, or fields of a settings class.
BACKEND_SETTINGS = tuple(
    BACKEND_APP / name for name in ("telemetry/config.py", "telemetry/settings.py", "settings.py", "config.py")
)
BACKEND_ENV_FILES = (Path(".env.example"), Path("backend", ".env.example"))
COMPOSE_FILES = ("docker-compose.yaml", "docker-compose.yml", "compose.yaml", "compose.yml")
COLLECTOR_CONFIG_NAMES = ("*collector*config*.yaml", "*collector*config*.yml")
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
SKIPPED_DIRS = frozenset(
    {".git", "node_modules", ".venv", "venv", ".next", "dist", "build"}
    | {"__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache"}
)


def walk(directory: Path) -> Iterator[Path]:
    """Every file under `directory`, sorted, without dependency, build and cache directories."""
    for parent, subdirs, files in os.walk(directory):
        subdirs[:] = sorted(name for name in subdirs if name not in SKIPPED_DIRS)
        for name in sorted(files):
            yield Path(parent, name)


def name_of(doc: dict) -> str:
    metadata = doc.get("metadata")
    return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""


def containers(doc: dict) -> list[dict]:
    """The containers (init containers first) of a workload's pod template."""
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    pod = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    listed = (pod.get("initContainers") or []) + (pod.get("containers") or [])
    return [container for container in listed if isinstance(container, dict)]


def compose_environment(service: dict) -> dict[str, str]:
    """A compose service's `environment:`, as a mapping or as a list of KEY=value."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(str(item).split("=", 1) for item in environment if "=" in str(item))
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


def _string_default(value: ast.expr | None) -> str | None:
    """The literal default of a constant or a settings field: "x", Field("x") or Field(default="x")."""
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    callee = value.func if isinstance(value, ast.Call) else None
    if isinstance(callee, ast.Name | ast.Attribute) and getattr(callee, "id", getattr(callee, "attr", "")) == "Field":
        candidates = value.args[:1] + [keyword.value for keyword in value.keywords if keyword.arg == "default"]
        return next((found for arg in candidates if (found := _string_default(arg)) is not None), None)
    return None


class Project:
    """Read-only view of a rendered project; `unreadable` collects the files that did not parse."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.unreadable: list[str] = []
        self._yaml: dict[Path, list] = {}

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # ---- YAML -----------------------------------------------------------------------------------

    def yaml_documents(self, path: Path) -> list:
        """The non-empty documents of a YAML file, parsed once; [] and a line in `unreadable` when it
        does not parse, so a broken file is reported instead of passing unchecked."""
        cache = self._yaml
        if path not in cache:
            try:
                cache[path] = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
            except (OSError, UnicodeDecodeError) as error:
                cache[path] = []
                self.unreadable.append(f"{self.rel(path)}: cannot be read: {error}")
            except yaml.YAMLError as error:
                cache[path] = []
                mark = getattr(error, "problem_mark", None)
                where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
                problem = " ".join(str(getattr(error, "problem", None) or error).split())
                self.unreadable.append(
                    f"{self.rel(path)}{where}: does not parse as YAML: {problem} (so its wiring went unchecked)"
                )
        return cache[path]

    @cached_property
    def deploy_yaml(self) -> list[Path]:
        deploy = self.root / "deploy"
        return [path for path in walk(deploy) if path.suffix in {".yaml", ".yml"}] if deploy.is_dir() else []

    @cached_property
    def k8s_documents(self) -> list[tuple[str, dict]]:
        """(file, object) of every Kubernetes-style object (it has a `kind`) under deploy/."""
        return [
            (self.rel(path), doc)
            for path in self.deploy_yaml
            for doc in self.yaml_documents(path)
            if isinstance(doc, dict) and isinstance(doc.get("kind"), str)
        ]

    @cached_property
    def services(self) -> dict[str, set[int]]:
        """k8s Service name -> the ports it exposes (overlays' patches add theirs)."""
        services: dict[str, set[int]] = {}
        for _, doc in self.k8s_documents:
            if doc["kind"] == "Service":
                ports = (doc.get("spec") or {}).get("ports") or []
                services.setdefault(name_of(doc), set()).update(
                    port["port"] for port in ports if isinstance(port, dict) and isinstance(port.get("port"), int)
                )
        return services

    @cached_property
    def workloads(self) -> list[tuple[str, dict]]:
        return [(rel, doc) for rel, doc in self.k8s_documents if doc["kind"] in WORKLOAD_KINDS]

    @cached_property
    def config_maps(self) -> dict[str, dict]:
        return {
            name_of(doc): doc["data"]
            for _, doc in self.k8s_documents
            if doc["kind"] == "ConfigMap" and isinstance(doc.get("data"), dict)
        }

    def container_env(self, container: dict) -> dict[str, str]:
        """Plain env values of a container: its envFrom ConfigMaps, then its own env list (which wins)."""
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            ref = source.get("configMapRef") if isinstance(source, dict) else None
            if isinstance(ref, dict):
                env.update({str(k): str(v) for k, v in self.config_maps.get(str(ref.get("name")), {}).items()})
        for item in container.get("env") or []:
            if isinstance(item, dict) and "name" in item and isinstance(item.get("value"), str | int | float):
                env[str(item["name"])] = str(item["value"])
        return env

    @cached_property
    def compose(self) -> tuple[str, dict[str, dict]] | None:
        """(file name, service name -> service) of the docker compose file, if there is one."""
        for name in COMPOSE_FILES:
            if (self.root / name).is_file():
                documents = self.yaml_documents(self.root / name)
                services = documents[0].get("services") if documents and isinstance(documents[0], dict) else None
                if isinstance(services, dict):
                    return name, {str(k): v if isinstance(v, dict) else {} for k, v in services.items()}
        return None

    @cached_property
    def collector_configs(self) -> list[tuple[str, dict]]:
        """(label, config) of every OpenTelemetry Collector config: *collector*config*.yaml files
        anywhere, and ConfigMap data under deploy/ that holds one."""
        configs = []
        for path in walk(self.root):
            if any(fnmatch.fnmatch(path.name, pattern) for pattern in COLLECTOR_CONFIG_NAMES):
                configs += [
                    (self.rel(path), doc)
                    for doc in self.yaml_documents(path)
                    if isinstance(doc, dict) and isinstance(doc.get("receivers"), dict)
                ]
        for rel, doc in self.k8s_documents:
            if doc["kind"] != "ConfigMap" or not isinstance(doc.get("data"), dict):
                continue
            for key, value in doc["data"].items():
                try:
                    config = yaml.safe_load(value) if isinstance(value, str) else None
                except yaml.YAMLError:
                    config = None
                if isinstance(config, dict) and isinstance(config.get("receivers"), dict):
                    configs.append((f"{rel}: ConfigMap '{name_of(doc)}' key '{key}'", config))
        return configs

    # ---- .env files -----------------------------------------------------------------------------

    def env_file(self, relative: Path) -> dict[str, str] | None:
        """KEY -> value of a dotenv file (python-dotenv's parser, no interpolation); None when the file
        is absent or python-dotenv is not installed (the CLI says so)."""
        path = self.root / relative
        if dotenv_values is None or not path.is_file():
            return None
        return {key: value or "" for key, value in dotenv_values(path, interpolate=False).items()}

    @cached_property
    def web_env_files(self) -> list[Path]:
        web = self.root / "web"
        return [path.relative_to(self.root) for path in sorted(web.glob(".env*.example"))] if web.is_dir() else []

    # ---- the backend's defaults -------------------------------------------------------------------

    @cached_property
    def backend_defaults(self) -> dict[str, tuple[str, int, str]]:
        """SERVICE_NAME / OTLP_ENDPOINT -> (file, line, value): module constants of those names, or
        the string defaults of settings fields service_name / otlp_endpoint, first file first."""
        found: dict[str, tuple[str, int, str]] = {}
        for relative in BACKEND_SETTINGS:
            try:
                tree = ast.parse((self.root / relative).read_text(encoding="utf-8"))
            except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign):
                    targets = node.targets
                elif isinstance(node, ast.AnnAssign):
                    targets = [node.target]
                else:
                    continue
                value = _string_default(node.value)
                for target in targets:
                    name = target.id if isinstance(target, ast.Name) else ""
                    key = name.upper() if name in {"service_name", "otlp_endpoint"} else name
                    if key in {"SERVICE_NAME", "OTLP_ENDPOINT"} and value is not None and key not in found:
                        found[key] = (relative.as_posix(), node.lineno, value)
        return found
