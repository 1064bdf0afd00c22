"""The core's shape, checked by reading the source: plugins use only the SDK, the core knows no task,
and no core module imports another in a cycle (lazy, function-level imports included)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT

import modelzoo
from modelzoo import sdk

CORE = ROOT / "src" / "modelzoo"
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, list[str], int]]:
    """``(imported module, [names], line)`` for every import, relative ones resolved: module-level,
    function-level and ``if TYPE_CHECKING:`` imports alike (a cycle hidden in any of them is still a cycle),
    plus the modules a package's lazy ``EXPORTS`` table names."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "EXPORTS" for t in node.targets):
            out += _lazy_exports(node.value, module, is_package)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "EXPORTS":
            out += _lazy_exports(node.value, module, is_package)
        if isinstance(node, ast.Import):
            out += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                parent = parts if is_package else parts[:-1]
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join(parent + ([node.module] if node.module else []))
            out.append((base, [alias.name for alias in node.names], node.lineno))
    return out


def _lazy_exports(value: ast.AST | None, module: str, is_package: bool) -> list[tuple[str, list[str], int]]:
    """The ``name -> module`` entries of a lazy export table, as imports of those names."""
    if not isinstance(value, ast.Dict):
        return []
    out = []
    for key, target in zip(value.keys, value.values):
        if isinstance(key, ast.Constant) and isinstance(target, ast.Constant) and isinstance(target.value, str):
            name = target.value
            if name.startswith("."):
                parent = module.split(".") if is_package else module.split(".")[:-1]
                name = ".".join([*parent, name[1:]])
            out.append((name, [key.value], target.lineno))
    return out


def _module_name(path: Path, src: Path) -> tuple[str, bool]:
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _plugin_sources(plugin: Path) -> list[Path]:
    return sorted((plugin / "src").rglob("*.py"))


def _dependencies(plugin: Path) -> set[str]:
    data = tomllib.loads((plugin / "pyproject.toml").read_text(encoding="utf-8"))
    deps = data["project"].get("dependencies", [])
    return {re.split(r"[<>=!\[ ;]", d, maxsplit=1)[0].strip().lower().replace("-", "_") for d in deps}


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_plugins_use_only_the_sdk_and_no_private_names(plugin):
    allowed = set(sdk.__all__) | set(modelzoo.__all__)
    own = {p.name for p in (plugin / "src").iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    deps = _dependencies(plugin)
    problems = []
    for path in _plugin_sources(plugin):
        module, is_package = _module_name(path, plugin / "src")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, names, line in _imports(tree, module, is_package):
            where = f"{path.relative_to(ROOT)}:{line}"
            top = name.split(".")[0]
            if any(part.startswith("_") for part in name.split(".")) and name != "__future__":
                problems.append(f"{where}: imports private module {name}")
            problems += [f"{where}: imports private name {name}.{n}" for n in names if n.startswith("_")]
            if top == "modelzoo":
                if name not in ("modelzoo", "modelzoo.sdk"):
                    problems.append(f"{where}: imports core module {name}; use modelzoo.sdk")
                problems += [f"{where}: {n} is not in the SDK" for n in names if n != "*" and n not in allowed]
            elif top.startswith("zoo_") and top not in own and top not in deps:
                problems.append(f"{where}: imports plugin {top} without declaring it a dependency")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "modelzoo":
                if node.attr not in allowed:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: modelzoo.{node.attr} is not in the SDK")
    assert not problems, "\n".join(problems)


def test_every_sdk_name_resolves():
    for name in sdk.__all__:
        assert getattr(sdk, name) is getattr(modelzoo, name), name


def _core_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(CORE.rglob("*.py")):
        module, is_package = _module_name(path, CORE.parent)
        targets = set()
        for name, names, _ in _imports(ast.parse(path.read_text(encoding="utf-8")), module, is_package):
            if name.split(".")[0] != "modelzoo":
                continue
            for candidate in [f"{name}.{n}" for n in names] + [name]:
                if (CORE.parent / candidate.replace(".", "/")).with_suffix(".py").is_file() or (
                    CORE.parent / candidate.replace(".", "/") / "__init__.py"
                ).is_file():
                    if candidate != module:
                        targets.add(candidate)
                    break
        graph[module] = targets
    return graph


def test_core_modules_import_each_other_without_cycles():
    graph = _core_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


#: words that name a task, a model family or a task's data; the core must use none of them
TASK_WORDS = re.compile(
    r"detection|detector|text-classification|image-classification|tokeni[sz]|coco|\bvoc\b|confusion|"
    r"fashion|resnet|bert|fasterrcnn|\blabels? map\b",
    re.IGNORECASE,
)


def test_the_core_names_no_task_and_no_model_family():
    hits = []
    for path in sorted(CORE.rglob("*.py")):
        if path.parent.name == "testing":
            continue  # test fixtures may name the first-party plugins they exercise
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if TASK_WORDS.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "\n".join(hits)


#: the only modules at the top of the core; everything else lives in a subpackage (its room)
TOP_LEVEL = {"__init__", "__main__", "sdk", "errors", "hookspecs", "loading"}
#: a core module past this many lines does more than one job
MAX_MODULE_LINES = 600
#: a function past this many lines needs a reason written beside it (``# long: why`` on or above its ``def``)
MAX_FUNCTION_LINES = 80


def test_the_core_is_rooms_each_saying_what_it_is_for():
    stray = sorted(p.stem for p in CORE.glob("*.py") if p.stem not in TOP_LEVEL)
    assert not stray, f"modules at the top of the core (move them into a subpackage): {stray}"
    problems = []
    for init in sorted(CORE.rglob("__init__.py")):
        if init.parent == CORE:
            continue
        tree = ast.parse(init.read_text(encoding="utf-8"))
        where = init.relative_to(ROOT)
        if not (ast.get_docstring(tree) or "").strip():
            problems.append(f"{where}: no docstring saying what the package is for")
        if not any(
            isinstance(n, (ast.Assign, ast.AnnAssign)) and "__all__" in ast.unparse(n).split("=")[0] for n in tree.body
        ):
            problems.append(f"{where}: no __all__ naming its surface")
    assert not problems, "\n".join(problems)


def test_every_package_surface_resolves():
    import importlib

    for init in sorted(CORE.rglob("__init__.py")):
        module, _ = _module_name(init, CORE.parent)
        package = importlib.import_module(module)
        for name in getattr(package, "__all__", []):
            assert getattr(package, name) is not None, f"{module}.{name}"


def test_modules_and_functions_stay_small():
    problems = []
    for path in sorted(CORE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        where = path.relative_to(ROOT)
        if len(lines) > MAX_MODULE_LINES:
            problems.append(f"{where}: {len(lines)} lines (at most {MAX_MODULE_LINES}; split it by job)")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            length = node.end_lineno - node.lineno + 1
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            reason = any("# long:" in lines[i - 1] for i in (first - 1, first, node.lineno) if i >= 1)
            if length > MAX_FUNCTION_LINES and not reason:
                problems.append(f"{where}:{node.lineno}: {node.name} is {length} lines; split it or write # long: why")
    assert not problems, "\n".join(problems)
