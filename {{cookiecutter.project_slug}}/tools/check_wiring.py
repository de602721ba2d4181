#!/usr/bin/env python3
"""Check that the project's OpenTelemetry wiring still holds together; `make check` runs it.

    python tools/check_wiring.py                  # the project this file belongs to
    python tools/check_wiring.py path/to/project

It reads files only (nothing is imported or started) and prints one line per problem,
`path: what is wrong (what was expected)`. The checks, in order:

    check_apps_instrumented     every FastAPI app under backend/app is passed to init_telemetry
    check_backend_constants     SERVICE_NAME is a DNS label, OTLP_ENDPOINT an OTLP/HTTP URL (port 4318)
    check_env_files             .env.example files agree with the backend constants
    check_web_config            web/: its own service.name, and API_BASE_URL on the backend's port
    check_k8s_manifests         deploy/: OTLP endpoints name a Service and one of its ports
    check_collector_config      the collector's OTLP/HTTP receiver binds all interfaces, on the apps' port
    check_collector_pipelines   every collector component a pipeline uses is defined, every defined one used
    check_stack_wiring          deploy/ configs, manifests, docker-compose and k3d agree on names and ports
    check_grafana_provisioning  every data source uid a dashboard or link names is provisioned
    check_files_parse           every YAML and JSON file parses
    check_no_unrendered_jinja   no template marker was left behind by cookiecutter

Parts that are absent (web/, deploy/, a collector config) are skipped. Exit status: 0 when all
checks pass, 1 when a problem was found, 2 when the check could not run. Standard library and
PyYAML only, so it runs before the backend's dependencies are installed.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

try:
    import yaml
except ImportError:  # main() says so and exits 2
    yaml = None

PROJECT_ROOT = Path(__file__).resolve().parent.parent

BACKEND_APP = Path("backend", "app")
TELEMETRY_CONFIG = BACKEND_APP / "telemetry" / "config.py"
BACKEND_ENV_FILES = (Path(".env.example"), Path("backend", ".env.example"))
# The port `make dev` serves the API on; a root .env.example may move it with API_PORT.
BACKEND_PORT = 8000
OTLP_HTTP_PORT = 4318
OTLP_GRPC_PORT = 4317

SKIPPED_DIRS = frozenset(
    {".git", "node_modules", ".venv", "venv", ".next", "dist", "build"}
    | {"__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache"}
)
COLLECTOR_CONFIG_NAMES = ("*collector*config*.yaml", "*collector*config*.yml")
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
# Name tokens (split on '-', '_' and '.') that mark a workload as the FastAPI backend.
BACKEND_TOKENS = frozenset({"api", "backend"})
# Hosts a receiver may bind so that other pods and containers reach it.
ALL_INTERFACES = frozenset({"0.0.0.0", "::", "[::]", ""})

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
ENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)")
# OTEL_EXPORTER_OTLP_ENDPOINT, its per-signal variants, and prefixed copies (NEXT_PUBLIC_...).
OTLP_ENDPOINT_KEY = re.compile(r"OTEL_EXPORTER_OTLP_(?:[A-Z]+_)?ENDPOINT$")
# tsconfig.json and editor settings are JSON with comments and trailing commas (JSONC).
JSONC_NAMES = ("tsconfig*.json", "jsconfig*.json", "devcontainer.json", ".devcontainer.json")
JSON_STRING_OR_COMMENT = re.compile(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*[\s\S]*?\*/')
JSON_STRING_OR_TRAILING_COMMA = re.compile(r'("(?:\\.|[^"\\])*")|,(?=\s*[}\]])')

# Template markers, assembled from pieces so that this file holds none: cookiecutter renders it
# verbatim and it passes its own check. GitHub Actions expressions and JSX double braces are not
# markers, and neither is the shell's length operator (dollar, brace, hash).
_OPEN, _PERCENT, _HASH = "{", "%", "#"
JINJA_MARKERS = (
    ("a cookiecutter variable", re.compile(re.escape(_OPEN * 2) + r"-?\s*cookiecutter\b")),
    ("a Jinja statement", re.compile(re.escape(_OPEN + _PERCENT) + r"[-+]?\s*\w[^\n]*?" + re.escape(_PERCENT + "}"))),
    (
        "a Jinja comment",
        re.compile(r"(?<!\$)" + re.escape(_OPEN + _HASH) + r"[\s\S]{0,2000}?" + re.escape(_HASH + "}")),
    ),
)
SHOWN_MARKER_LIMIT = 60

Problems = list[str]


# ---- reading files ---------------------------------------------------------------------------


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _project_files(root: Path) -> Iterator[Path]:
    """Every file of the project, sorted, without dependency, build and cache directories."""
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(name for name in subdirs if name not in SKIPPED_DIRS)
        for name in sorted(files):
            yield Path(directory, name)


def _read_text(path: Path) -> str | None:
    """The file as UTF-8 text; None for binaries and other encodings."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _yaml_error(error: Exception) -> tuple[str, str]:
    """(':line:column' or '', the parser's complaint on one line)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or (str(error).splitlines() or ["unknown error"])[0]
    where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
    return where, " ".join(problem.split())


def _yaml_documents(path: Path) -> list:
    """All documents of a YAML file; [] when it does not parse (check_files_parse reports that)."""
    text = _read_text(path)
    if text is None:
        return []
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError:
        return []


def _yaml_files(directory: Path) -> list[Path]:
    return [path for path in _project_files(directory) if path.suffix in {".yaml", ".yml"}]


def _strip_jsonc(text: str) -> str:
    """JSONC to JSON: drop comments, then trailing commas, leaving string contents alone."""
    text = JSON_STRING_OR_COMMENT.sub(lambda match: match.group(1) or "", text)
    return JSON_STRING_OR_TRAILING_COMMA.sub(lambda match: match.group(1) or "", text)


def _read_env_file(path: Path) -> dict[str, tuple[int, str]]:
    """KEY -> (line number, value) of a dotenv file; quotes and trailing ` # comments` removed."""
    entries: dict[str, tuple[int, str]] = {}
    for number, line in enumerate((_read_text(path) or "").splitlines(), start=1):
        match = ENV_LINE.fullmatch(line)
        if not match:
            continue
        value = match.group(2).strip()
        if value[:1] in {'"', "'"} and value.endswith(value[0]) and len(value) > 1:
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        entries[match.group(1)] = (number, value)
    return entries


def _backend_constants(root: Path) -> dict[str, tuple[int, str]]:
    """Module-level string constants of telemetry/config.py: NAME -> (line number, value)."""
    path = root / TELEMETRY_CONFIG
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return {}
    constants: dict[str, tuple[int, str]] = {}
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        value = getattr(node, "value", None)
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = (node.lineno, value.value)
    return constants


def _endpoint_problem(url: str) -> str | None:
    """What is wrong with an OTLP/HTTP endpoint URL, with what was expected; None when it is fine."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a URL with a numeric port (expected http://<host>:4318)"
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return "is not an http(s) URL with a host (expected http://<host>:4318)"
    if port == OTLP_GRPC_PORT:
        return (
            "uses port 4317, the OTLP/gRPC port, but the exporter speaks OTLP/HTTP (http/protobuf) (expected port 4318)"
        )
    if port != OTLP_HTTP_PORT:
        return f"uses port {port or 'default'}, not the OTLP/HTTP port (expected port 4318)"
    return None


def _url_port(url: str) -> int | None:
    try:
        parts = urlsplit(url)
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None


# ---- a. every FastAPI app goes through init_telemetry ------------------------------------------

SCOPES = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of one scope, without the bodies of the functions and classes defined in it."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def _imported_names(tree: ast.Module, module_test: Callable[[str], bool], name: str) -> set[str]:
    """Local names bound to `name` imported from a module that passes `module_test`."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and module_test(node.module or "")
        for alias in node.names
        if alias.name == name
    }


def _imports_telemetry_package(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if "telemetry" in (node.module or "").split(".") and any(a.name == "init_telemetry" for a in node.names):
                return True
            if any(alias.name == "telemetry" for alias in node.names):
                return True
        if isinstance(node, ast.Import) and any("telemetry" in alias.name.split(".") for alias in node.names):
            return True
    return False


def _callee(call: ast.Call) -> tuple[str, bool]:
    """(called name, whether it was reached as an attribute, like fastapi.FastAPI)."""
    if isinstance(call.func, ast.Name):
        return call.func.id, False
    if isinstance(call.func, ast.Attribute):
        return call.func.attr, True
    return "", False


def _scope_label(scope: ast.AST) -> str:
    if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
        return f"in {scope.name}()"
    if isinstance(scope, ast.ClassDef):
        return f"in class {scope.name}"
    if isinstance(scope, ast.Lambda):
        return "in the lambda"
    return "at module level"


def _app_problems(rel: str, tree: ast.Module) -> tuple[int, Problems]:
    """(number of FastAPI apps found, problems) for one module."""
    fastapi_names = {"FastAPI"} | _imported_names(tree, lambda module: module.startswith("fastapi"), "FastAPI")
    init_names = {"init_telemetry"} | _imported_names(tree, lambda module: "telemetry" in module, "init_telemetry")

    def is_fastapi(node: ast.AST) -> bool:
        if not isinstance(node, ast.Call):
            return False
        name, as_attribute = _callee(node)
        return name == "FastAPI" if as_attribute else name in fastapi_names

    def is_init(node: ast.AST) -> bool:
        name, as_attribute = _callee(node) if isinstance(node, ast.Call) else ("", False)
        return name == "init_telemetry" if as_attribute else name in init_names

    apps, problems = 0, []
    for scope in (node for node in ast.walk(tree) if isinstance(node, SCOPES)):
        own = list(_own_nodes(scope))
        bound: dict[int, str] = {}  # id of a FastAPI(...) call -> the name it is assigned to
        for node in own:
            if isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr) and is_fastapi(node.value):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                bound[id(node.value)] = ast.unparse(targets[-1])
        passed_names: set[str] = set()
        passed_calls: set[int] = set()  # init_telemetry(FastAPI(...)) needs no name
        for node in (node for node in own if is_init(node)):
            for arg in node.args[:1] + [keyword.value for keyword in node.keywords if keyword.arg == "app"]:
                passed_names.add(ast.unparse(arg))
                passed_calls.add(id(arg))
        for node in (node for node in own if is_fastapi(node)):
            apps += 1
            where, scope_label, name = f"{rel}:{node.lineno}", _scope_label(scope), bound.get(id(node))
            if name is None and id(node) not in passed_calls:
                problems.append(
                    f"{where}: FastAPI(...) {scope_label} is not bound to a name, so nothing shows it reaches "
                    "init_telemetry (expected app = FastAPI(...) and then init_telemetry(app, ...))"
                )
            elif name is not None and name not in passed_names:
                problems.append(
                    f"{where}: FastAPI app '{name}' {scope_label} is not passed to init_telemetry "
                    f"(expected init_telemetry({name}, ...) {scope_label})"
                )
    if apps and not _imports_telemetry_package(tree):
        problems.append(
            f"{rel}: init_telemetry is not imported from the telemetry package "
            "(expected from .telemetry import init_telemetry)"
        )
    return apps, problems


def _is_test_module(path: Path) -> bool:
    return "tests" in path.parts or path.name.startswith("test_") or path.name == "conftest.py"


def check_apps_instrumented(root: Path) -> Problems:
    """Every FastAPI app bound in backend/app is passed to init_telemetry in the same scope."""
    app_dir = root / BACKEND_APP
    if not app_dir.is_dir():
        return [f"{BACKEND_APP.as_posix()}: directory not found (expected the FastAPI backend package)"]
    apps, problems = 0, []
    for path in _project_files(app_dir):
        rel = _rel(root, path)
        if path.suffix != ".py" or _is_test_module(path.relative_to(app_dir)):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        except SyntaxError as error:
            problems.append(f"{rel}:{error.lineno or 0}: does not parse as Python: {error.msg} (expected valid Python)")
            continue
        except (OSError, UnicodeDecodeError, ValueError) as error:
            problems.append(f"{rel}: cannot be read: {error} (expected UTF-8 Python source)")
            continue
        found, module_problems = _app_problems(rel, tree)
        apps += found
        problems += module_problems
    if apps == 0 and not problems:
        problems.append(f"{BACKEND_APP.as_posix()}: no FastAPI(...) app found (expected app = FastAPI(...) in main.py)")
    return problems


# ---- b. the backend's service name and OTLP endpoint ------------------------------------------


def check_backend_constants(root: Path) -> Problems:
    """SERVICE_NAME is a DNS-1123 label and OTLP_ENDPOINT an OTLP/HTTP URL on port 4318."""
    config = TELEMETRY_CONFIG.as_posix()
    if not (root / TELEMETRY_CONFIG).is_file():
        return [f"{config}: file not found (expected SERVICE_NAME and OTLP_ENDPOINT constants)"]
    constants = _backend_constants(root)
    problems = [
        f'{config}: {name} not found as a module-level string constant (expected {name} = "...")'
        for name in ("SERVICE_NAME", "OTLP_ENDPOINT")
        if name not in constants
    ]
    if "SERVICE_NAME" in constants:
        line, name = constants["SERVICE_NAME"]
        if not DNS_LABEL.fullmatch(name):
            problems.append(
                f"{config}:{line}: SERVICE_NAME={name!r} is not a DNS-1123 label "
                "(expected lowercase letters, digits and '-', at most 63, starting and ending alphanumeric)"
            )
    if "OTLP_ENDPOINT" in constants:
        line, url = constants["OTLP_ENDPOINT"]
        problem = _endpoint_problem(url)
        if problem is None and urlsplit(url).path.rstrip("/"):
            problem = "has a path, but it is the base URL the exporter appends /v1/traces to (expected no path)"
        if problem:
            problems.append(f"{config}:{line}: OTLP_ENDPOINT={url!r} {problem}")
    return problems


# ---- c. agreement across files ----------------------------------------------------------------


def _env_endpoint_problems(rel: str, entries: dict[str, tuple[int, str]]) -> Problems:
    """OTLP endpoints in one env file use the OTLP/HTTP port, unless the file switches to gRPC."""
    if entries.get("OTEL_EXPORTER_OTLP_PROTOCOL", (0, ""))[1].lower() == "grpc":
        return []
    problems = []
    for key, (line, value) in entries.items():
        if OTLP_ENDPOINT_KEY.search(key) and value:
            problem = _endpoint_problem(value)
            if problem:
                problems.append(f"{rel}:{line}: {key}={value!r} {problem}")
    return problems


def check_env_files(root: Path) -> Problems:
    """The backend's .env.example files name the same service and collector as telemetry/config.py."""
    constants = _backend_constants(root)
    expected = {
        "OTEL_SERVICE_NAME": ("SERVICE_NAME", constants.get("SERVICE_NAME")),
        "OTEL_EXPORTER_OTLP_ENDPOINT": ("OTLP_ENDPOINT", constants.get("OTLP_ENDPOINT")),
    }
    problems = []
    for env_file in BACKEND_ENV_FILES:
        if not (root / env_file).is_file():
            continue
        rel, entries = env_file.as_posix(), _read_env_file(root / env_file)
        problems += _env_endpoint_problems(rel, entries)
        for key, (constant, found) in expected.items():
            if key not in entries or found is None or not entries[key][1]:
                continue
            line, value = entries[key]
            if value.rstrip("/") != found[1].rstrip("/"):
                problems.append(
                    f"{rel}:{line}: {key}={value!r} disagrees with {constant} in {TELEMETRY_CONFIG.as_posix()} "
                    f"(expected {found[1]!r})"
                )
    return problems


def _backend_port(root: Path) -> int:
    """8000, unless the root .env.example moves the API with API_PORT."""
    value = _read_env_file(root / ".env.example").get("API_PORT", (0, ""))[1]
    return int(value) if value.isdigit() else BACKEND_PORT


def check_web_config(root: Path) -> Problems:
    """web/: a service.name of its own, OTLP/HTTP endpoints, and API_BASE_URL on the backend's port."""
    web = root / "web"
    if not web.is_dir():
        return []
    backend_name = _backend_constants(root).get("SERVICE_NAME", (0, None))[1]
    backend_port = _backend_port(root)
    problems = []
    for path in sorted(web.glob(".env*.example")):
        rel, entries = _rel(root, path), _read_env_file(path)
        problems += _env_endpoint_problems(rel, entries)
        for key, (line, value) in entries.items():
            if key.endswith("OTEL_SERVICE_NAME") and value and value == backend_name:
                problems.append(
                    f"{rel}:{line}: {key}={value!r} is the backend's service.name, so both would report as one "
                    "service (expected the web app's own name)"
                )
            if key.endswith("API_BASE_URL") and value and _url_port(value) != backend_port:
                problems.append(
                    f"{rel}:{line}: {key}={value!r} does not reach the backend's port (expected port {backend_port})"
                )
    return problems


def _pod_spec(doc: dict) -> dict:
    spec = doc.get("spec")
    template = spec.get("template") if isinstance(spec, dict) else None
    pod_spec = template.get("spec") if isinstance(template, dict) else None
    return pod_spec if isinstance(pod_spec, dict) else {}


def _containers(doc: dict) -> list[dict]:
    pod_spec = _pod_spec(doc)
    listed = (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or [])
    return [container for container in listed if isinstance(container, dict)]


def _name(doc: dict) -> str:
    metadata = doc.get("metadata")
    return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""


def _container_env(container: dict, config_maps: dict[str, dict]) -> dict[str, str]:
    """Plain env values of a container: its envFrom ConfigMaps, then its own env list (which wins)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef") if isinstance(source, dict) else None
        if isinstance(ref, dict):
            data = config_maps.get(str(ref.get("name")), {})
            env.update({str(key): str(value) for key, value in data.items()})
    for item in container.get("env") or []:
        if isinstance(item, dict) and "name" in item and isinstance(item.get("value"), str | int | float):
            env[str(item["name"])] = str(item["value"])
    return env


def _looks_like_backend(doc: dict, service_name: str) -> bool:
    """A workload is the backend when its name, app labels or container names say api/backend or
    the backend's service name, or when a container runs uvicorn."""
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    labels = metadata.get("labels") if isinstance(metadata.get("labels"), dict) else {}
    names = [_name(doc)] + [
        str(labels.get(key, "")) for key in ("app", "app.kubernetes.io/name", "app.kubernetes.io/component")
    ]
    containers = _containers(doc)
    names += [str(container.get("name", "")) for container in containers]
    if service_name in names or any(BACKEND_TOKENS.intersection(re.split(r"[-_.]", name)) for name in names):
        return True
    commands = [str(part) for c in containers for part in (c.get("command") or []) + (c.get("args") or [])]
    return any("uvicorn" in part for part in commands)


def _k8s_documents(root: Path) -> list[tuple[str, dict]]:
    deploy = root / "deploy"
    if not deploy.is_dir():
        return []
    return [
        (_rel(root, path), doc)
        for path in _yaml_files(deploy)
        for doc in _yaml_documents(path)
        if isinstance(doc, dict) and isinstance(doc.get("kind"), str)
    ]


def _k8s_endpoints(root: Path) -> tuple[list[tuple[str, str, str, str]], Problems]:
    """([(file, workload, key, url)] of OTLP endpoints in workload env, problems with them)."""
    documents = _k8s_documents(root)
    services: dict[str, set[int]] = {}
    config_maps: dict[str, dict] = {}
    for _, doc in documents:
        if doc["kind"] == "Service":
            ports = (doc.get("spec") or {}).get("ports") or []
            services.setdefault(_name(doc), set()).update(
                port["port"] for port in ports if isinstance(port, dict) and isinstance(port.get("port"), int)
            )
        elif doc["kind"] == "ConfigMap" and isinstance(doc.get("data"), dict):
            config_maps[_name(doc)] = doc["data"]
    backend_name = _backend_constants(root).get("SERVICE_NAME", (0, None))[1]
    endpoints, problems = [], []
    for rel, doc in documents:
        if doc["kind"] not in WORKLOAD_KINDS:
            continue
        workload = f"{doc['kind']} '{_name(doc)}'"
        for container in _containers(doc):
            env = _container_env(container, config_maps)
            where = f"{rel}: {workload} container '{container.get('name', '')}'"
            if (
                backend_name
                and env.get("OTEL_SERVICE_NAME") == backend_name
                and not _looks_like_backend(doc, backend_name)
            ):
                problems.append(
                    f"{where} sets OTEL_SERVICE_NAME={backend_name!r}, the backend's service.name "
                    "(expected only the backend, a workload named or labelled api/backend or running uvicorn)"
                )
            grpc = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").lower() == "grpc"
            for key, url in env.items():
                if not OTLP_ENDPOINT_KEY.search(key) or not url or "$(" in url:
                    continue
                endpoints.append((rel, workload, key, url))
                problem = None if grpc else _endpoint_problem(url)
                if problem:
                    problems.append(f"{where}: {key}={url!r} {problem}")
                    continue
                host, port = urlsplit(url).hostname or "", _url_port(url)
                service = host if host in services else host.split(".")[0]
                if service not in services:
                    known = ", ".join(sorted(services)) or "none"
                    problems.append(
                        f"{where}: {key}={url!r} names no Service {host!r} in deploy/ "
                        f"(expected one of the Services: {known})"
                    )
                elif port not in services[service]:
                    exposed = ", ".join(str(p) for p in sorted(services[service])) or "none"
                    problems.append(
                        f"{where}: {key}={url!r} uses port {port}, but Service {service!r} exposes {exposed} "
                        f"(expected a port of Service {service!r})"
                    )
    return endpoints, problems


def check_k8s_manifests(root: Path) -> Problems:
    """deploy/: each workload's OTLP endpoint names a Service and a port it exposes; the backend's
    service.name is used by the backend only."""
    return _k8s_endpoints(root)[1]


def _collector_configs(root: Path) -> list[tuple[str, dict]]:
    """(label, config) of every OpenTelemetry Collector config: collector config files, and
    ConfigMap data under deploy/ or in those files."""
    candidates = {
        path for path in _project_files(root) if any(fnmatch.fnmatch(path.name, n) for n in COLLECTOR_CONFIG_NAMES)
    }
    if (root / "deploy").is_dir():
        candidates.update(_yaml_files(root / "deploy"))
    configs = []
    for path in sorted(candidates):
        for doc in _yaml_documents(path):
            if not isinstance(doc, dict):
                continue
            if isinstance(doc.get("receivers"), dict):
                configs.append((_rel(root, path), doc))
            if doc.get("kind") == "ConfigMap" and isinstance(doc.get("data"), dict):
                for key, value in doc["data"].items():
                    try:
                        config = yaml.safe_load(value) if isinstance(value, str) else None
                    except yaml.YAMLError:
                        config = None
                    if isinstance(config, dict) and isinstance(config.get("receivers"), dict):
                        configs.append((f"{_rel(root, path)}: ConfigMap '{_name(doc)}' key '{key}'", config))
    return configs


def _app_otlp_ports(root: Path) -> set[int]:
    """Ports the apps send OTLP to: the backend constant, .env.example files, workload env."""
    urls = [_backend_constants(root).get("OTLP_ENDPOINT", (0, ""))[1]]
    env_files = [root / path for path in BACKEND_ENV_FILES]
    if (root / "web").is_dir():
        env_files += sorted((root / "web").glob(".env*.example"))
    for path in env_files:
        if path.is_file():
            urls += [value for key, (_, value) in _read_env_file(path).items() if OTLP_ENDPOINT_KEY.search(key)]
    urls += [url for *_, url in _k8s_endpoints(root)[0]]
    return {port for port in map(_url_port, filter(None, urls)) if port}


def check_collector_config(root: Path) -> Problems:
    """A collector's OTLP/HTTP receiver binds all interfaces, on the port the apps send to."""
    configs = _collector_configs(root)
    if not configs:
        return []
    app_ports = _app_otlp_ports(root)
    problems = []
    for label, config in configs:
        for receiver, settings in config["receivers"].items():
            if not str(receiver).split("/")[0].startswith("otlp") or not isinstance(settings, dict):
                continue
            protocols = settings.get("protocols")
            if not isinstance(protocols, dict) or "http" not in protocols:
                continue
            where = f"{label}: receiver '{receiver}'"
            http = protocols["http"] if isinstance(protocols["http"], dict) else {}
            endpoint = http.get("endpoint")
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
            if port.isdigit() and app_ports and int(port) not in app_ports:
                sent_to = ", ".join(str(p) for p in sorted(app_ports))
                problems.append(
                    f"{where} listens on port {port}, but the apps send OTLP to port {sent_to} "
                    f"(expected the receiver on port {sent_to})"
                )
    return problems


# ---- c2. the local stack: collector pipelines, names and ports across k8s, compose and configs --

COMPOSE_FILES = ("docker-compose.yaml", "docker-compose.yml", "compose.yaml", "compose.yml")
PIPELINE_PARTS = ("receivers", "processors", "exporters")
# host:port or scheme://host:port with a short host (a Service / compose service name).
SHORT_HOST_URL = re.compile(r"(?:https?://)?([a-z][-a-z0-9]*):(\d+)(?:/\S*)?")
LOCAL_HOSTS = frozenset({"localhost", "0.0.0.0"})


def check_collector_pipelines(root: Path) -> Problems:
    """Every component a collector pipeline uses is defined, and every defined one is used."""
    problems = []
    for label, config in _collector_configs(root):
        service = config.get("service") if isinstance(config.get("service"), dict) else {}
        pipelines = service.get("pipelines") if isinstance(service.get("pipelines"), dict) else {}
        if not pipelines:
            problems.append(f"{label}: no service.pipelines (expected traces, metrics and logs pipelines)")
            continue
        defined = {
            section: set(config.get(section) or {}) if isinstance(config.get(section) or {}, dict) else set()
            for section in (*PIPELINE_PARTS, "connectors", "extensions")
        }
        used: dict[str, set[str]] = {section: set() for section in defined}
        connector_as = {"receivers": set(), "exporters": set()}
        for name, pipeline in pipelines.items():
            pipeline = pipeline if isinstance(pipeline, dict) else {}
            for part in PIPELINE_PARTS:
                for component in pipeline.get(part) or []:
                    component = str(component)
                    if part != "processors" and component in defined["connectors"]:
                        used["connectors"].add(component)
                        connector_as[part].add(component)
                    elif component in defined[part]:
                        used[part].add(component)
                    else:
                        problems.append(
                            f"{label}: pipeline '{name}' uses {part[:-1]} '{component}', which is not defined "
                            f"(expected it under {part}:" + (" or connectors:)" if part != "processors" else ")")
                        )
            for part in ("receivers", "exporters"):
                if not pipeline.get(part):
                    problems.append(f"{label}: pipeline '{name}' has no {part} (expected at least one)")
        for extension in service.get("extensions") or []:
            used["extensions"].add(str(extension))
            if str(extension) not in defined["extensions"]:
                problems.append(
                    f"{label}: service.extensions lists '{extension}', which is not defined (expected it under "
                    "extensions:)"
                )
        for section, names in defined.items():
            for unused in sorted(names - used[section]):
                problems.append(
                    f"{label}: {section[:-1]} '{unused}' is defined but no pipeline uses it "
                    "(expected it in a pipeline, or removed)"
                )
        for connector in sorted(used["connectors"]):
            missing = [side[:-1] for side, names in connector_as.items() if connector not in names]
            if missing:
                problems.append(
                    f"{label}: connector '{connector}' is never used as {missing[0]} (expected it as the "
                    "exporter of one pipeline and the receiver of another)"
                )
    return problems


def _k8s_services(root: Path) -> dict[str, set[int]]:
    services: dict[str, set[int]] = {}
    for _, doc in _k8s_documents(root):
        if doc["kind"] == "Service":
            ports = (doc.get("spec") or {}).get("ports") or []
            services.setdefault(_name(doc), set()).update(
                port["port"] for port in ports if isinstance(port, dict) and isinstance(port.get("port"), int)
            )
    return services


def _compose(root: Path) -> tuple[str, dict] | None:
    for name in COMPOSE_FILES:
        documents = _yaml_documents(root / name)
        if documents and isinstance(documents[0], dict) and isinstance(documents[0].get("services"), dict):
            return name, documents[0]
    return None


def _short_host_urls(value: object) -> Iterator[tuple[str, int]]:
    """(host, port) of every `host:port` or `http://host:port/...` string with a short host name."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _short_host_urls(item)
    elif isinstance(value, list):
        for item in value:
            yield from _short_host_urls(item)
    elif isinstance(value, str):
        match = SHORT_HOST_URL.fullmatch(value.strip())
        if match and match.group(1) not in LOCAL_HOSTS:
            yield match.group(1), int(match.group(2))


def _stack_configs(root: Path) -> list[tuple[str, object]]:
    """(file, parsed YAML) of the component configs the stack mounts: deploy/config/*.yaml and the
    collector configs under deploy/."""
    config_dir = root / "deploy" / "config"
    paths = set(config_dir.glob("*.y*ml")) if config_dir.is_dir() else set()
    paths.update(
        path
        for path in _yaml_files(root / "deploy")
        if any(fnmatch.fnmatch(path.name, pattern) for pattern in COLLECTOR_CONFIG_NAMES)
    )
    return [
        (_rel(root, path), doc)
        for path in sorted(paths)
        if path.name != "kustomization.yaml"
        for doc in _yaml_documents(path)
    ]


def _compose_mount_sources(service: dict) -> list[str]:
    sources = []
    for volume in service.get("volumes") or []:
        source = volume.split(":")[0] if isinstance(volume, str) else (volume or {}).get("source", "")
        if isinstance(source, str) and source.startswith((".", "/")):
            sources.append(source)
    return sources


def _compose_command(service: dict) -> list[str] | None:
    command = service.get("command")
    if isinstance(command, str):
        return command.split()
    return [str(part) for part in command] if isinstance(command, list) else None


def check_stack_wiring(root: Path) -> Problems:
    """The stack's names and ports agree: config endpoints name a Service and port, compose runs the
    same services with the same config files, commands and images, and publishes the k3d ports."""
    if not (root / "deploy").is_dir():
        return []
    services = _k8s_services(root)
    compose = _compose(root)
    compose_file, compose_services = (compose[0], compose[1]["services"]) if compose else ("", {})
    problems = []
    for rel, config in _stack_configs(root):
        for host, port in _short_host_urls(config):
            if services and host not in services:
                problems.append(
                    f"{rel}: {host}:{port} names no Service {host!r} in deploy/ "
                    f"(expected one of: {', '.join(sorted(services))})"
                )
            elif services and port not in services[host]:
                exposed = ", ".join(str(p) for p in sorted(services[host]))
                problems.append(f"{rel}: {host}:{port} uses a port Service {host!r} does not expose ({exposed})")
            if compose and host not in compose_services:
                problems.append(f"{rel}: {host}:{port} names no service {host!r} in {compose_file}")
    config_maps: dict[str, dict] = {
        _name(doc): doc["data"]
        for _, doc in _k8s_documents(root)
        if doc["kind"] == "ConfigMap" and isinstance(doc.get("data"), dict)
    }
    workloads = [(rel, doc) for rel, doc in _k8s_documents(root) if doc["kind"] in WORKLOAD_KINDS]
    for rel, doc in workloads:
        for container in _containers(doc):
            for key, value in _container_env(container, config_maps).items():
                for host, port in _short_host_urls(value):
                    if services and host in services and port not in services[host]:
                        problems.append(
                            f"{rel}: {doc['kind']} '{_name(doc)}' env {key}={value!r}: Service {host!r} exposes "
                            f"{', '.join(str(p) for p in sorted(services[host]))}, not {port}"
                        )
                    elif services and host not in services:
                        problems.append(f"{rel}: {doc['kind']} '{_name(doc)}' env {key}={value!r} names no Service")
    if compose:
        problems += _compose_problems(root, compose_file, compose_services, workloads)
    return problems


def _compose_problems(root: Path, compose_file: str, compose_services: dict, workloads: list) -> Problems:
    problems = []
    containers = {
        str(container.get("name")): container
        for _, doc in workloads
        for container in _containers(doc)
        if _name(doc) == container.get("name")
    }
    mounted: set[str] = set()
    for name, service in compose_services.items():
        service = service if isinstance(service, dict) else {}
        env_files = service.get("env_file") or []
        env_files = [env_files] if isinstance(env_files, str) else env_files
        env_paths = [item if isinstance(item, str) else item.get("path", "") for item in env_files]
        for source in _compose_mount_sources(service) + env_paths:
            path = (root / source).resolve()
            mounted.add(path.as_posix())
            if not path.exists() and ".secrets" not in Path(source).parts:
                problems.append(f"{compose_file}: service '{name}' mounts {source}, which does not exist")
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment if "=" in item)
        for key, value in environment.items():
            for host, _port in _short_host_urls(str(value)):
                if host not in compose_services:
                    problems.append(f"{compose_file}: service '{name}' {key}={value!r} names no compose service")
            if OTLP_ENDPOINT_KEY.search(key) and (problem := _endpoint_problem(str(value))):
                problems.append(f"{compose_file}: service '{name}' {key}={value!r} {problem}")
        container = containers.get(name)
        if container is None:
            continue
        command, args = _compose_command(service), container.get("args")
        if command is not None and isinstance(args, list) and command != [str(arg) for arg in args]:
            problems.append(
                f"{compose_file}: service '{name}' runs {command}, but its k8s container runs {args} "
                "(expected the same flags and config path)"
            )
        image, k8s_image = service.get("image"), container.get("image")
        if "build" not in service and image and k8s_image and image != k8s_image:
            problems.append(f"{compose_file}: service '{name}' uses {image}, the k8s Deployment {k8s_image}")
    generators = _yaml_documents(root / "deploy" / "config" / "kustomization.yaml")
    for generator in (generators[0].get("configMapGenerator") or []) if generators else []:
        for entry in (generator.get("files") or []) + (generator.get("envs") or []):
            source = (root / "deploy" / "config" / str(entry).split("=")[-1]).resolve()
            if not any(source.as_posix() == m or source.as_posix().startswith(m + "/") for m in mounted):
                problems.append(
                    f"deploy/config/kustomization.yaml: {entry} reaches the k8s stack but no {compose_file} service "
                    "(expected one source of truth: mount it in compose too)"
                )
    problems += _published_port_problems(root, compose_file, compose_services)
    return problems


def _published_port_problems(root: Path, compose_file: str, compose_services: dict) -> Problems:
    """k3d maps localhost:H to a NodePort of a Service; compose publishes H for the same service."""
    node_ports: dict[int, tuple[str, int]] = {}
    cluster = None
    for rel, doc in _k8s_documents(root):
        if doc["kind"] == "Service":
            for port in (doc.get("spec") or {}).get("ports") or []:
                if isinstance(port, dict) and isinstance(port.get("nodePort"), int):
                    node_ports[port["nodePort"]] = (_name(doc), port.get("port"))
        elif str(doc.get("apiVersion", "")).startswith("k3d.io/"):
            cluster = (rel, doc)
    if cluster is None:
        return []
    published = {
        name: {":".join(str(port).split(":")[-2:]) for port in (service or {}).get("ports") or []}
        for name, service in compose_services.items()
    }
    problems = []
    for mapping in cluster[1].get("ports") or []:
        host, _, node = str((mapping or {}).get("port", "")).partition(":")
        if not (host.isdigit() and node.isdigit()):
            continue
        if int(node) not in node_ports:
            problems.append(f"{cluster[0]}: port {host}:{node} maps to NodePort {node}, which no Service declares")
            continue
        service, port = node_ports[int(node)]
        if f"{host}:{port}" not in published.get(service, set()):
            problems.append(
                f"{compose_file}: service '{service}' does not publish {host}:{port} "
                f"(expected the same localhost port as {cluster[0]})"
            )
    return problems


# ---- c3. Grafana: every data source a dashboard or a link names is provisioned ----------------

DATASOURCE_LINK_KEYS = ("datasourceUid", "targetUID")


def _datasource_uids_in(value: object) -> Iterator[str]:
    """UIDs a dashboard or data source refers to: {"datasource": {"uid": ...}} and *Uid keys."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "datasource" and isinstance(item, dict) and isinstance(item.get("uid"), str):
                yield item["uid"]
            elif key in DATASOURCE_LINK_KEYS and isinstance(item, str):
                yield item
            else:
                yield from _datasource_uids_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _datasource_uids_in(item)


def _panels(panels: object) -> Iterator[dict]:
    for panel in panels if isinstance(panels, list) else []:
        if isinstance(panel, dict):
            yield panel
            yield from _panels(panel.get("panels"))


def check_grafana_provisioning(root: Path) -> Problems:
    """Data source UIDs are unique and every UID named by a dashboard or a link exists; dashboards
    have a uid, a title, a schemaVersion and unique panel ids."""
    deploy = root / "deploy"
    if not deploy.is_dir():
        return []
    provisioned: dict[str, str] = {}
    links: list[tuple[str, str]] = []
    problems = []
    for path in _yaml_files(deploy):
        for doc in _yaml_documents(path):
            if not (isinstance(doc, dict) and isinstance(doc.get("datasources"), list)):
                continue
            rel = _rel(root, path)
            for source in doc["datasources"]:
                uid = source.get("uid") if isinstance(source, dict) else None
                if not isinstance(uid, str):
                    problems.append(f"{rel}: data source {source.get('name')!r} has no uid (expected a fixed uid)")
                    continue
                if uid in provisioned:
                    problems.append(f"{rel}: data source uid {uid!r} is provisioned twice")
                provisioned[uid] = rel
                links += [(f"{rel}: data source {uid!r}", ref) for ref in _datasource_uids_in(source)]
    if not provisioned:
        return problems
    for path in _project_files(deploy):
        if path.suffix != ".json":
            continue
        try:
            board = json.loads(_read_text(path) or "")
        except json.JSONDecodeError:
            continue  # check_files_parse reports it
        if not isinstance(board, dict) or "panels" not in board:
            continue
        rel = _rel(root, path)
        for key in ("uid", "title", "schemaVersion"):
            if not board.get(key):
                problems.append(f"{rel}: dashboard has no {key} (expected Grafana dashboard JSON)")
        ids = [panel.get("id") for panel in _panels(board["panels"])]
        duplicates = sorted({i for i in ids if ids.count(i) > 1}, key=str)
        if None in ids or duplicates:
            problems.append(f"{rel}: panel ids are missing or repeated {duplicates} (expected unique ids)")
        links += [(rel, ref) for ref in _datasource_uids_in(board)]
    for where, uid in links:
        if uid not in provisioned and not uid.startswith(("-- ", "$")):
            problems.append(
                f"{where}: refers to data source uid {uid!r}, which is not provisioned "
                f"(expected one of: {', '.join(sorted(provisioned))})"
            )
    return problems


# ---- d. every YAML and JSON file parses --------------------------------------------------------


def check_files_parse(root: Path) -> Problems:
    """Every .yaml, .yml and .json file parses (all documents of a YAML stream; JSONC for tsconfig)."""
    problems = []
    for path in _project_files(root):
        if path.suffix not in {".yaml", ".yml", ".json"}:
            continue
        rel = _rel(root, path)
        text = _read_text(path)
        if text is None:
            problems.append(f"{rel}: is not UTF-8 text (expected a UTF-8 {path.suffix[1:].upper()} file)")
            continue
        if path.suffix == ".json":
            jsonc = any(fnmatch.fnmatch(path.name, name) for name in JSONC_NAMES) or path.parent.name == ".vscode"
            try:
                json.loads(_strip_jsonc(text) if jsonc else text)
            except json.JSONDecodeError as error:
                problems.append(
                    f"{rel}:{error.lineno}:{error.colno}: does not parse as JSON: {error.msg} (expected valid JSON)"
                )
            continue
        try:
            for _ in yaml.safe_load_all(text):
                pass
        except yaml.YAMLError as error:
            where, problem = _yaml_error(error)
            problems.append(f"{rel}{where}: does not parse as YAML: {problem} (expected valid YAML)")
    return problems


# ---- e. nothing left unrendered --------------------------------------------------------------


def check_no_unrendered_jinja(root: Path) -> Problems:
    """No text file holds a cookiecutter variable, a Jinja statement or a Jinja comment."""
    problems = []
    for path in _project_files(root):
        text = _read_text(path)
        if text is None:
            continue
        for kind, pattern in JINJA_MARKERS:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                shown = " ".join(match.group(0).split())
                if len(shown) > SHOWN_MARKER_LIMIT:
                    shown = shown[:SHOWN_MARKER_LIMIT] + "..."
                problems.append(
                    f"{_rel(root, path)}:{line}: unrendered template text, {kind}: {shown!r} "
                    "(expected cookiecutter to have rendered it)"
                )
    return problems


CHECKS: tuple[Callable[[Path], Problems], ...] = (
    check_apps_instrumented,
    check_backend_constants,
    check_env_files,
    check_web_config,
    check_k8s_manifests,
    check_collector_config,
    check_collector_pipelines,
    check_stack_wiring,
    check_grafana_provisioning,
    check_files_parse,
    check_no_unrendered_jinja,
)


def run_checks(root: Path) -> Problems:
    return [problem for check in CHECKS for problem in check(root)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=PROJECT_ROOT, help="project root (default: %(default)s)")
    root = parser.parse_args(argv).root.resolve()
    if yaml is None:
        print(
            "wiring: cannot run: PyYAML is not installed (pip install pyyaml, or the backend's dev extras)",
            file=sys.stderr,
        )
        return 2
    if not root.is_dir():
        print(f"wiring: cannot run: {root} is not a directory", file=sys.stderr)
        return 2
    problems = run_checks(root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"wiring: {len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print(f"wiring: OK ({len(CHECKS)} checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
