"""DataModule of spoken captions (Places Audio Captions layout; DenseAV's speech data).

Layout, sources, splits and sample keys: :mod:`avbench.data.datasets.spoken_captions`.
Train on ``train.json`` minus a hash hold-out (val), test on ``val.json``; data config
``configs/data/spoken_captions_synthetic.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avbench.data.datamodules.base import AVDataModule
from avbench.data.datasets.base import AVDataset
from avbench.data.datasets.spoken_captions import TEST_JSON, TRAIN_JSON, SpokenCaptions


class SpokenCaptionsDataModule(AVDataModule):
    """Train / val (hold-out) / test loaders over :class:`SpokenCaptions`.

    Args:
        root: data root holding ``PlacesAudio_400k_distro/`` (or that folder).
        train_json, test_json: metadata file names under ``metadata/``.
        val_fraction: share of ``train_json`` held out as val.
        word_timings: add the synthetic word timings (``word_start``, ``word_end``,
            ``word_label``) to every sample; real copies have none.
        image_root, audio_root: override where image / wav paths are resolved.
        **kwargs: :class:`AVDataModule` arguments (batch_size, sample_rate, clip_seconds,
            image_size, missing, cache...).
    """

    dataset_name = "spoken_captions"

    def __init__(
        self,
        root: str | Path,
        train_json: str = TRAIN_JSON,
        test_json: str = TEST_JSON,
        val_fraction: float = 0.05,
        word_timings: bool = False,
        image_root: str | None = None,
        audio_root: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        self.train_json = train_json
        self.test_json = test_json
        self.val_fraction = val_fraction
        self.word_timings = word_timings
        self.image_root = image_root
        self.audio_root = audio_root

    def build_dataset(self, split: str) -> AVDataset:
        if split not in ("train", "val", "test"):
            raise KeyError(f"unknown split {split!r}")
        return SpokenCaptions(
            self.root, split, train_json=self.train_json, test_json=self.test_json,
            image_root=self.image_root, audio_root=self.audio_root,
            sample_rate=self.sample_rate, clip_seconds=self.clip_seconds,
            image_size=self.image_size, val_fraction=self.val_fraction,
            word_timings=self.word_timings, missing=self.missing,
        )


__all__ = ["SpokenCaptionsDataModule"]
