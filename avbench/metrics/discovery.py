"""Sounding-action discovery: ROC-AUC and PR-AUC of a score (REFERENCE.md A5).

Each clip has a binary label (``batch["sounding"]``: the action makes sound)
and a score (the model's ``sounding_score``, or, as in MC3, the cosine of the
clip's own audio and visual embeddings). Reported:

* ``roc_auc`` = ``torchmetrics.functional.binary_auroc`` (exact, ties count
  one half);
* ``pr_auc`` = ``torchmetrics.functional.binary_average_precision`` (average
  precision, the step-wise area under the PR curve, as in sklearn; not the
  trapezoid, which is optimistic);
* ``positive_rate`` = the PR-AUC of a random score, to read ``pr_auc`` against.

Both metrics depend only on the order of the scores. torchmetrics applies a
sigmoid to scores outside [0, 1] (cosines are in [-1, 1]) in float32, which can
merge nearly equal scores; avbench therefore passes the **dense ranks** of the
scores scaled to [0, 1] (float64), which preserves order and ties exactly.

With one class only (every clip positive, as in the public Ego4D-Sounds test
table, or every clip negative) both metrics are undefined: ROC-AUC has no
pairs to order and the average precision of any score is 1.0 (all positive) or
undefined. :meth:`DiscoveryMetric.compute` then raises
:class:`~avbench.metrics._common.NotScorableError` (reason from
:func:`discovery_undefined`); :func:`discovery_scores` returns NaN for them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc, binary_average_precision

from avbench.metrics._common import IdLike, KeyedMetric, NotScorableError


def rank_scale(scores: Tensor) -> Tensor:
    """Dense ranks of ``scores`` mapped to [0, 1] (float64), ties preserved."""
    uniq, inv = torch.unique(scores, return_inverse=True)
    if uniq.numel() <= 1:
        return torch.full_like(scores, 0.5, dtype=torch.float64)
    return inv.double() / (uniq.numel() - 1)


def discovery_scores(scores: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """ROC-AUC, PR-AUC (average precision) and positive rate of ``scores`` vs binary ``labels``.

    Both AUCs are NaN with one class only (see :func:`discovery_undefined`).
    """
    labels = labels.long().reshape(-1)
    scores = scores.reshape(-1)
    if labels.numel() == 0:
        raise ValueError("no samples")
    n_pos = int(labels.sum())
    x = rank_scale(scores.double())
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    both = 0 < n_pos < labels.numel()
    return {
        "roc_auc": binary_auroc(x, labels).double() if both else nan,
        "pr_auc": binary_average_precision(x, labels).double() if both else nan,
        "positive_rate": torch.tensor(n_pos / labels.numel(), dtype=torch.float64),
    }


def discovery_undefined(labels: Tensor) -> str | None:
    """Why ROC-AUC / PR-AUC are undefined for binary ``labels`` [N] (None: they are defined)."""
    n = labels.numel()
    n_pos = int(labels.long().sum())
    if n == 0:
        return "no samples"
    if n_pos in (0, n):
        cls = "positive" if n_pos else "negative"
        return (f"all {n} samples are {cls} (one class only): ROC-AUC and PR-AUC are "
                "undefined (the PR-AUC of any score would be "
                f"{'1.0' if n_pos else 'undefined'})")
    return None


class DiscoveryMetric(KeyedMetric):
    """ROC-AUC / PR-AUC of a per-clip score against a binary label (REFERENCE A5).

    ``update(scores [B], labels [B] bool/0-1, ids=None)``; ``compute()`` returns
    ``roc_auc``, ``pr_auc``, ``positive_rate``, ``n``, ``n_duplicates``.

    Raises:
        NotScorableError: from ``compute()`` when the labels hold one class only.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    @property
    def protocol(self) -> dict[str, Any]:
        return {"roc_auc": "binary_auroc", "pr_auc": "average precision (step)"}

    def update(self, scores: Tensor, labels: Tensor, ids: IdLike = None) -> None:
        scores = scores.detach().reshape(-1)
        labels = labels.detach().reshape(-1)
        if scores.shape != labels.shape:
            raise ValueError(f"{scores.numel()} scores for {labels.numel()} labels")
        if not torch.isfinite(scores).all():
            raise ValueError("discovery scores contain NaN/inf")
        self.scores.append(scores.double().to(self.device))
        self.labels.append(labels.long().to(self.device))
        self._append_keys(ids, scores.numel())

    def compute(self) -> dict[str, Tensor]:
        keys, (scores, labels), n_dup = self._deduplicated(self.scores, self.labels)
        reason = discovery_undefined(labels)
        if reason is not None:
            raise NotScorableError(reason, ("roc_auc", "pr_auc"))
        out = discovery_scores(scores.cpu(), labels.cpu())
        out["n"] = torch.tensor(float(keys.numel()))
        out["n_duplicates"] = torch.tensor(float(n_dup))
        return out
