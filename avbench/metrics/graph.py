"""Graph recovery: inferred vs planted co-occurrence graph (REFERENCE.md A6).

The synthetic world plants a sparse directed graph over (modality, category)
nodes (``audio_<c>``, ``visual_<c>``) and writes it beside the data
(``cooccurrence_graph.json``). A model with the ``class_graph`` capability
(ILI) returns an adjacency matrix with node names. Convention for both:
``A[i, j] = 1`` and ``A[j, i] = 0`` is a directed edge i -> j; ``A[i, j] =
A[j, i] = 1`` is an **undirected CPDAG edge** i - j (orientation not
identified by the causal search). The diagonal is ignored.

Metrics (all over node pairs of the union of both node sets, aligned by name;
a node missing from one graph has no edges there):

* ``edge_precision`` / ``edge_recall`` / ``edge_f1``: directed-edge scores over
  the ordered entries ``A[i, j] = 1``. How undirected edges count is explicit,
  option ``undirected``:

  - ``"both"`` (default): an undirected edge i - j stands for the two
    orientations the CPDAG allows, i.e. it predicts both i -> j and j -> i.
    On a true edge i -> j it scores one true positive and one false positive
    (half precision for an unresolved orientation);
  - ``"ignore"``: undirected edges are not directed predictions (neither TP
    nor FP); they only count in the skeleton scores.

* ``skeleton_precision`` / ``skeleton_recall`` / ``skeleton_f1``: the same on
  unordered adjacencies (orientation ignored).
* ``shd``: structural Hamming distance between the two PDAGs: the number of
  node pairs whose mark differs (missing edge, extra edge, reversed edge,
  undirected vs directed each count 1; Tsamardinos et al. 2006). Lower is
  better.
* counts of the true edges recovered ``n_correct``, ``n_reversed``,
  ``n_undirected`` (adjacent but unoriented), ``n_missing``, and ``n_extra``
  predicted adjacencies.

Precision with no predicted edge is 0 (zero_division=0); F1 is 0 when
precision and recall are both 0. Across several runs (seeds, bootstraps)
:func:`edge_stability` gives the mean pairwise Jaccard similarity of the
predicted entry sets and each entry's frequency.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

UndirectedMode = Literal["both", "ignore"]


@dataclass
class Graph:
    """An adjacency matrix (int 0/1, [N, N], convention above) with node names."""

    adjacency: np.ndarray
    nodes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        a = np.asarray(self.adjacency)
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise ValueError(f"adjacency must be square, got shape {a.shape}")
        a = (a != 0).astype(np.int64)
        np.fill_diagonal(a, 0)
        self.adjacency = a
        if not self.nodes:
            self.nodes = [str(i) for i in range(a.shape[0])]
        self.nodes = [str(n) for n in self.nodes]
        if len(self.nodes) != a.shape[0]:
            raise ValueError(f"{len(self.nodes)} node names for a {a.shape[0]}-node adjacency")
        if len(set(self.nodes)) != len(self.nodes):
            raise ValueError("node names must be unique")

    @property
    def n_directed(self) -> int:
        a = self.adjacency
        return int((a * (1 - a.T)).sum())

    @property
    def n_undirected(self) -> int:
        a = self.adjacency
        return int((a * a.T).sum() // 2)


def from_causallearn(matrix: np.ndarray) -> np.ndarray:
    """Convert a causal-learn ``GeneralGraph.graph`` endpoint matrix to avbench's convention.

    causal-learn: ``G[j, i] == 1 and G[i, j] == -1`` means i -> j; ``-1/-1`` is
    an undirected (tail-tail) edge; ``1/1`` (bidirected, PAGs only) is mapped
    to an undirected edge as well.
    """
    g = np.asarray(matrix)
    directed = (g.T == 1) & (g == -1)  # [i, j]: G[j,i]==1 and G[i,j]==-1
    undirected = ((g == -1) & (g.T == -1)) | ((g == 1) & (g.T == 1))
    return (directed | undirected).astype(np.int64)


def as_graph(obj: Any, nodes: Sequence[str] | None = None) -> Graph:
    """Normalise the forms a graph may come in.

    Accepts a :class:`Graph`; an adjacency (numpy / torch / nested lists) with
    optional ``nodes``; a ``(adjacency, nodes)`` pair; a dict with
    ``"adjacency"`` (or ``"adj"``/``"matrix"``) and ``"nodes"``, or with
    ``"nodes"`` and ``"edges"`` (``[{"src", "dst", ...}]``, the synthetic
    world's ``cooccurrence_graph.json``; an edge with ``"undirected": true``
    sets both entries); an object with ``adjacency`` (attribute or method) and
    ``nodes``; a causal-learn ``GeneralGraph`` (``.graph`` and ``.get_nodes()``).
    """
    if isinstance(obj, Graph):
        return obj
    if isinstance(obj, Tensor):
        return Graph(obj.detach().cpu().numpy(), list(nodes or []))
    if isinstance(obj, np.ndarray):
        return Graph(obj, list(nodes or []))
    if isinstance(obj, tuple) and len(obj) == 2:
        return as_graph(obj[0], obj[1])
    if isinstance(obj, dict):
        names = [str(n) for n in obj.get("nodes", nodes or [])]
        for key in ("adjacency", "adj", "matrix"):
            if key in obj:
                return Graph(np.asarray(obj[key]), names)
        if "edges" in obj:
            index = {n: i for i, n in enumerate(names)}
            a = np.zeros((len(names), len(names)), dtype=np.int64)
            for e in obj["edges"]:
                src, dst = (e["src"], e["dst"]) if isinstance(e, dict) else (e[0], e[1])
                for end in (src, dst):
                    if str(end) not in index:
                        raise ValueError(f"edge endpoint {end!r} is not a listed node")
                i, j = index[str(src)], index[str(dst)]
                a[i, j] = 1
                if isinstance(e, dict) and e.get("undirected"):
                    a[j, i] = 1
            return Graph(a, names)
        raise ValueError("graph dict needs 'adjacency' or 'edges'")
    if hasattr(obj, "graph") and hasattr(obj, "get_nodes"):  # causal-learn GeneralGraph
        names = [n.get_name() for n in obj.get_nodes()]
        return Graph(from_causallearn(obj.graph), list(nodes or names))
    if hasattr(obj, "adjacency"):
        adj = obj.adjacency() if callable(obj.adjacency) else obj.adjacency
        return as_graph(adj, list(getattr(obj, "nodes", None) or nodes or []))
    if isinstance(obj, list):
        return Graph(np.asarray(obj), list(nodes or []))
    raise TypeError(f"cannot interpret {type(obj).__name__} as a graph")


def load_graph(path: str | Path) -> Graph:
    """Read a planted graph JSON (see :func:`as_graph` for the accepted forms)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: planted graph file does not exist") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    return as_graph(data)


def align(pred: Graph, true: Graph) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Both adjacencies over the union of nodes (true order, then extra predicted nodes)."""
    nodes = list(true.nodes) + [n for n in pred.nodes if n not in set(true.nodes)]
    index = {n: i for i, n in enumerate(nodes)}

    def embed(g: Graph) -> np.ndarray:
        a = np.zeros((len(nodes), len(nodes)), dtype=np.int64)
        idx = np.array([index[n] for n in g.nodes], dtype=np.int64)
        a[np.ix_(idx, idx)] = g.adjacency
        return a

    return embed(pred), embed(true), nodes


def _prf(tp: int, n_pred: int, n_true: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else float("nan")
    f = 2 * p * r / (p + r) if (p + r) > 0 else 0.0
    return p, r, f


def graph_recovery_scores(
    pred: Any, true: Any, *, undirected: UndirectedMode = "both"
) -> dict[str, float]:
    """Directed-edge P/R/F1, skeleton P/R/F1, SHD and edge counts (module docstring)."""
    if undirected not in ("both", "ignore"):
        raise ValueError(f"undirected must be 'both' or 'ignore', got {undirected!r}")
    pg, tg = as_graph(pred), as_graph(true)
    p, t, nodes = align(pg, tg)
    iu = np.triu_indices(len(nodes), k=1)
    # pair marks: 0 none, 1 i->j, 2 j->i, 3 undirected
    mark_p = p[iu] + 2 * p.T[iu]
    mark_t = t[iu] + 2 * t.T[iu]
    shd = int((mark_p != mark_t).sum())

    p_dir = p * (1 - p.T) if undirected == "ignore" else p
    tp = int((p_dir * t).sum())
    prec, rec, f1 = _prf(tp, int(p_dir.sum()), int(t.sum()))

    sk_p, sk_t = mark_p > 0, mark_t > 0
    sprec, srec, sf1 = _prf(int((sk_p & sk_t).sum()), int(sk_p.sum()), int(sk_t.sum()))

    # how each true directed edge was recovered
    t_dir = (mark_t == 1) | (mark_t == 2)
    same = t_dir & (mark_p == mark_t)
    rev = t_dir & (((mark_t == 1) & (mark_p == 2)) | ((mark_t == 2) & (mark_p == 1)))
    und = t_dir & (mark_p == 3)
    return {
        "edge_precision": prec,
        "edge_recall": rec,
        "edge_f1": f1,
        "skeleton_precision": sprec,
        "skeleton_recall": srec,
        "skeleton_f1": sf1,
        "shd": float(shd),
        "n_true_edges": float(int(sk_t.sum())),
        "n_pred_directed": float(pg.n_directed),
        "n_pred_undirected": float(pg.n_undirected),
        "n_correct": float(int(same.sum())),
        "n_reversed": float(int(rev.sum())),
        "n_undirected": float(int(und.sum())),
        "n_missing": float(int((sk_t & ~sk_p).sum())),
        "n_extra": float(int((sk_p & ~sk_t).sum())),
        "n_nodes": float(len(nodes)),
    }


def edge_stability(graphs: Sequence[Any]) -> dict[str, Any]:
    """Stability of inferred graphs across runs (seeds or bootstraps).

    Returns ``jaccard`` (mean pairwise Jaccard similarity of the entry sets
    ``A[i, j] = 1``; 1 = identical graphs), ``frequency`` ([N, N] fraction of
    runs with each entry) and ``nodes``. Graphs are aligned by node name.
    """
    gs = [as_graph(g) for g in graphs]
    if not gs:
        raise ValueError("no graphs")
    nodes: list[str] = []
    for g in gs:
        nodes += [n for n in g.nodes if n not in set(nodes)]
    ref = Graph(np.zeros((len(nodes), len(nodes)), dtype=np.int64), nodes)
    mats = [align(g, ref)[0] for g in gs]
    jac = []
    for a, b in itertools.combinations(mats, 2):
        union = int((a | b).sum())
        jac.append(int((a & b).sum()) / union if union else 1.0)
    return {
        "jaccard": float(np.mean(jac)) if jac else 1.0,
        "frequency": np.mean(np.stack(mats), axis=0),
        "nodes": nodes,
    }


class GraphRecoveryMetric(Metric):
    """Graph recovery scores averaged over runs, plus edge stability (REFERENCE A6).

    ``update(pred, target)`` takes anything :func:`as_graph` accepts (one
    inferred graph per run, e.g. per seed or bootstrap). ``compute()`` returns
    the mean of :func:`graph_recovery_scores` over runs and, with >= 2 runs,
    ``edge_stability`` (mean pairwise Jaccard). Graphs are small and computed
    once, so nothing is synchronised across ranks.
    """

    is_differentiable = False
    # torchmetrics' flag; mixed here (F1 up, SHD down). The project's metric direction is
    # the task spec's ``lower_is_better`` (avbench.benchmarks.tasks.graph_recovery).
    higher_is_better = None
    full_state_update = False

    def __init__(self, undirected: UndirectedMode = "both", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.undirected = undirected
        self._runs: list[dict[str, float]] = []
        self._preds: list[Graph] = []
        self.add_state("n_runs", default=torch.tensor(0.0), dist_reduce_fx=None)

    def reset(self) -> None:
        super().reset()
        self._runs, self._preds = [], []

    def update(self, pred: Any, target: Any) -> None:
        self._runs.append(graph_recovery_scores(pred, target, undirected=self.undirected))
        self._preds.append(as_graph(pred))
        self.n_runs += 1

    def compute(self) -> dict[str, Tensor]:
        if not self._runs:
            raise RuntimeError("GraphRecoveryMetric has no runs")
        out = {
            k: torch.tensor(float(np.mean([r[k] for r in self._runs])), dtype=torch.float64)
            for k in self._runs[0]
        }
        if len(self._preds) > 1:
            out["edge_stability"] = torch.tensor(edge_stability(self._preds)["jaccard"])
        out["n_runs"] = torch.tensor(float(len(self._runs)))
        return out
