"""Benchmarks: definitions (dataset + split + protocol + metrics + main score),
the registry, applicability, the task kinds (plug-ins in :mod:`.tasks`), the
evaluator, trivial baselines and the leak check.

    from avbench.benchmarks import evaluate, get_benchmark, plan, trivial_baselines

    result = evaluate(model, "vggss", vggss_datamodule, train_ids=train_list)
    result.metrics["ap50"], result.leak.summary()

Modules: :mod:`.tasks` (task kinds), :mod:`.meta` (BenchmarkMeta),
:mod:`.registry` (the benchmarks, applicability; built-ins in ``builtin/*.yaml``),
:mod:`.evaluator` (evaluate), :mod:`.results` (result schemas),
:mod:`.batch_outputs` (per-batch capability cache), :mod:`.distributed` (DDP
helpers), :mod:`.baselines`, :mod:`.leak`. See ``docs/protocols.md`` for every
protocol and its choices.
"""

from avbench.benchmarks import tasks as _tasks
from avbench.benchmarks.baselines import (
    BASELINES,
    BaselineMeta,
    CenterPriorBaseline,
    FullImageBaseline,
    RandomEmbeddingBaseline,
    trivial_baselines,
)
from avbench.benchmarks.batch_outputs import BatchOutputs
from avbench.benchmarks.evaluator import evaluate, evaluate_all
from avbench.benchmarks.leak import LeakReport, check_leak, normalize_id, read_id_list
from avbench.benchmarks.meta import BenchmarkMeta
from avbench.benchmarks.registry import (
    BENCHMARKS,
    Applicability,
    applicability,
    capabilities_of,
    get_benchmark,
    list_benchmarks,
    load_benchmarks,
    plan,
    register,
)
from avbench.benchmarks.results import EvaluationResult, TaskOutcome

# the task API and every built-in kind's spec (TaskSpec, TASK_KINDS, LocalizationTask, ...),
# re-exported without naming a kind here
from avbench.benchmarks.tasks import *  # noqa: F403
from avbench.capabilities import CAPABILITIES

__all__ = [
    "BASELINES",
    "BENCHMARKS",
    "CAPABILITIES",
    "Applicability",
    "BaselineMeta",
    "BatchOutputs",
    "BenchmarkMeta",
    "CenterPriorBaseline",
    "EvaluationResult",
    "FullImageBaseline",
    "LeakReport",
    "RandomEmbeddingBaseline",
    "TaskOutcome",
    "applicability",
    "capabilities_of",
    "check_leak",
    "evaluate",
    "evaluate_all",
    "get_benchmark",
    "list_benchmarks",
    "load_benchmarks",
    "normalize_id",
    "plan",
    "read_id_list",
    "register",
    "trivial_baselines",
    *_tasks.__all__,
]
