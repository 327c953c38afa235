"""LightningDataModule over EPIC-Sounds annotated segments (MC3's audio classification probe).

Layout, sample keys and validation rules: :mod:`avbench.data.datasets.epic_sounds`.
Splits are the published files: ``train`` = ``EPIC_Sounds_train.csv``, ``val`` =
``EPIC_Sounds_validation.csv``, ``test`` = ``EPIC_Sounds_recognition_test_timestamps.csv``
(unlabelled: ``label = -1``). Every segment is cut to ``clip_seconds`` (the centre
window, tiled when shorter) so batches stack to ``audio`` ``[B, 1, L]``.

Benchmark ``epic-sounds-probe`` (``avbench/benchmarks/builtin/epic_sounds.yaml``): a
linear probe fitted on ``train`` and scored on ``val`` (the test split has no labels);
data config ``configs/data/epic_sounds_synthetic.yaml`` (16 kHz, 3 s).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avbench.data.datamodules.base import AVDataModule
from avbench.data.datasets.epic_sounds import CLASSES, SAMPLE_RATE, BadRowPolicy, EPICSounds


class EPICSoundsDataModule(AVDataModule):
    """Train/val/test loaders over :class:`~avbench.data.datasets.epic_sounds.EPICSounds`.

    Args (beyond :class:`AVDataModule`; ``clip_seconds`` is the window per segment):
        audio_file: HDF5 path overriding the search under ``root``.
        store_rate: rate of the HDF5 recordings (24 kHz in the reference).
        bad_rows: ``"error"`` or ``"skip"`` invalid annotation rows.
    """

    dataset_name = "epic_sounds"

    def __init__(
        self,
        root: str | Path,
        audio_file: str | None = None,
        store_rate: int = SAMPLE_RATE,
        bad_rows: BadRowPolicy = "error",
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        self.audio_file = audio_file
        self.store_rate = store_rate
        self.bad_rows = bad_rows

    def build_dataset(self, split: str) -> EPICSounds:
        return EPICSounds(
            self.root,
            split,
            sample_rate=self.sample_rate,
            clip_seconds=self.clip_seconds,
            audio_file=self.audio_file,
            store_rate=self.store_rate,
            bad_rows=self.bad_rows,
            missing=self.missing,
        )

    @property
    def classes(self) -> list[str]:
        """The 44 class names, indexed by ``label``."""
        return list(CLASSES)
