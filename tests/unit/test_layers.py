"""The package's modules import one way: each layer only from its own layer and the ones below.

Read from the source with :mod:`ast`, so imports inside functions and under ``TYPE_CHECKING``
count as much as those at the top. The layers are described in ``docs/architecture.md``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_mlops"

#: first part of a module's name below the package -> its layer (higher may import lower)
LAYERS: Mapping[str, int] = {
    # 0 base: errors, results, files, settings validation and the configuration itself
    **dict.fromkeys(
        ("errors", "results", "_files", "_version", "_progress", "_gpu", "_engines", "params"), 0
    ),
    "config": 0,
    # 1 the data and the models
    "data": 1,
    "models": 1,
    # 2 checks on them, and the ONNX export
    "checks": 2,
    "export": 2,
    # 3 gates: a check bound to settings, on the loaded project
    "gates": 3,
    "project": 3,
    # 4 what runs gates or ships models: pytest, the command line, deploy, monitoring, reports
    **dict.fromkeys(
        (
            "plugin",
            "session",
            "cli",
            "commands",
            "ci",
            "stages",
            "deploy",
            "monitor",
            "engines",
            "report",
        ),
        4,
    ),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imported(module: str, path: Path) -> Iterator[tuple[int, str]]:
    """``(line, name)`` of every import in *path*, anywhere in the file, relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _graph() -> tuple[dict[str, set[str]], dict[str, list[tuple[int, str]]]]:
    """Module -> the package modules it imports; and where each import is (for messages)."""
    modules = _modules()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    where: dict[str, list[tuple[int, str]]] = {name: [] for name in modules}
    for name, path in modules.items():
        for line, target in _imported(name, path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("pytest_mlops") and target != name:
                edges[name].add(target)
                where[name].append((line, target))
    return edges, where


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def _cycles(edges: Mapping[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_every_module_has_a_layer():
    unplaced = sorted(
        name for name in _modules() if name != "pytest_mlops" and _layer(name) is None
    )
    assert not unplaced, f"add these modules to LAYERS (and docs/architecture.md): {unplaced}"


def test_no_module_imports_a_higher_layer():
    edges, where = _graph()
    upward = [
        f"{name}:{line} imports {target} (layer {_layer(target)} > {_layer(name)})"
        for name in sorted(edges)
        if name != "pytest_mlops"
        for line, target in sorted(where[name])
        if target != "pytest_mlops" and (_layer(target) or 0) > (_layer(name) or 0)
    ]
    assert not upward, "\n".join(upward)


def test_nothing_inside_the_package_imports_its_public_api():
    edges, where = _graph()
    inward = [
        f"{name}:{line}"
        for name in sorted(edges)
        for line, target in where[name]
        if target == "pytest_mlops" and name != "pytest_mlops"
    ]
    assert not inward, f"import the defining module instead of pytest_mlops: {inward}"


def test_no_import_cycles():
    edges, _ = _graph()
    cycles = [sorted(c) for c in _cycles(edges)]
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [frozenset("abc")]),
    ],
)
def test_the_cycle_finder_finds_cycles(edges, expected):
    assert _cycles(edges) == expected


def test_function_level_imports_count(tmp_path):
    path = tmp_path / "mod.py"
    path.write_text("def f():\n    from pytest_mlops.plugin import STATE\n", encoding="utf-8")
    assert (2, "pytest_mlops.plugin") in list(_imported("pytest_mlops.data.mod", path))


#: the longest a function of the package may be, in lines (decorators and docstring included)
LONGEST_FUNCTION = 60


def _long_functions(path: Path, limit: int) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - first + 1
            if length > limit:
                yield f"{path.name}:{node.lineno} {node.name} ({length} lines)"


def test_no_function_is_longer_than_the_bound():
    long = [
        found for path in _modules().values() for found in _long_functions(path, LONGEST_FUNCTION)
    ]
    assert not long, f"split these into named steps (at most {LONGEST_FUNCTION} lines): {long}"


def test_the_length_check_finds_long_functions(tmp_path):
    path = tmp_path / "mod.py"
    body = "".join(f"    x{i} = {i}\n" for i in range(LONGEST_FUNCTION))
    path.write_text(f"def short():\n    pass\n\n\ndef long():\n{body}", encoding="utf-8")
    assert [f.split(" ")[1] for f in _long_functions(path, LONGEST_FUNCTION)] == ["long"]
