"""Score one model on the benchmarks of a datamodule's test split (``avbench test``).

The benchmarks are the registered ones (:data:`avbench.benchmarks.BENCHMARKS`)
whose dataset family is the datamodule's (:func:`test_split_family`); each is
scored through :func:`avbench.benchmarks.evaluate`, the runner's one evaluation
path, so the numbers are the ones ``avbench benchmark`` stores for the same
weights. :func:`result_metrics` names them ``<benchmark>/<metric>`` as the runner
logs them to W&B.

Family of a datamodule's test split:

- ``VGGSoundDataModule`` with ``test_set: vggss`` / ``vggss_heard`` /
  ``vggss_unheard`` -> benchmark dataset ``vggss``, subset ``all`` / ``heard`` /
  ``unheard``; with ``test_set: vggsound`` -> ``vggsound`` (no benchmark yet);
- ``AVSBenchDataModule`` -> ``avsbench`` with its ``subset`` (``s4``, ``ms3``);
- any other datamodule -> its class's ``dataset_name`` (``flickr``, ``ave``, ...);
- a root written by the synthetic world (``avbench_synthetic.json``) also serves
  the ``synthetic`` benchmarks (graph recovery reads the planted graph there).

A benchmark of the family with another subset, or one the model has no
capability for, is listed as not run, with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

#: the file every synthetic writer puts in its root (preset, seed, world)
SYNTHETIC_MARKER = "avbench_synthetic.json"


def test_split_family(datamodule: Any) -> tuple[str, str | None]:
    """``(benchmark dataset, subset)`` of ``datamodule``'s test split (module docstring).

    ``subset`` is None when the datamodule does not choose one. An
    :class:`~avbench.data.datamodules.AVDataModule` says it (``test_family``);
    any other datamodule is its ``dataset_name`` (else class name) and ``subset``.
    """
    family = getattr(datamodule, "test_family", None)
    if family is not None:
        return family
    subset = getattr(datamodule, "subset", None)
    return (str(getattr(type(datamodule), "dataset_name", type(datamodule).__name__)),
            subset if isinstance(subset, str) else None)


@dataclass
class BenchmarkPlan:
    """The benchmarks of a datamodule for one model.

    Attributes:
        family: ``(dataset, subset)`` of the datamodule's test split.
        run: names of the benchmarks to score.
        not_run: ``{benchmark: reason}`` for the family's benchmarks not scored.
    """

    family: tuple[str, str | None]
    run: list[str] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)


def plan_datamodule(model: Any, datamodule: Any) -> BenchmarkPlan:
    """Which registered benchmarks ``model`` is scored on over ``datamodule`` (module docstring)."""
    from avbench.benchmarks import BENCHMARKS, applicability

    family, subset = test_split_family(datamodule)
    root = getattr(datamodule, "root", None)
    synthetic = root is not None and (Path(root) / SYNTHETIC_MARKER).is_file()
    plan = BenchmarkPlan(family=(family, subset))
    for name in sorted(BENCHMARKS):
        bench = BENCHMARKS[name]
        if bench.dataset != family and not (synthetic and bench.dataset == "synthetic"):
            continue
        if bench.dataset == family and bench.subset and subset and bench.subset != subset:
            plan.not_run[name] = (f"needs the {bench.dataset} subset {bench.subset!r}; the "
                                  f"datamodule's test split is subset {subset!r}")
            continue
        app = applicability(model, bench)
        if app.applicable:
            plan.run.append(name)
        else:
            plan.not_run[name] = app.reason or "not applicable"
    return plan


def result_metrics(results: list[Any]) -> dict[str, float]:
    """``{"<benchmark>/<metric>": value}`` of every finite float metric, as the runner logs them."""
    return {f"{r.benchmark}/{k}": float(v) for r in results for k, v in r.metrics.items()
            if isinstance(v, float) and math.isfinite(v)}


@dataclass
class CheckpointScores:
    """What :func:`score_datamodule` did: the plan and one ``EvaluationResult`` per run benchmark."""

    plan: BenchmarkPlan
    results: list[Any] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, float]:
        """:func:`result_metrics` of :attr:`results`."""
        return result_metrics(self.results)

    def table(self) -> pd.DataFrame:
        """One row per benchmark of the family: status, main score, every metric, or the reason."""
        rows = []
        for r in self.results:
            rows.append({"benchmark": r.benchmark, "status": r.status, "main_score": r.main_score,
                         "main_value": r.main_value, "n_samples": r.n_samples,
                         "reason": r.reason or "", **r.metrics})
        for name, reason in self.plan.not_run.items():
            rows.append({"benchmark": name, "status": "not run", "reason": reason})
        return pd.DataFrame(rows).set_index("benchmark") if rows else pd.DataFrame()

    def text(self) -> str:
        """The scored benchmarks as aligned text (one row each), then the ones not run with
        the reason, for the terminal."""
        lines = []
        if self.results:
            t = self.table().loc[[r.benchmark for r in self.results]]
            t = t.drop(columns=[c for c in ("reason",) if not t[c].astype(bool).any()])
            t["n_samples"] = t["n_samples"].astype("Int64")
            lines.append(t.to_string(na_rep="", float_format=lambda v: f"{v:.4f}"))
        if self.plan.not_run:
            lines.append("not run:")
            lines += [f"  {name}: {reason}" for name, reason in self.plan.not_run.items()]
        if not lines:
            return f"no registered benchmark for the dataset family {self.plan.family[0]!r}"
        return "\n".join(lines)

    @property
    def failed(self) -> list[str]:
        """Benchmarks whose result status is ``failed``."""
        return [r.benchmark for r in self.results if r.status == "failed"]


def score_datamodule(model: Any, datamodule: Any, *, progress: bool = True,
                     raise_errors: bool = False) -> CheckpointScores:
    """Score ``model`` on every benchmark of ``datamodule``'s family via :func:`avbench.benchmarks.evaluate`.

    Args:
        model: an ``AVModel`` (or anything ``evaluate`` takes) with its weights loaded,
            on the device to evaluate on.
        datamodule: the datamodule whose test split the benchmarks read.
        progress: progress bars per benchmark.
        raise_errors: passed to ``evaluate`` (re-raise instead of a failed result).
    """
    from avbench.benchmarks import evaluate

    plan = plan_datamodule(model, datamodule)
    scores = CheckpointScores(plan=plan)
    for name in plan.run:
        scores.results.append(evaluate(model, name, datamodule, progress=progress,
                                       raise_errors=raise_errors))
    return scores


__all__ = [
    "SYNTHETIC_MARKER",
    "BenchmarkPlan",
    "CheckpointScores",
    "plan_datamodule",
    "result_metrics",
    "score_datamodule",
    "test_split_family",
]
