"""``image-resnet18``: the ImageNet ResNet-18 of the SSL papers, and Inception's pool feature.

A ResNet-18 at the CPU configs' width (``ImageEncoder(arch="resnet18",
width=16, layers=[1, 1, 1, 1])``) learns supervised classification of the
pretraining world's object-centric images (:class:`~.corpus.ImageCorpus`,
128 px; random resized crop of 60-100 % of the area + horizontal flip). Its classifier is
``backbone -> global average pool -> Linear(C, 1024) -> ReLU -> Linear(1024,
n_classes)``; the 1024-d post-ReLU layer plays Inception's pool feature in the
AVE/VEGAS feature files (:class:`~.extractors.VisualFeatureExtractor`).

``DIR/model.safetensors`` holds the backbone in timm's resnet key layout (what
``ImageEncoder(..., pretrained_path=DIR/model.safetensors)`` strict-loads) and
the head under ``head.`` (ignored by the encoder, read by the extractor); the
classifier and its training are shared with ``audio-resnet18``
(:mod:`~avbench.pretrain.resnet_classifier`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from avbench.nn.encoders import ImageEncoder
from avbench.pretrain.card import StandinCard
from avbench.pretrain.corpus import ImageCorpus
from avbench.pretrain.registry import StandinSpec, register_standin
from avbench.pretrain.resnet_classifier import WEIGHTS_FILE, ResNetClassifier, train_resnet_standin
from avbench.pretrain.training import StandinRun

__all__ = ["ARCHITECTURE", "IMAGE_SIZES", "WEIGHTS_FILE", "ImageClassifier", "ImageSize",
           "augment_images", "train_image_resnet18"]

#: the encoder the weights fit (the CPU configs' image network) and the head
ARCHITECTURE: dict = {"arch": "resnet18", "width": 16, "layers": [1, 1, 1, 1], "feature_dim": 1024,
                      "head": "avgpool -> Linear(C, 1024) -> ReLU -> Linear(1024, n_classes)",
                      "input": "RGB in [0, 1], ImageNet mean/std inside the encoder"}


@dataclass(frozen=True)
class ImageSize:
    """Corpus and optimisation of one size preset."""

    n_train: int
    n_heldout: int
    image_size: int
    steps: int
    batch_size: int
    lr: float
    weight_decay: float


IMAGE_SIZES: dict[str, ImageSize] = {
    "tiny": ImageSize(n_train=128, n_heldout=64, image_size=64, steps=6, batch_size=32, lr=2e-3,
                      weight_decay=0.05),
    "default": ImageSize(n_train=3200, n_heldout=640, image_size=128, steps=400, batch_size=48,
                         lr=3e-3, weight_decay=0.05),
}


class ImageClassifier(ResNetClassifier):
    """``ImageEncoder`` + the 1024-d head (module docstring).

    ``forward(image [B,3,H,W] float in [0,1] or uint8) -> logits [B, n_classes]``;
    :meth:`features` gives the 1024-d post-ReLU layer.
    """

    def __init__(self, n_classes: int, width: int = 16, layers: tuple[int, ...] = (1, 1, 1, 1),
                 feature_dim: int = 1024, pretrained_path: str | None = None) -> None:
        super().__init__(ImageEncoder("resnet18", pretrained_path=pretrained_path, width=width,
                                      layers=list(layers)), feature_dim, n_classes)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] -> [B, feature_dim] (post-ReLU)."""
        if image.dtype == torch.uint8:
            image = image.float() / 255.0
        return self.head_features(image)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head.fc2(self.features(image))


def augment_images(x: torch.Tensor, min_scale: float = 0.6) -> torch.Tensor:
    """Random resized crop (area ``[min_scale, 1]``, aspect ``[3/4, 4/3]``) + horizontal flip.

    ``x`` uint8 or float [B,3,S,S] -> float [B,3,S,S] in [0,1]; one batched ``grid_sample``
    (bilinear), random numbers from torch's global generator.
    """
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    b = x.shape[0]
    area = torch.empty(b).uniform_(min_scale, 1.0)
    log_ratio = torch.empty(b).uniform_(-0.2877, 0.2877)  # ln(3/4), ln(4/3)
    sx = torch.sqrt(area * torch.exp(log_ratio)).clamp(max=1.0)
    sy = torch.sqrt(area / torch.exp(log_ratio)).clamp(max=1.0)
    tx = (torch.rand(b) * 2 - 1) * (1 - sx)
    ty = (torch.rand(b) * 2 - 1) * (1 - sy)
    flip = torch.where(torch.rand(b) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = sx * flip, tx
    theta[:, 1, 1], theta[:, 1, 2] = sy, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255.0).round_().to(torch.uint8)


def train_image_resnet18(out_dir: Path, seed: int, size: str, progress: bool = True) -> StandinCard:
    """Train ``image-resnet18`` into ``out_dir`` (weights, then the card); returns the card."""
    p = IMAGE_SIZES[size]
    run = StandinRun.start("image-resnet18", out_dir, seed, size)
    return train_resnet_standin(
        run, lambda n: ImageClassifier(n, ARCHITECTURE["width"], tuple(ARCHITECTURE["layers"]),
                                       ARCHITECTURE["feature_dim"]),
        ImageCorpus(run.world, p.n_train, seed, "train", p.image_size),
        ImageCorpus(run.world, p.n_heldout, seed, "heldout", p.image_size), p,
        architecture=ARCHITECTURE, corpus={"kind": "ImageCorpus"}, augment=augment_images,
        progress=progress, transform=_to_uint8)


register_standin(StandinSpec(
    name="image-resnet18",
    description="ResNet-18 (width 16, one block per stage) classifying world images: plays the "
                "papers' ImageNet ResNet-18; its 1024-d head layer plays Inception's pool feature",
    train=train_image_resnet18))
