"""Per-clip feature extractors for the AVE/VEGAS feature files (ILI's VGGish / Inception features).

The real feature files hold 128-d VGGish embeddings (one per second of audio)
and 1024-d Inception pool features (one per second of video). On the
synthetic world these are views of the stand-ins (no training of their own):

- :class:`VisualFeatureExtractor` - ``image-resnet18``'s 1024-d head layer;
- :class:`AudioFeatureExtractor` - ``audio-resnet18``'s 128-d head layer on one
  0.96-s VGGish window per second.

``from_dir(DIR)`` reads ``DIR/card.json``, checks every file's sha256
against it and strict-loads the weights (:func:`avbench.nn.weights.load_state_dict_strict`):
a missing, changed, truncated or foreign file raises
:class:`~avbench.nn.weights.WeightsError`. The extractors are in eval mode
with frozen parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from avbench.nn.weights import WeightsError, load_state_dict_strict
from avbench.pretrain.audio import SAMPLE_RATE, AudioClassifier
from avbench.pretrain.card import CardError, StandinCard, read_card, verify_files
from avbench.pretrain.image import ImageClassifier

__all__ = ["AudioFeatureExtractor", "VisualFeatureExtractor"]

C = TypeVar("C", ImageClassifier, AudioClassifier)


def _checked_card(out_dir: str | Path, name: str) -> tuple[StandinCard, Path]:
    out_dir = Path(out_dir)
    try:
        card = read_card(out_dir)
    except CardError as err:
        raise WeightsError(str(err)) from err
    if card.name != name:
        raise WeightsError(f"{out_dir / 'card.json'} describes {card.name!r}, not {name!r}")
    problems = verify_files(out_dir, card)
    if problems:
        raise WeightsError(f"stand-in {name!r} in {out_dir} does not match its card: "
                           + "; ".join(problems) + f" (retrain: avbench pretrain {name} --out "
                           f"{out_dir} --force)")
    return card, out_dir / card.files["weights"]


def _load_classifier(out_dir: str | Path, name: str, dim_key: str,
                     cls: type[C]) -> tuple[C, StandinCard]:
    """``cls(n_classes, width, layers, card.architecture[dim_key])`` of the stand-in ``name`` in
    ``out_dir``, its weights strict-loaded; raises ``WeightsError`` as ``from_dir`` does."""
    card, weights = _checked_card(out_dir, name)
    a = card.architecture
    model = cls(int(a["n_classes"]), int(a["width"]), tuple(a["layers"]), int(a[dim_key]))
    load_state_dict_strict(model.file_layout(), weights, ignore_prefixes=(),
                           what=f"{name} feature extractor")
    return model, card


def _freeze(module: nn.Module) -> None:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)


class VisualFeatureExtractor(nn.Module):
    """``forward(images float [B,3,H,W] in [0,1]) -> [B, 1024]`` (post-ReLU, Inception-pool role).

    Images are resized (bilinear, antialiased) to the stand-in's training size first.
    """

    def __init__(self, classifier: ImageClassifier, image_size: int, card: StandinCard) -> None:
        super().__init__()
        self.classifier, self.image_size, self.card = classifier, int(image_size), card
        _freeze(self)

    @classmethod
    def from_dir(cls, out_dir: str | Path) -> VisualFeatureExtractor:
        """The extractor of the ``image-resnet18`` in ``out_dir``.

        Raises:
            WeightsError: no/invalid card, a file whose sha256 differs from the card's, or weights
                that do not fit the architecture the card names.
        """
        model, card = _load_classifier(out_dir, "image-resnet18", "feature_dim", ImageClassifier)
        return cls(model, int(card.corpus["image_size"]), card)

    @property
    def dim(self) -> int:
        return self.classifier.head.fc1.out_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(images.float(), size=(self.image_size, self.image_size),
                                   mode="bilinear", align_corners=False, antialias=True)
        return self.classifier.features(images)


class AudioFeatureExtractor(nn.Module):
    """``forward(wave float [B, L] at 16 kHz) -> [B, L // 16000, 128]`` (VGGish-embedding role):
    one embedding per second, of that second's first 0.96 s."""

    def __init__(self, classifier: AudioClassifier, card: StandinCard) -> None:
        super().__init__()
        self.classifier, self.card = classifier, card
        _freeze(self)

    @classmethod
    def from_dir(cls, out_dir: str | Path) -> AudioFeatureExtractor:
        """The extractor of the ``audio-resnet18`` in ``out_dir`` (errors as for the visual one)."""
        model, card = _load_classifier(out_dir, "audio-resnet18", "embedding_dim", AudioClassifier)
        return cls(model, card)

    @property
    def dim(self) -> int:
        return self.classifier.head.fc1.out_features

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Raises ``ValueError`` for less than one second of audio."""
        b, n = wave.shape
        k = n // SAMPLE_RATE
        if k < 1:
            raise ValueError(f"need at least 1 s ({SAMPLE_RATE} samples) of audio, got {n}")
        segments = wave[:, :k * SAMPLE_RATE].reshape(b * k, SAMPLE_RATE)
        return self.classifier.embed(segments).reshape(b, k, -1)
