"""AVSBench segmentation (S4 / MS3): mIoU and F-score (REFERENCE.md A2).

Per frame, with scores S in [0, 1] (``sigmoid(logits)`` for a segmentation
model; for a zero-shot localization model the benchmark passes the min-max
normalised, bilinearly upsampled map, see :mod:`avbench.benchmarks.tasks.segmentation`)
and a binary GT mask G (``mask > 0.5``):

* **IoU** of the binary prediction ``S > 0.5`` (the reference's
  ``sigmoid(pred) > 0.5``): ``|P & G| / |P | G|``. For an **empty GT mask** the
  reference scores the true negatives: ``IoU = |~P & ~G| / (H*W)`` (1 for an
  empty prediction); avbench keeps that convention. The reference adds
  ``eps=1e-7`` to the union; avbench does not (the union is >= 1 in both
  branches), a difference below 1e-7.
* **F-score curve**: at the reference's 255 thresholds
  ``torch.linspace(0, 1 - 1e-10, 255)`` (float32, so the last one is 1.0),
  ``P_k = S >= t_k``; precision ``tp / (|P_k| + 1e-20)``, recall
  ``tp / (|G| + 1e-20)``, ``F_k = (1 + b2) p r / (b2 p + r)`` with
  ``b2 = 0.3`` and NaN -> 0. Frames with an empty GT are **excluded** from F
  (reference: "examples with totally black GTs are out of consideration").

Set-level numbers (the difference from the reference, on purpose):

* ``miou`` = mean IoU over **all** test frames. The reference averages the
  per-batch mean IoU over batches, so a short last batch is over-weighted.
* ``fscore`` = ``max_k mean_frames F_k``: the per-frame F curves are averaged
  over the **whole** test set and the max over thresholds is taken once. The
  reference takes ``max_k`` of the batch-mean curve **per batch** and then
  averages those maxima over batches: an oracle threshold per batch, so its
  number grows as the batch shrinks (batch size 1 = a best threshold per
  frame). avbench's number is batch-size independent and never larger than
  the reference's at the same data.

Per-frame counts are exact integers obtained with one histogram per frame
(``torch.bucketize`` of each pixel against the 255 thresholds), so the curve
costs O(pixels), not O(pixels x 255).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from avbench.metrics._common import KeyedMetric, keys_for, stable_key

N_THRESHOLDS = 255
BETA2 = 0.3


def fscore_thresholds(n: int = N_THRESHOLDS) -> Tensor:
    """The reference thresholds ``torch.linspace(0, 1 - 1e-10, n)`` (float32)."""
    return torch.linspace(0, 1 - 1e-10, n)


def frame_iou(pred_bin: Tensor, gt: Tensor) -> Tensor:
    """IoU per frame (float64 [F]) of boolean [F, N] masks, empty-GT convention of A2."""
    n_pix = gt.shape[1]
    inter = (pred_bin & gt).sum(dim=1)
    union = (pred_bin | gt).sum(dim=1)
    empty = gt.sum(dim=1) == 0
    tn = (~pred_bin).sum(dim=1)  # with an empty GT every negative pixel is a true negative
    inter = torch.where(empty, tn, inter).double()
    union = torch.where(empty, torch.full_like(union, n_pix), union).double()
    return inter / union


def frame_fcurves(scores: Tensor, gt: Tensor, thresholds: Tensor, beta2: float = BETA2) -> Tensor:
    """Per-frame F-score curves (float64 [F, K]) at ``thresholds`` (``S >= t_k``).

    ``scores`` float [F, N], ``gt`` bool [F, N].
    """
    f, _ = scores.shape
    k = thresholds.numel()
    # idx = number of thresholds <= score, so score >= t_j  <=>  idx > j
    idx = torch.bucketize(scores.contiguous(), thresholds.to(scores), right=True)
    offs = (torch.arange(f, device=scores.device) * (k + 1)).unsqueeze(1)
    flat = (idx + offs).reshape(-1)
    hist_all = torch.bincount(flat, minlength=f * (k + 1)).reshape(f, k + 1)
    hist_pos = torch.bincount(flat[gt.reshape(-1)], minlength=f * (k + 1)).reshape(f, k + 1)
    # count of pixels with idx >= j + 1, for j = 0..k-1 (suffix sums)
    n_pred = hist_all.flip(1).cumsum(1).flip(1)[:, 1:].double()
    tp = hist_pos.flip(1).cumsum(1).flip(1)[:, 1:].double()
    n_gt = gt.sum(dim=1, keepdim=True).double()
    prec = tp / (n_pred + 1e-20)
    rec = tp / (n_gt + 1e-20)
    fs = (1 + beta2) * prec * rec / (beta2 * prec + rec)
    return torch.nan_to_num(fs, nan=0.0)


class AVSBenchMetric(KeyedMetric):
    """mIoU and F-score of AVSBench masks (REFERENCE A2), batch-size invariant.

    Args:
        from_logits: apply ``sigmoid`` to the inputs (segmentation models);
            otherwise the inputs are scores in [0, 1].
        iou_threshold: binarisation of the scores for IoU (``S > 0.5``).
        n_thresholds: F-score thresholds (255).
        beta2: F-score beta squared (0.3).

    ``update(preds, target, valid=None, ids=None)`` with ``preds``/``target``
    [B, T, H, W] (or [B, H, W] = one frame per sample) at the same size,
    ``valid`` [B, T] bool marks annotated frames (others are ignored),
    ``ids`` the clip ids; frames are keyed by ``"<id>#<t>"``.
    ``compute()`` returns ``miou``, ``fscore`` and counts ``n_frames``,
    ``n_empty_gt``, ``n_duplicates``.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        from_logits: bool = False,
        iou_threshold: float = 0.5,
        n_thresholds: int = N_THRESHOLDS,
        beta2: float = BETA2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.from_logits = from_logits
        self.iou_threshold = float(iou_threshold)
        self.beta2 = float(beta2)
        self.register_buffer("thresholds", fscore_thresholds(n_thresholds), persistent=False)
        self.add_state("iou", default=[], dist_reduce_fx="cat")
        self.add_state("fcurve", default=[], dist_reduce_fx="cat")
        self.add_state("gt_empty", default=[], dist_reduce_fx="cat")

    @property
    def protocol(self) -> dict[str, Any]:
        return {
            "from_logits": self.from_logits,
            "iou_rule": f"score > {self.iou_threshold}",
            "fscore_thresholds": int(self.thresholds.numel()),
            "beta2": self.beta2,
            "fscore_reduction": "mean per-frame curve over the whole set, then max",
            "empty_gt": "IoU = TN / pixels; excluded from F",
        }

    def _frame_keys(self, ids: Sequence[str] | Tensor | None, b: int, t: int) -> Tensor:
        if ids is None or isinstance(ids, Tensor):
            base = keys_for(ids, b, self._seen // max(t, 1), self.device)
            return (base.unsqueeze(1) * t + torch.arange(t, device=self.device)).reshape(-1)
        ids = list(ids)
        if len(ids) != b:
            raise ValueError(f"got {len(ids)} ids for {b} samples")
        keys = [stable_key(f"{i}#{k}") for i in ids for k in range(t)]
        return torch.tensor(keys, dtype=torch.long, device=self.device)

    def update(
        self,
        preds: Tensor,
        target: Tensor,
        valid: Tensor | None = None,
        ids: Sequence[str] | Tensor | None = None,
    ) -> None:
        if preds.ndim == 3:
            preds, target = preds.unsqueeze(1), target.unsqueeze(1)
            valid = None if valid is None else valid.reshape(-1, 1)
        if preds.shape != target.shape or preds.ndim != 4:
            raise ValueError(
                f"preds and masks must both be [B,T,H,W]; got {tuple(preds.shape)} "
                f"and {tuple(target.shape)}"
            )
        b, t = preds.shape[:2]
        keys = self._frame_keys(ids, b, t)
        scores = preds.detach().reshape(b * t, -1).float()
        if self.from_logits:
            scores = torch.sigmoid(scores)
        gt = target.detach().reshape(b * t, -1) > 0.5
        if valid is not None:
            keep = valid.reshape(-1).to(torch.bool).to(scores.device)
            scores, gt, keys = scores[keep], gt[keep], keys[keep.to(keys.device)]
        self._seen += b * t
        if scores.shape[0] == 0:
            return
        iou = frame_iou(scores > self.iou_threshold, gt)
        fc = frame_fcurves(scores, gt, self.thresholds, self.beta2)
        self.iou.append(iou.to(self.device))
        self.fcurve.append(fc.to(self.device))
        self.gt_empty.append((gt.sum(dim=1) == 0).to(device=self.device, dtype=torch.float32))
        self.key.append(keys)

    def compute(self) -> dict[str, Tensor]:
        keys, (iou, fcurve, empty), n_dup = self._deduplicated(self.iou, self.fcurve, self.gt_empty)
        has_gt = empty == 0
        if bool(has_gt.any()):
            fscore = fcurve[has_gt].mean(dim=0).max()
        else:
            fscore = torch.tensor(float("nan"), dtype=torch.float64)
        return {
            "miou": iou.mean(),
            "fscore": fscore,
            "n_frames": torch.tensor(float(iou.numel())),
            "n_empty_gt": torch.tensor(float((~has_gt).sum())),
            "n_duplicates": torch.tensor(float(n_dup)),
        }


def reference_batchwise(
    iou: Tensor, fcurve: Tensor, gt_empty: Tensor, batch_size: int
) -> dict[str, float]:
    """What the AVSBench reference reports for per-frame values in loader order.

    ``miou`` = mean over batches of the batch-mean IoU; ``fscore`` = mean over
    batches of ``max_k`` (batch-mean F curve over non-empty frames). Kept to
    document and test the difference with :class:`AVSBenchMetric`.
    """
    mious, fs = [], []
    for lo in range(0, iou.numel(), batch_size):
        mious.append(float(iou[lo : lo + batch_size].mean()))
        sel = gt_empty[lo : lo + batch_size] == 0
        curves = fcurve[lo : lo + batch_size][sel]
        fs.append(float(curves.mean(dim=0).max()) if curves.shape[0] else 0.0)
    return {"miou": sum(mious) / len(mious), "fscore": sum(fs) / len(fs)}
