"""Base LightningDataModule shared by every dataset family.

Subclasses only say how to build the dataset of a split
(:meth:`AVDataModule.build_dataset`); batching, collation of optional keys,
worker settings, the missing-file policy and ``plot`` are shared here.
Sizes, sample rate, clip length and fps are constructor arguments so paper
defaults can live in configs (DESIGN 4.1).

Batch sizes: the papers give a GLOBAL batch (summed over devices; the EZ-VSL
reference divides the command-line batch by the world size). When a global
batch is known (the datamodule's ``global_batch_size``, else the attached
model's ``global_batch_size`` attribute, a paper-recipe fact the paper model
configs carry), ``setup`` derives the per-device training batch
``global // world_size`` and records both (``batch_plan``, and the
datamodule's hyperparameters ``train_global_batch_size``,
``train_per_device_batch_size``, ``train_world_size``,
``train_batch_size_source``, which Lightning logs with the model's). Without
one, ``batch_size`` is the per-device batch, as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning as L
from torch.utils.data import DataLoader

from avbench.data.augment import (
    NATIVE_FRAME_AUGMENTS,
    TRAIN_AUGMENTS,
    AugmentedDataset,
    TrainAugment,
)
from avbench.data.datasets.base import AVDataset, MissingPolicy
from avbench.data.sample import collate

SPLITS = ("train", "val", "test")


class AVDataModule(L.LightningDataModule):
    """Common DataModule: one dataset per split, built lazily in ``setup``.

    Args:
        root: directory holding the dataset in its published layout.
        batch_size: per-device batch size of every loader when no global
            batch is known; with one, still the batch of loaders used
            outside a trainer (evaluation).
        num_workers: DataLoader worker processes.
        sample_rate: audio rate in Hz the loaders resample to.
        clip_seconds: audio window length (centre crop, tiled when short).
        image_size: side of the square evaluation frame (and masks/GT maps).
        missing: ``"error"`` fails on the first missing file; ``"skip"`` drops
            such items and reports how many (DESIGN 4.2).
        drop_last_train: drop the last incomplete training batch (contrastive
            losses want full batches).
        pin_memory: DataLoader ``pin_memory``.
        cache: decode each split once and serve the decoded samples with no
            loader workers (:mod:`avbench.data.cache`). ``False`` (default):
            decode in every epoch. ``"memory"`` (or ``True``): into this
            process's RAM, shared by later jobs of the process (~0.4 MB per
            128-px 3-s clip, in every process). ``"disk"``: written once per
            (dataset, split, preprocessing, data files) into memory-mapped
            files under ``cache_dir`` and read by every process and later
            runs without decoding. Worth it when decoding costs more than the
            model, e.g. CPU runs on the synthetic data. Training augmentation
            is applied after the cache, afresh in every epoch.
        cache_dir: root of the disk cache; ``None`` =
            :func:`avbench.data.cache.default_cache_dir` (``$AVBENCH_CACHE_DIR``,
            else ``~/.cache/avbench/decoded``).
        train_augment: ``"resize_crop_flip"`` applies the EZ-VSL line's
            training augmentation (resize 1.1x, random crop, horizontal flip;
            :mod:`avbench.data.augment`) to training images; ``"none"`` (default)
            trains on the frames as loaded. ``"ezvsl"`` is the reference
            recipe on the NATIVE frame (shorter side to ``1.1 image_size``
            keeping the aspect ratio, bicubic, random crop, flip); for it
            the training split is loaded at its stored size
            (:attr:`native_train_frames`). Val and test are never augmented.
        frame_interpolation: how every split's frames are resized to
            ``image_size``: ``"bilinear"`` (default, the CPU configs) or
            ``"bicubic"`` (the references' test transform; the paper configs).
        global_batch_size: the global training batch (over all devices);
            ``None`` (default) = the attached model's ``global_batch_size``
            if it has one, else ``batch_size`` per device. Must be divisible
            by the world size.
    """

    #: name of the dataset family, used in results and plots
    dataset_name: str = "dataset"

    @property
    def test_family(self) -> tuple[str, str | None]:
        """``(dataset, subset)`` of the test split, as benchmarks name them
        (``BenchmarkMeta.dataset``/``subset``): the family and its ``subset``
        attribute if it has one; overridden where the test split is another
        dataset (VGGSound's test split is VGG-SS)."""
        subset = getattr(self, "subset", None)
        # the class's family name (an instance may refine dataset_name, e.g. "avsbench_s4")
        return type(self).dataset_name, subset if isinstance(subset, str) else None

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
        cache: bool | Literal["memory", "disk"] = False,
        cache_dir: str | Path | None = None,
        train_augment: TrainAugment = "none",
        global_batch_size: int | None = None,
        frame_interpolation: Literal["bilinear", "bicubic"] = "bilinear",
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
        if cache not in (False, True, "memory", "disk"):
            raise ValueError(f"cache must be false, true, 'memory' or 'disk', got {cache!r}")
        self.cache = cache
        self.cache_dir = cache_dir
        if train_augment not in TRAIN_AUGMENTS:
            raise ValueError(f"train_augment must be one of {TRAIN_AUGMENTS}, got {train_augment!r}")
        if global_batch_size is not None and global_batch_size < 1:
            raise ValueError(f"global_batch_size must be >= 1, got {global_batch_size}")
        self.train_augment = train_augment
        self.global_batch_size = global_batch_size
        if frame_interpolation not in ("bilinear", "bicubic"):
            raise ValueError(
                f"frame_interpolation must be 'bilinear' or 'bicubic', got {frame_interpolation!r}")
        self.frame_interpolation = frame_interpolation
        self.datasets: dict[str, AVDataset] = {}
        #: the resolved training batch (set by :meth:`resolve_batch_size`)
        self.batch_plan: dict[str, int | str] = {}

    @property
    def native_train_frames(self) -> bool:
        """Whether the training split is loaded at the frames' stored size (the
        aspect-preserving augmentations crop it to ``image_size``)."""
        return self.train_augment in NATIVE_FRAME_AUGMENTS

    # --- batch size -----------------------------------------------------
    def resolve_batch_size(self, world_size: int = 1, model: Any = None) -> dict[str, int | str]:
        """Derive the per-device training batch from the global one (module doc).

        Args:
            world_size: number of training processes.
            model: the LightningModule to be trained (its ``global_batch_size``
                attribute is used when this datamodule has none).

        Returns:
            ``batch_plan``: ``global_batch_size``, ``per_device_batch_size``,
            ``world_size`` and ``batch_size_source`` (``"datamodule"``,
            ``"model"`` or ``"per_device"``).

        Raises:
            ValueError: the global batch is not divisible by ``world_size``.
        """
        world = max(1, int(world_size))
        global_batch, source = self.global_batch_size, "datamodule"
        if global_batch is None and getattr(model, "global_batch_size", None) is not None:
            global_batch, source = int(model.global_batch_size), "model"
        if global_batch is None:
            per_device, source = int(self.batch_size), "per_device"
            global_batch = per_device * world
        else:
            if global_batch % world:
                raise ValueError(
                    f"global batch {global_batch} ({source}) is not divisible by the "
                    f"world size {world}")
            per_device = global_batch // world
        self.batch_plan = {"global_batch_size": global_batch, "per_device_batch_size": per_device,
                           "world_size": world, "batch_size_source": source}
        return self.batch_plan

    @property
    def train_batch_size(self) -> int:
        """Per-device training batch: the resolved one, else ``batch_size``."""
        return int(self.batch_plan.get("per_device_batch_size", self.batch_size))

    # --- to implement -------------------------------------------------
    def build_dataset(self, split: str) -> AVDataset:
        """Return the dataset of ``split`` (one of :data:`SPLITS`)."""
        raise NotImplementedError

    def available_splits(self) -> tuple[str, ...]:
        """Splits this dataset family has (override when a split does not exist)."""
        return SPLITS

    # --- shared -------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        trainer = getattr(self, "trainer", None)
        if trainer is not None and stage in ("fit", None):
            plan = self.resolve_batch_size(trainer.world_size, trainer.lightning_module)
            # datamodule hyperparameters are logged with the model's by Lightning; the
            # "train_" prefix keeps them apart from the model's own global_batch_size
            self.save_hyperparameters({f"train_{k}": v for k, v in plan.items()})
        wanted = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("test",),
            None: SPLITS,
        }.get(stage, SPLITS)
        for split in wanted:
            if split in self.available_splits() and split not in self.datasets:
                self.datasets[split] = self._build(split)

    def dataset(self, split: str) -> AVDataset:
        """The dataset of ``split``, built on first use."""
        if split not in self.available_splits():
            raise KeyError(
                f"{type(self).__name__} has no split {split!r}; "
                f"available: {self.available_splits()}"
            )
        if split not in self.datasets:
            self.datasets[split] = self._build(split)
        return self.datasets[split]

    def _build(self, split: str) -> AVDataset:
        """``build_dataset(split)``; the training split at native frame size when needed."""
        dataset = self.build_dataset(split)
        dataset.frame_interpolation = self.frame_interpolation
        if split == "train" and self.native_train_frames and hasattr(dataset, "image_size"):
            # the dataset reads ``image_size`` when it loads a frame: None = as stored
            dataset.image_size = None
        return dataset

    def _settings(self) -> dict[str, Any]:
        """The module's plain settings (sizes, rates, lists...), for the cache key."""
        plain = (str, int, float, bool, type(None), Path, tuple)
        # ``trainer`` is None until a Trainer attaches (then not plain): not part of the key
        loader_only = {"batch_size", "num_workers", "pin_memory", "cache", "cache_dir",
                       "drop_last_train", "train_augment", "global_batch_size", "trainer"}
        out = {k: v for k, v in vars(self).items()
               if not k.startswith("_") and k not in loader_only and isinstance(v, plain)}
        if self.native_train_frames:  # the cached training split holds native-size frames
            out["native_train_frames"] = True
        return out

    def _loader(self, split: str, shuffle: bool, drop_last: bool) -> DataLoader:
        dataset: Any = self.dataset(split)
        workers = self.num_workers
        if self.cache:
            from avbench.data.cache import cache_in_memory, cache_on_disk

            settings, desc = self._settings() | {"split": split}, f"{self.dataset_name}/{split}"
            if self.cache == "disk":
                dataset = cache_on_disk(dataset, settings, self.cache_dir, num_workers=workers,
                                        desc=desc)
            else:
                dataset = cache_in_memory(dataset, settings, num_workers=workers, desc=desc)
            workers = 0
        if split == "train" and self.train_augment != "none":
            dataset = AugmentedDataset(dataset, recipe=self.train_augment, size=self.image_size)
        return DataLoader(
            dataset,
            batch_size=self.train_batch_size if split in ("train", "val") else self.batch_size,
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

