"""Speech- and sound-prompted segmentation (DenseAV; REFERENCE A4): pixel AP and oracle mIoU.

Protocol of the reference (``mhamilton723/DenseAV``, ``denseav/eval_utils.py``:
``get_paired_heatmaps``, ``prep_heatmap``, ``multi_iou``; called from
``LitAVAligner.semseg_validation`` in ``denseav/train.py``). Each evaluated item is an
image, the mask of one class it shows (``batch["mask"]``, ``semseg == ade_class_id``) and an
audio prompt naming that class: a spoken word (speech) or a clip of its sound (sound).

1. **Heat map per item** at feature resolution ``[h, w]``:

   * ``prompted_heatmap`` capability (DenseAV): the per-head, per-audio-token maps
     ``[B, K, T, h, w]`` are max-combined over heads elementwise (the reference's
     ``head_agg: max_elementwise`` with ``agg_heads=True``), multiplied by the non-silent
     token mask (``get_pairwise_sims`` multiplies by ``audio_mask``) and averaged over time:
     sound prompts over the clip's non-silent tokens (the reference's "basic" map); speech
     prompts over the tokens that overlap the word's ``timing`` widened by
     ``timing_margin_s`` (0.2 s) on each side (the "advanced" map: the reference's
     ``floor``/``ceil`` token bounds are exactly the tokens overlapping the window; it
     divides by the window's token count). Token spans come from the model's ``time_s``
     (token centres, evenly spaced); the reference assumes the tokens tile the padded clip.
     A window that overlaps no token (a timing outside the clip) falls back to the whole
     clip, counted in ``info["n_window_fallback"]``. For speech prompts the whole-clip
     ("basic") numbers are kept in ``info["whole_clip"]`` as the reference logs both.
   * ``localize`` capability (every SSL model; the prompt audio is its audio input): the
     model's clip-level map ``[B, h, w]``; no time window can be applied (recorded in
     ``info["heatmap"]``).

2. **Min-max over the evaluation set**: one global minimum and maximum over every item's
   map (``hm -= hm.min(); hm /= hm.max()`` over the stacked set). A constant set (the
   full-image baseline) becomes all zeros (the reference would divide by zero).
3. **Bilinear upsampling** of each normalised map to its mask size
   (``F.interpolate(..., mode="bilinear")``, ``align_corners`` False as the reference).
4. **Per prompted class, over all its pixels** (every item prompting that class pooled):

   * pixel average precision, ``torchmetrics`` ``binary_average_precision`` (as the
     reference);
   * IoU of ``map > t`` with the mask at ``n_thresholds`` (20) thresholds evenly spaced
     from the class's minimum to its maximum score, the best of them: an **oracle
     threshold** chosen per class on the test data (``multi_iou``; a strict ``>``, so
     "every pixel" is never a candidate and a constant map scores IoU 0).

   ``map`` and ``miou_oracle`` are the means over classes. A class whose masks have no
   pixel (lost in resizing) is left out and counted in ``info["n_empty_classes"]``.

The runner keeps a gallery of the first items (:mod:`.prompted_gallery`), drawn by the
localization gallery's figure (``leaderboard_figures``: ``<benchmark>_gallery.png``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor
from torchmetrics.functional.classification import binary_average_precision

from avbench.benchmarks.tasks.base import PlotRow, TaskRunner, TaskSpec, register_task
from avbench.benchmarks.tasks.sample_store import SampleStore
from avbench.capabilities import Capability
from avbench.metrics._common import NotScorableError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from avbench.benchmarks.batch_outputs import BatchOutputs
    from avbench.benchmarks.tasks.prompted_gallery import PromptedGallery

#: the score name of the reference's thresholded IoU (the threshold is chosen on the test set)
ORACLE_LABEL = "oracle threshold"


# --- heat maps ------------------------------------------------------------------------------
def timing_window(time_s: Tensor, timing: Tensor, margin_s: float) -> Tensor:
    """Tokens overlapping each prompt's word window widened by ``margin_s`` on both sides.

    Args:
        time_s: ``[T]`` token centres in seconds, evenly spaced (token width = their
            spacing; one token spans ``[0, 2 * time_s[0]]``).
        timing: ``[B, 2]`` word ``(start, end)`` in seconds (NaN rows: no window).
        margin_s: widening on each side (reference: 0.2 s).

    Returns:
        bool ``[B, T]``: token ``t`` is in the window iff its span intersects
        ``(start - margin, end + margin)`` (the reference's ``floor``/``ceil`` bounds).
    """
    t = time_s.float()
    width = (t[1] - t[0]) if t.numel() > 1 else 2 * t[0]
    lo, hi = t - width / 2, t + width / 2
    start = timing[:, :1].float() - margin_s
    end = timing[:, 1:].float() + margin_s
    return (lo[None] < end) & (hi[None] > start)


def heads_time_average(heatmap: Tensor, audio_mask: Tensor, window: Tensor | None = None
                       ) -> Tensor:
    """The prompt's map ``[B, h, w]`` from per-head, per-token maps (reference ``prep_heatmap``).

    Args:
        heatmap: ``[B, K, T, h, w]`` (``prompted_heatmap``).
        audio_mask: ``[B, T]`` non-silent tokens (multiplies the maps, as the reference).
        window: ``[B, T]`` tokens to average over (the word window); None: ``audio_mask``.

    Returns:
        ``sum_t m_t w_t max_k heatmap[:, k, t] / max(sum_t w_t, 1e-3)``.
    """
    m = audio_mask.to(heatmap.dtype)
    w = m if window is None else window.to(heatmap.dtype)
    combined = heatmap.max(1).values * m[:, :, None, None]  # heads max-combined elementwise
    return torch.einsum("bthw,bt->bhw", combined, w) / w.sum(1).clamp_min(1e-3)[:, None, None]


def minmax_over_set(maps: list[Tensor]) -> list[Tensor]:
    """Every map shifted and scaled by ONE min and max over the whole list (a constant set -> 0)."""
    lo = min(float(m.min()) for m in maps)
    hi = max(float(m.max()) for m in maps)
    span = hi - lo
    return [(m - lo) / span if span > 0 else torch.zeros_like(m) for m in maps]


def oracle_iou(scores: Tensor, target: Tensor, n_thresholds: int = 20) -> float:
    """Best IoU of ``scores > t`` with ``target`` over ``n_thresholds`` evenly spaced ``t``
    from ``scores.min()`` to ``scores.max()`` (reference ``multi_iou``; oracle threshold).

    Args:
        scores: float ``[N]``; target: bool ``[N]``.
    """
    thresholds = torch.linspace(float(scores.min()), float(scores.max()), n_thresholds)
    pred = scores[None, :] > thresholds[:, None]
    inter = (pred & target[None]).sum(1).float()
    union = (pred | target[None]).sum(1).float()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter))
    return float(iou.max())


def class_scores(maps: list[Tensor], masks: list[Tensor], class_ids: list[int],
                 n_thresholds: int = 20, align_corners: bool = False
                 ) -> tuple[dict[int, dict[str, float]], int]:
    """Per-class pixel AP and oracle IoU of a whole evaluation set (steps 2-4 of the module doc).

    Args:
        maps: one ``[h, w]`` heat map per item (any scale; min-max over the set here).
        masks: one bool ``[H, W]`` mask per item (the prompted class's pixels).
        class_ids: the prompted class of each item.

    Returns:
        ``({class: {"ap": ..., "iou": ...}}, number of classes with no mask pixel)``.

    Raises:
        ValueError: lists of different lengths or an empty set.
    """
    if not (len(maps) == len(masks) == len(class_ids)) or not maps:
        raise ValueError(f"need as many maps, masks and class ids (got {len(maps)}, "
                         f"{len(masks)}, {len(class_ids)}), at least one")
    normed = minmax_over_set([m.float() for m in maps])
    up = [F.interpolate(m[None, None], size=tuple(g.shape[-2:]), mode="bilinear",
                        align_corners=align_corners)[0, 0]
          for m, g in zip(normed, masks)]
    out: dict[int, dict[str, float]] = {}
    empty = 0
    for c in sorted(set(class_ids)):
        idx = [i for i, k in enumerate(class_ids) if k == c]
        s = torch.cat([up[i].flatten() for i in idx])
        g = torch.cat([masks[i].flatten().bool() for i in idx])
        if not bool(g.any()):
            empty += 1
            continue
        ap = float(binary_average_precision(s, g.long()))
        out[c] = {"ap": ap, "iou": oracle_iou(s, g, n_thresholds)}
    return out, empty


# --- the task ---------------------------------------------------------------------------------
@register_task
class PromptedSegmentationTask(TaskSpec):
    """DenseAV's speech- or sound-prompted segmentation (module docstring).

    Args (fields):
        prompt: ``"speech"`` (average over the word's timing window) or ``"sound"``
            (average over the clip).
        timing_margin_s: widening of the word window on each side (reference 0.2 s).
        n_thresholds: thresholds of the oracle IoU (reference 20).
        align_corners: of the bilinear upsampling (reference: False).
        mask_key / class_key / timing_key: batch keys of the mask ``[B,H,W]``, the prompted
            class ``[B]`` and the word timing ``[B,2]`` (seconds).
    """

    task: Literal["prompted_segmentation"] = "prompted_segmentation"
    requires: tuple[Capability, ...] = ("prompted_heatmap", "localize")
    prompt: Literal["speech", "sound"] = "sound"
    timing_margin_s: float = Field(0.2, ge=0.0)
    n_thresholds: int = Field(20, ge=2)
    upsample: Literal["bilinear"] = "bilinear"
    align_corners: bool = False
    head_combine: Literal["max"] = "max"
    normalization: Literal["minmax_over_set"] = "minmax_over_set"
    mask_key: str = "mask"
    class_key: str = "ade_class_id"
    timing_key: str = "timing"

    def metric_names(self) -> list[str]:
        return ["map", "miou_oracle"]

    def make_runner(self, capability: str) -> PromptedSegmentationRunner:
        return PromptedSegmentationRunner(self, capability)

    def leaderboard_figures(self, benchmark: str, rows: Sequence[PlotRow]
                            ) -> list[tuple[str, Figure]]:
        """``("gallery", mosaic)``: the first items' maps per model over the image, the
        prompted mask outlined (the localization gallery's figure); none without galleries."""
        from avbench.benchmarks.tasks.localization_figures import plot_gallery

        fig = plot_gallery(benchmark, rows)
        return [] if fig is None else [("gallery", fig)]


class PromptedSegmentationRunner(TaskRunner):
    """Keeps each item's feature-resolution map, mask and class (a :class:`SampleStore`,
    DDP-exact; maps and masks of one size across batches); scores the set in compute."""

    spec: PromptedSegmentationTask

    def __init__(self, spec: PromptedSegmentationTask, capability: str) -> None:
        super().__init__(spec, capability)
        speech = spec.prompt == "speech"
        #: per item: the protocol's map, the whole-clip map (speech prompts with
        #: prompted_heatmap), the mask (uint8) and the prompted class
        self.clip_maps = speech and capability == "prompted_heatmap"
        self.store = SampleStore(("map", "clip_map", "mask", "cls") if self.clip_maps
                                 else ("map", "mask", "cls"))
        self.n_window_fallback = 0
        self._last: tuple[Any, Tensor] | None = None  # the latest batch and its maps
        if capability == "prompted_heatmap":
            how = ("heads max-combined, mean over the word's timing +/- "
                   f"{spec.timing_margin_s} s" if speech else
                   "heads max-combined, mean over the clip's non-silent tokens")
        else:
            how = "localize map of the prompt audio (whole clip; no word window)"
        self.info["heatmap"] = how
        self.info["miou"] = (f"best IoU over {spec.n_thresholds} thresholds per class: "
                             f"{ORACLE_LABEL}")

    def _maps(self, out: BatchOutputs) -> tuple[Tensor, Tensor | None]:
        """``[B, h, w]`` maps of the protocol and, for speech prompts, the whole-clip maps."""
        if self.capability != "prompted_heatmap":
            return out.localize(), None
        res: dict[str, Any] = out.model.prompted_heatmap(out.batch)
        heat, amask = res["heatmap"].float(), res["audio_mask"]
        clip = heads_time_average(heat, amask)
        if self.spec.prompt == "sound":
            return clip, None
        timing = out.batch.get(self.spec.timing_key)
        if not isinstance(timing, Tensor):
            raise KeyError(f"speech prompts need batch[{self.spec.timing_key!r}] [B,2] seconds")
        window = timing_window(res["time_s"], timing.reshape(-1, 2), self.spec.timing_margin_s)
        empty = ~window.any(1)
        self.n_window_fallback += int(empty.sum())
        window = torch.where(empty[:, None], amask.bool(), window)
        return heads_time_average(heat, amask, window), clip

    def update(self, out: BatchOutputs) -> None:
        masks = out.batch.get(self.spec.mask_key)
        classes = out.batch.get(self.spec.class_key)
        if not isinstance(masks, Tensor) or not isinstance(classes, Tensor):
            raise KeyError(f"batch needs {self.spec.mask_key!r} [B,H,W] and "
                           f"{self.spec.class_key!r} [B]")
        maps, clip = self._maps(out)
        self._last = (out, maps)
        tensors = {"map": maps.float(), "mask": masks.bool().to(torch.uint8),
                   "cls": classes.reshape(-1).long()}
        if self.clip_maps:
            tensors["clip_map"] = clip.float()
        self.store.update(out.ids(), **tensors)

    def maps_of(self, out: BatchOutputs) -> Tensor | None:
        """The ``[B, h, w]`` maps scored for ``out`` (the latest batch), else None."""
        return self._last[1] if self._last is not None and self._last[0] is out else None

    def gallery_collector(self, n: int) -> PromptedGallery:
        """Keeps the first ``n`` items (image, scored map, mask) for the leaderboard gallery."""
        from avbench.benchmarks.tasks.prompted_gallery import PromptedGallery

        return PromptedGallery(self, n)

    def _score(self, maps: Tensor, masks: Tensor, classes: Tensor) -> dict[str, float]:
        per_class, empty = class_scores(list(maps), list(masks.bool()), classes.tolist(),
                                        self.spec.n_thresholds, self.spec.align_corners)
        if not per_class:
            raise NotScorableError("no prompted class has a mask pixel")
        n = len(per_class)
        return {"map": sum(c["ap"] for c in per_class.values()) / n,
                "miou_oracle": sum(c["iou"] for c in per_class.values()) / n,
                "n_classes": n, "n_empty_classes": empty}

    def compute(self) -> dict[str, float]:
        """``map`` and ``miou_oracle`` over the evaluated set.

        Raises:
            NotScorableError: no item, or no prompted class with a mask pixel.
        """
        if len(self.store.key) == 0:
            raise NotScorableError("no items")
        t, dropped = self.store.compute()
        res = self._score(t["map"], t["mask"], t["cls"])
        self.info.update(n=int(t["cls"].numel()), n_classes=int(res["n_classes"]),
                         n_empty_classes=int(res["n_empty_classes"]), n_duplicates=dropped)
        if self.clip_maps:
            self.info["n_window_fallback"] = self.n_window_fallback
            clip = self._score(t["clip_map"], t["mask"], t["cls"])
            self.info["whole_clip"] = {"map": clip["map"], "miou_oracle": clip["miou_oracle"]}
        return {"map": res["map"], "miou_oracle": res["miou_oracle"]}


__all__ = ["ORACLE_LABEL", "PromptedSegmentationRunner", "PromptedSegmentationTask",
           "class_scores", "heads_time_average", "minmax_over_set", "oracle_iou",
           "timing_window"]
