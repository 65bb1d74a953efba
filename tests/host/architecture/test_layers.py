"""The house rules of host/, checked from the import graph (every import, also inside functions and under
TYPE_CHECKING): no module imports one from a higher layer, and no import circle between modules."""

from __future__ import annotations

import ast
from pathlib import Path

HOST = Path(__file__).resolve().parents[3] / "host"

#: Bottom to top, as README.md's "Layers" lists them. A package may import its own modules and any
#: package of a lower layer; packages of one layer do not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("host.errors", "host.cache"),
    ("host.chip",),
    ("host.espdl", "host.espdl_cpp", "host.protocol", "host.firmware", "host.dataset"),
    ("host.reference",),
    ("host.model",),
    ("host.dut",),
    ("host.verdict", "host.latency", "host.report", "host.accuracy"),
    ("host.runs",),
    ("host.hil", "host.cli", "host"),
    ("host.__main__",),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(HOST.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in HOST.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The host modules `path` imports; `from pkg import sub` counts as importing pkg.sub when sub is a module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "host")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "host":
            subs = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
            found.update(subs or {node.module})
            if len(subs) < len(node.names):
                found.add(node.module)
    return found & set(modules)


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def _layer(module: str) -> int:
    package = _package(module)
    for index, members in enumerate(LAYERS):
        if package in members:
            return index
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS (and to README.md)")


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def test_every_package_has_a_layer() -> None:
    for module in _modules():
        _layer(module)


def test_no_import_from_a_higher_layer_or_a_sibling_package() -> None:
    bad = []
    for module, imported in _graph().items():
        for other in imported:
            if _package(other) == _package(module) or other in ("host.errors",):
                continue
            if _layer(other) >= _layer(module) and _package(module) != "host":
                bad.append(f"{module} -> {other} (layer {_layer(module)} -> {_layer(other)})")
    assert not bad, "imports that run upward or sideways:\n" + "\n".join(sorted(bad))


def test_no_import_circle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_no_pytest_below_the_plugin() -> None:
    """Only the plugin imports pytest: a DUT, the reference and the pipeline work from a plain script."""
    users = [name for name, path in _modules().items()
             if _package(name) not in ("host.hil",) and ("import pytest" in path.read_text()
                                                           or "from pytest" in path.read_text())]
    assert not users, f"modules below the plugin that import pytest: {users}"
