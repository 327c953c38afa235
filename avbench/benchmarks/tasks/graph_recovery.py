"""Graph recovery (REFERENCE A6): ``model.class_graph()`` vs the planted graph beside the data.

Reads no batches: the runner compares the model's graph with the graph file
(``datamodule.root / graph_file`` unless ``evaluate(graph_path=...)`` names one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from avbench.benchmarks.tasks.base import TaskRunner, TaskSpec, register_task
from avbench.capabilities import Capability
from avbench.metrics.graph import GraphRecoveryMetric, as_graph, load_graph


@register_task
class GraphRecoveryTask(TaskSpec):
    """REFERENCE A6: ``model.class_graph()`` vs the planted graph written beside the data."""

    task: Literal["graph_recovery"] = "graph_recovery"
    requires: tuple[Capability, ...] = ("class_graph",)
    graph_file: str = "cooccurrence_graph.json"
    undirected: Literal["both", "ignore"] = "both"

    #: structural Hamming distance: edits to turn the inferred graph into the planted one
    lower_is_better: ClassVar[frozenset[str]] = frozenset({"shd"})

    def metric_names(self) -> list[str]:
        return [
            "edge_precision",
            "edge_recall",
            "edge_f1",
            "shd",
            "skeleton_precision",
            "skeleton_recall",
            "skeleton_f1",
        ]

    def make_runner(self, capability: str) -> GraphRecoveryRunner:
        return GraphRecoveryRunner(self, capability)


class GraphRecoveryRunner(TaskRunner):
    """Edge / skeleton precision, recall, F1 and SHD; other scores go to ``info``."""

    spec: GraphRecoveryTask
    needs_loader: ClassVar[bool] = False

    def run_offline(
        self, model: Any, datamodule: Any, data_file: str | Path | None
    ) -> dict[str, float]:
        """Score ``model.class_graph()`` against the planted graph.

        Raises ValueError when neither ``data_file`` nor ``datamodule.root`` is given.
        """
        if data_file is None:
            root = getattr(datamodule, "root", None)
            if root is None:
                raise ValueError("graph recovery needs graph_path= or a datamodule with .root")
            data_file = Path(root) / self.spec.graph_file
        planted = load_graph(data_file)
        inferred = as_graph(model.class_graph())
        metric = GraphRecoveryMetric(undirected=self.spec.undirected)
        metric.update(inferred, planted)
        res = {k: float(v) for k, v in metric.compute().items()}
        names = self.spec.metric_names()
        self.info.update({k: v for k, v in res.items() if k not in names})
        self.info["graph_file"] = str(data_file)
        return {k: res[k] for k in names}


__all__ = ["GraphRecoveryRunner", "GraphRecoveryTask"]
