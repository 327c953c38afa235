"""Sound-source localization: consensus IoU, AP50 ("cIoU" in tables), AUC.

Protocol: REFERENCE.md section A1 (Flickr-SoundNet test, VGG-SS and its
heard/unheard splits, AVSBench used as an SSL test). For every image:

1. the predicted heat map P (h x w, any real values) is upsampled to the GT
   size with **bilinear** interpolation (``align_corners=True`` by default:
   the EZ-VSL/FNAC/SLAVC test scripts, whose threshold rule avbench adopts;
   ``F.interpolate(..., mode="bilinear")``, one upsampler for every model);
2. P is **min-max normalised per image**, ``(P - min) / (max - min)``; a
   constant map (no information, e.g. the full-image baseline) becomes all
   ones so that it selects every pixel under both rules below;
3. P is **binarised**: the default ``"top50"`` rule keeps the top 50% of
   pixels, ``I = P >= t`` with ``t`` the value at ascending rank
   ``floor(H*W/2)`` (EZ-VSL/FNAC: ``np.sort(P.flatten())[int(H*W*0.5)]``);
   ties at ``t`` are kept, so a map with ties may select more than half. The
   ``"fixed"`` rule uses ``I = P >= threshold`` (JSA's reference code: 0.6).
   The rule is part of the protocol and recorded in every result;
4. consensus IoU with the GT map G in [0, 1] (Flickr consensus 0/0.5/1,
   VGG-SS / AVSBench binary):
   ``cIoU = sum(I*G) / (sum(G) + sum(I * [G == 0]))``; an image whose
   denominator is 0 (empty GT and empty prediction) scores 0.

Reported over the (de-duplicated) set of images:

* ``ap50`` = fraction of images with cIoU >= 0.5 (the tables' "cIoU");
* ``auc`` = trapezoid area under the success curve y(t) = fraction with
  cIoU >= t, t = 0, 0.05, ..., 1.0 (21 points; t = i/20 exactly; the
  reference's ``0.05*i`` is 1 ulp above i/20 for some i, which only matters
  for a cIoU exactly equal to such a threshold);
* ``mean_ciou`` = mean cIoU.

Why vectorised and key-based: the reference loops over images in numpy and is
correct only at batch size 1 in some repositories; here every image is
processed independently inside a batch, its cIoU is stored with the image's id
key, and the set statistics are computed once over the unique ids (see
:mod:`avbench.metrics._common`), so any batch size and any number of DDP
ranks give the same numbers.

Implementation: on CPU the per-image work runs as numpy kernels over chunks of
8 maps in a thread pool (cache-resident, GIL released, no OpenMP barriers:
measured 5x faster than the pure torch path on 2 cores, see
``benchmarks/perf/README.md``); other devices use the torch path
(``torch.kthvalue`` for the threshold). Both are tested to agree bitwise.

Exactness: sums are accumulated in float32 and are exact whenever the GT
values are multiples of 2^-8 (binary, consensus 0/0.5/1: every protocol);
cIoU is then formed in float64 exactly as the numpy reference does.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from avbench.metrics._common import IdLike, KeyedMetric, NotScorableError

ThresholdRule = Literal["top50", "fixed"]

#: thresholds of the AUC success curve: 0, 0.05, ..., 1.0 (i / 20, correctly rounded)
AUC_THRESHOLDS = torch.arange(21, dtype=torch.float64) / 20.0

#: relative range below which a map counts as constant (8 float32 ulps)
CONSTANT_TOL = 8 * torch.finfo(torch.float32).eps

_POOL: tuple[int, ThreadPoolExecutor] | None = None
_CHUNK_MAPS = 128  # maps upsampled / processed together (bounds working memory)
_ROWS_PER_JOB = 8  # maps per CPU job: ~1.6 MB per buffer at 224x224, stays in cache

Backend = Literal["auto", "numpy", "torch"]


def _pool() -> ThreadPoolExecutor:
    """Thread pool of the CPU kernel (re-created after a fork: threads do not survive it)."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())))
    return _POOL[1]


def minmax_normalize_(maps: Tensor, source: Tensor | None = None) -> Tensor:
    """Per-row min-max normalisation [B, N], written into ``maps``.

    ``(x - min) / (max - min)`` with the reference's operation order, reading
    from ``source`` (default: ``maps`` itself, in place). A constant row
    becomes all ones (see module docstring). A row whose range is at most
    :data:`CONSTANT_TOL` x max(|min|, |max|) counts as constant: such
    differences are float32 rounding (e.g. of the bilinear upsampling of a
    constant map), and stretching them to [0, 1] would turn a constant map into
    noise. Non-finite maps raise, since they would silently corrupt the result.
    """
    src = maps if source is None else source
    mn = src.amin(dim=1, keepdim=True)
    mx = src.amax(dim=1, keepdim=True)
    if not (torch.isfinite(mn).all() and torch.isfinite(mx).all()):
        bad = (~(torch.isfinite(mn) & torch.isfinite(mx))).reshape(-1).nonzero().reshape(-1)
        raise ValueError(f"localization maps contain NaN/inf (rows {bad.tolist()[:10]})")
    rng = mx - mn
    # a range within float32 rounding of the values is no information: bilinear upsampling
    # of a constant map gives values 1 ulp apart, which min-max would blow up into noise
    tol = CONSTANT_TOL * torch.maximum(mn.abs(), mx.abs())
    flat = rng <= tol
    const = flat.reshape(-1)
    torch.sub(src, mn, out=maps)
    maps.div_(torch.where(flat, torch.ones_like(rng), rng))
    if bool(const.any()):
        maps[const] = 1.0
    return maps


def kth_smallest(maps: Tensor, k: int) -> Tensor:
    """Value at ascending rank ``k`` (0-based) of every row of ``maps`` [B, N] (= ``np.sort(row)[k]``)."""
    return maps.kthvalue(k + 1, dim=1).values


def _ciou_rows_numpy(
    p: np.ndarray, g: np.ndarray, rule: ThresholdRule, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """The A1 pipeline on a few rows (float32 [r, N] maps at GT size, GT [r, N]), in numpy.

    Same operations and order as the torch path (min-max, threshold, cIoU), so
    the results are bitwise equal for GT values that are multiples of 2^-8.
    """
    mn = p.min(axis=1, keepdims=True)
    mx = p.max(axis=1, keepdims=True)
    if not (np.isfinite(mn).all() and np.isfinite(mx).all()):
        raise ValueError("localization maps contain NaN/inf")
    rng = mx - mn
    flat = rng <= np.float32(CONSTANT_TOL) * np.maximum(np.abs(mn), np.abs(mx))
    w = np.subtract(p, mn)
    np.divide(w, np.where(flat, np.float32(1), rng), out=w)
    w[flat[:, 0]] = 1.0
    buf = np.empty_like(w)
    if rule == "top50":
        k = w.shape[1] // 2
        np.copyto(buf, w)
        buf.partition(k, axis=1)
        thr = buf[:, k : k + 1].copy()
    else:
        thr = np.float32(threshold)
    mask = np.greater_equal(w, thr, out=buf)  # float32 0/1
    inter = np.einsum("ij,ij->i", mask, g)  # sum(I * G)
    g_pos = np.not_equal(g, 0, out=w)  # w is no longer needed
    i_on_pos = np.einsum("ij,ij->i", mask, g_pos)  # sum(I * [G != 0])
    n_pred = mask.sum(axis=1)
    g_sum = g.sum(axis=1)
    denom = g_sum.astype(np.float64) + (n_pred.astype(np.float64) - i_on_pos.astype(np.float64))
    ciou = np.divide(inter.astype(np.float64), denom, out=np.zeros_like(denom), where=denom > 0)
    return ciou, g_sum == 0


def _ciou_numpy(
    maps: Tensor, gt: Tensor, rule: ThresholdRule, threshold: float
) -> tuple[Tensor, Tensor]:
    """CPU kernel: row chunks of ``_ROWS_PER_JOB`` maps in a thread pool.

    numpy releases the GIL, chunks stay in cache and no OpenMP barrier is
    involved, which measured 3-4x faster than torch intra-op parallelism on the
    2-core development machines (and far more robust when cores are shared).
    """
    p = maps.detach().float().contiguous().numpy()
    g = gt.detach().float().contiguous().numpy()
    ciou = np.empty(p.shape[0], dtype=np.float64)
    empty = np.empty(p.shape[0], dtype=bool)

    def job(lo: int) -> None:
        hi = lo + _ROWS_PER_JOB
        ciou[lo:hi], empty[lo:hi] = _ciou_rows_numpy(p[lo:hi], g[lo:hi], rule, threshold)

    list(_pool().map(job, range(0, p.shape[0], _ROWS_PER_JOB)))
    return torch.from_numpy(ciou), torch.from_numpy(empty)


_WORKSPACE: dict[tuple[str, int], Tensor] = {}


def _workspace(slot: str, numel: int, device: torch.device) -> Tensor:
    """A reusable float32 buffer (large CPU allocations page-fault on every use)."""
    key = (f"{slot}:{device}", numel)
    buf = _WORKSPACE.get(key)
    if buf is None:
        if len(_WORKSPACE) > 16:
            _WORKSPACE.clear()
        buf = _WORKSPACE[key] = torch.empty(numel, dtype=torch.float32, device=device)
    return buf


def prepare_maps(
    pred: Tensor, size: tuple[int, int], *, align_corners: bool = True, out: Tensor | None = None
) -> Tensor:
    """Upsample ``pred`` [B, h, w] bilinearly to ``size`` and min-max normalise.

    Returns a float32 tensor [B, H*W] with values in [0, 1] (written into
    ``out`` when given and no upsampling is needed).
    """
    if pred.ndim == 4 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if pred.ndim != 3:
        raise ValueError(f"maps must be [B, h, w], got {tuple(pred.shape)}")
    b = pred.shape[0]
    if tuple(pred.shape[-2:]) != tuple(size):
        work = F.interpolate(
            pred[:, None].float(), size=size, mode="bilinear", align_corners=align_corners
        )[:, 0].reshape(b, -1)
    else:
        src = pred.reshape(b, -1).float()  # no copy for float32 input
        work = torch.empty_like(src) if out is None else out.view(b, -1)
        return minmax_normalize_(work, source=src)
    return minmax_normalize_(work)


def binarize(
    maps: Tensor, rule: ThresholdRule = "top50", threshold: float = 0.6, out: Tensor | None = None
) -> Tensor:
    """Binary masks (float32 0/1) of normalised ``maps`` [B, N] under ``rule``."""
    if rule == "top50":
        thr = kth_smallest(maps, maps.shape[1] // 2).to(maps.device).unsqueeze(1)
    elif rule == "fixed":
        thr = torch.full((maps.shape[0], 1), float(threshold), device=maps.device)
    else:
        raise ValueError(f"unknown threshold rule {rule!r} (use 'top50' or 'fixed')")
    out = torch.empty_like(maps) if out is None else out.view(maps.shape)
    torch.ge(maps, thr, out=out)
    return out


def ciou_from_masks(
    pred_mask: Tensor, gt: Tensor, g_pos: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Per-image cIoU of binary float masks [B, N] against GT maps [B, N].

    Returns ``(ciou float64 [B], gt_empty bool [B])``. ``g_pos`` is an
    optional scratch buffer of the same size.
    """
    gt = gt.to(torch.float32)
    g_pos = torch.empty_like(gt) if g_pos is None else g_pos.view(gt.shape)
    torch.ne(gt, 0, out=g_pos)
    inter = torch.linalg.vecdot(pred_mask, gt, dim=1).double()  # sum(I * G)
    i_on_pos = torch.linalg.vecdot(pred_mask, g_pos, dim=1).double()  # sum(I * [G != 0])
    n_pred = pred_mask.sum(dim=1).double()
    g_sum = gt.sum(dim=1).double()
    denom = g_sum + (n_pred - i_on_pos)  # sum(G) + sum(I * [G == 0])
    ciou = torch.where(denom > 0, inter / torch.where(denom > 0, denom, 1.0), 0.0)
    return ciou, g_sum == 0


def compute_ciou(
    pred: Tensor,
    gt: Tensor,
    *,
    rule: ThresholdRule = "top50",
    threshold: float = 0.6,
    align_corners: bool = True,
    backend: Backend = "auto",
) -> tuple[Tensor, Tensor]:
    """Per-image cIoU (float64 [B]) and empty-GT flags for maps ``pred`` [B,h,w], GT [B,H,W].

    The whole A1 pipeline (upsample, min-max, binarise, cIoU), ``_CHUNK_MAPS``
    maps at a time. ``backend="auto"`` uses the numpy row-chunk kernel for CPU
    tensors and torch otherwise; both give the same numbers.
    """
    if rule not in ("top50", "fixed"):
        raise ValueError(f"unknown threshold rule {rule!r} (use 'top50' or 'fixed')")
    if pred.ndim == 4 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if gt.ndim != 3 or pred.ndim != 3:
        raise ValueError(
            f"maps must be [B, h, w] and GT [B, H, W], got {tuple(pred.shape)}, {tuple(gt.shape)}"
        )
    if pred.shape[0] != gt.shape[0]:
        raise ValueError(f"{pred.shape[0]} maps for {gt.shape[0]} GT maps")
    if backend == "auto":
        backend = "numpy" if gt.device.type == "cpu" else "torch"
    size = (int(gt.shape[-2]), int(gt.shape[-1]))
    n_pix = size[0] * size[1]
    chunk = min(_CHUNK_MAPS, max(1, gt.shape[0]))
    dev = gt.device
    bufs = (
        [_workspace(s, chunk * n_pix, dev) for s in ("work", "mask", "gpos")]
        if backend == "torch"
        else []
    )
    cious, empties = [], []
    for lo in range(0, gt.shape[0], chunk):
        p = pred[lo : lo + chunk].to(dev)
        g = gt[lo : lo + chunk].reshape(p.shape[0], -1)
        b = p.shape[0]
        if backend == "numpy":
            if tuple(p.shape[-2:]) != size:
                p = F.interpolate(
                    p[:, None].float(), size=size, mode="bilinear", align_corners=align_corners
                )
            c, e = _ciou_numpy(p.reshape(b, -1), g, rule, threshold)
        else:
            work = prepare_maps(p, size, align_corners=align_corners, out=bufs[0][: b * n_pix])
            mask = binarize(work, rule, threshold, out=bufs[1][: b * n_pix])
            c, e = ciou_from_masks(mask, g, bufs[2][: b * n_pix])
        cious.append(c)
        empties.append(e)
    return torch.cat(cious), torch.cat(empties)


def summarize_ciou(ciou: Tensor, *, curve: bool = False) -> dict[str, Tensor]:
    """AP50, AUC (21-point trapezoid) and mean of per-image cIoU values.

    With ``curve=True`` the dict also holds ``success`` (float64 [21]): the
    success curve y(t) at :data:`AUC_THRESHOLDS` that the AUC integrates, so
    plots show exactly the curve behind the number (NaN when there are no images).
    """
    ciou = ciou.to(torch.float64)
    if ciou.numel() == 0:
        nan = torch.tensor(math.nan, dtype=torch.float64)
        out = {"ap50": nan, "auc": nan, "mean_ciou": nan}
        if curve:
            out["success"] = torch.full((AUC_THRESHOLDS.numel(),), math.nan, dtype=torch.float64)
        return out
    thr = AUC_THRESHOLDS.to(ciou.device)
    success = (ciou.unsqueeze(0) >= thr.unsqueeze(1)).double().mean(dim=1)
    out = {
        "ap50": (ciou >= 0.5).double().mean(),
        "auc": torch.trapezoid(success, thr),
        "mean_ciou": ciou.mean(),
    }
    if curve:
        out["success"] = success
    return out


class LocalizationMetric(KeyedMetric):
    """AP50 / AUC / mean cIoU of sound-source localization maps (REFERENCE A1).

    Args:
        threshold_rule: ``"top50"`` (default, EZ-VSL/FNAC rule) or ``"fixed"``.
        threshold: the fixed threshold on the min-max map (JSA: 0.6); only
            used by the ``"fixed"`` rule.
        align_corners: bilinear upsampling convention (True = EZ-VSL test).
        empty_gt: ``"zero"`` counts an image with an empty GT map with its cIoU
            (0 for any non-empty prediction, as the reference does);
            ``"exclude"`` leaves it out (used for AVSBench frames with no
            sounding object). The count is reported as ``n_empty_gt``.
        success_curve: also return ``success`` (float64 [21]), the success
            curve at :data:`AUC_THRESHOLDS` behind the AUC (for the
            leaderboard plots). Off by default so that every other value of
            ``compute()`` stays a scalar.

    ``update(preds [B,h,w], target [B,H,W], ids=None)``; ``compute()`` returns
    ``ap50``, ``auc``, ``mean_ciou`` and the counts ``n``, ``n_empty_gt``,
    ``n_duplicates`` (rows dropped by id de-duplication), plus ``success``
    when ``success_curve=True``.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        threshold_rule: ThresholdRule = "top50",
        threshold: float = 0.6,
        align_corners: bool = True,
        empty_gt: Literal["zero", "exclude"] = "zero",
        success_curve: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if threshold_rule not in ("top50", "fixed"):
            raise ValueError(f"threshold_rule must be 'top50' or 'fixed', got {threshold_rule!r}")
        if empty_gt not in ("zero", "exclude"):
            raise ValueError(f"empty_gt must be 'zero' or 'exclude', got {empty_gt!r}")
        self.threshold_rule = threshold_rule
        self.threshold = float(threshold)
        self.align_corners = align_corners
        self.empty_gt = empty_gt
        self.success_curve = success_curve
        self.add_state("ciou", default=[], dist_reduce_fx="cat")
        self.add_state("gt_empty", default=[], dist_reduce_fx="cat")

    @property
    def protocol(self) -> dict[str, Any]:
        """The options that define the numbers (recorded in every result)."""
        return {
            "threshold_rule": self.threshold_rule,
            "threshold": self.threshold if self.threshold_rule == "fixed" else None,
            "upsample": "bilinear",
            "align_corners": self.align_corners,
            "normalise": "per-image min-max",
            "empty_gt": self.empty_gt,
        }

    def update(self, preds: Tensor, target: Tensor, ids: IdLike = None) -> None:
        ciou, empty = compute_ciou(
            preds.detach(),
            target.detach(),
            rule=self.threshold_rule,
            threshold=self.threshold,
            align_corners=self.align_corners,
        )
        self.ciou.append(ciou.to(self.device))
        self.gt_empty.append(empty.to(device=self.device, dtype=torch.float32))
        self._append_keys(ids, ciou.numel())

    def per_sample(self) -> tuple[Tensor, Tensor]:
        """Unique keys and their cIoU (float64), in key order (after any sync)."""
        keys, (ciou,), _ = self._deduplicated(self.ciou)
        return keys, ciou

    def compute(self) -> dict[str, Tensor]:
        keys, (ciou, empty), n_dup = self._deduplicated(self.ciou, self.gt_empty)
        empty = empty.bool()
        n_empty = int(empty.sum())
        if self.empty_gt == "exclude":
            ciou = ciou[~empty]
            if ciou.numel() == 0 and n_empty:
                raise NotScorableError(
                    f"all {n_empty} GT maps are empty and empty_gt='exclude': no image to "
                    "score", ("ap50", "auc", "mean_ciou"))
        out = summarize_ciou(ciou, curve=self.success_curve)
        out["n"] = torch.tensor(float(ciou.numel()))
        out["n_empty_gt"] = torch.tensor(float(n_empty))
        out["n_duplicates"] = torch.tensor(float(n_dup))
        return out
