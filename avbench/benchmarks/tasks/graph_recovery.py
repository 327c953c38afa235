"""Graph recovery (REFERENCE A6): ``model.class_graph()`` vs the planted graph beside the data.

Reads no batches: the runner compares the model's graph with the graph file
(``datamodule.root / graph_file`` unless ``evaluate(graph_path=...)`` names one).

Node names. The planted file names world categories (``audio_<k>``,
``visual_<k>``, k < 32 in the default world); a model trained on a dataset names
that dataset's classes (ILI: ``audio_<class name>``). When the data root holds
the synthetic world's ``avbench_synthetic.json`` with a ``class_map`` (dataset
class -> world category: AVE, VEGAS) and every node of the model's graph is a
class of that map, the planted graph is mapped onto the dataset's classes
(:func:`avbench.nn.class_graph.planted_class_graph`): the datamodule's
``classes`` (else the model's), and only edges between two of them are kept
(AVE-15 keeps 6 of the 24 world edges, VEGAS 4, in the default world). A
dataset without a planted edge between its classes is not scorable. Otherwise
(world-category nodes, no class map) the file is compared as it is.

Stability. A model whose ``class_graph()`` also returns ``"bootstrap"`` (the
entry lists of its graph search re-run on bootstrap resamples; ILI with
``graph_bootstrap > 0``) gets ``edge_stability``: the mean pairwise Jaccard
similarity of those entry sets (1 = the same graph every time,
:func:`avbench.metrics.graph.edge_stability`). Stability over seeds is shown in
the leaderboard figure (share of seeds that recovered each entry).

Leaderboard figure ``<benchmark>_graph.png`` (:meth:`GraphRecoveryTask.leaderboard_figures`):
per model row the planted and recovered adjacency over the dataset's nodes
(row = source, column = destination), recovered entries shaded by the share of
seeds that found them, planted entries outlined.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from avbench.benchmarks.tasks.base import PlotRow, TaskRunner, TaskSpec, register_task
from avbench.capabilities import Capability
from avbench.metrics._common import NotScorableError
from avbench.metrics.graph import Graph, GraphRecoveryMetric, as_graph, edge_stability, load_graph

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

#: the file every synthetic writer puts in its root; AVE/VEGAS store the ``class_map`` there
SYNTHETIC_SUMMARY = "avbench_synthetic.json"
MODALITIES = ("audio", "visual")


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
            "edge_stability",
        ]

    def make_runner(self, capability: str) -> GraphRecoveryRunner:
        return GraphRecoveryRunner(self, capability)

    def leaderboard_figures(
        self, benchmark: str, rows: Sequence[PlotRow]
    ) -> list[tuple[str, Figure]]:
        """``("graph", recovered vs planted adjacency per model row)`` when any result stores one."""
        try:
            fig = plot_graphs(self.task, benchmark, rows)
        except Exception as err:  # noqa: BLE001 - a figure is never worth a failed leaderboard
            log.warning("%s graph figure failed: %s", benchmark, err)
            return []
        return [] if fig is None else [("graph", fig)]


def _node_class(node: str) -> str | None:
    """``"audio_Bark"`` -> ``"Bark"``; None when the name has no modality prefix."""
    for m in MODALITIES:
        if node.startswith(m + "_"):
            return node[len(m) + 1:]
    return None


def _class_map(root: Path) -> dict[str, int] | None:
    path = root / SYNTHETIC_SUMMARY
    if not path.is_file():
        return None
    try:
        cmap = json.loads(path.read_text(encoding="utf-8")).get("class_map")
    except (OSError, ValueError, AttributeError):
        return None
    return cmap if isinstance(cmap, dict) else None


def dataset_planted_graph(
    pred: Graph, datamodule: Any, data_file: Path, root: Path
) -> tuple[Graph, dict[str, Any]]:
    """The planted graph in ``pred``'s node names (module docstring), and how it was read.

    Raises:
        FileNotFoundError: the planted graph file is missing.
        NotScorableError: mapped onto the dataset's classes, no planted edge is left.
    """
    from avbench.nn.class_graph import planted_class_graph

    cmap = _class_map(root)
    pred_classes = [_node_class(n) for n in pred.nodes]
    if cmap is None or not pred_classes or not all(c in cmap for c in pred_classes):
        return load_graph(data_file), {"mapping": "none (world-category nodes)"}
    classes = getattr(datamodule, "classes", None) if datamodule is not None else None
    if not classes:
        classes = list(dict.fromkeys(c for c in pred_classes if c is not None))
    if not data_file.is_file():
        raise FileNotFoundError(f"{data_file}: planted graph file does not exist")
    planted = planted_class_graph(root, list(classes), normalize="none", graph_file=data_file)
    info = {"mapping": f"world categories -> dataset classes ({root / SYNTHETIC_SUMMARY} class_map)",
            "n_classes": len(classes), "n_world_edges": planted.info["n_world_edges"],
            "n_planted_entries": planted.n_entries}
    if planted.n_entries == 0:
        raise NotScorableError(
            f"none of the {planted.info['n_world_edges']} planted world edges joins two of the "
            f"dataset's {len(classes)} classes", ["edge_recall", "edge_f1"])
    return Graph((planted.adjacency > 0).astype(np.int64), planted.nodes), info


def _entries(g: Graph) -> list[list[str]]:
    i, j = np.nonzero(g.adjacency)
    return [[g.nodes[a], g.nodes[b]] for a, b in zip(i, j)]


class GraphRecoveryRunner(TaskRunner):
    """Edge / skeleton precision, recall, F1, SHD and bootstrap stability; the rest in ``info``."""

    spec: GraphRecoveryTask
    needs_loader: ClassVar[bool] = False

    def run_offline(
        self, model: Any, datamodule: Any, data_file: str | Path | None
    ) -> dict[str, float]:
        """Score ``model.class_graph()`` against the planted graph.

        ``info`` keeps the graphs compared (``nodes``, ``planted`` and ``recovered``
        entry lists, for the leaderboard figure), the planted file and the mapping.

        Raises:
            ValueError: neither ``data_file`` nor ``datamodule.root`` is given.
            NotScorableError: no planted edge between the dataset's classes.
        """
        if data_file is None:
            root = getattr(datamodule, "root", None)
            if root is None:
                raise ValueError("graph recovery needs graph_path= or a datamodule with .root")
            data_file = Path(root) / self.spec.graph_file
        data_file = Path(data_file)
        root = Path(getattr(datamodule, "root", None) or data_file.parent)
        self.info["graph_file"] = str(data_file)
        out = model.class_graph()
        inferred = as_graph(out)
        planted, how = dataset_planted_graph(inferred, datamodule, data_file, root)
        self.info.update(how)
        metric = GraphRecoveryMetric(undirected=self.spec.undirected)
        metric.update(inferred, planted)
        res = {k: float(v) for k, v in metric.compute().items()}
        names = self.spec.metric_names()
        self.info.update({k: v for k, v in res.items() if k not in names})
        self.info.update(nodes=list(planted.nodes), planted=_entries(planted),
                         recovered=_entries(inferred))
        scores = {k: res[k] for k in names if k in res}
        boot = out.get("bootstrap") if isinstance(out, dict) else None
        if boot:
            graphs = [{"nodes": inferred.nodes, "edges": [{"src": s, "dst": d} for s, d in entries]}
                      for entries in boot]
            stab = edge_stability(graphs)
            scores["edge_stability"] = float(stab["jaccard"])
            self.info["bootstrap_n"] = len(boot)
        else:
            self.info["undefined"] = {"edge_stability": "the model's graph has no bootstrap resamples"}
        return scores


# --- leaderboard figure ----------------------------------------------------------------------
def stored_graphs(record: Any, kind: str) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """``(nodes, planted, recovered)`` 0/1 adjacencies stored in a result's ``kind`` task info."""
    for task in record.tasks:
        if task.get("task") != kind:
            continue
        info = task.get("info") or {}
        if not {"nodes", "planted", "recovered"} <= set(info):
            continue
        nodes = [str(n) for n in info["nodes"]]
        idx = {n: i for i, n in enumerate(nodes)}
        mats = []
        for key in ("planted", "recovered"):
            a = np.zeros((len(nodes), len(nodes)))
            for src, dst in info[key]:
                if src in idx and dst in idx:
                    a[idx[src], idx[dst]] = 1.0
            mats.append(a)
        return nodes, mats[0], mats[1]
    return None


def _short(node: str, width: int = 14) -> str:
    cls = _node_class(node) or node
    tag = "a" if node.startswith("audio_") else "v"
    return f"{tag}:{cls[:width]}"


def plot_graphs(kind: str, benchmark: str, rows: Sequence[PlotRow]) -> Figure | None:
    """One panel per model row: planted entries outlined, recovered ones shaded by seed share."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    panels = []
    for row in rows:
        if row.baseline:
            continue
        stored = [g for g in (stored_graphs(r, kind) for r in row.records) if g is not None]
        stored = [g for g in stored if g[0] == stored[0][0]] if stored else []
        if not stored:
            continue
        freq = np.mean([g[2] for g in stored], axis=0)
        f1 = [r.metrics.get("edge_f1") for r in row.records if r.metrics.get("edge_f1") is not None]
        panels.append((row.label, stored[0][0], stored[0][1], freq, len(stored), f1))
    if not panels:
        return None
    fig = Figure(figsize=(5.6 * len(panels), 6.0), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    green, orange = np.array([0.13, 0.55, 0.13]), np.array([0.95, 0.5, 0.05])
    for ax, (label, nodes, planted, freq, n_seeds, f1) in zip(axes, panels):
        n = len(nodes)
        color = np.where((planted > 0)[..., None], green, orange)
        img = 1.0 - freq[..., None] * (1.0 - color)  # white -> colour with the seed share
        ax.imshow(img, interpolation="nearest")
        for i, j in zip(*np.nonzero(planted)):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=1.2))
        half = n // 2
        ax.axhline(half - 0.5, color="0.5", lw=0.6)
        ax.axvline(half - 0.5, color="0.5", lw=0.6)
        labels = [_short(v) for v in nodes]
        ax.set_xticks(range(n), labels, rotation=90, fontsize=5)
        ax.set_yticks(range(n), labels, fontsize=5)
        ax.set_xlabel("destination node", fontsize=8)
        ax.set_ylabel("source node", fontsize=8)
        score = f", edge F1 {np.mean(f1):.3f}" if f1 else ""
        ax.set_title(f"{label}: {n_seeds} seed(s){score}\n{int(planted.sum())} planted entries, "
                     f"{int((freq > 0).sum())} recovered by any seed", fontsize=8)
    fig.legend(handles=[Patch(facecolor=green, label="recovered, planted"),
                        Patch(facecolor=orange, label="recovered, not planted"),
                        Patch(facecolor="white", edgecolor="black", label="planted (outline)")],
               loc="outside lower center", ncol=3, fontsize=7,
               title="shade = share of seeds that recovered the entry", title_fontsize=7)
    fig.suptitle(f"{benchmark}: recovered vs planted graph", fontsize=10)
    return fig


__all__ = [
    "GraphRecoveryRunner",
    "GraphRecoveryTask",
    "dataset_planted_graph",
    "plot_graphs",
    "stored_graphs",
]
