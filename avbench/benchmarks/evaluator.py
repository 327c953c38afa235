"""Run a model's capabilities over a benchmark split and score it with the benchmark's tasks.

:func:`evaluate` is the single evaluation path of avbench: trained methods
and trivial baselines go through the same code (DESIGN 1.3). It

1. checks applicability from the model's capabilities (a skipped pair comes
   back as a result with ``status="skipped"`` and the reason);
2. makes one runner per task (``spec.make_runner(capability)``, see
   :mod:`avbench.benchmarks.tasks`); loader-free tasks run from the model and
   a data file alone; every other runner gets ``prepare(model, datamodule, split)``
   once (a linear probe reads its training split there);
3. iterates ``datamodule.<split>_dataloader()`` once under ``torch.no_grad``
   with the model in eval mode, wrapping each batch in a
   :class:`~avbench.benchmarks.batch_outputs.BatchOutputs` so each capability
   is called once per batch and shared between tasks;
4. returns every number with the protocol options that produced it, the
   capability used per task, the sample counts, the train/test leak report
   and the timing.

The evaluator knows no task kind by name: what a task computes, and whether
it keeps a gallery, is the task module's business. DDP: see
:mod:`avbench.benchmarks.distributed`.

Two outcomes besides ``ok``:

* ``not-scorable``: the primary task's metric is undefined on the data (a
  metric raised :class:`~avbench.metrics.NotScorableError`: one class only,
  a single item...); ``reason`` says why, ``main_value`` is None. A secondary
  task that is not scorable is recorded in its outcome only.
* ``failed``: the primary task raised, or two different samples share an id
  (more repeated ids than the DDP padding, :func:`duplicate_ids_problem`).
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from avbench.benchmarks.batch_outputs import BatchOutputs
from avbench.benchmarks.distributed import (
    dist_info,
    distributed_loader,
    duplicate_ids_problem,
    gather_id_lists,
    gather_ids,
    padded_ids,
    sampler_padding,
)
from avbench.benchmarks.leak import check_leak
from avbench.benchmarks.meta import BenchmarkMeta
from avbench.benchmarks.registry import (
    applicability,
    get_benchmark,
    model_name,
    pick_capability,
)
from avbench.benchmarks.results import EvaluationResult, Status, TaskOutcome
from avbench.benchmarks.tasks.base import GalleryCollector, TaskRunner
from avbench.data.errors import MediaError
from avbench.metrics._common import NotScorableError

log = logging.getLogger(__name__)


def _model_device(model: Any) -> torch.device:
    dev = getattr(model, "device", None)
    if isinstance(dev, torch.device):
        return dev
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    if device.type == "cpu":
        return batch
    return {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}


def _err(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _ok(runner: TaskRunner, metrics: dict[str, float]) -> TaskOutcome:
    return TaskOutcome(task=runner.spec.task, status="ok", capability_used=runner.capability,
                       metrics=metrics, info=runner.info)


def _not_scorable(runner: TaskRunner, err: NotScorableError) -> TaskOutcome:
    return TaskOutcome(task=runner.spec.task, status="not-scorable",
                       capability_used=runner.capability, reason=err.reason, info=runner.info)


def _failed(runner: TaskRunner, reason: str) -> TaskOutcome:
    return TaskOutcome(task=runner.spec.task, status="failed", capability_used=runner.capability,
                       reason=reason)


# --- the entry point -------------------------------------------------------------
def evaluate(
    model: Any,
    benchmark: str | BenchmarkMeta,
    datamodule: Any = None,
    split: str | None = None,
    *,
    train_ids: Iterable[str] | None = None,
    train_source: str | None = None,
    graph_path: str | Path | None = None,
    progress: bool = True,
    max_batches: int | None = None,
    raise_errors: bool = False,
    gallery: int = 0,
) -> EvaluationResult:
    """Evaluate ``model`` on ``benchmark`` over ``datamodule``'s ``split`` loader.

    Args:
        model: anything with ``meta.capabilities`` and the capability methods
            (an ``AVModel`` or a trivial baseline).
        benchmark: a registered name or a :class:`BenchmarkMeta`.
        datamodule: a LightningDataModule with ``setup(stage)`` and
            ``<split>_dataloader()`` (not needed when every task is loader-free
            and ``graph_path`` is given).
        split: ``"val"`` or ``"test"``; default: the benchmark's split. Model
            selection must use ``"val"`` (DESIGN 1.2).
        train_ids: the model's training clip ids; the result then carries a
            :class:`~avbench.benchmarks.leak.LeakReport` of their overlap with
            the evaluated ids.
        graph_path: the data file of loader-free tasks (graph recovery: the
            planted graph); default: the task's file under ``datamodule.root``.
        max_batches: stop after this many batches (smoke tests).
        raise_errors: re-raise instead of returning ``status="failed"``.
        gallery: keep the first ``gallery`` samples on rank 0 for the
            leaderboard's qualitative figure, collected by the first task
            runner that offers a collector (localization: ids, uint8 image
            <= 112 px, min-max map and GT), in ``result.gallery``; never part
            of ``model_dump``. 0, or no task keeps one: None.

    Returns:
        :class:`EvaluationResult`; ``status`` is ``"skipped"`` (with the
        reason) when the model lacks the capability, ``"not-scorable"`` (with
        the reason) when the primary metric is undefined on the data,
        ``"failed"`` (with the error) when the primary task raised or two
        samples share an id, else ``"ok"``.
    """
    bench = get_benchmark(benchmark)
    split = split or bench.split
    rank, world = dist_info()
    start = time.perf_counter()
    name = model_name(model)
    base = dict(
        model=name,
        benchmark=bench.name,
        dataset=bench.dataset,
        subset=bench.subset,
        split=split,
        main_score=bench.main_score,
        higher_is_better=bench.higher_is_better,
        lower_is_better=list(bench.lower_is_better),
        protocol=bench.protocol,
        world_size=world,
    )
    app = applicability(model, bench)
    if not app.applicable:
        return EvaluationResult(status="skipped", reason=app.reason, **base)

    outcomes: dict[int, TaskOutcome] = {}
    runners: dict[int, TaskRunner] = {}  # tasks that read batches
    offline: dict[int, TaskRunner] = {}  # tasks that do not
    for i, task in enumerate(bench.tasks):
        cap = pick_capability(model, task.requires)
        if cap is None:
            outcomes[i] = TaskOutcome(
                task=task.task,
                status="skipped",
                reason=f"needs capability {' or '.join(task.requires)}",
            )
            continue
        runner = task.make_runner(cap)
        (runners if runner.needs_loader else offline)[i] = runner

    primary = bench.tasks.index(bench.primary_task)
    collector: GalleryCollector | None = None
    if gallery > 0 and rank == 0:
        collector = next(
            (c for c in (r.gallery_collector(gallery) for r in runners.values()) if c is not None),
            None,
        )
    seen_ids: list[str] = []
    gathered: list[str] | None = None  # every rank's ids, once the loader is done
    was_training = getattr(model, "training", None)
    try:
        for i, runner in offline.items():
            try:
                outcomes[i] = _ok(runner, runner.run_offline(model, datamodule, graph_path))
            except NotScorableError as err:
                outcomes[i] = _not_scorable(runner, err)
            except Exception as err:
                if raise_errors:
                    raise
                outcomes[i] = _failed(runner, _err(err))

        if runners:
            if datamodule is None:
                raise ValueError(f"benchmark {bench.name} needs a datamodule")
            loader_fn = getattr(datamodule, f"{split}_dataloader", None)
            if loader_fn is None:
                raise AttributeError(f"{type(datamodule).__name__} has no {split}_dataloader()")
            if hasattr(datamodule, "setup"):
                datamodule.setup({"test": "test", "val": "validate"}.get(split, "fit"))
            loader = loader_fn()
            if world > 1:
                loader = distributed_loader(loader)
            padding = sampler_padding(loader)
            if hasattr(model, "eval"):
                model.eval()
            device = _model_device(model)
            failed: dict[int, str] = {}
            for i, runner in runners.items():  # tasks that also read another split
                try:
                    runner.prepare(model, datamodule, split)
                except Exception as err:
                    if raise_errors or i == primary:
                        raise
                    failed[i] = _err(err)
            iterator: Iterable[Any] = loader
            if progress and rank == 0:
                from tqdm.auto import tqdm

                iterator = tqdm(loader, desc=f"{bench.name} [{name}]", leave=False)
            with torch.no_grad():
                for n_batch, batch in enumerate(iterator):
                    if max_batches is not None and n_batch >= max_batches:
                        break
                    batch = _to_device(batch, device)
                    out = BatchOutputs(model, batch)
                    seen_ids.extend(str(x) for x in batch.get("id", []))
                    for i, runner in runners.items():
                        if i in failed:
                            continue
                        try:
                            runner.update(out)
                        except Exception as err:
                            if raise_errors or i == primary:
                                raise
                            failed[i] = _err(err)
                            log.warning(
                                "%s/%s task %s failed: %s", bench.name, name, runner.spec.task, err
                            )
                    if collector is not None and not collector.full:
                        try:
                            collector.update(out)
                        except Exception as err:  # a figure must never fail an evaluation
                            if raise_errors:
                                raise
                            log.warning("%s/%s: gallery disabled: %s", bench.name, name, err)
                            collector = None
            per_rank = gather_id_lists(seen_ids)
            gathered = [i for ids in per_rank for i in ids]
            problem = duplicate_ids_problem(gathered, padding, bench.name,
                                            padded_ids(per_rank, loader))
            if problem is not None:
                raise ValueError(problem)
            for i, runner in runners.items():
                if i in failed:
                    outcomes[i] = _failed(runner, failed[i])
                    continue
                try:
                    outcomes[i] = _ok(runner, runner.compute())
                except NotScorableError as err:
                    log.warning("%s/%s task %s not scorable: %s", bench.name, name,
                                runner.spec.task, err.reason)
                    outcomes[i] = _not_scorable(runner, err)
                except Exception as err:
                    if raise_errors or i == primary:
                        raise
                    outcomes[i] = _failed(runner, _err(err))
    except Exception as err:
        if raise_errors:
            raise
        # a data fault names its file and what is wrong: no traceback needed (others keep it)
        detail = _err(err) if isinstance(err, MediaError) else traceback.format_exc()
        log.error("evaluation of %s on %s failed:\n%s", name, bench.name, detail)
        return EvaluationResult(
            status="failed",
            reason=_err(err),
            tasks=[outcomes[i] for i in sorted(outcomes)],
            seconds=time.perf_counter() - start,
            **base,
        )
    finally:
        if was_training and hasattr(model, "train"):
            model.train(True)

    all_ids = sorted(set(gathered if gathered is not None else gather_ids(seen_ids)))
    leak = None
    if train_ids is not None:
        leak = check_leak(
            train_ids, all_ids, train_source=train_source, test_source=f"{bench.name}:{split}"
        )
        if leak.has_leak:
            log.warning("%s on %s: %s", name, bench.name, leak.summary())
    tasks = [outcomes[i] for i in sorted(outcomes)]
    metrics = {k: v for t in tasks for k, v in t.metrics.items()}
    main = outcomes[primary]
    status: Status = main.status if main.status in ("ok", "not-scorable") else "failed"
    reason = None if status == "ok" else (
        f"{main.task}: {main.reason}" if status == "not-scorable" else main.reason)
    main_value = metrics.get(bench.main_score)
    undefined = main.info.get("undefined") or {}
    if status == "ok" and main_value is None and bench.main_score in undefined:
        # the task left the main score out as undefined on the data (TaskRunner convention)
        status, reason = "not-scorable", (
            f"{main.task}: main score {bench.main_score}: {undefined[bench.main_score]}")
    if status == "ok" and (main_value is None or not math.isfinite(main_value)):
        # an undefined metric raises NotScorableError with its reason; a bare NaN is a bug
        status, reason = "failed", (
            f"main score {bench.main_score} is {main_value} without a reason (a metric that "
            "can be undefined on the data must raise NotScorableError)")
    return EvaluationResult(
        status=status,
        reason=reason,
        metrics={k: metrics[k] for k in bench.metrics if k in metrics}
        | {k: v for k, v in metrics.items() if k not in bench.metrics},
        main_value=main_value if status == "ok" else None,
        tasks=tasks,
        leak=leak,
        n_samples=len(all_ids),
        seconds=time.perf_counter() - start,
        gallery=collector.result() if collector is not None and status == "ok" else None,
        **base,
    )


def evaluate_all(
    models: Iterable[Any],
    benchmarks: Iterable[str | BenchmarkMeta],
    datamodules: dict[str, Any],
    **kwargs: Any,
) -> list[EvaluationResult]:
    """Evaluate every model on every benchmark; skipped pairs are listed with their reason.

    ``datamodules`` maps a benchmark name (or its dataset family) to a datamodule;
    ``kwargs`` go to :func:`evaluate`.
    """
    results = []
    benches = [get_benchmark(b) for b in benchmarks]
    for m in models:
        for b in benches:
            dm = datamodules.get(b.name, datamodules.get(b.dataset))
            results.append(evaluate(m, b, dm, **kwargs))
    return results


__all__ = ["evaluate", "evaluate_all"]
