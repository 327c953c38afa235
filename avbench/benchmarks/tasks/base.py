"""The task plug-in API: a task kind is a pydantic spec, a runner and optional figure hooks.

A *task kind* (localization, retrieval, ...) is one module under
:mod:`avbench.benchmarks.tasks` holding

* a :class:`TaskSpec` subclass: the protocol options that decide the numbers
  (pure data, recorded in every result), the capabilities that can serve it,
  the metric names it produces and which of them are lower-is-better;
* a :class:`TaskRunner` subclass: batches -> metric updates -> numbers;
* optionally a gallery collector (:meth:`TaskRunner.gallery_collector`) and
  leaderboard figures (:meth:`TaskSpec.leaderboard_figures`).

Registering the spec with :func:`register_task` is all it takes: the
evaluator, :class:`~avbench.benchmarks.meta.BenchmarkMeta`, the runner and the
leaderboard look kinds up in :data:`TASK_KINDS` and never name one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from avbench.capabilities import Capability

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from avbench.benchmarks.batch_outputs import BatchOutputs


@dataclass
class PlotRow:
    """One leaderboard row handed to :meth:`TaskSpec.leaderboard_figures`.

    ``records``: the ok ``ResultRecord``s of the row, one per seed (``.seed``,
    ``.model``, ``.metrics``, ``.tasks`` = list of dicts with keys ``"task"``,
    ``"info"``, ...). ``gallery``: the first of those records' stored gallery
    (arrays ``ids``, ``image``, ``map``, ``gt``), loaded by the caller, or None.
    ``color``: the row's matplotlib colour (same model, same colour in every figure).
    """

    label: str
    baseline: bool
    color: Any
    records: list[Any]
    gallery: dict[str, np.ndarray] | None


class GalleryCollector(Protocol):
    """Keeps the first samples of an evaluation for the leaderboard's qualitative figure."""

    @property
    def full(self) -> bool:
        """True once enough samples are kept (the evaluator stops calling :meth:`update`)."""
        ...

    def update(self, out: BatchOutputs) -> None:
        """Keep samples of one batch (reusing the batch's cached capability outputs)."""
        ...

    def result(self) -> dict[str, np.ndarray] | None:
        """The kept arrays (stored beside the result), None when nothing was kept."""
        ...


class TaskSpec(BaseModel):
    """The protocol of one task kind (frozen pydantic data; subclasses add options).

    Subclasses narrow ``task`` to ``Literal["<kind>"] = "<kind>"``, give
    ``requires`` a default (the capabilities that can serve the task, in order
    of preference) and implement :meth:`metric_names` and :meth:`make_runner`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str
    requires: tuple[Capability, ...]

    #: the metrics of this task where lower is better (the one source of metric direction)
    lower_is_better: ClassVar[frozenset[str]] = frozenset()
    #: options added after benchmarks were published: left out of the dump while at their
    #: default, so existing protocols (hashed into every result's fingerprint) stay
    #: byte-identical
    omit_at_default: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out = handler(self)
        for name in self.omit_at_default:
            if getattr(self, name) == type(self).model_fields[name].default:
                out.pop(name, None)
        return out

    def metric_names(self) -> list[str]:
        """The metric names this task produces, in display order."""
        raise NotImplementedError(f"{type(self).__name__}.metric_names")

    def make_runner(self, capability: str) -> TaskRunner:
        """A fresh runner evaluating this task with the model's ``capability``."""
        raise NotImplementedError(f"{type(self).__name__}.make_runner")

    def leaderboard_figures(
        self, benchmark: str, rows: Sequence[PlotRow]
    ) -> list[tuple[str, Figure]]:
        """Extra leaderboard figures ``(slug, figure)`` of this task on ``benchmark``.

        The slug names the PNG (``<benchmark>_<slug>.png``). Default: none.
        Implementations import matplotlib lazily (evaluation never imports it).
        """
        return []

    def leaderboard_files(self, benchmark: str, rows: Sequence[PlotRow],
                          out_dir: Path) -> list[Path]:
        """Extra leaderboard files of this task on ``benchmark`` written into ``out_dir``
        (the leaderboard's ``plots/``; e.g. generated audio as wav), named
        ``<benchmark>_*``. Default: none."""
        return []


class TaskRunner:
    """Evaluates one task: per-batch :meth:`update`, then :meth:`compute` the numbers.

    ``info`` collects non-metric facts recorded with the outcome (sample
    counts, score definitions, curves). A metric that is undefined on the data
    while the others are fine (R@10 over a gallery of 4) is left out of
    :meth:`compute`'s result and named in ``info["undefined"]`` (metric ->
    reason); when it is the benchmark's main score the evaluator stores the
    result as not-scorable. When nothing can be computed, ``compute`` raises
    :class:`~avbench.metrics.NotScorableError`. A runner that reads no batches (its
    numbers come from the model and a data file alone) sets ``needs_loader =
    False`` and implements :meth:`run_offline` instead of update/compute.
    """

    needs_loader: ClassVar[bool] = True

    def __init__(self, spec: TaskSpec, capability: str) -> None:
        self.spec = spec
        self.capability = capability
        self.info: dict[str, Any] = {}

    def prepare(self, model: Any, datamodule: Any, split: str) -> None:
        """Called once before the first :meth:`update` with the evaluated model, the
        datamodule and the evaluated ``split``. Default: nothing. A task that needs
        another split too (a linear probe fits on ``train``) keeps the references here
        and reads that split itself; raising here fails the task like ``update``."""

    def update(self, out: BatchOutputs) -> None:
        """Add one batch (its capability outputs are shared with the other tasks)."""
        raise NotImplementedError(f"{type(self).__name__}.update")

    def compute(self) -> dict[str, float]:
        """The metrics over every batch seen (de-duplicated by sample id)."""
        raise NotImplementedError(f"{type(self).__name__}.compute")

    def run_offline(
        self, model: Any, datamodule: Any, data_file: str | Path | None
    ) -> dict[str, float]:
        """The metrics of a loader-free task (``needs_loader = False``).

        Args:
            model: the evaluated model.
            datamodule: the benchmark's datamodule (may be None).
            data_file: an explicit data file given to ``evaluate`` (e.g. the
                planted graph), else None.
        """
        raise NotImplementedError(f"{type(self).__name__}.run_offline")

    def gallery_collector(self, n: int) -> GalleryCollector | None:
        """A collector keeping the first ``n`` samples for a figure, or None (default)."""
        return None


# --- the registry of task kinds --------------------------------------------------------------
TASK_KINDS: dict[str, type[TaskSpec]] = {}

_T = TypeVar("_T", bound=type[TaskSpec])


def _kind_of(cls: type[TaskSpec]) -> str:
    kind = cls.model_fields["task"].default
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"{cls.__name__}: the 'task' field needs a string default (the kind)")
    return kind


def register_task(cls: _T) -> _T:
    """Class decorator adding a :class:`TaskSpec` subclass to :data:`TASK_KINDS`.

    The kind is the default of the class's ``task`` field. Raises KeyError when
    another class already holds that kind (re-registering the same class, e.g.
    on a module reload, replaces it).
    """
    if not (isinstance(cls, type) and issubclass(cls, TaskSpec)):
        raise TypeError(f"register_task needs a TaskSpec subclass, got {cls!r}")
    kind = _kind_of(cls)
    old = TASK_KINDS.get(kind)
    if old is not None and (old.__module__, old.__qualname__) != (
        cls.__module__,
        cls.__qualname__,
    ):
        raise KeyError(f"task kind {kind!r} is already registered by {old.__qualname__}")
    TASK_KINDS[kind] = cls
    return cls


def task_kind(kind: str) -> type[TaskSpec]:
    """The spec class of a registered kind; KeyError listing the known kinds."""
    try:
        return TASK_KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown task kind {kind!r}; known: {sorted(TASK_KINDS)}") from None


__all__ = [
    "TASK_KINDS",
    "GalleryCollector",
    "PlotRow",
    "TaskRunner",
    "TaskSpec",
    "register_task",
    "task_kind",
]
