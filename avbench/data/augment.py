"""Training-time image augmentation of the EZ-VSL line.

The reference training set (EZ-VSL ``datasets.py``, ``get_train_dataset``;
FNAC and SLAVC reuse it) resizes each training frame to 1.1x the input size
(bicubic), takes a random crop of the input size and flips it horizontally with
probability 0.5; test frames are only resized. Here the same three steps run on
the loaded ``[3, S, S]`` frame in [0, 1], after the in-memory cache, so a cached
split is still augmented afresh in every epoch. Random draws come from torch's
global generator (seeded by ``seed_everything``; loader workers get their own
seeds), so a run is reproducible.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from avbench.data.datasets.base import DatasetView

TrainAugment = Literal["none", "resize_crop_flip"]


def resize_crop_flip(image: Tensor, scale: float = 1.1, flip_p: float = 0.5) -> Tensor:
    """Resize ``[C,H,W]`` (or ``[T,C,H,W]``, same draw for every frame) by ``scale``,
    random-crop back to ``H x W``, flip horizontally with probability ``flip_p``."""
    frames = image if image.ndim == 4 else image[None]
    h, w = frames.shape[-2:]
    big = (int(h * scale), int(w * scale))
    out = F.interpolate(frames.float(), size=big, mode="bicubic", align_corners=False)
    out = out.clamp_(0.0, 1.0)
    top = int(torch.randint(0, big[0] - h + 1, ()).item())
    left = int(torch.randint(0, big[1] - w + 1, ()).item())
    out = out[..., top:top + h, left:left + w]
    if torch.rand(()).item() < flip_p:
        out = out.flip(-1)
    out = out.to(image.dtype).contiguous()
    return out if image.ndim == 4 else out[0]


class AugmentedDataset(DatasetView):
    """``source`` with :func:`resize_crop_flip` applied to each sample's ``image``.

    The sample dict is copied, never modified in place (it may be a cached one).
    Other attributes come from the source dataset (:class:`DatasetView`).
    """

    def __init__(self, source: Dataset, scale: float = 1.1, flip_p: float = 0.5) -> None:
        super().__init__(source)
        self.scale = scale
        self.flip_p = flip_p

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.source[index])
        if isinstance(sample.get("image"), Tensor):
            sample["image"] = resize_crop_flip(sample["image"], self.scale, self.flip_p)
        return sample


__all__ = ["AugmentedDataset", "TrainAugment", "resize_crop_flip"]
