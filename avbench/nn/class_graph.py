"""Class-interaction graphs over (modality, class) nodes: GRaSP inference, random and planted graphs.

ILI (:mod:`avbench.models.ili`) infers a sparse directed graph between the nodes
``audio_<class>`` and ``visual_<class>`` from a teacher's soft labels and uses its
weighted adjacency ``A`` (``A[i, j] > 0``: edge i -> j) in the student's loss.

:func:`infer_class_graph` wraps causal-learn's GRaSP
(``causallearn.search.PermutationBased.GRaSP.grasp``, Lam, Andrews & Ramsey,
UAI 2022) with everything causal-learn leaves to the caller:

1. **Bad input.** A non-finite soft label raises :class:`ValueError` (count and
   first node named); fewer than 2 samples raise. A node whose column is constant
   (std < ``min_std``: a class never predicted, or a class without training
   positives that the caller excludes) is **dropped** before the search and left
   isolated (recorded in ``info["dropped"]`` with the reason).
2. **Collinearity.** Softmax soft labels sum to 1, so their columns are exactly
   collinear and the BIC regressions degenerate. Columns are standardised and a
   rank-revealing QR with column pivoting (``scipy.linalg.qr``) drops the columns
   beyond the numerical rank (``rank_tol`` relative to the largest diagonal of R),
   recorded as ``"collinear"``: with sigmoid heads (the ILI model's default) none
   are dropped in practice; with softmax one column is.
3. **Determinism.** GRaSP shuffles with Python's ``random`` (and numpy is seeded
   for any other draw): both are seeded with ``seed`` and restored afterwards.
4. **CPDAG edges.** GRaSP returns a CPDAG (``dag2cpdag``): ``G[j, i] == 1 and
   G[i, j] == -1`` is i -> j, ``-1/-1`` an undirected edge i - j whose orientation
   the data do not identify. ``undirected="both"`` (default) keeps both entries
   ``A[i, j] = A[j, i]`` (both orientations the CPDAG allows; avbench's graph
   convention, :mod:`avbench.metrics.graph`); ``"drop"`` removes them.
5. **Weights.** Every kept edge is weighted by the absolute Pearson correlation
   of its two nodes' soft labels over the training samples. With
   ``positive_only`` (default) edges between negatively correlated nodes are
   removed: ILI pulls linked pairs together, and a negative dependency means
   the two classes exclude each other. ``top_k`` keeps each source node's K
   heaviest outgoing entries. ``normalize="sum"`` (default) scales the weights
   to sum to 1, so the LIR weight lambda does not grow with the number of edges
   (a random graph of equal density then gets the same total weight);
   ``"max"`` scales the largest to 1; ``"none"`` keeps |r|.

``lambda_value`` (causal-learn >= 0.1.4.5, checked with 0.1.4.8): GRaSP
maximises the sum of local scores ``-n/2 (1 + log sigma^2) - lambda (|Pa| + 1)
log n`` (higher is better); ``lambda = 0.5`` is the standard BIC, GRaSP's own
default is 2 (4x the BIC penalty, sparser). Before 0.1.4.5 the BIC local score
had the opposite sign convention, so a ``lambda_value`` from older code (the
ILI reference repository pins 0.1.3.8) does not mean the same here. The
version and this meaning go into ``info``.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import numpy as np

MODALITIES = ("audio", "visual")
UndirectedPolicy = Literal["both", "drop"]
WeightNorm = Literal["sum", "max", "none"]

LAMBDA_MEANING = (
    "causal-learn >= 0.1.4.5 local BIC score (higher is better): "
    "-n/2*(1+log(sigma^2)) - lambda_value*(|Pa|+1)*log(n); 0.5 = standard BIC, larger = sparser"
)


def class_graph_nodes(classes: Sequence[str]) -> list[str]:
    """Node names ``audio_<class>`` for every class, then ``visual_<class>`` (the adjacency order)."""
    return [f"{m}_{c}" for m in MODALITIES for c in classes]


@dataclass
class ClassGraph:
    """A weighted directed graph over (modality, class) nodes.

    Attributes:
        adjacency: float [N, N]; ``adjacency[i, j] > 0`` is an edge i -> j with that
            weight; ``adjacency[i, j] == adjacency[j, i] > 0`` an undirected CPDAG edge
            kept in both orientations. Zero diagonal.
        nodes: N node names.
        info: provenance (causal-learn version, ``lambda_value`` and its meaning,
            dropped nodes with reasons, edge counts, seconds).
    """

    adjacency: np.ndarray
    nodes: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        a = np.asarray(self.adjacency, dtype=np.float64)
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] != len(self.nodes):
            raise ValueError(f"adjacency {a.shape} does not match {len(self.nodes)} nodes")
        np.fill_diagonal(a, 0.0)
        self.adjacency = a

    @property
    def n_entries(self) -> int:
        """Number of nonzero (directed) entries; an undirected edge counts twice."""
        return int((self.adjacency > 0).sum())

    def edges(self) -> list[tuple[str, str, float]]:
        """``(src, dst, weight)`` for every nonzero entry, row-major."""
        i, j = np.nonzero(self.adjacency)
        return [(self.nodes[a], self.nodes[b], float(self.adjacency[a, b])) for a, b in zip(i, j)]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python's ``random`` and numpy's global generator; restore both on exit."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def independent_columns(x: np.ndarray, rank_tol: float = 1e-8) -> np.ndarray:
    """Indices of a maximal set of linearly independent columns of ``x`` [n, p] (sorted).

    Rank-revealing QR with column pivoting; a column is kept while ``|R_kk|``
    exceeds ``rank_tol`` times the largest ``|R_kk|``.
    """
    from scipy.linalg import qr

    if x.shape[1] == 0:
        return np.zeros(0, dtype=np.int64)
    _, r, piv = qr(x, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > rank_tol * max(float(diag.max()), 1e-300)).sum()) if diag.size else 0
    return np.sort(piv[:rank])


def finish_weights(
    adjacency: np.ndarray,
    top_k: int | None = None,
    normalize: WeightNorm = "sum",
) -> np.ndarray:
    """Keep each source node's ``top_k`` heaviest entries, then normalise (see module docstring)."""
    a = np.array(adjacency, dtype=np.float64)
    np.fill_diagonal(a, 0.0)
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        for i in range(a.shape[0]):
            row = a[i]
            nz = np.flatnonzero(row > 0)
            if len(nz) > top_k:
                # stable: ties keep the lower index
                keep = nz[np.argsort(-row[nz], kind="stable")[:top_k]]
                drop = np.setdiff1d(nz, keep)
                row[drop] = 0.0
    total = a.sum()
    if normalize == "sum" and total > 0:
        a /= total
    elif normalize == "max" and total > 0:
        a /= a.max()
    elif normalize not in ("sum", "max", "none"):
        raise ValueError(f"normalize must be 'sum', 'max' or 'none', got {normalize!r}")
    return a


def infer_class_graph(
    soft_labels: np.ndarray,
    nodes: Sequence[str],
    *,
    lambda_value: float = 2.0,
    depth: int = 3,
    seed: int = 0,
    undirected: UndirectedPolicy = "both",
    positive_only: bool = True,
    top_k: int | None = None,
    normalize: WeightNorm = "sum",
    exclude: Sequence[int] = (),
    min_std: float = 1e-6,
    rank_tol: float = 1e-8,
) -> ClassGraph:
    """GRaSP over soft labels (one column per node), with the handling of the module docstring.

    Args:
        soft_labels: float [n_samples, N] (probabilities or logits), column k = ``nodes[k]``.
        nodes: N node names.
        lambda_value: causal-learn's BIC penalty coefficient (module docstring).
        depth: GRaSP's DFS depth (causal-learn default 3).
        seed: seeds Python ``random`` and numpy for the search.
        undirected: ``"both"`` or ``"drop"`` for CPDAG undirected edges.
        positive_only: remove edges between negatively correlated nodes.
        top_k: keep at most K outgoing entries per node (None: all).
        normalize: ``"sum"``, ``"max"`` or ``"none"``.
        exclude: node indices left out of the search (isolated), e.g. classes
            without training positives; recorded as ``"excluded"``.
        min_std: columns with a smaller standard deviation are dropped (``"constant"``).
        rank_tol: relative tolerance of the collinearity check.

    Returns:
        The :class:`ClassGraph` (possibly without edges; ``info["empty"]`` says so).

    Raises:
        ValueError: wrong shape, fewer than 2 samples, or non-finite soft labels.
    """
    from causallearn.search.PermutationBased.GRaSP import grasp

    from avbench.metrics.graph import from_causallearn

    x = np.asarray(soft_labels, dtype=np.float64)
    nodes = [str(n) for n in nodes]
    if x.ndim != 2 or x.shape[1] != len(nodes):
        raise ValueError(f"soft labels must be [n_samples, {len(nodes)}], got {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"GRaSP needs at least 2 samples, got {x.shape[0]}")
    bad = ~np.isfinite(x)
    if bad.any():
        first = nodes[int(np.nonzero(bad.any(axis=0))[0][0])]
        raise ValueError(f"soft labels contain {int(bad.sum())} non-finite values (first in node "
                         f"{first!r}): the teacher diverged; refusing to infer a graph")
    if undirected not in ("both", "drop"):
        raise ValueError(f"undirected must be 'both' or 'drop', got {undirected!r}")
    dropped: dict[str, str] = {nodes[k]: "excluded" for k in exclude}
    std = x.std(axis=0)
    for k in np.flatnonzero(std < min_std):
        dropped.setdefault(nodes[k], "constant")
    cand = np.array([k for k in range(len(nodes)) if nodes[k] not in dropped], dtype=np.int64)
    z = (x[:, cand] - x[:, cand].mean(axis=0)) / np.where(std[cand] > 0, std[cand], 1.0)
    indep = cand[independent_columns(z, rank_tol)] if len(cand) else cand
    for k in np.setdiff1d(cand, indep):
        dropped[nodes[k]] = "collinear"
    used = indep
    info: dict[str, Any] = {
        "method": "causallearn.search.PermutationBased.GRaSP.grasp",
        "causallearn_version": version("causal-learn"),
        "score_func": "local_score_BIC_from_cov",
        "lambda_value": float(lambda_value),
        "lambda_meaning": LAMBDA_MEANING,
        "depth": int(depth),
        "seed": int(seed),
        "n_samples": int(x.shape[0]),
        "undirected": undirected,
        "positive_only": bool(positive_only),
        "top_k": top_k,
        "normalize": normalize,
        "dropped": dropped,
    }
    a = np.zeros((len(nodes), len(nodes)))
    start = time.perf_counter()
    n_dir = n_und = 0
    if len(used) >= 2:
        data = z[:, np.searchsorted(cand, used)]
        with seeded(seed), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "features much larger than sample size" etc.
            g = grasp(data, score_func="local_score_BIC_from_cov", depth=depth,
                      parameters={"lambda_value": float(lambda_value)}, verbose=False,
                      node_names=[nodes[k] for k in used])
        sub = from_causallearn(g.graph).astype(np.float64)
        n_und = int((sub * sub.T).sum() // 2)
        n_dir = int((sub * (1 - sub.T)).sum())
        if undirected == "drop":
            sub = sub * (1 - sub.T)
        corr = np.corrcoef(data, rowvar=False)
        if positive_only:
            sub = sub * (corr > 0)
        a[np.ix_(used, used)] = sub * np.abs(corr)
    info["seconds"] = time.perf_counter() - start
    info["grasp_directed"], info["grasp_undirected"] = n_dir, n_und
    a = finish_weights(a, top_k, normalize)
    info["n_entries"] = int((a > 0).sum())
    info["empty"] = info["n_entries"] == 0
    return ClassGraph(a, nodes, info)


def random_graph_like(graph: ClassGraph, seed: int = 0) -> ClassGraph:
    """A random graph with as many nonzero entries as ``graph`` (equal density), same nodes.

    Entries are drawn uniformly among the off-diagonal pairs (seeded), and carry
    ``graph``'s weights in a random order, so the total weight is the same.
    """
    a = graph.adjacency
    n = a.shape[0]
    w = a[a > 0]
    rng = np.random.default_rng(seed)
    off = np.flatnonzero(~np.eye(n, dtype=bool))
    pick = rng.choice(off, size=len(w), replace=False)
    out = np.zeros(n * n)
    out[pick] = rng.permutation(w)
    info = {"source": "random", "seed": int(seed), "n_entries": len(w), "like": graph.info}
    return ClassGraph(out.reshape(n, n), list(graph.nodes), info)


def bootstrap_class_graphs(
    soft_labels: np.ndarray,
    nodes: Sequence[str],
    n: int,
    *,
    seed: int = 1,
    **grasp_kw: Any,
) -> dict[str, Any]:
    """GRaSP on ``n`` bootstrap resamples of the rows of ``soft_labels`` (edge stability).

    Resample ``b`` draws ``len(soft_labels)`` rows with replacement
    (``numpy.random.default_rng(seed + b)``) and runs :func:`infer_class_graph`
    with ``seed=seed + b`` and ``grasp_kw``. Costs ``n`` GRaSP runs.

    Returns:
        ``{"n": n, "seed": seed, "entries": [[[src, dst], ...] per resample],
        "seconds": total}``: the node-name pairs of each graph's nonzero entries.
    """
    x = np.asarray(soft_labels, dtype=np.float64)
    start = time.perf_counter()
    entries = []
    for b in range(n):
        rows = np.random.default_rng(seed + b).integers(0, len(x), size=len(x))
        g = infer_class_graph(x[rows], nodes, seed=seed + b, **grasp_kw)
        entries.append([[src, dst] for src, dst, _ in g.edges()])
    return {"n": int(n), "seed": int(seed), "entries": entries,
            "seconds": time.perf_counter() - start}


def planted_class_graph(
    root: str | Path,
    classes: Sequence[str],
    normalize: WeightNorm = "sum",
    graph_file: str | Path | None = None,
) -> ClassGraph:
    """The synthetic world's planted graph over the dataset's class nodes (the oracle).

    Reads ``cooccurrence_graph.json`` (edges between world categories,
    :mod:`avbench.data.synthetic.graph`; ``graph_file`` names another file) and
    ``avbench_synthetic.json``'s ``class_map`` (dataset class name -> world
    category) beside the data; edges touching a category outside ``classes`` are
    dropped (``info``: ``n_world_edges`` planted in the world, ``n_entries`` kept).
    Weights are the edges' co-occurrence probabilities, then ``normalize``.

    Raises:
        FileNotFoundError: naming the missing file (not a synthetic dataset).
        KeyError: a class missing from the class map.
    """
    root = Path(root)
    gpath = Path(graph_file) if graph_file is not None else root / "cooccurrence_graph.json"
    mpath = root / "avbench_synthetic.json"
    for p in (gpath, mpath):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: the oracle graph needs the synthetic world's files")
    planted = json.loads(gpath.read_text(encoding="utf-8"))
    cmap = json.loads(mpath.read_text(encoding="utf-8")).get("class_map")
    if not isinstance(cmap, dict):
        raise KeyError(f"{mpath} has no 'class_map'")
    missing = [c for c in classes if c not in cmap]
    if missing:
        raise KeyError(f"classes {missing} are not in {mpath}'s class_map")
    nodes = class_graph_nodes(classes)
    index = {f"{m}_{int(cmap[c])}": f"{m}_{c}" for m in MODALITIES for c in classes}
    pos = {n: i for i, n in enumerate(nodes)}
    a = np.zeros((len(nodes), len(nodes)))
    for e in planted["edges"]:
        if e["src"] in index and e["dst"] in index:
            a[pos[index[e["src"]]], pos[index[e["dst"]]]] = float(e["prob"])
    a = finish_weights(a, None, normalize)
    return ClassGraph(a, nodes, {"source": "oracle", "file": str(gpath), "n_entries": int((a > 0).sum()),
                                 "n_world_edges": len(planted["edges"])})


__all__ = [
    "LAMBDA_MEANING",
    "ClassGraph",
    "bootstrap_class_graphs",
    "class_graph_nodes",
    "finish_weights",
    "independent_columns",
    "infer_class_graph",
    "planted_class_graph",
    "random_graph_like",
    "seeded",
]
