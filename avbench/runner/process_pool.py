"""``parallel_jobs: N``: fit a suite's jobs in N spawned worker processes.

Each worker holds one runner (the caller's class, normally
:class:`~avbench.runner.runner.Runner`, handed in so that this module does
not import the runner that imports it) for its whole life (so it keeps its datasets cached across its jobs) and 1/N of the CPU
threads. On the 2-core machine, two 1-thread training loops run 1.25-1.3x
more samples per second than one 2-thread loop for 4 of the 5 models, and the
whole synthetic suite takes 6% less time (``benchmarks/perf/README.md``,
"Parallel jobs"). Single-device trainers only: checked before any work starts.

SIGTERM/SIGINT to the main process (:class:`~avbench.runner.signals.RunInterrupted`):
jobs not started are cancelled, each worker gets SIGTERM (its runner marks its job
interrupted and finishes its W&B run, as in one process), the main process waits for
them and reports their jobs in ``summary.interrupted``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from avbench.runner.signals import RunInterrupted, interrupt_on_signals
from avbench.runner.suite import Job, Suite, trainer_config
from avbench.runner.summary import RunSummary
from avbench.runner.trainers import single_device

log = logging.getLogger(__name__)


def check_parallel(suite: Suite, jobs: Sequence[Job]) -> None:
    """Refuse ``parallel_jobs > 1`` with a multi-device job.

    Raises:
        ValueError: naming the first job whose trainer asks for several devices.
    """
    for job in jobs:
        cfg = trainer_config(suite, job.model)
        if not single_device(cfg):
            raise ValueError(
                f"parallel_jobs={suite.parallel_jobs} needs single-device jobs, but "
                f"{job.id} asks for devices={cfg.get('devices')!r}; set parallel_jobs: 1 "
                "for DDP"
            )


class JobRunner(Protocol):
    """What a worker needs of a runner: run one job and report it in :attr:`summary`."""

    summary: RunSummary

    def reset_summary(self) -> None:
        """Start a fresh summary."""
        ...

    def run_job(self, job: Job) -> None:
        """Fit, evaluate and store one job."""
        ...


def run_parallel(runner_cls: type[JobRunner], suite: Suite, results: str, options: dict[str, Any],
                 jobs: Sequence[Job], summary: RunSummary, bar: Any = None) -> None:
    """Run ``jobs`` in ``suite.parallel_jobs`` spawned processes, merging their summaries.

    Each worker builds ``runner_cls(suite, results, progress=False, **options)``
    (a module-level class: it is pickled by reference). A job
    whose worker dies (killed, out of memory) is reported as failed for each
    of its benchmarks; no result is written for it.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import torch

    n = min(suite.parallel_jobs, len(jobs))
    threads = max(1, torch.get_num_threads() // n)
    with ProcessPoolExecutor(
        max_workers=n, mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init, initargs=(runner_cls, suite, results, options, threads),
    ) as pool:
        futures = {pool.submit(_worker_run_job, job): job for job in jobs}
        if bar is not None:
            bar.set_postfix_str(f"{n} jobs at a time, {threads} thread(s) each")
        seen: set[Any] = set()
        try:
            _collect(futures, summary, bar, seen)
        except RunInterrupted:
            _stop_workers(pool, {f: j for f, j in futures.items() if f not in seen}, summary)
            raise


def _collect(futures: dict[Any, Job], summary: RunSummary, bar: Any, seen: set[Any]) -> None:
    """Merge each finished job's summary as it completes (its future added to ``seen``)."""
    from concurrent.futures import as_completed

    for fut in as_completed(futures):
        job = futures[fut]
        seen.add(fut)
        try:
            summary.merge(fut.result())
        except Exception as err:  # noqa: BLE001 - a worker died (killed, out of memory)
            log.error("%s: worker process failed: %s", job.id, err)
            summary.failed.extend(
                f"{b}/{job.id} (worker died: {type(err).__name__})" for b in job.benchmarks
            )
        if bar is not None:
            bar.set_postfix_str(job.id)
            bar.update(1)


def _stop_workers(pool: Any, futures: dict[Any, Job], summary: RunSummary) -> None:
    """Cancel the jobs not started, SIGTERM the workers, wait; note their interrupted jobs."""
    from concurrent.futures import wait

    for fut in futures:
        fut.cancel()
    # the executor keeps its worker processes in a private dict; no public accessor exists
    for proc in list(getattr(pool, "_processes", {}).values()):
        if proc.is_alive():
            proc.terminate()  # SIGTERM: the worker's handler records its job
    wait([f for f in futures if not f.cancelled()], timeout=120)
    for fut, job in futures.items():
        if fut.cancelled() or not fut.done():
            continue
        err = fut.exception()
        if err is None:
            summary.merge(fut.result())
        elif isinstance(err, RunInterrupted) or "interrupted" in str(err):
            summary.interrupted.append(job.id)


_WORKER: JobRunner | None = None


def _worker_init(runner_cls: type[JobRunner], suite: Suite, results: str,
                 options: dict[str, Any], threads: int) -> None:
    """Per worker: one runner (its caches live as long as the worker) and its thread share."""
    import torch

    global _WORKER
    torch.set_num_threads(threads)
    _WORKER = runner_cls(suite, results, progress=False, **options)  # type: ignore[call-arg]


def _worker_run_job(job: Job) -> RunSummary:
    """Run one job in this worker; return only that job's summary entries."""
    assert _WORKER is not None, "worker not initialised"
    _WORKER.reset_summary()
    with interrupt_on_signals():
        _WORKER.run_job(job)
    return _WORKER.summary


__all__ = ["JobRunner", "check_parallel", "run_parallel"]
