"""The heat-map gallery of a localization evaluation: the first samples' image, map and GT.

Why here: the maps exist only during evaluation; storing a few of them
(downsampled, uint8 image / float16 map) lets the leaderboard draw
qualitative figures without re-running any model. The collector reuses the
batch's cached ``localize`` output, so it costs no extra model call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from avbench.metrics.localization import prepare_maps

if TYPE_CHECKING:
    from avbench.benchmarks.batch_outputs import BatchOutputs
    from avbench.benchmarks.tasks.localization import LocalizationTask

#: longest side of the gallery images: a 6-sample gallery of photos stays under ~250 KB
#: (deflate barely compresses photos; 6 x 128 x 128 x 3 bytes of image alone are 295 KB)
GALLERY_SIDE = 112


class LocalizationGallery:
    """Keeps the first ``n`` localization samples (image, map, GT) for the heat-map gallery.

    ``gt_key="gt_map"``: the batch's image and GT map; ``gt_key="masks"``
    (AVSBench): the first annotated frame of each clip, keyed ``"<id>#<t>"``.
    Every sample is resized to the size fixed by the first one (longest side
    at most ``max_side`` px).
    """

    def __init__(self, task: LocalizationTask, n: int, max_side: int = GALLERY_SIDE) -> None:
        self.task = task
        self.n = n
        self.max_side = max_side
        self.ids: list[str] = []
        self.images: list[Tensor] = []
        self.maps: list[Tensor] = []
        self.gts: list[Tensor] = []
        self.size: tuple[int, int] | None = None

    @property
    def full(self) -> bool:
        return len(self.ids) >= self.n

    def update(self, out: BatchOutputs) -> None:
        if self.full:
            return
        ids = out.ids()
        if self.task.gt_key == "gt_map":
            image, gt = out.batch.get("image"), out.batch.get("gt_map")
            if not isinstance(image, Tensor) or not isinstance(gt, Tensor):
                return
            rows = list(range(len(ids)))
            keys, images, maps, gts = ids, image, out.localize(), gt
        else:  # AVSBench: the first annotated frame of each clip
            frames = out.batch.get("frames")
            if not isinstance(frames, Tensor):
                return
            masks, valid = out.masks()
            all_maps = out.localize_frames()
            rows, keys, picks = [], [], []
            for i, sid in enumerate(ids):
                ok = valid[i] if valid is not None else torch.ones(masks.shape[1], dtype=torch.bool)
                t = int(ok.nonzero()[0]) if bool(ok.any()) else None
                if t is not None:
                    rows.append(i)
                    keys.append(f"{sid}#{t}")
                    picks.append(t)
            if not rows:
                return
            idx = torch.tensor(rows)
            sel = torch.tensor(picks)
            images = frames[idx, sel]
            maps = all_maps[idx, sel]
            gts = (masks[idx, sel] > 0.5).float()
            rows = list(range(len(rows)))
        take = rows[: self.n - len(self.ids)]
        images, maps, gts = images[take].float(), maps[take].float(), gts[take].float()
        if self.size is None:  # fixed by the first sample: all rows of the gallery align
            h, w = images.shape[-2:]
            scale = min(1.0, self.max_side / max(h, w))
            self.size = (max(1, round(h * scale)), max(1, round(w * scale)))
        size = self.size
        if tuple(images.shape[-2:]) != size:
            images = F.interpolate(images, size=size, mode="bilinear", antialias=True,
                                   align_corners=False)
        gts = F.interpolate(gts[:, None], size=size, mode="bilinear", antialias=True,
                            align_corners=False)[:, 0]
        maps = prepare_maps(maps, size, align_corners=self.task.align_corners).reshape(-1, *size)
        # 1/256 steps (exact in float16, as fine as the 256-colour map that draws them): the
        # zeroed low mantissa bits make the stored map compress ~3x better
        maps = (maps * 256).round_().div_(256)
        self.ids += [str(keys[i]) for i in take]
        image_u8 = (images.clamp(0, 1) * 255).round().to(torch.uint8)
        self.images.append(image_u8.permute(0, 2, 3, 1).cpu())
        self.maps.append(maps.to(torch.float16).cpu())
        self.gts.append(gts.clamp(0, 1).to(torch.float16).cpu())

    def result(self) -> dict[str, Any] | None:
        """``{ids, image uint8 [N,h,w,3], map float16 [N,h,w] (min-max), gt float16 [N,h,w]}``."""
        if not self.ids:
            return None
        return {
            "ids": np.array(self.ids),
            "image": torch.cat(self.images).numpy(),
            "map": torch.cat(self.maps).numpy(),
            "gt": torch.cat(self.gts).numpy(),
        }


__all__ = ["GALLERY_SIDE", "LocalizationGallery"]
