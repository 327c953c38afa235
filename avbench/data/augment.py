"""Training-time image augmentation (the EZ-VSL line's and JSA's).

Two recipes, chosen by the datamodule's ``train_augment``; val and test are
never augmented:

``"resize_crop_flip"`` (the synthetic/CPU configs; unchanged numbers)
    Resize the loaded square ``[3, S, S]`` frame to ``1.1 S`` (bicubic),
    random-crop ``S x S``, flip horizontally with probability 0.5. On a frame
    that was already squashed to a square this approximates the reference.

``"ezvsl"`` (the paper configs of EZ-VSL, FNAC, SLAVC and LVS)
    The reference recipe (EZ-VSL ``datasets.py`` ``get_train_dataset``:
    ``Resize(int(224 * 1.1), BICUBIC)``, ``RandomCrop(224)``,
    ``RandomHorizontalFlip()``; FNAC and SLAVC copy it) on the frame at its
    NATIVE size: the SHORTER side is resized to ``int(1.1 S)`` keeping the
    aspect ratio (bicubic, antialiased like PIL), then a random ``S x S`` crop
    and a horizontal flip with probability 0.5. The datamodule loads training
    frames at their stored size for this recipe
    (:attr:`avbench.data.datamodules.base.AVDataModule.native_train_frames`).

JSA's "hard" image augmentation (reference ``dataset.py`` lines 250-258,
``hard_img``) is ``"ezvsl"``'s resize, crop and flip plus photometric steps:
Gaussian blur (kernel 5, sigma uniform in [0.1, 2]) with probability 0.8,
colour jitter (brightness/contrast/saturation 0.8, hue 0.2) with probability
0.8, grayscale with probability 0.2 (:func:`jsa_photometric`,
``torchvision.transforms.v2``). The data config is shared by every model of a
suite, so the photometric part is applied by the JSA model itself in training
(``hard_image_augment``) on top of the data's ``"ezvsl"`` recipe. The
reference applies blur before the flip and jitter/grayscale after it; blur
(a symmetric kernel), jitter and grayscale commute with a horizontal flip, so
the distribution is the same. The audio side of ``hard_aud`` (SpecAugment
masks) acts on the spectrogram, which the model computes: see
:class:`avbench.nn.frontends.LogSpectrogram` (``freq_mask_param``,
``time_mask_param``).

Random draws come from torch's global generator (seeded by
``seed_everything``; loader workers get their own seeds), so a run is
reproducible. Everything runs on ``[C,H,W]`` (or ``[T,C,H,W]``, one draw for
all frames) float tensors in [0, 1], after the in-memory cache, so a cached
split is still augmented afresh in every epoch.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from avbench.data.datasets.base import DatasetView

TrainAugment = Literal["none", "resize_crop_flip", "ezvsl"]
#: every accepted ``train_augment`` value
TRAIN_AUGMENTS: tuple[str, ...] = ("none", "resize_crop_flip", "ezvsl")
#: recipes that need the training frame at its stored (native) size
NATIVE_FRAME_AUGMENTS: frozenset[str] = frozenset({"ezvsl"})
#: the reference resize factor: ``int(224 * 1.1) = 246`` for a 224 crop
RESIZE_FACTOR = 1.1


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


def short_side_resize_crop(image: Tensor, size: int, scale: float = RESIZE_FACTOR) -> Tensor:
    """Resize the shorter side of ``image`` [..., H, W] to ``int(size * scale)`` keeping the
    aspect ratio (bicubic, antialiased, clamped to [0, 1]), then random-crop ``size x size``.

    The resize follows ``torchvision.transforms.Resize(int)``: the longer side
    becomes ``int(long * short_target / short)``.
    """
    from torchvision.transforms.v2 import functional as TF

    target = int(size * scale)
    out = TF.resize(image.float(), [target], interpolation=TF.InterpolationMode.BICUBIC,
                    antialias=True).clamp_(0.0, 1.0)
    h, w = out.shape[-2:]
    top = int(torch.randint(0, h - size + 1, ()).item())
    left = int(torch.randint(0, w - size + 1, ()).item())
    return out[..., top:top + size, left:left + size]


def ezvsl_train_transform(image: Tensor, size: int, flip_p: float = 0.5) -> Tensor:
    """The EZ-VSL line's training transform of a native-size frame (module doc): [.., S, S]."""
    out = short_side_resize_crop(image, size)
    if torch.rand(()).item() < flip_p:
        out = out.flip(-1)
    return out.contiguous()


def jsa_photometric(images: Tensor) -> Tensor:
    """JSA's photometric "hard" augmentation of a batch ``[B,3,H,W]`` in [0, 1].

    Per sample, independent draws: Gaussian blur (kernel 5, sigma U[0.1, 2])
    with p 0.8, colour jitter (0.8, 0.8, 0.8, hue 0.2) with p 0.8, grayscale
    with p 0.2 (reference ``dataset.py`` ``hard_img``). Returns a new tensor
    of the same shape and dtype, clamped to [0, 1].
    """
    from torchvision.transforms import v2

    ops = v2.Compose([
        v2.RandomApply([v2.GaussianBlur(kernel_size=5, sigma=(0.1, 2.0))], p=0.8),
        v2.RandomApply([v2.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
        v2.RandomGrayscale(p=0.2),
    ])
    out = torch.stack([ops(img) for img in images.float()])
    return out.clamp_(0.0, 1.0).to(images.dtype)


class AugmentedDataset(DatasetView):
    """``source`` with a training augmentation applied to each sample's ``image``.

    Args:
        source: the training dataset (frames square for ``"resize_crop_flip"``,
            native size for ``"ezvsl"``).
        scale, flip_p: ``"resize_crop_flip"`` parameters.
        recipe: one of :data:`TRAIN_AUGMENTS` except ``"none"``.
        size: output side for the native-frame recipes (the datamodule's
            ``image_size``); required for them.

    The sample dict is copied, never modified in place (it may be a cached one).
    Other attributes come from the source dataset (:class:`DatasetView`).

    Raises:
        ValueError: unknown recipe, or a native-frame recipe without ``size``.
    """

    def __init__(self, source: Dataset, scale: float = 1.1, flip_p: float = 0.5,
                 recipe: str = "resize_crop_flip", size: int | None = None) -> None:
        super().__init__(source)
        if recipe not in TRAIN_AUGMENTS or recipe == "none":
            raise ValueError(f"unknown augmentation recipe {recipe!r}")
        if recipe in NATIVE_FRAME_AUGMENTS and size is None:
            raise ValueError(f"augmentation {recipe!r} needs the output size")
        self.scale = scale
        self.flip_p = flip_p
        self.recipe = recipe
        self.size = size

    def augment(self, image: Tensor) -> Tensor:
        """The recipe applied to one image (or one clip's frames)."""
        if self.recipe == "resize_crop_flip":
            return resize_crop_flip(image, self.scale, self.flip_p)
        assert self.size is not None
        return ezvsl_train_transform(image, self.size, self.flip_p).to(image.dtype)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.source[index])
        if isinstance(sample.get("image"), Tensor):
            sample["image"] = self.augment(sample["image"])
        return sample


__all__ = [
    "NATIVE_FRAME_AUGMENTS",
    "TRAIN_AUGMENTS",
    "AugmentedDataset",
    "TrainAugment",
    "ezvsl_train_transform",
    "jsa_photometric",
    "resize_crop_flip",
    "short_side_resize_crop",
]
