"""DataModule of the VGGSound family: train on a VGGSound list, test on VGG-SS or VGGSound.

The papers of the EZ-VSL line train on a VGGSound id list (10k, 144k, or the
110 heard classes) and test localization on VGG-SS (all / heard / unheard);
retrieval tables use VGG-SS or the VGGSound test split. One DataModule covers
all of these with ``train_list`` and ``test_set`` (layout and sources:
:mod:`avbench.data.datasets.vggsound`,
:mod:`avbench.data.datasets.vggss`).

Val is a deterministic hash hold-out of ``val_fraction`` of the training list
(VGGSound has no val split; selecting on test is what avbench exists to stop).
It has labels but no boxes, so checkpoint selection uses the validation loss
or retrieval, never localization on test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from avbench.data.datamodules.base import AVDataModule
from avbench.data.datasets.base import AVDataset
from avbench.data.datasets.vggsound import Source, VGGSound
from avbench.data.datasets.vggss import VGGSS

TestSet = Literal["vggss", "vggss_heard", "vggss_unheard", "vggsound"]

_SUBSETS = {"vggss": "all", "vggss_heard": "heard", "vggss_unheard": "unheard"}


class VGGSoundDataModule(AVDataModule):
    """VGGSound training list + VGG-SS (or VGGSound) test split.

    Args:
        root: VGGSound root in the published layout.
        train_list: training id list (``vggsound_144k.txt``, ``vggsound_10k.txt``;
            ``vggss_heard.txt`` for the heard/unheard protocol; ``None`` = all
            ``train`` rows of ``vggsound.csv``).
        test_set: ``"vggss"`` / ``"vggss_heard"`` / ``"vggss_unheard"`` (samples
            carry ``gt_map`` and ``boxes``) or ``"vggsound"`` (the csv's test
            rows, labels only, for retrieval/classification).
        source: ``"frames"`` (pre-extracted jpg + wav) or ``"video"`` (decode mp4).
        val_fraction: share of the training list held out for validation.
        video_dir: mp4 folder under ``root`` for ``source="video"``.
        allow_test_overlap: keep training ids that are test clips (the public
            144k list has ~3.7k VGG-SS clips); reported either way.
        **kwargs: batch_size, num_workers, sample_rate, clip_seconds,
            image_size, missing, drop_last_train, pin_memory of :class:`AVDataModule`.
    """

    dataset_name = "vggsound"

    def __init__(
        self,
        root: str | Path,
        train_list: str | None = "vggsound_144k.txt",
        test_set: TestSet = "vggss",
        source: Source = "frames",
        val_fraction: float = 0.05,
        video_dir: str = "video",
        allow_test_overlap: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        if test_set not in (*_SUBSETS, "vggsound"):
            raise ValueError(f"test_set must be one of {[*_SUBSETS, 'vggsound']}, got {test_set!r}")
        if source not in ("frames", "video"):
            raise ValueError(f"source must be 'frames' or 'video', got {source!r}")
        self.train_list = train_list
        self.test_set = test_set
        self.source = source
        self.val_fraction = val_fraction
        self.video_dir = video_dir
        self.allow_test_overlap = allow_test_overlap

    @property
    def test_family(self) -> tuple[str, str | None]:
        """VGG-SS and its subset when ``test_set`` is one of them, else plain VGGSound."""
        if self.test_set in _SUBSETS:
            return "vggss", _SUBSETS[self.test_set]
        return type(self).dataset_name, None

    @property
    def classes(self) -> list[str]:
        """Sorted VGGSound labels: the index space of every split's ``label``."""
        return self.dataset("test").classes

    def _media_kwargs(self) -> dict:
        return dict(
            source=self.source, video_dir=self.video_dir, sample_rate=self.sample_rate,
            clip_seconds=self.clip_seconds, image_size=self.image_size, missing=self.missing,
        )

    def build_dataset(self, split: str) -> AVDataset:
        if split in ("train", "val"):
            return VGGSound(
                self.root, split, train_list=self.train_list, val_fraction=self.val_fraction,
                allow_test_overlap=self.allow_test_overlap, **self._media_kwargs(),
            )
        if split == "test":
            if self.test_set == "vggsound":
                return VGGSound(self.root, "test", **self._media_kwargs())
            return VGGSS(self.root, _SUBSETS[self.test_set], **self._media_kwargs())
        raise KeyError(f"unknown split {split!r}")


__all__ = ["VGGSoundDataModule"]
