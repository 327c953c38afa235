"""Segmentation (REFERENCE A2): AVSBench mIoU and F-score."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch.nn.functional as F

from avbench.benchmarks.tasks.base import TaskRunner, TaskSpec, register_task
from avbench.capabilities import Capability
from avbench.metrics.localization import prepare_maps
from avbench.metrics.segmentation import AVSBenchMetric

if TYPE_CHECKING:
    from avbench.benchmarks.batch_outputs import BatchOutputs


@register_task
class SegmentationTask(TaskSpec):
    """REFERENCE A2: AVSBench mIoU and F-score.

    How a model's output becomes the per-pixel score S in [0, 1]:

    * ``segment`` capability: ``model.segment(batch)`` returns logits
      [B,T,H,W] (or [B,H,W] for one frame); bilinear upsampling of the logits
      to the mask size if needed, then ``S = sigmoid(logits)`` (reference).
    * ``localize`` capability (zero-shot, the way AVSBench is used as an SSL
      test): the per-frame heat map is upsampled bilinearly to the mask size
      and **min-max normalised per frame** (as in A1); then
      ``mask = S > 0.5`` for IoU and the 255-threshold curve ``S >= t_k`` for
      F. ``sigmoid(map) > 0.5`` would be wrong for a cosine map (it is
      ``map > 0``), hence the normalisation. Recorded as ``score_transform``.
    """

    task: Literal["segmentation"] = "segmentation"
    requires: tuple[Capability, ...] = ("segment", "localize")
    iou_threshold: float = 0.5
    n_thresholds: int = 255
    beta2: float = 0.3
    align_corners: bool = True

    def metric_names(self) -> list[str]:
        return ["miou", "fscore"]

    def make_runner(self, capability: str) -> SegmentationRunner:
        return SegmentationRunner(self, capability)


class SegmentationRunner(TaskRunner):
    """miou / fscore from ``segment`` logits or from per-frame ``localize`` maps."""

    spec: SegmentationTask

    def __init__(self, spec: SegmentationTask, capability: str) -> None:
        super().__init__(spec, capability)
        from_logits = capability == "segment"
        self.metric = AVSBenchMetric(
            from_logits=from_logits,
            iou_threshold=spec.iou_threshold,
            n_thresholds=spec.n_thresholds,
            beta2=spec.beta2,
        )
        self.info["score_transform"] = (
            "sigmoid(logits), bilinear to mask size"
            if from_logits
            else "localize map per frame, bilinear to mask size, per-frame min-max"
        )

    def update(self, out: BatchOutputs) -> None:
        masks, valid = out.masks()
        b, t, h, w = masks.shape
        if self.capability == "segment":
            logits = out.segment()
            if tuple(logits.shape[-2:]) != (h, w):
                logits = F.interpolate(
                    logits.reshape(b * t, 1, *logits.shape[-2:]),
                    size=(h, w),
                    mode="bilinear",
                    align_corners=self.spec.align_corners,
                ).reshape(b, t, h, w)
            scores = logits
        else:
            maps = out.localize_frames()
            scores = prepare_maps(
                maps.reshape(b * t, *maps.shape[2:]), (h, w), align_corners=self.spec.align_corners
            ).reshape(b, t, h, w)
        self.metric.update(scores, masks, valid, out.ids())

    def compute(self) -> dict[str, float]:
        res = self.metric.compute()
        self.info.update(
            n_frames=int(res["n_frames"]),
            n_empty_gt=int(res["n_empty_gt"]),
            n_duplicates=int(res["n_duplicates"]),
        )
        return {"miou": float(res["miou"]), "fscore": float(res["fscore"])}


__all__ = ["SegmentationRunner", "SegmentationTask"]
