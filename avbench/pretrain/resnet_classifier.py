"""The ResNet classifier shared by ``image-resnet18`` and ``audio-resnet18``, and its training.

Both stand-ins are a timm ResNet encoder (``avbench.nn.encoders``) with the head
``avgpool -> Linear(C, D) -> ReLU -> Linear(D, n_classes)``; the ``D``-d
post-ReLU layer is the feature the AVE/VEGAS extractors read
(:mod:`~avbench.pretrain.extractors`). ``DIR/model.safetensors`` holds the
backbone in timm's resnet key layout (what the encoder's ``pretrained_path``
strict-loads) and the head under ``head.``.

:func:`train_resnet_standin` is their common ``train``: render both corpora,
seed, build the classifier, :func:`~avbench.pretrain.training.fit_classifier`,
write ``model.safetensors``, then the card.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

import torch
from torch import nn

from avbench.pretrain.card import StandinCard
from avbench.pretrain.corpus import ImageCorpus, SoundCorpus
from avbench.pretrain.training import (
    StandinRun,
    fit_classifier,
    materialize,
    save_safetensors,
    seed_everything,
)

__all__ = ["WEIGHTS_FILE", "ResNetClassifier", "train_resnet_standin"]

WEIGHTS_FILE = "model.safetensors"


class ResNetClassifier(nn.Module):
    """``encoder`` (a timm-ResNet wrapper with ``.backbone`` and ``.out_channels``) + the head
    ``avgpool -> Linear(C, hidden_dim) -> ReLU -> Linear(hidden_dim, n_classes)``."""

    def __init__(self, encoder: nn.Module, hidden_dim: int, n_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(OrderedDict(
            fc1=nn.Linear(encoder.out_channels, hidden_dim), relu=nn.ReLU(),
            fc2=nn.Linear(hidden_dim, n_classes)))

    def head_features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder input ``x`` -> ``[B, hidden_dim]``: the post-ReLU layer of the head."""
        pooled = self.encoder(x).mean(dim=(2, 3))
        return self.head.relu(self.head.fc1(pooled))

    def weights_state(self) -> dict[str, torch.Tensor]:
        """What ``model.safetensors`` holds: backbone keys (timm layout) + ``head.*``."""
        state = dict(self.encoder.backbone.state_dict())
        state.update({f"head.{k}": v for k, v in self.head.state_dict().items()})
        return state

    def load_weights_state(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`weights_state` (strict)."""
        self.encoder.backbone.load_state_dict(
            {k: v for k, v in state.items() if not k.startswith("head.")}, strict=True)
        self.head.load_state_dict(
            {k[len("head."):]: v for k, v in state.items() if k.startswith("head.")}, strict=True)

    def file_layout(self) -> nn.Module:
        """A module whose ``state_dict`` keys are those of ``model.safetensors`` (the backbone's
        children at the top level, ``head.*``), sharing this model's modules: a strict
        loader can fill it in place."""
        layout = nn.Module()
        for name, child in self.encoder.backbone.named_children():
            layout.add_module(name, child)
        layout.add_module("head", self.head)
        return layout


class _Optimisation(Protocol):
    """The fields of a size preset (``ImageSize``, ``AudioSize``) the training reads."""

    steps: int
    batch_size: int
    lr: float
    weight_decay: float


def train_resnet_standin(run: StandinRun, build: Callable[[int], ResNetClassifier],
                         train: ImageCorpus | SoundCorpus, heldout: ImageCorpus | SoundCorpus,
                         preset: _Optimisation, *,
                         architecture: dict[str, Any], corpus: dict[str, Any],
                         augment: Callable[[torch.Tensor], torch.Tensor], progress: bool = True,
                         transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                         ) -> StandinCard:
    """Train ``build(n_classes)`` on ``train`` (scored on ``heldout``) into ``run.out_dir``.

    Args:
        run: the started run (name, seed, size, output directory).
        build: ``n_classes -> classifier``, called after seeding (deterministic initial weights).
        train, heldout: the two corpora; rendered once (:func:`materialize`, ``transform``
            applied to each item).
        preset: a dataclass size preset; its fields also go to the card's ``corpus``.
        architecture, corpus: the card's entries (``n_classes`` and the preset are added).
        augment: applied to each training batch (:func:`fit_classifier`).

    Returns:
        The card (written last); its held-out entry has ``accuracy``, ``loss``, ``train_loss``
        and ``chance``.
    """
    train_t = materialize(train, desc=f"{run.name}: render train", progress=progress,
                          transform=transform)
    heldout_t = materialize(heldout, desc=f"{run.name}: render held-out", progress=progress,
                            transform=transform)
    seed_everything(run.seed)
    model = build(train.n_classes)
    stats = fit_classifier(model, train_t, heldout_t, steps=preset.steps,
                           batch_size=preset.batch_size, lr=preset.lr,
                           weight_decay=preset.weight_decay, seed=run.seed, desc=run.name,
                           progress=progress, augment=augment)
    save_safetensors(run.out_dir / WEIGHTS_FILE, model.weights_state())
    return run.finish(
        architecture={**architecture, "n_classes": train.n_classes},
        files={"weights": WEIGHTS_FILE}, corpus={**corpus, **asdict(preset)}, steps=preset.steps,
        heldout={"accuracy": stats["heldout_accuracy"], "loss": stats["heldout_loss"],
                 "train_loss": stats["train_loss"], "chance": 1.0 / train.n_classes})
