"""LightningDataModule over AVSBench S4 / MS3 (audio-visual segmentation).

Layout, sample keys and tolerances: :mod:`avbench.data.datasets.avsbench`. AVSBench
has its own train/val/test split in the metadata csv, so val is the released one.
AVSBench's test split also serves as a sound-source localization test set through
``gt_map`` (the mask of frame 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avbench.data.datamodules.base import AVDataModule
from avbench.data.datasets.avsbench import CLIP_SECONDS, AVSBench, Subset


class AVSBenchDataModule(AVDataModule):
    """Train/val/test loaders over :class:`~avbench.data.datasets.avsbench.AVSBench`.

    Args (beyond :class:`AVDataModule`):
        subset: ``"s4"`` (single source, 23 labelled categories) or ``"ms3"``.
        clip_seconds: audio window; AVSBench clips are 5 s, the default keeps them whole.
    """

    dataset_name = "avsbench"

    def __init__(
        self,
        root: str | Path,
        subset: Subset = "s4",
        clip_seconds: float = CLIP_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, clip_seconds=clip_seconds, **kwargs)
        if subset not in ("s4", "ms3"):
            raise ValueError(f"subset must be 's4' or 'ms3', got {subset!r}")
        self.subset = subset
        self.dataset_name = f"avsbench_{subset}"

    def build_dataset(self, split: str) -> AVSBench:
        return AVSBench(
            self.root,
            subset=self.subset,
            split=split,
            sample_rate=self.sample_rate,
            clip_seconds=self.clip_seconds,
            image_size=self.image_size,
            missing=self.missing,
        )

    @property
    def classes(self) -> list[str]:
        """Sorted S4 categories (empty for MS3, which has no category column)."""
        return self.dataset("test").classes
