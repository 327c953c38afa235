"""Base LightningDataModule shared by every dataset family.

Subclasses only say how to build the dataset of a split
(:meth:`AVDataModule.build_dataset`); batching, collation of optional keys,
worker settings, the missing-file policy and ``plot`` are shared here.
Sizes, sample rate, clip length and fps are constructor arguments so paper
defaults can live in configs (DESIGN 4.1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from avbench.data.augment import AugmentedDataset, TrainAugment
from avbench.data.datasets.base import AVDataset, MissingPolicy
from avbench.data.sample import collate

SPLITS = ("train", "val", "test")


class AVDataModule(L.LightningDataModule):
    """Common DataModule: one dataset per split, built lazily in ``setup``.

    Args:
        root: directory holding the dataset in its published layout.
        batch_size: batch size of every loader.
        num_workers: DataLoader worker processes.
        sample_rate: audio rate in Hz the loaders resample to.
        clip_seconds: audio window length (centre crop, tiled when short).
        image_size: side of the square evaluation frame (and masks/GT maps).
        missing: ``"error"`` fails on the first missing file; ``"skip"`` drops
            such items and reports how many (DESIGN 4.2).
        drop_last_train: drop the last incomplete training batch (contrastive
            losses want full batches).
        pin_memory: DataLoader ``pin_memory``.
        cache: decode each split once and serve it from RAM with no workers
            (:mod:`avbench.data.cache`; shared by later jobs of the process).
            Worth it when decoding costs more than the model, e.g. CPU runs on
            the synthetic data; costs ~0.4 MB per 128-px 3-s clip.
        train_augment: ``"resize_crop_flip"`` applies the EZ-VSL line's
            training augmentation (resize 1.1x, random crop, horizontal flip;
            :mod:`avbench.data.augment`) to training images; ``"none"`` (default)
            trains on the frames as loaded. Val and test are never augmented.
    """

    #: name of the dataset family, used in results and plots
    dataset_name: str = "dataset"

    def __init__(
        self,
        root: str | Path,
        batch_size: int = 32,
        num_workers: int = 2,
        sample_rate: int = 16000,
        clip_seconds: float = 3.0,
        image_size: int = 224,
        missing: MissingPolicy = "error",
        drop_last_train: bool = True,
        pin_memory: bool = False,
        cache: bool = False,
        train_augment: TrainAugment = "none",
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.sample_rate = sample_rate
        self.clip_seconds = clip_seconds
        self.image_size = image_size
        self.missing = missing
        self.drop_last_train = drop_last_train
        self.pin_memory = pin_memory
        self.cache = cache
        if train_augment not in ("none", "resize_crop_flip"):
            raise ValueError(
                f"train_augment must be 'none' or 'resize_crop_flip', got {train_augment!r}")
        self.train_augment = train_augment
        self.datasets: dict[str, AVDataset] = {}

    # --- to implement -------------------------------------------------
    def build_dataset(self, split: str) -> AVDataset:
        """Return the dataset of ``split`` (one of :data:`SPLITS`)."""
        raise NotImplementedError

    def available_splits(self) -> tuple[str, ...]:
        """Splits this dataset family has (override when a split does not exist)."""
        return SPLITS

    # --- shared -------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        wanted = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("test",),
            None: SPLITS,
        }.get(stage, SPLITS)
        for split in wanted:
            if split in self.available_splits() and split not in self.datasets:
                self.datasets[split] = self.build_dataset(split)

    def dataset(self, split: str) -> AVDataset:
        """The dataset of ``split``, built on first use."""
        if split not in self.available_splits():
            raise KeyError(
                f"{type(self).__name__} has no split {split!r}; "
                f"available: {self.available_splits()}"
            )
        if split not in self.datasets:
            self.datasets[split] = self.build_dataset(split)
        return self.datasets[split]

    def _settings(self) -> dict[str, Any]:
        """The module's plain settings (sizes, rates, lists...), for the cache key."""
        plain = (str, int, float, bool, type(None), Path, tuple)
        loader_only = {"batch_size", "num_workers", "pin_memory", "cache", "drop_last_train",
                       "train_augment"}
        return {k: v for k, v in vars(self).items()
                if not k.startswith("_") and k not in loader_only and isinstance(v, plain)}

    def _loader(self, split: str, shuffle: bool, drop_last: bool) -> DataLoader:
        dataset: Any = self.dataset(split)
        workers = self.num_workers
        if self.cache:
            from avbench.data.cache import cache_in_memory

            dataset = cache_in_memory(dataset, self._settings() | {"split": split},
                                      num_workers=workers, desc=f"{self.dataset_name}/{split}")
            workers = 0
        if split == "train" and self.train_augment == "resize_crop_flip":
            dataset = AugmentedDataset(dataset)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=self.pin_memory,
            persistent_workers=workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True, drop_last=self.drop_last_train)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, drop_last=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def plot(self, sample: dict[str, Any], suptitle: str | None = None):
        """Draw a sample: frame(s), GT box/map or masks, and the spectrogram.

        Returns a matplotlib Figure (agg backend; nothing is shown).
        """
        from avbench.data.plotting import plot_sample

        return plot_sample(sample, sample_rate=self.sample_rate, suptitle=suptitle)

    def num_samples(self, split: str) -> int:
        return len(self.dataset(split))

    def audio_num_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

