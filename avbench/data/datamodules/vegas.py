"""LightningDataModule over VEGAS: raw clips or the retrieval feature file.

Layout, sample keys and tolerances: :mod:`avbench.data.datasets.vegas` (raw) and
:mod:`avbench.data.datasets.features` (HDF5). Raw clips have no released split, so
avbench fixes one by a stable hash of ``<class>/<stem>`` (``test_fraction`` test,
``val_fraction`` val, the rest train). Features use the file's own train/test split
(the retrieval papers'); val is then a ``val_fraction`` hash hold-out of the training
rows unless the file stores one. Checkpoints are never selected on test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from avbench.data.datamodules.base import AVDataModule
from avbench.data.datasets.base import AVDataset
from avbench.data.datasets.vegas import FEATURES_FILE, VEGAS, AudioSource, VEGASFeatures

Source = Literal["video", "features"]


class VEGASDataModule(AVDataModule):
    """Loaders over :class:`~avbench.data.datasets.vegas.VEGAS` or :class:`VEGASFeatures`.

    Args (beyond :class:`AVDataModule`):
        source: ``"video"`` (raw clips) or ``"features"`` (HDF5 features).
        features_file: feature file, relative to ``root`` unless absolute.
        audio_source: raw clips: ``"wav"`` (``audios/``) or ``"mp4"`` (the video's track).
        num_frames: raw clips: also return this many frames per clip.
        test_fraction, val_fraction: the raw hash split (val_fraction also sizes the
            features' val hold-out).
    """

    dataset_name = "vegas"

    def __init__(
        self,
        root: str | Path,
        source: Source = "video",
        features_file: str | Path = FEATURES_FILE,
        audio_source: AudioSource = "wav",
        num_frames: int | None = None,
        test_fraction: float = 0.2,
        val_fraction: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        if source not in ("video", "features"):
            raise ValueError(f"source must be 'video' or 'features', got {source!r}")
        self.source, self.features_file, self.audio_source = source, features_file, audio_source
        self.num_frames, self.test_fraction, self.val_fraction = num_frames, test_fraction, val_fraction

    def build_dataset(self, split: str) -> AVDataset:
        if self.source == "features":
            return VEGASFeatures(
                self.root, split, file=self.features_file,
                val_fraction=self.val_fraction, missing=self.missing,
            )
        return VEGAS(
            self.root,
            split,
            sample_rate=self.sample_rate,
            clip_seconds=self.clip_seconds,
            image_size=self.image_size,
            audio_source=self.audio_source,
            num_frames=self.num_frames,
            test_fraction=self.test_fraction,
            val_fraction=self.val_fraction,
            missing=self.missing,
        )

    @property
    def classes(self) -> list[str]:
        """The sorted class list shared by every split."""
        return self.dataset("test").classes
