"""Stand-in ``image-vit``: a small timm ViT in the role of DINO ViT-S/8 (DenseAV's image tower).

DenseAV starts from DINO ViT-S/8 (``timm`` name ``vit_small_patch8_224``, the
``.dino`` tag; REFERENCE.md C). The stand-in is the same timm architecture at
CPU width, built by the same name with keyword overrides::

    timm.create_model("vit_small_patch8_224", pretrained=True,
                      pretrained_cfg_overlay=dict(file="DIR/model.safetensors"), **VIT_KWARGS)

``VIT_KWARGS`` (recorded in the card's ``architecture``): 64-px input, patch 8
(8 x 8 = 64 patch tokens + CLS), embed dim 192, depth 4, 3 heads, no
classifier (``num_classes=0``: the DINO tag's ``pretrained_cfg`` has
``num_classes=0`` too, so timm loads the file strictly). The file is in timm's
own key layout (``patch_embed.proj.weight``, ``blocks.0.attn.qkv.weight``,
...), so LoRA on ``qkv`` (DenseAV) targets the same module names. timm
resamples ``pos_embed`` when a config asks for another ``img_size``.

Training is SUPERVISED, not DINO: the ViT + a linear head on the CLS token
classify :class:`~avbench.pretrain.corpus.ImageCorpus` images (64 px) of the
pretraining world's categories (disjoint from every benchmark's) with
cross-entropy (:func:`~avbench.pretrain.training.fit_classifier`). The head
is dropped (not saved). Inputs are RGB in ``[0, 1]`` normalised by the timm
config's mean/std (ImageNet's, as for DINO): :func:`normalize`.

:func:`load_vit` is the checked loader: timm's overlay path, with a missing,
truncated or mismatched file turned into :class:`avbench.nn.weights.WeightsError`
naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from avbench.pretrain.card import StandinCard
from avbench.pretrain.corpus import ImageCorpus
from avbench.pretrain.registry import StandinSpec, register_standin
from avbench.pretrain.training import (
    StandinRun,
    fit_classifier,
    materialize,
    save_safetensors,
    seed_everything,
)

__all__ = ["NAME", "TIMM_NAME", "VIT_KWARGS", "WEIGHTS_FILE", "load_vit", "normalize", "train"]

NAME = "image-vit"
TIMM_NAME = "vit_small_patch8_224"  # DINO ViT-S/8's timm architecture
#: width overrides of the stand-in (also what a config passes to timm.create_model)
VIT_KWARGS: dict[str, Any] = {"img_size": 64, "embed_dim": 192, "depth": 4, "num_heads": 3,
                              "num_classes": 0}
WEIGHTS_FILE = "model.safetensors"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # timm IMAGENET_DEFAULT (DINO's)
#: corpus sizes and optimisation per size preset
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"n_train": 96, "n_heldout": 64, "steps": 6, "batch_size": 16, "lr": 1e-3},
    "default": {"n_train": 4096, "n_heldout": 512, "steps": 160, "batch_size": 64, "lr": 1e-3},
}


def normalize(images: torch.Tensor) -> torch.Tensor:
    """RGB ``[B,3,H,W]`` in ``[0, 1]`` -> the ViT's input (ImageNet mean/std, as timm's config)."""
    mean = images.new_tensor(MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(STD).view(1, 3, 1, 1)
    return (images - mean) / std


class _Classifier(nn.Module):
    """Normalise -> ViT (CLS token) -> linear head: ``[B,3,S,S]`` in [0,1] -> logits ``[B, C]``."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        import timm

        self.vit = timm.create_model(TIMM_NAME, pretrained=False, **VIT_KWARGS)
        self.head = nn.Linear(self.vit.num_features, n_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.vit(normalize(images)))


def load_vit(path: str | Path, **overrides: Any) -> nn.Module:
    """The stand-in ViT from ``path`` through timm's local-file path (``pretrained_cfg_overlay``).

    ``overrides`` replace entries of :data:`VIT_KWARGS` (e.g. ``img_size=96``: timm
    resamples the position embedding). Returns the timm model in eval mode.

    Raises:
        avbench.nn.weights.WeightsError: the file is missing, truncated, unreadable or
            for another architecture (the message names the file and timm's error).
    """
    import timm

    from avbench.nn.weights import WeightsError

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: ViT stand-in weights file does not exist (build it with "
                           f"`avbench pretrain {NAME} --out {path.parent}`)")
    try:
        model = timm.create_model(TIMM_NAME, pretrained=True,
                                  pretrained_cfg_overlay={"file": str(path)},
                                  **{**VIT_KWARGS, **overrides})
    except Exception as err:  # safetensors / torch errors do not name the file
        raise WeightsError(f"{path}: cannot load as timm {TIMM_NAME} with "
                           f"{ {**VIT_KWARGS, **overrides} }: {type(err).__name__}: {err}") from err
    return model.eval()


def train(out_dir: Path, seed: int = 0, size: str = "default", progress: bool = True) -> StandinCard:
    """Train the ViT stand-in into ``out_dir`` (``model.safetensors`` + ``card.json``).

    Deterministic in ``(seed, size)``. Raises ``KeyError`` for an unknown ``size``.
    """
    cfg = SIZES[size]
    run = StandinRun.start(NAME, out_dir, seed, size)
    world = run.world
    image_size = VIT_KWARGS["img_size"]
    data = {split: materialize(ImageCorpus(world, cfg[f"n_{split}"], seed, split, image_size),
                               desc=f"{NAME} {split} images", progress=progress)
            for split in ("train", "heldout")}
    seed_everything(seed)
    model = _Classifier(len(world.categories))
    stats = fit_classifier(model, data["train"], data["heldout"], steps=cfg["steps"],
                           batch_size=cfg["batch_size"], lr=cfg["lr"], seed=seed,
                           desc=f"pretrain {NAME}", progress=progress, weight_decay=0.05)
    save_safetensors(run.out_dir / WEIGHTS_FILE, model.vit.state_dict())
    return run.finish(
        architecture={"library": "timm", "timm_name": TIMM_NAME, "kwargs": dict(VIT_KWARGS),
                      "pretrained_cfg_overlay": {"file": WEIGHTS_FILE},
                      "input": "RGB in [0, 1], normalised by ImageNet mean/std (timm config)",
                      "training": "supervised classification of ImageCorpus (not DINO); "
                                  "linear head on the CLS token, dropped",
                      "role": "DINO ViT-S/8 (DenseAV image tower)"},
        files={"weights": WEIGHTS_FILE},
        corpus={"kind": "ImageCorpus", "n_train": cfg["n_train"], "n_heldout": cfg["n_heldout"],
                "image_size": image_size, "batch_size": cfg["batch_size"], "lr": cfg["lr"]},
        steps=int(stats["steps"]),
        heldout={"accuracy": stats["heldout_accuracy"], "loss": stats["heldout_loss"]})


register_standin(StandinSpec(
    name=NAME,
    description="timm ViT (vit_small_patch8_224 at 64 px, dim 192, depth 4), supervised on world "
                "images: DINO ViT-S/8's role (DenseAV)",
    train=train,
))
