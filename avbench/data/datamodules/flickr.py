"""DataModule of Flickr-SoundNet: train on a Flickr id list, test on the 250 annotated clips.

Layout and sources: :mod:`avbench.data.datasets.flickr`. Val is a
deterministic hash hold-out of ``val_fraction`` of the training list
(Flickr-SoundNet has no val split); the test split returns the
3-annotator consensus ``gt_map``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avbench.data.datamodules.base import AVDataModule
from avbench.data.datasets.base import AVDataset
from avbench.data.datasets.flickr import FlickrSoundNet


class FlickrSoundNetDataModule(AVDataModule):
    """Flickr-SoundNet training list + annotated test set.

    Args:
        root: Flickr-SoundNet root in the published layout.
        train_list: ``flickr_10k.txt`` or ``flickr_144k.txt`` (``.csv`` accepted).
        test_list: test id csv (first column).
        test_dir: folder of the annotated test set under ``root``.
        audio_ext: ``.wav`` (pre-extracted 16 kHz) or ``.mp3``.
        val_fraction: share of the training list held out for validation.
        batch_size, num_workers, sample_rate, clip_seconds, image_size,
        missing, drop_last_train, pin_memory: see :class:`AVDataModule`.
    """

    dataset_name = "flickr"

    def __init__(
        self,
        root: str | Path,
        train_list: str = "flickr_10k.txt",
        test_list: str = "flickr_test.csv",
        test_dir: str = "test",
        audio_ext: str = ".wav",
        val_fraction: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        self.train_list = train_list
        self.test_list = test_list
        self.test_dir = test_dir
        self.audio_ext = audio_ext
        self.val_fraction = val_fraction

    def build_dataset(self, split: str) -> AVDataset:
        if split not in ("train", "val", "test"):
            raise KeyError(f"unknown split {split!r}")
        return FlickrSoundNet(
            self.root, split, train_list=self.train_list, test_list=self.test_list,
            test_dir=self.test_dir, audio_ext=self.audio_ext, sample_rate=self.sample_rate,
            clip_seconds=self.clip_seconds, image_size=self.image_size, missing=self.missing,
            val_fraction=self.val_fraction,
        )


__all__ = ["FlickrSoundNetDataModule"]
