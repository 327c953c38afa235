"""The benchmark registry and applicability (DESIGN 4.5).

``BENCHMARKS`` maps a name to its :class:`BenchmarkMeta`; :func:`applicability`
decides whether a model can be evaluated on a benchmark from its declared
capabilities, and :func:`plan` expands models x benchmarks into the pairs to
run and the pairs skipped, each with its reason. The built-in benchmarks are
data (``builtin/<dataset family>.yaml``), registered on import.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from avbench.benchmarks.meta import BenchmarkMeta

#: the built-in benchmarks, one YAML file per dataset family (a list of BenchmarkMeta mappings,
#: the format of a suite's ``define_benchmarks:``)
BUILTIN_DIR = Path(__file__).with_name("builtin")

BENCHMARKS: dict[str, BenchmarkMeta] = {}


def register(meta: BenchmarkMeta, *, overwrite: bool = False) -> BenchmarkMeta:
    """Add a benchmark to :data:`BENCHMARKS` (names are unique).

    Registering a meta equal to the one already held under its name is a
    no-op (a suite file may declare a benchmark that is already known).

    Raises:
        KeyError: a different benchmark is registered under that name and
            ``overwrite`` is false.
    """
    old = BENCHMARKS.get(meta.name)
    if old is not None and old != meta and not overwrite:
        raise KeyError(f"benchmark {meta.name!r} is already registered (differently)")
    if old is None or overwrite:
        BENCHMARKS[meta.name] = meta
    return BENCHMARKS[meta.name]


def load_benchmarks(path: str | Path) -> list[BenchmarkMeta]:
    """Validate and register the benchmarks of a YAML file (a list of BenchmarkMeta mappings).

    Raises:
        ValueError: the file does not hold a list; pydantic.ValidationError: an
            entry is not a valid benchmark; KeyError: see :func:`register`.
    """
    entries = yaml.safe_load(Path(path).read_text()) or []
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of benchmarks, got {type(entries).__name__}")
    return [register(BenchmarkMeta.model_validate(e)) for e in entries]


def get_benchmark(name: str | BenchmarkMeta) -> BenchmarkMeta:
    """The benchmark called ``name`` (a :class:`BenchmarkMeta` is returned as is)."""
    if isinstance(name, BenchmarkMeta):
        return name
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise KeyError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}") from None


def list_benchmarks() -> list[str]:
    """The registered benchmark names, sorted."""
    return sorted(BENCHMARKS)


for _file in sorted(BUILTIN_DIR.glob("*.yaml")):
    load_benchmarks(_file)


# --- applicability ------------------------------------------------------------
class Applicability(BaseModel):
    """Whether a model can be evaluated on a benchmark, and why not."""

    model_config = ConfigDict(frozen=True)

    model: str
    benchmark: str
    applicable: bool
    capability: str | None = None
    reason: str | None = None


def model_name(model: Any) -> str:
    """``model.meta.name``, else the model's class name."""
    meta = getattr(model, "meta", None)
    return str(getattr(meta, "name", None) or type(model).__name__)


def capabilities_of(model: Any) -> frozenset[str]:
    """The capabilities a model declares in ``model.meta.capabilities``."""
    meta = getattr(model, "meta", None)
    caps = getattr(meta, "capabilities", None)
    if caps is None:
        return frozenset()
    return frozenset(str(c) for c in caps)


def pick_capability(model: Any, requires: Iterable[str]) -> str | None:
    """The first capability of ``requires`` the model has, else None."""
    caps = capabilities_of(model)
    for c in requires:
        if c in caps:
            return c
    return None


def applicability(model: Any, benchmark: str | BenchmarkMeta) -> Applicability:
    """Applicable iff the model has a capability serving the benchmark's primary task."""
    bench = get_benchmark(benchmark)
    cap = pick_capability(model, bench.requires)
    name = model_name(model)
    if cap is None:
        have = sorted(capabilities_of(model)) or ["none"]
        return Applicability(
            model=name,
            benchmark=bench.name,
            applicable=False,
            reason=(
                f"needs capability {' or '.join(bench.requires)} for "
                f"{bench.primary_task.task}; model has {', '.join(have)}"
            ),
        )
    return Applicability(model=name, benchmark=bench.name, applicable=True, capability=cap)


def plan(
    models: Iterable[Any], benchmarks: Iterable[str | BenchmarkMeta] | None = None
) -> tuple[list[tuple[Any, BenchmarkMeta]], list[Applicability]]:
    """Split models x benchmarks into pairs to run and skipped pairs (with reasons)."""
    benches = [
        get_benchmark(b) for b in (benchmarks if benchmarks is not None else list_benchmarks())
    ]
    run, skipped = [], []
    for m in models:
        for b in benches:
            a = applicability(m, b)
            if a.applicable:
                run.append((m, b))
            else:
                skipped.append(a)
    return run, skipped
