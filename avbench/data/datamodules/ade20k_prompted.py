"""DataModule of DenseAV's speech- or sound-prompted ADE20K (an evaluation set: test only).

Layout, sources and sample keys: :mod:`avbench.data.datasets.ade20k_prompted`; data
config ``configs/data/ade20k_prompted_synthetic.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avbench.data.datamodules.base import AVDataModule
from avbench.data.datasets.ade20k_prompted import ADE20KPrompted, PromptKind
from avbench.data.datasets.base import AVDataset


class ADE20KPromptedDataModule(AVDataModule):
    """The ``test`` split is every kept row of ``prompted_segmentation.csv`` of ``kind``.

    Args:
        root: data root holding ``ADE20KSpeechPrompted/`` and ``ADE20KSoundPrompted/``.
        kind: ``"speech"`` or ``"sound"`` prompts.
        **kwargs: :class:`AVDataModule` arguments.

    Raises:
        ValueError: unknown ``kind``.
    """

    dataset_name = "ade20k_prompted"

    def __init__(self, root: str | Path, kind: PromptKind = "speech", **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        if kind not in ("speech", "sound"):
            raise ValueError(f"kind must be 'speech' or 'sound', got {kind!r}")
        self.kind = kind
        #: benchmarks name the test set ``(ade20k_prompted, speech|sound)`` (``test_family``)
        self.subset = kind

    def available_splits(self) -> tuple[str, ...]:
        return ("test",)

    def build_dataset(self, split: str) -> AVDataset:
        if split != "test":
            raise KeyError(f"ADE20K prompted has only a test split, got {split!r}")
        return ADE20KPrompted(self.root, self.kind, sample_rate=self.sample_rate,
                              clip_seconds=self.clip_seconds, image_size=self.image_size,
                              missing=self.missing)


__all__ = ["ADE20KPromptedDataModule"]
