"""Decode a dataset once and keep its samples in memory.

Every avbench dataset loads deterministically (no random augmentation in
``load``), so the decoded samples of an epoch are the same in every epoch,
every job and every seed. ``AVDataModule(cache=True)`` decodes each split once
(with the module's workers, in parallel) and serves it from RAM with no
workers, so on a small CPU machine no loader process competes with the
training step. Measured on 2 cores (EZ-VSL CPU config, synthetic VGGSound
default, 6 epochs, `benchmarks/learning/ssl_synthetic.py`): fit 186 s with 2
workers, 152 s with the cache including its one decoding pass; later jobs of
the same process skip that pass too.

The decoded samples live in a process-wide store keyed by the dataset's type,
its settings and its records, so jobs of one runner process that read the same
split (other seeds, other models) share one copy. Memory: about
``3 * S^2 * 4 + L * 4`` bytes per clip (S = image side, L = audio samples),
e.g. ~0.4 MB at 128 px and 3 s at 16 kHz, ~1.2 GB for 3,000 clips; under DDP
every rank holds its own copy.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Hashable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from avbench.data.datasets.base import DatasetView

log = logging.getLogger(__name__)

#: key -> decoded samples (process-wide; see :func:`clear_cache`)
_STORE: dict[Hashable, list[dict[str, Any]]] = {}


def _identity(sample: dict[str, Any]) -> dict[str, Any]:
    return sample


def _own(value: Any) -> Any:
    # Tensors from loader workers live in shared memory, one file descriptor
    # each; thousands of them exhaust the fd limit, so copy into private memory.
    if isinstance(value, torch.Tensor):
        return value.clone()
    return value


def dataset_key(dataset: Dataset, settings: dict[str, Any]) -> str:
    """Stable key of ``dataset``: its type, ``settings`` and the repr of its records."""
    h = hashlib.sha256(type(dataset).__qualname__.encode())
    h.update(repr(sorted(settings.items())).encode())
    h.update(repr(getattr(dataset, "root", "")).encode())
    for rec in getattr(dataset, "records", range(len(dataset))):  # type: ignore[arg-type]
        h.update(repr(rec).encode())
    return h.hexdigest()


class InMemoryDataset(DatasetView):
    """The samples of ``source``, decoded once; indexing returns the stored dict.

    Other attributes come from the source dataset (:class:`DatasetView`).
    """

    def __init__(self, source: Dataset, samples: list[dict[str, Any]]) -> None:
        super().__init__(source)
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.samples[index]


def cache_in_memory(
    dataset: Dataset,
    settings: dict[str, Any] | None = None,
    *,
    num_workers: int = 0,
    desc: str = "cache",
    progress: bool = True,
) -> InMemoryDataset:
    """``dataset`` decoded once into RAM, shared by every later call with the same key.

    Args:
        dataset: a deterministic map-style dataset of sample dicts.
        settings: what else defines the samples (image size, sample rate...);
            part of the key.
        num_workers: loader workers for the one decoding pass.
        desc, progress: progress bar label and switch.
    """
    key = dataset_key(dataset, settings or {})
    samples = _STORE.get(key)
    if samples is None:
        loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers,
                            collate_fn=_identity)
        items = loader
        if progress:
            from tqdm.auto import tqdm

            # disable=None: a bar on a terminal, nothing in logs
            items = tqdm(loader, total=len(dataset), desc=desc, leave=False,  # type: ignore[arg-type]
                         disable=None)
        samples = [{k: _own(v) for k, v in s.items()} for s in items]
        _STORE[key] = samples
        log.info("%s: cached %d samples in memory", desc, len(samples))
    return InMemoryDataset(dataset, samples)


def clear_cache() -> None:
    """Drop every cached dataset of this process."""
    _STORE.clear()


def cache_size() -> int:
    """Number of datasets cached in this process."""
    return len(_STORE)


__all__ = ["InMemoryDataset", "cache_in_memory", "cache_size", "clear_cache", "dataset_key"]
