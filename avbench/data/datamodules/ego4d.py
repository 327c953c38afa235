"""LightningDataModule over Ego4D-Sounds narrated clips (SoundingActions/MC3, Action2Sound).

Layout, sample keys and the meaning of every option: :mod:`avbench.data.datasets.ego4d`.
The release has only train and test tables; ``val`` is a deterministic hold-out of
``val_fraction`` of the training videos (by a stable hash of ``video_uid``), so
checkpoints are never selected on test. ``with_cond_audio=True`` adds Action2Sound's
ambient condition (``cond_audio``: a clip of the same long video at another time).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avbench.data.datamodules.base import AVDataModule
from avbench.data.datasets.ego4d import Ego4DClips
from avbench.data.datasets.ego4d_tables import BadRowPolicy


class Ego4DClipsDataModule(AVDataModule):
    """Train/val/test loaders over :class:`~avbench.data.datasets.ego4d.Ego4DClips`.

    Args (beyond :class:`AVDataModule`):
        fps: frames per second sampled from each clip's window.
        num_frames: exact frame count per clip (overrides ``fps``; Action2Sound: 16).
        with_cond_audio: add ``cond_audio``/``cond_id`` to every sample.
        cond_neighbors, cond_seed: how the condition clip is chosen (deterministic).
        val_fraction: share of training videos held out as the val split.
        strip_prefix: drop the ``#C C`` tag from narrations.
        train_table, test_table, clips_dir: override the layout search.
        bad_rows: ``"error"`` or ``"skip"`` malformed table rows.
    """

    dataset_name = "ego4d"

    def __init__(
        self,
        root: str | Path,
        fps: float = 8.0,
        num_frames: int | None = None,
        with_cond_audio: bool = False,
        cond_neighbors: int = 3,
        cond_seed: int = 0,
        val_fraction: float = 0.05,
        strip_prefix: bool = True,
        train_table: str | None = None,
        test_table: str | None = None,
        clips_dir: str | None = None,
        bad_rows: BadRowPolicy = "error",
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        self.fps = fps
        self.num_frames = num_frames
        self.with_cond_audio = with_cond_audio
        self.cond_neighbors = cond_neighbors
        self.cond_seed = cond_seed
        self.val_fraction = val_fraction
        self.strip_prefix = strip_prefix
        self.train_table = train_table
        self.test_table = test_table
        self.clips_dir = clips_dir
        self.bad_rows = bad_rows
        self._classes: list[str] | None = None

    def build_dataset(self, split: str) -> Ego4DClips:
        ds = Ego4DClips(
            self.root,
            split,
            sample_rate=self.sample_rate,
            clip_seconds=self.clip_seconds,
            image_size=self.image_size,
            fps=self.fps,
            num_frames=self.num_frames,
            strip_prefix=self.strip_prefix,
            val_fraction=self.val_fraction,
            with_cond_audio=self.with_cond_audio,
            cond_neighbors=self.cond_neighbors,
            cond_seed=self.cond_seed,
            train_table=self.train_table,
            test_table=self.test_table,
            clips_dir=self.clips_dir,
            bad_rows=self.bad_rows,
            classes=self._classes,
            missing=self.missing,
        )
        # every split indexes labels into the same verb list
        if self._classes is None:
            self._classes = ds.classes
        return ds

    @property
    def classes(self) -> list[str]:
        """The verb list ``label`` indexes into (the same for every split)."""
        if self._classes is None:
            split = "train" if "train" in self.available_splits() else "test"
            self.dataset(split)
        assert self._classes is not None
        return list(self._classes)
