"""Benchmarks: definitions (dataset + split + protocol + metrics + main score),
the registry, applicability, the evaluator, trivial baselines and the leak check.

    from avbench.benchmarks import evaluate, get_benchmark, plan, trivial_baselines

    result = evaluate(model, "vggss", vggss_datamodule, train_ids=train_list)
    result.metrics["ap50"], result.leak.summary()

See ``docs/protocols.md`` for every protocol and its choices.
"""

from avbench.benchmarks.baselines import (
    BASELINES,
    BaselineMeta,
    CenterPriorBaseline,
    FullImageBaseline,
    RandomEmbeddingBaseline,
    trivial_baselines,
)
from avbench.benchmarks.evaluate import EvaluationResult, TaskOutcome, evaluate, evaluate_all
from avbench.benchmarks.leak import LeakReport, check_leak, normalize_id, read_id_list
from avbench.benchmarks.meta import (
    BenchmarkMeta,
    DiscoveryTask,
    GraphRecoveryTask,
    LocalizationTask,
    RetrievalTask,
    SegmentationTask,
    TaskSpec,
)
from avbench.benchmarks.registry import (
    BENCHMARKS,
    Applicability,
    applicability,
    capabilities_of,
    get_benchmark,
    list_benchmarks,
    plan,
    register,
)
from avbench.capabilities import CAPABILITIES

__all__ = [
    "BASELINES",
    "BENCHMARKS",
    "CAPABILITIES",
    "Applicability",
    "BaselineMeta",
    "BenchmarkMeta",
    "CenterPriorBaseline",
    "DiscoveryTask",
    "EvaluationResult",
    "FullImageBaseline",
    "GraphRecoveryTask",
    "LeakReport",
    "LocalizationTask",
    "RandomEmbeddingBaseline",
    "RetrievalTask",
    "SegmentationTask",
    "TaskOutcome",
    "TaskSpec",
    "applicability",
    "capabilities_of",
    "check_leak",
    "evaluate",
    "evaluate_all",
    "get_benchmark",
    "list_benchmarks",
    "normalize_id",
    "plan",
    "read_id_list",
    "register",
    "trivial_baselines",
]
