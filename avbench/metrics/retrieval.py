"""Cross-modal retrieval: Recall@K and MAP@all (REFERENCE.md A3).

Setting: N paired test items, each with an embedding in two modalities
(e.g. audio and visual) and a class label. Queries of one modality rank the
**whole** gallery of the other modality by cosine similarity (embeddings are
L2-normalised here again, so any model's pooling gives cosines); the paired
item is in the gallery.

* Relevance: ``"class"`` (VGG-SS / VGGSound, AVE, VEGAS: a retrieved item is
  a hit when it has the query's class; multi-hot labels: when they share a
  class) or ``"instance"`` (Ego4D: only the query's own pair is relevant).
* ``R@K`` (``a2v_r1`` ...) = fraction of queries with at least one relevant
  item among the first K.
* ``MAP`` (``a2v_map``, ``v2a_map`` and their mean ``map``) = mean over
  queries of the average precision of the query's full ranking: the mean of
  precision@rank over **that query's** relevant items (AVE/VEGAS line, ILI).
  A public implementation averages the running precision at every rank
  instead; avbench does not. A query with no relevant item has AP 0 (cannot
  happen with paired data: the pair is always relevant).

Ties: equal similarities are resolved by the **expected value under a
uniformly random order of the tied items** (McSherry & Najork, ECIR 2008), so
the numbers depend neither on the gallery order nor on the sort algorithm.
For AP, a tie group of n items with r relevant, starting after rank s with
R' relevant items above it, contributes
``sum_{j=1..n} (r/n) (R' + 1 + (j-1)(r-1)/(n-1)) / (s + j)``; for R@K, the
hit probability when the K-th rank falls in such a group with no relevant item
above it is ``1 - C(n-r, K') / C(n, K')`` (K' = K - s slots in the group).
Without ties both reduce to the usual definitions.

Undefined cases: with fewer than 2 items, or class relevance where every item has
the same class, every item is relevant to every query and each ranking scores
1.0 whatever the embeddings; ``compute()`` raises
:class:`~avbench.metrics._common.NotScorableError` (:func:`retrieval_undefined`).
``R@K`` with K >= the gallery size is 1.0 for any ranking (the pair is always in
the gallery): such R@K are not computed, their reasons are in
:attr:`CrossModalRetrieval.undefined` (:func:`trivial_recall`), and when no metric
is left ``compute()`` raises ``NotScorableError``.

Computation: ``compute()`` de-duplicates by sample key and sorts by key (see
:mod:`avbench.metrics._common`), then ranks queries in chunks in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from avbench.metrics._common import IdLike, KeyedMetric, NotScorableError

Relevance = Literal["class", "instance"]

_CHUNK_ELEMS = 1 << 20  # query rows x gallery size processed at once


def relevance_matrix(
    labels_q: Tensor | None, labels_g: Tensor | None, n_q: int, n_g: int, mode: Relevance
) -> Tensor:
    """Boolean [n_q, n_g] relevance; instance mode assumes row i pairs with column i."""
    if mode == "instance":
        return torch.eye(n_q, n_g, dtype=torch.bool)
    if labels_q is None or labels_g is None:
        raise ValueError("class relevance needs labels")
    if labels_q.ndim == 1:
        return labels_q.unsqueeze(1) == labels_g.unsqueeze(0)
    return (labels_q.double() @ labels_g.double().T) > 0


def _ranking_stats(sim: Tensor, rel: Tensor, ks: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Tie-aware AP [q] and hit@K [q, len(ks)] for similarity rows ``sim`` [q, N]."""
    q, n = sim.shape
    vals, order = torch.sort(sim, dim=1, descending=True)
    r = rel.gather(1, order).double()
    new_group = torch.ones_like(vals, dtype=torch.bool)
    new_group[:, 1:] = vals[:, 1:] != vals[:, :-1]
    gid = new_group.long().cumsum(dim=1) - 1  # group index within the row
    flat = (gid + torch.arange(q).unsqueeze(1) * n).reshape(-1)
    size = torch.bincount(flat, minlength=q * n).reshape(q, n).double()
    nrel = torch.bincount(flat, weights=r.reshape(-1), minlength=q * n).reshape(q, n)
    start = size.cumsum(dim=1) - size  # items ranked strictly above the group
    rel_before = nrel.cumsum(dim=1) - nrel  # relevant items strictly above the group
    # per position p (0-based): its group's statistics
    g_size = size.gather(1, gid)
    g_rel = nrel.gather(1, gid)
    g_start = start.gather(1, gid)
    g_before = rel_before.gather(1, gid)
    pos = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    j = pos - g_start + 1  # 1-based position inside the group
    expected_prec = (g_before + 1 + (j - 1) * (g_rel - 1) / (g_size - 1).clamp(min=1)) / (pos + 1)
    total_rel = r.sum(dim=1)
    ap_sum = (g_rel / g_size * expected_prec).sum(dim=1)
    ap = torch.where(total_rel > 0, ap_sum / total_rel.clamp(min=1), torch.zeros_like(ap_sum))

    hits = []
    for k in ks:
        if k >= n:
            hits.append((total_rel > 0).double())
            continue
        gk = gid[:, k - 1 : k]
        s, m = start.gather(1, gk)[:, 0], size.gather(1, gk)[:, 0]
        rg, rb = nrel.gather(1, gk)[:, 0], rel_before.gather(1, gk)[:, 0]
        slots = k - s  # ranks of the group inside the top k (>= 1)
        p_miss = torch.ones(q, dtype=torch.float64)
        for i in range(k):
            factor = ((m - rg - i) / (m - i).clamp(min=1)).clamp(min=0)
            p_miss = torch.where(i < slots, p_miss * factor, p_miss)
        hits.append(torch.where(rb > 0, torch.ones_like(p_miss), 1 - p_miss))
    return ap, torch.stack(hits, dim=1) if hits else torch.zeros(q, 0, dtype=torch.float64)


def retrieval_scores(
    query: Tensor,
    gallery: Tensor,
    labels_q: Tensor | None = None,
    labels_g: Tensor | None = None,
    *,
    ks: Sequence[int] = (1, 5, 10),
    relevance: Relevance = "class",
) -> dict[str, Tensor]:
    """Mean AP and R@K of ``query`` [Nq, D] against ``gallery`` [Ng, D] (cosine)."""
    q = F.normalize(query.double(), dim=1)
    g = F.normalize(gallery.double(), dim=1)
    nq, ng = q.shape[0], g.shape[0]
    chunk = max(1, _CHUNK_ELEMS // max(ng, 1))
    aps, hits = [], []
    for lo in range(0, nq, chunk):
        sim = q[lo : lo + chunk] @ g.T
        if relevance == "instance":
            rel = torch.zeros(sim.shape, dtype=torch.bool)
            rows = torch.arange(sim.shape[0])
            cols = rows + lo
            ok = cols < ng
            rel[rows[ok], cols[ok]] = True
        else:
            rel = relevance_matrix(labels_q[lo : lo + chunk], labels_g, sim.shape[0], ng, relevance)
        ap, hit = _ranking_stats(sim, rel, ks)
        aps.append(ap)
        hits.append(hit)
    ap = torch.cat(aps)
    hit = torch.cat(hits)
    out = {"map": ap.mean()}
    for i, k in enumerate(ks):
        out[f"r{k}"] = hit[:, i].mean()
    return out


def retrieval_undefined(labels: Tensor | None, n: int, relevance: Relevance) -> str | None:
    """Why retrieval over ``n`` items is undefined (None: it is defined); ``labels`` [n] or [n, C]."""
    if n < 2:
        return f"{n} item(s): retrieval needs a gallery of at least 2 items"
    if relevance == "class" and labels is not None:
        rows = labels.reshape(n, -1)
        if bool((rows == rows[:1]).all()):
            return (f"all {n} items have the same class: every item is relevant to every "
                    "query, so any ranking scores 1.0")
    return None


def trivial_recall(ks: Sequence[int], n: int) -> dict[int, str]:
    """The K of ``ks`` whose R@K is 1.0 for any ranking of a gallery of ``n`` items
    (K >= n: every item, the paired one included, is in the top K), with the reason."""
    return {k: f"R@{k} on a gallery of {n} items is 1.0 for any ranking (k >= gallery size)"
            for k in ks if k >= n}


def _abbrev(name: str) -> str:
    return name[0].lower()


class CrossModalRetrieval(KeyedMetric):
    """R@K (both directions) and MAP@all (both directions and mean), REFERENCE A3.

    Args:
        modalities: names of the two embeddings, used in the metric names
            (``("audio", "visual")`` -> ``a2v_r1``, ``v2a_map``, ...).
        ks: the K of Recall@K (empty to skip).
        compute_map: report ``a2v_map``, ``v2a_map`` and ``map``.
        relevance: ``"class"`` or ``"instance"``.

    ``update(x [B,D], y [B,D], labels=None, ids=None)``: ``labels`` LongTensor
    [B] or multi-hot [B, C] (needed for class relevance).

    After ``compute()``, :attr:`undefined` maps each metric left out because it is
    trivial on this gallery (:func:`trivial_recall`) to the reason.

    Raises:
        NotScorableError: from ``compute()`` when :func:`retrieval_undefined` says so, or
            when every metric is trivial on the gallery.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        modalities: tuple[str, str] = ("audio", "visual"),
        ks: Sequence[int] = (1, 5, 10),
        compute_map: bool = True,
        relevance: Relevance = "class",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if relevance not in ("class", "instance"):
            raise ValueError(f"relevance must be 'class' or 'instance', got {relevance!r}")
        self.modalities = tuple(modalities)
        self.ks = tuple(int(k) for k in ks)
        self.compute_map = compute_map
        self.relevance = relevance
        self.add_state("x", default=[], dist_reduce_fx="cat")
        self.add_state("y", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")
        self.undefined: dict[str, str] = {}

    @property
    def protocol(self) -> dict[str, Any]:
        return {
            "modalities": list(self.modalities),
            "ks": list(self.ks),
            "map": "MAP@all, per-query AP" if self.compute_map else None,
            "relevance": self.relevance,
            "similarity": "cosine",
            "ties": "expected value over random order of tied items",
        }

    def metric_names(self) -> list[str]:
        a, b = (_abbrev(m) for m in self.modalities)
        names = [f"{d}_r{k}" for d in (f"{a}2{b}", f"{b}2{a}") for k in self.ks]
        if self.compute_map:
            names += [f"{a}2{b}_map", f"{b}2{a}_map", "map"]
        return names

    def update(
        self, x: Tensor, y: Tensor, labels: Tensor | None = None, ids: IdLike = None
    ) -> None:
        if x.ndim != 2 or y.shape != x.shape:
            raise ValueError(
                f"embeddings must be two [B, D] tensors, got {tuple(x.shape)}, {tuple(y.shape)}"
            )
        b = x.shape[0]
        if labels is None:
            if self.relevance == "class":
                raise ValueError("class relevance needs labels")
            labels = torch.zeros(b, dtype=torch.long)
        labels = labels.detach().to(self.device)
        if labels.dtype.is_floating_point and labels.ndim == 1:
            labels = labels.long()
        self.x.append(x.detach().float().to(self.device))
        self.y.append(y.detach().float().to(self.device))
        self.labels.append(labels)
        self._append_keys(ids, b)

    def compute(self) -> dict[str, Tensor]:
        keys, (x, y, labels), n_dup = self._deduplicated(self.x, self.y, self.labels)
        x, y, labels = x.cpu(), y.cpu(), labels.cpu()
        reason = retrieval_undefined(labels, int(keys.numel()), self.relevance)
        if reason is not None:
            raise NotScorableError(reason, self.metric_names())
        a, b = (_abbrev(m) for m in self.modalities)
        trivial = trivial_recall(self.ks, int(keys.numel()))
        self.undefined = {f"{d}_r{k}": why for d in (f"{a}2{b}", f"{b}2{a}")
                          for k, why in trivial.items()}
        ks = [k for k in self.ks if k not in trivial]
        if not ks and not self.compute_map:
            raise NotScorableError("; ".join(trivial.values()), self.metric_names())
        out: dict[str, Tensor] = {}
        for name, q, g in ((f"{a}2{b}", x, y), (f"{b}2{a}", y, x)):
            s = retrieval_scores(q, g, labels, labels, ks=ks, relevance=self.relevance)
            for k in ks:
                out[f"{name}_r{k}"] = s[f"r{k}"]
            if self.compute_map:
                out[f"{name}_map"] = s["map"]
        if self.compute_map:
            out["map"] = (out[f"{a}2{b}_map"] + out[f"{b}2{a}_map"]) / 2
        out["n"] = torch.tensor(float(keys.numel()))
        out["n_duplicates"] = torch.tensor(float(n_dup))
        return out
