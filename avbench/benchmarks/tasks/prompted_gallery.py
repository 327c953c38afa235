"""The gallery of a prompted-segmentation evaluation: the first items' image, heat map and mask.

Stored in the localization gallery's format (``ids``, ``image`` uint8 ``[N,h,w,3]``, ``map``
float16 ``[N,h,w]`` min-max per item, ``gt`` float16 ``[N,h,w]``), so the leaderboard draws it
with :func:`~avbench.benchmarks.tasks.localization_figures.plot_gallery`. The maps are the
ones the runner scored for the batch (no extra model call).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from avbench.benchmarks.tasks.localization_gallery import GALLERY_SIDE

if TYPE_CHECKING:
    from avbench.benchmarks.batch_outputs import BatchOutputs
    from avbench.benchmarks.tasks.prompted_segmentation import PromptedSegmentationRunner


class PromptedGallery:
    """Keeps the first ``n`` items (image, the runner's map of the item, prompted mask).

    Every item is resized to ``max_side`` px on its longest side (the images of one
    evaluation share one size).
    """

    def __init__(self, runner: PromptedSegmentationRunner, n: int,
                 max_side: int = GALLERY_SIDE) -> None:
        self.runner = runner
        self.n = n
        self.max_side = max_side
        self.ids: list[str] = []
        self.images: list[Tensor] = []
        self.maps: list[Tensor] = []
        self.gts: list[Tensor] = []

    @property
    def full(self) -> bool:
        return len(self.ids) >= self.n

    def update(self, out: BatchOutputs) -> None:
        maps = self.runner.maps_of(out)
        image, mask = out.batch.get("image"), out.batch.get(self.runner.spec.mask_key)
        if maps is None or not isinstance(image, Tensor) or not isinstance(mask, Tensor):
            return
        take = min(self.n - len(self.ids), len(out.ids()))
        h, w = image.shape[-2:]
        scale = min(1.0, self.max_side / max(h, w))
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        images = F.interpolate(image[:take].float(), size=size, mode="bilinear",
                               antialias=True, align_corners=False)
        m = F.interpolate(maps[:take, None].float(), size=size, mode="bilinear",
                          align_corners=self.runner.spec.align_corners)[:, 0]
        lo = m.flatten(1).min(1).values[:, None, None]
        hi = m.flatten(1).max(1).values[:, None, None]
        m = torch.where(hi > lo, (m - lo) / (hi - lo).clamp_min(1e-12), torch.zeros_like(m))
        gts = F.interpolate(mask[:take, None].float(), size=size, mode="nearest")[:, 0]
        self.ids += out.ids()[:take]
        self.images.append((images.clamp(0, 1) * 255).round().to(torch.uint8)
                           .permute(0, 2, 3, 1).cpu())
        self.maps.append(((m * 256).round() / 256).to(torch.float16).cpu())
        self.gts.append(gts.to(torch.float16).cpu())

    def result(self) -> dict[str, Any] | None:
        """``{ids, image, map, gt}`` (module docstring), None when nothing was kept."""
        if not self.ids:
            return None
        return {"ids": np.array(self.ids), "image": torch.cat(self.images).numpy(),
                "map": torch.cat(self.maps).numpy(), "gt": torch.cat(self.gts).numpy()}


__all__ = ["PromptedGallery"]
