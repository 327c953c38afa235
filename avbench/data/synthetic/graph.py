"""The planted co-occurrence graph over (category, modality) nodes.

ILI infers a directed graph between the audio and visual "concept" nodes of a
dataset; on real data nobody knows the true graph. Here it is planted: an
edge ``visual_A -> audio_B`` (or ``audio_A -> visual_B``, ...) with
probability ``p`` means that when A is a clip's annotated category, B is also
present in the destination modality with probability ``p`` (heard off-screen
for ``audio_B``, seen as a silent object for ``visual_B``) and is NOT in the
label. The source modality of an edge names which of A's nodes the edge is
drawn from (both are present whenever A is annotated).

The graph is sparse and acyclic over categories (edges go forward in a random
category order), so it is a proper DAG ground truth for causal discovery; it
is written beside each dataset as ``cooccurrence_graph.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avbench.atomic_io import atomic_write_text

MODALITIES: tuple[str, str] = ("audio", "visual")
FILENAME = "cooccurrence_graph.json"


def node_name(category: int, modality: str) -> str:
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    return f"{modality}_{int(category)}"


def parse_node(name: str) -> tuple[int, str]:
    """``"audio_3"`` -> ``(3, "audio")``."""
    modality, _, idx = name.rpartition("_")
    if modality not in MODALITIES or not idx.isdigit():
        raise ValueError(f"not a graph node name: {name!r}")
    return int(idx), modality


@dataclass(frozen=True)
class GraphEdge:
    src: str  # node name, e.g. "visual_3"
    dst: str  # node name, e.g. "audio_7"
    prob: float


@dataclass
class CooccurrenceGraph:
    """Directed graph on nodes ``audio_<c>`` then ``visual_<c>``; see module docstring."""

    n_categories: int
    edges: list[GraphEdge] = field(default_factory=list)
    names: list[str] | None = None  # category names, for readable JSON

    @property
    def nodes(self) -> list[str]:
        """Audio nodes first, then visual nodes (the adjacency order)."""
        return [node_name(c, m) for m in MODALITIES for c in range(self.n_categories)]

    def index(self, node: str) -> int:
        c, m = parse_node(node)
        return c + (0 if m == "audio" else self.n_categories)

    def adjacency(self) -> np.ndarray:
        """int [N, N] with ``[i, j] = 1`` iff there is an edge ``nodes[i] -> nodes[j]``."""
        n = 2 * self.n_categories
        a = np.zeros((n, n), dtype=np.int64)
        for e in self.edges:
            a[self.index(e.src), self.index(e.dst)] = 1
        return a

    def probabilities(self) -> np.ndarray:
        """float [N, N] edge probabilities (0 where there is no edge)."""
        n = 2 * self.n_categories
        p = np.zeros((n, n), dtype=np.float64)
        for e in self.edges:
            p[self.index(e.src), self.index(e.dst)] = e.prob
        return p

    def out_edges(self, category: int) -> list[tuple[int, str, float]]:
        """``(dst category, dst modality, prob)`` of the edges leaving either node of ``category``."""
        out = []
        for e in self.edges:
            c, _ = parse_node(e.src)
            if c == category:
                d, m = parse_node(e.dst)
                out.append((d, m, e.prob))
        return out

    # -- sampling -------------------------------------------------------------

    @classmethod
    def sample(
        cls,
        n_categories: int,
        n_edges: int,
        prob_range: tuple[float, float],
        max_out: int,
        rng: np.random.Generator,
        names: list[str] | None = None,
    ) -> CooccurrenceGraph:
        """A random sparse DAG: ``n_edges`` edges, at most ``max_out`` per source category."""
        order = rng.permutation(n_categories)
        rank = np.empty(n_categories, dtype=np.int64)
        rank[order] = np.arange(n_categories)
        edges: list[GraphEdge] = []
        taken: set[tuple[int, int]] = set()
        out_count = np.zeros(n_categories, dtype=np.int64)
        capacity = sum(min(max_out, n_categories - 1 - r) for r in range(n_categories))
        n_edges = min(n_edges, capacity)
        tries = 0
        while len(edges) < n_edges and tries < 100 * (n_edges + 1):
            tries += 1
            a, b = (int(x) for x in rng.integers(0, n_categories, size=2))
            if rank[a] > rank[b]:
                a, b = b, a
            if a == b or (a, b) in taken or out_count[a] >= max_out:
                continue
            src_m = MODALITIES[int(rng.integers(2))]
            dst_m = MODALITIES[int(rng.integers(2))]
            p = float(np.round(rng.uniform(*prob_range), 3))
            taken.add((a, b))
            out_count[a] += 1
            edges.append(GraphEdge(node_name(a, src_m), node_name(b, dst_m), p))
        return cls(n_categories, edges, names)

    # -- (de)serialisation -------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": "avbench-cooccurrence-graph/1",
            "semantics": ("edge src -> dst with prob p: when src's category is the annotated "
                          "category of a clip, dst's category is present in dst's modality with "
                          "probability p and is not in the label"),
            "n_categories": self.n_categories,
            "nodes": self.nodes,
            "edges": [{"src": e.src, "dst": e.dst, "prob": e.prob} for e in self.edges],
        }
        if self.names is not None:
            d["category_names"] = list(self.names)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CooccurrenceGraph:
        edges = [GraphEdge(str(e["src"]), str(e["dst"]), float(e["prob"])) for e in d["edges"]]
        names = d.get("category_names")
        g = cls(int(d["n_categories"]), edges, list(names) if names is not None else None)
        for e in edges:  # validate node names
            g.index(e.src)
            g.index(e.dst)
        return g

    def save(self, path: str | Path) -> Path:
        """Write the JSON to ``path`` (a file, or a directory -> ``<dir>/cooccurrence_graph.json``)."""
        path = Path(path)
        if path.is_dir() or not path.suffix:
            path = path / FILENAME
        atomic_write_text(path, json.dumps(self.to_json(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> CooccurrenceGraph:
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
