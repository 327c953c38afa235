"""LightningDataModule over AVE: raw 10-s videos or pre-extracted retrieval features.

Layout, sample keys and tolerances: :mod:`avbench.data.datasets.ave` (raw) and
:mod:`avbench.data.datasets.features` (HDF5). With ``source="video"`` the released
``trainSet/valSet/testSet.txt`` give all three splits. With ``source="features"`` the
file's own splits are used; when it stores no val split, val is the deterministic
``val_fraction`` hold-out of its training rows (stable hash of the row id), never test.
``classes="ave15"`` restricts either source to the ILI 15-class subset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from avbench.data.datamodules.base import AVDataModule
from avbench.data.datasets.ave import AVE, FEATURES_FILE, AVEFeatures, ClassSet
from avbench.data.datasets.base import AVDataset

Source = Literal["video", "features"]


class AVEDataModule(AVDataModule):
    """Loaders over :class:`~avbench.data.datasets.ave.AVE` or :class:`AVEFeatures`.

    Args (beyond :class:`AVDataModule`):
        source: ``"video"`` (raw clips) or ``"features"`` (HDF5 features).
        features_file: feature file, relative to ``root`` unless absolute.
        classes: ``"all"`` (28 AVE categories) or ``"ave15"`` (ILI subset).
        num_frames: with ``source="video"``, also return this many frames per clip.
        center_on_event: centre the audio window and frame on the annotated event.
        val_fraction: features only: training rows held out as val when the file has none.
    """

    dataset_name = "ave"

    def __init__(
        self,
        root: str | Path,
        source: Source = "video",
        features_file: str | Path = FEATURES_FILE,
        classes: ClassSet = "all",
        num_frames: int | None = None,
        center_on_event: bool = True,
        val_fraction: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        if source not in ("video", "features"):
            raise ValueError(f"source must be 'video' or 'features', got {source!r}")
        if classes not in ("all", "ave15"):
            raise ValueError(f"classes must be 'all' or 'ave15', got {classes!r}")
        self.source, self.features_file, self.classes_set = source, features_file, classes
        self.num_frames, self.center_on_event, self.val_fraction = num_frames, center_on_event, val_fraction
        if classes == "ave15":
            self.dataset_name = "ave15"

    def build_dataset(self, split: str) -> AVDataset:
        if self.source == "features":
            return AVEFeatures(
                self.root, split, file=self.features_file, classes=self.classes_set,
                val_fraction=self.val_fraction, missing=self.missing,
            )
        return AVE(
            self.root,
            split,
            sample_rate=self.sample_rate,
            clip_seconds=self.clip_seconds,
            image_size=self.image_size,
            classes=self.classes_set,
            num_frames=self.num_frames,
            center_on_event=self.center_on_event,
            missing=self.missing,
        )

    @property
    def classes(self) -> list[str]:
        """The sorted class list shared by every split."""
        return self.dataset("test").classes
