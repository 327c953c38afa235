"""``parallel_jobs: N``: fit a suite's jobs in N spawned worker processes.

Each worker holds one runner (the caller's class, normally
:class:`~avbench.runner.runner.Runner`, handed in so that this module does
not import the runner that imports it) for its whole life (so it keeps its datasets cached across its jobs) and 1/N of the CPU
threads. On the 2-core machine, two 1-thread training loops run 1.25-1.3x
more samples per second than one 2-thread loop for 4 of the 5 models, and the
whole synthetic suite takes 6% less time (``benchmarks/perf/README.md``,
"Parallel jobs"). Single-device trainers only: checked before any work starts.

SIGTERM/SIGINT to the main process: it submits at most one job per worker at a time
and, once a signal arrived (:func:`~avbench.runner.signals.record_signals`), submits no
more, sets the pool's stop event and sends each worker SIGTERM. A worker's job in flight
is marked interrupted (its runner writes ``interrupted.json`` and finishes its W&B run, as
in one process); a worker that picks up a job after the signal returns at once without
starting it. The main process waits for the jobs in flight, reports them in
``summary.interrupted`` and every job not started in ``summary.cancelled``, and raises
:class:`~avbench.runner.signals.RunInterrupted`.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence
from typing import Any, Protocol

from avbench.runner.signals import HANDLED, RunInterrupted, interrupt_on_signals, record_signals
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
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    queue = list(jobs)
    with record_signals() as fired, ProcessPoolExecutor(
        max_workers=n, mp_context=ctx, initializer=_worker_init,
        initargs=(runner_cls, suite, results, options, threads, stop),
    ) as pool:
        if bar is not None:
            bar.set_postfix_str(f"{n} jobs at a time, {threads} thread(s) each")
        running: dict[Any, Job] = {}
        while (queue or running) and not fired:
            while queue and len(running) < n:  # one job per worker: nothing waits in a queue
                job = queue.pop(0)
                running[pool.submit(_worker_run_job, job)] = job
            for fut in _finished(running):
                _merge(fut, running.pop(fut), summary, bar)
        if fired:
            stop.set()
            summary.cancelled.extend(job.id for job in queue)
            _stop_workers(pool, running, summary)
            raise RunInterrupted(fired[0])


def _finished(running: dict[Any, Job], poll: float = 0.2) -> set[Any]:
    """The futures of ``running`` done within ``poll`` seconds (short: signals are polled)."""
    from concurrent.futures import FIRST_COMPLETED, wait

    return wait(running, timeout=poll, return_when=FIRST_COMPLETED).done


def _merge(fut: Any, job: Job, summary: RunSummary, bar: Any, stopping: bool = False) -> None:
    """Add a finished job's summary to ``summary``; a dead worker fails its benchmarks (or,
    while ``stopping`` after a signal, leaves its job interrupted)."""
    err = fut.exception()
    if err is None:
        summary.merge(fut.result())
    elif isinstance(err, RunInterrupted):  # a signal outside the job's own handling
        summary.cancelled.append(job.id)
    elif stopping:  # the SIGTERM reached a worker before it had set its handlers
        log.error("%s: worker ended on the signal: %s", job.id, err)
        summary.interrupted.append(job.id)
    else:  # a worker died (killed, out of memory)
        log.error("%s: worker process failed: %s", job.id, err)
        summary.failed.extend(
            f"{b}/{job.id} (worker died: {type(err).__name__})" for b in job.benchmarks
        )
    if bar is not None:
        bar.set_postfix_str(job.id)
        bar.update(1)


def _stop_workers(pool: Any, running: dict[Any, Job], summary: RunSummary,
                  timeout: float = 120) -> None:
    """SIGTERM the workers, wait for the jobs in flight (they record themselves as
    interrupted) and merge their summaries."""
    from concurrent.futures import wait

    # the executor keeps its worker processes in a private dict; no public accessor exists
    for proc in list(getattr(pool, "_processes", {}).values()):
        if proc.is_alive():
            proc.terminate()  # SIGTERM: the worker's handler records its job
    done, not_done = wait(running, timeout=timeout)
    for fut in done:
        _merge(fut, running[fut], summary, None, stopping=True)
    for fut in not_done:
        log.error("%s: worker did not stop within %.0f s", running[fut].id, timeout)
        summary.interrupted.append(running[fut].id)


_WORKER: JobRunner | None = None


#: the pool's stop event (set by the main process on a signal) and the signals this worker got
_STOP: Any = None
_SIGNALLED: list[int] = []


def _worker_init(runner_cls: type[JobRunner], suite: Suite, results: str,
                 options: dict[str, Any], threads: int, stop: Any) -> None:
    """Per worker: one runner (its caches live as long as the worker), its thread share,
    and signal handlers that only note a signal between jobs (a job in flight raises)."""
    import torch

    global _WORKER, _STOP
    _STOP = stop
    for s in HANDLED:
        signal.signal(s, lambda signum, frame: _SIGNALLED.append(signum))
    torch.set_num_threads(threads)
    _WORKER = runner_cls(suite, results, progress=False, **options)  # type: ignore[call-arg]


def _worker_run_job(job: Job) -> RunSummary:
    """Run one job in this worker; return only that job's summary entries. After a signal
    (to the pool or to this worker) the job is not started and is reported cancelled."""
    assert _WORKER is not None, "worker not initialised"
    _WORKER.reset_summary()
    summary = _WORKER.summary
    with interrupt_on_signals():
        if _SIGNALLED or (_STOP is not None and _STOP.is_set()):
            summary.cancelled.append(job.id)
            return summary
        try:
            _WORKER.run_job(job)
        except RunInterrupted as sig:
            _SIGNALLED.append(sig.signum)
            if job.id not in summary.interrupted:  # stopped before its work began
                summary.cancelled.append(job.id)
    return summary


__all__ = ["JobRunner", "check_parallel", "run_parallel"]
