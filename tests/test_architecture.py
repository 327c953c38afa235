"""The layering rules of docs/architecture.md, checked on the package source.

Every import counts, lazy ones inside functions too (a lazy import hides a cycle
from Python, not from the design); only ``TYPE_CHECKING`` imports are left out:
there is no import cycle between avbench modules, data never imports the layers
after it, and dataset readers never import the synthetic world.
"""

from __future__ import annotations

import ast
from pathlib import Path

import avbench

PACKAGE = Path(avbench.__file__).parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """avbench modules imported by ``path``, in functions too, not under ``TYPE_CHECKING``
    (``from a import b`` counts ``a.b`` when that is a module, else ``a``)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and _is_type_checking(node):
                continue
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    visit([n for n in getattr(node, field, []) if isinstance(n, ast.AST)])
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name.startswith("avbench"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                if not base.startswith("avbench"):
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    out.add(sub if sub in modules else base)

    visit(ast.parse(path.read_text()).body)
    out.discard(name)
    return out


def _graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _top_level_imports(p, modules) & modules for p in paths}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle between modules (a package importing its own submodules excluded)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def deps(m: str) -> set[str]:
        return {d for d in graph[m] if not d.startswith(m + ".")}  # __init__ re-exports

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(deps(m)):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycles_between_avbench_modules():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_data_flows_one_way():
    later = ("avbench.models", "avbench.benchmarks", "avbench.runner", "avbench.metrics",
             "avbench.cli")
    bad = [(m, d) for m, ds in _graph().items() if m.startswith("avbench.data")
           for d in ds if d.startswith(later)]
    bad += [(m, d) for m, ds in _graph().items() if m.startswith(("avbench.models", "avbench.nn"))
            for d in ds if d.startswith(("avbench.benchmarks", "avbench.runner"))]
    assert not bad, f"imports against the data flow: {bad}"


def test_dataset_readers_do_not_import_the_synthetic_world():
    bad = [(m, d) for m, ds in _graph().items() if m.startswith("avbench.data.datasets")
           for d in ds if d.startswith("avbench.data.synthetic")]
    assert not bad, bad
