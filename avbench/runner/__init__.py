"""The benchmark runner, the result store and the leaderboard writer (DESIGN 4.5).

    avbench benchmark --suite avbench/configs/suites/synthetic.yaml --results results/
    avbench leaderboard --results results/ --out leaderboards/

One module per concept: :mod:`~avbench.runner.suite` (suites, jobs),
:mod:`~avbench.runner.instantiation` (configs to objects),
:mod:`~avbench.runner.fitting` with :mod:`~avbench.runner.fit_stages`,
:mod:`~avbench.runner.trainers` and :mod:`~avbench.runner.checkpointing` (fit,
stages, VAL selection), :mod:`~avbench.runner.store_decisions` (what to
recompute), :mod:`~avbench.runner.process_pool` (``parallel_jobs``),
:mod:`~avbench.runner.results` (the result store),
:mod:`~avbench.runner.galleries`, :mod:`~avbench.runner.summary`,
:mod:`~avbench.runner.fit_checks` (honest fit status),
:mod:`~avbench.runner.signals` (SIGTERM/SIGINT),
:mod:`~avbench.runner.runner` (the orchestration). See docs/runner.md.
"""

from typing import Any

from avbench.runner.results import CorruptResult, ResultRecord, ResultStore, read_result
from avbench.runner.suite import Job, Suite, expand, load_suite


def __getattr__(name: str) -> Any:
    # run_suite pulls in torch and Lightning: imported on first use only
    if name == "run_suite":
        from avbench.runner.runner import run_suite

        return run_suite
    raise AttributeError(f"module 'avbench.runner' has no attribute {name!r}")


__all__ = [
    "CorruptResult",
    "Job",
    "ResultRecord",
    "ResultStore",
    "Suite",
    "expand",
    "load_suite",
    "read_result",
    "run_suite",
]
