"""The benchmark runner, the result store and the leaderboard writer (DESIGN 4.5).

    avbench benchmark --suite benchmarks/suites/synthetic.yaml --results results/
    avbench leaderboard --results results/ --out leaderboards/

See docs/runner.md.
"""

from avbench.runner.results import CorruptResult, ResultRecord, ResultStore, read_result
from avbench.runner.suite import Job, Suite, expand, load_suite

__all__ = [
    "CorruptResult",
    "Job",
    "ResultRecord",
    "ResultStore",
    "Suite",
    "expand",
    "load_suite",
    "read_result",
]
