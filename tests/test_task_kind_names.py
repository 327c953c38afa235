"""No package module outside ``avbench/benchmarks/tasks/`` names a task kind.

Task kinds are plug-ins: the evaluator, the runner, the result store and the
leaderboard look them up in ``TASK_KINDS``. A module that compares against
``"localization"`` or imports ``LocalizationTask`` would have to be edited for
every new kind; this test lists every such place (docstrings and comments are
free to mention kinds).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from avbench.benchmarks import TASK_KINDS

PACKAGE = Path(__file__).resolve().parents[1] / "avbench"
TASKS = PACKAGE / "benchmarks" / "tasks"


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants of the module, classes and functions."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def kind_mentions(source: str, kinds: set[str], spec_names: set[str]) -> Iterator[tuple[int, str]]:
    """(line, what) for every non-docstring string equal to a kind and every spec class name."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in kinds and id(node) not in docs:
                yield node.lineno, f"string {node.value!r}"
        elif isinstance(node, ast.Name) and node.id in spec_names:
            yield node.lineno, f"name {node.id}"
        elif isinstance(node, ast.Attribute) and node.attr in spec_names:
            yield node.lineno, f"attribute .{node.attr}"
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in spec_names:
                    yield node.lineno, f"import {alias.name}"


def _offenders() -> list[str]:
    kinds = set(TASK_KINDS)
    spec_names = {cls.__name__ for cls in TASK_KINDS.values()}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(TASKS):
            continue
        for line, what in kind_mentions(path.read_text(), kinds, spec_names):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {what}")
    return found


def test_the_detector_sees_strings_names_attributes_and_imports_but_not_docstrings():
    src = '''"""localization in a docstring is fine."""
from avbench.benchmarks import LocalizationTask
import avbench.benchmarks as B

def f(t):
    """retrieval, also fine."""
    x = B.RetrievalTask
    return t.task == "localization" or isinstance(t, LocalizationTask)
'''
    hits = list(kind_mentions(src, {"localization", "retrieval"},
                              {"LocalizationTask", "RetrievalTask"}))
    assert sorted(hits) == [(2, "import LocalizationTask"), (7, "attribute .RetrievalTask"),
                            (8, "name LocalizationTask"), (8, "string 'localization'")]


def test_no_module_outside_the_tasks_package_names_a_task_kind():
    offenders = _offenders()
    assert not offenders, "task kinds named outside avbench/benchmarks/tasks/:\n" + "\n".join(
        offenders
    )
