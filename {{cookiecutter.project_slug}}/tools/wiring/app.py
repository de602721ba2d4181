# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Every FastAPI app under backend/app is passed to init_telemetry, in the scope that built it."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from .project import BACKEND_APP, Project, walk

SCOPES = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of one scope, without the bodies of the functions and classes defined in it."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def _imported_as(tree: ast.Module, name: str, module_part: str) -> set[str]:
    """Local names bound to `name` imported from a module whose dotted name contains `module_part`."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and module_part in (node.module or "")
        for alias in node.names
        if alias.name == name
    }


def _imports_telemetry(tree: ast.Module) -> bool:
    """init_telemetry (or the telemetry package itself) is imported from a module named telemetry."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if "telemetry" in (node.module or "").split(".") and any(a.name == "init_telemetry" for a in node.names):
                return True
            if any(alias.name == "telemetry" for alias in node.names):
                return True
        if isinstance(node, ast.Import) and any("telemetry" in alias.name.split(".") for alias in node.names):
            return True
    return False


def _calls(node: ast.AST, local_names: set[str], attribute: str) -> bool:
    """`node` is a call of one of `local_names`, or of `<something>.<attribute>`."""
    if not isinstance(node, ast.Call):
        return False
    if isinstance(node.func, ast.Name):
        return node.func.id in local_names
    return isinstance(node.func, ast.Attribute) and node.func.attr == attribute


def _scope_label(scope: ast.AST) -> str:
    if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
        return f"in {scope.name}()"
    if isinstance(scope, ast.ClassDef):
        return f"in class {scope.name}"
    if isinstance(scope, ast.Lambda):
        return "in the lambda"
    return "at module level"


def _module_problems(rel: str, tree: ast.Module) -> tuple[int, list[str]]:
    """(number of FastAPI apps built in the module, problems with them)."""
    fastapi_names = {"FastAPI"} | _imported_as(tree, "FastAPI", "fastapi")
    init_names = {"init_telemetry"} | _imported_as(tree, "init_telemetry", "telemetry")
    apps, problems = 0, []
    for scope in (node for node in ast.walk(tree) if isinstance(node, SCOPES)):
        own = list(_own_nodes(scope))
        bound: dict[int, str] = {}  # id of a FastAPI(...) call -> the name it is assigned to
        for node in own:
            if isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr) and _calls(
                node.value, fastapi_names, "FastAPI"
            ):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                bound[id(node.value)] = ast.unparse(targets[-1])
        passed_names: set[str] = set()
        passed_calls: set[int] = set()  # init_telemetry(FastAPI(...)) needs no name
        for call in (node for node in own if _calls(node, init_names, "init_telemetry")):
            for arg in call.args[:1] + [keyword.value for keyword in call.keywords if keyword.arg == "app"]:
                passed_names.add(ast.unparse(arg))
                passed_calls.add(id(arg))
        for node in (node for node in own if _calls(node, fastapi_names, "FastAPI")):
            apps += 1
            where, label, name = f"{rel}:{node.lineno}", _scope_label(scope), bound.get(id(node))
            if name is None and id(node) not in passed_calls:
                problems.append(
                    f"{where}: FastAPI(...) {label} is not bound to a name, so nothing shows it reaches "
                    "init_telemetry (expected app = FastAPI(...) and then init_telemetry(app, ...))"
                )
            elif name is not None and name not in passed_names:
                problems.append(
                    f"{where}: FastAPI app '{name}' {label} is not passed to init_telemetry "
                    f"(expected init_telemetry({name}, ...) {label})"
                )
    if apps and not _imports_telemetry(tree):
        problems.append(
            f"{rel}: init_telemetry is not imported from the telemetry package "
            "(expected from .telemetry import init_telemetry)"
        )
    return apps, problems


def check_apps_instrumented(project: Project) -> list[str]:
    """Every FastAPI app in backend/app (tests aside) is passed to init_telemetry in its own scope."""
    app_dir = project.root / BACKEND_APP
    if not app_dir.is_dir():
        return [f"{BACKEND_APP.as_posix()}: directory not found (expected the FastAPI backend package)"]
    apps, problems = 0, []
    for path in walk(app_dir):
        inside = path.relative_to(app_dir)
        is_test = "tests" in inside.parts or inside.name.startswith("test_") or inside.name == "conftest.py"
        if path.suffix != ".py" or is_test:  # tests build bare apps on purpose
            continue
        rel = project.rel(path)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        except SyntaxError as error:
            problems.append(f"{rel}:{error.lineno or 0}: does not parse as Python: {error.msg} (expected valid Python)")
            continue
        except (OSError, UnicodeDecodeError, ValueError) as error:
            problems.append(f"{rel}: cannot be read: {error} (expected UTF-8 Python source)")
            continue
        found, module_problems = _module_problems(rel, tree)
        apps += found
        problems += module_problems
    if apps == 0 and not problems:
        problems.append(f"{BACKEND_APP.as_posix()}: no FastAPI(...) app found (expected app = FastAPI(...) in main.py)")
    return problems
