"""Localization (REFERENCE A1): cIoU of binarised heat maps against GT maps.

``localize(batch)`` [B,h,w] -> bilinear upsampling to the GT size -> per-image
min-max -> top-50% (or fixed) rule -> cIoU. AVSBench (``gt_key="masks"``):
each annotated frame t is scored with ``localize`` on ``batch["frames"][:, t]``
(the clip's audio). The task also keeps the heat-map gallery and draws the
leaderboard's success-curve and gallery figures.

``audio="mismatched"`` asks how much of that score needs the sound: every map is
computed twice, with the clip's own audio and with another clip's (the batch's
audio rolled by one), over the same clips; the metrics are the own and mismatched
AP50 and their difference. A model whose maps are visual saliency scores about the
same either way (the critique of Mo & Morgado, "A Closer Look at Weakly-Supervised
Audio-Visual Source Localization", NeurIPS 2022, SLAVC).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator
from torch import Tensor

from avbench.benchmarks.tasks.base import PlotRow, TaskRunner, TaskSpec, register_task
from avbench.capabilities import Capability
from avbench.metrics.localization import AUC_THRESHOLDS, LocalizationMetric

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from avbench.benchmarks.batch_outputs import BatchOutputs
    from avbench.benchmarks.tasks.localization_gallery import LocalizationGallery


@register_task
class LocalizationTask(TaskSpec):
    """REFERENCE A1: cIoU of binarised heat maps against GT maps.

    ``gt_key="gt_map"``: the batch's ``gt_map`` [B,H,W] (Flickr consensus /
    VGG-SS box union). ``gt_key="masks"``: every annotated AVSBench frame
    ``masks[:, t]`` is one image (frame ``t`` of ``frames`` with the clip's
    audio), frames with empty masks handled by ``empty_gt``.
    """

    task: Literal["localization"] = "localization"
    requires: tuple[Capability, ...] = ("localize",)
    threshold_rule: Literal["top50", "fixed"] = "top50"
    threshold: float = Field(0.6, ge=0.0, le=1.0, description="fixed rule only")
    upsample: Literal["bilinear"] = "bilinear"
    align_corners: bool = True
    gt_key: Literal["gt_map", "masks"] = "gt_map"
    empty_gt: Literal["zero", "exclude"] = "zero"
    audio: Literal["own", "mismatched"] = Field(
        "own", description="mismatched: also score maps made with another clip's audio "
        "(gt_map only); metrics ap50_drop = ap50_own - ap50_mismatched, ...")
    omit_at_default: ClassVar[tuple[str, ...]] = ("audio",)

    @model_validator(mode="after")
    def _mismatched_needs_gt_map(self) -> LocalizationTask:
        if self.audio == "mismatched" and self.gt_key != "gt_map":
            raise ValueError("audio='mismatched' is implemented for gt_key='gt_map' only")
        return self

    def metric_names(self) -> list[str]:
        if self.audio == "mismatched":
            return ["ap50_drop", "ap50_own", "ap50_mismatched", "mean_ciou_drop"]
        return ["ap50", "auc", "mean_ciou"]

    def make_runner(self, capability: str) -> LocalizationRunner:
        return LocalizationRunner(self, capability)

    def leaderboard_figures(
        self, benchmark: str, rows: Sequence[PlotRow]
    ) -> list[tuple[str, Figure]]:
        """``("success", success curves)`` and ``("gallery", heat-map mosaic)``, where drawable.

        See :mod:`avbench.benchmarks.tasks.localization_figures`. A figure that
        fails is logged and left out.
        """
        from avbench.benchmarks.tasks.localization_figures import figures

        return figures(self.task, benchmark, rows)


class LocalizationRunner(TaskRunner):
    """ap50 / auc / mean_ciou; ``info`` holds the counts and the success curve."""

    spec: LocalizationTask

    def __init__(self, spec: LocalizationTask, capability: str) -> None:
        super().__init__(spec, capability)
        def metric() -> LocalizationMetric:
            return LocalizationMetric(
                threshold_rule=spec.threshold_rule, threshold=spec.threshold,
                align_corners=spec.align_corners, empty_gt=spec.empty_gt, success_curve=True,
            )

        self.metric = metric()
        # audio="mismatched": the same clips scored with another clip's audio
        self.mismatched = metric() if spec.audio == "mismatched" else None
        self.n_unpaired = 0  # clips in one-clip batches: no other audio, left out

    def update(self, out: BatchOutputs) -> None:
        ids = out.ids()
        if self.spec.gt_key == "gt_map":
            gt = out.batch.get("gt_map")
            if not isinstance(gt, Tensor):
                raise KeyError("batch has no 'gt_map' [B,H,W]")
            if self.mismatched is None:
                self.metric.update(out.localize(), gt, ids)
                return
            other = out.localize_mismatched()
            if other is None:
                self.n_unpaired += len(ids)
                return
            self.metric.update(out.localize(), gt, ids)
            self.mismatched.update(other, gt, ids)
            return
        masks, valid = out.masks()
        maps = out.localize_frames()
        b, t = masks.shape[:2]
        frame_ids = [f"{i}#{k}" for i in ids for k in range(t)]
        maps = maps.reshape(b * t, *maps.shape[2:])
        gts = (masks.reshape(b * t, *masks.shape[2:]) > 0.5).float()
        if valid is not None:
            keep = valid.reshape(-1)
            maps, gts = maps[keep], gts[keep]
            frame_ids = [f for f, k in zip(frame_ids, keep.tolist()) if k]
        if frame_ids:
            self.metric.update(maps, gts, frame_ids)

    def compute(self) -> dict[str, float]:
        if self.mismatched is not None:
            return self._compute_mismatched()
        res = self.metric.compute()
        self.info.update(
            n=int(res["n"]),
            n_empty_gt=int(res["n_empty_gt"]),
            n_duplicates=int(res["n_duplicates"]),
            # the curve the AUC integrates, for the leaderboard's success-curve plot
            success_curve={
                "thresholds": [float(t) for t in AUC_THRESHOLDS],
                "success": [float(v) for v in res["success"]],
            },
        )
        return {k: float(res[k]) for k in ("ap50", "auc", "mean_ciou")}

    def _compute_mismatched(self) -> dict[str, float]:
        own, other = self.metric.compute(), self.mismatched.compute()
        self.info.update(
            n=int(own["n"]), n_unpaired=self.n_unpaired, n_empty_gt=int(own["n_empty_gt"]),
            n_duplicates=int(own["n_duplicates"]),
            success_curve={  # under mismatched audio
                "thresholds": [float(t) for t in AUC_THRESHOLDS],
                "success": [float(v) for v in other["success"]],
            },
        )
        return {"ap50_drop": float(own["ap50"] - other["ap50"]), "ap50_own": float(own["ap50"]),
                "ap50_mismatched": float(other["ap50"]),
                "mean_ciou_drop": float(own["mean_ciou"] - other["mean_ciou"])}

    def gallery_collector(self, n: int) -> LocalizationGallery | None:
        """Keeps the first ``n`` samples (image, min-max map, GT) for the heat-map gallery."""
        from avbench.benchmarks.tasks.localization_gallery import LocalizationGallery

        if self.mismatched is not None:  # the own-audio gallery is the plain benchmark's
            return None
        return LocalizationGallery(self.spec, n)


__all__ = ["LocalizationRunner", "LocalizationTask"]
