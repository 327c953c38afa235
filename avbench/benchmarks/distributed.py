"""Distributed evaluation helpers: rank/world size, the sharded loader, gathering ids.

DDP: when ``torch.distributed`` is initialised with several ranks, the
evaluation loader is re-built with a ``DistributedSampler`` (no shuffle) and
each rank evaluates its shard; the metrics gather per-sample values and drop
the sampler's padded duplicates by id, so every rank returns the
single-process numbers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader


def dist_info() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` when torch.distributed is not initialised."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def distributed_loader(loader: DataLoader) -> DataLoader:
    """The same loader over this rank's shard (DistributedSampler, no shuffle, padded)."""
    from torch.utils.data.distributed import DistributedSampler

    if isinstance(loader.sampler, DistributedSampler):
        return loader
    sampler = DistributedSampler(loader.dataset, shuffle=False, drop_last=False)
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=False,
    )


def gather_ids(ids: list[str]) -> list[str]:
    """Every rank's ``ids`` concatenated in rank order (this rank's list when not distributed)."""
    _, world = dist_info()
    if world == 1:
        return ids
    parts: list[Any] = [None] * world
    torch.distributed.all_gather_object(parts, ids)
    return [i for p in parts for i in p]


__all__ = ["dist_info", "distributed_loader", "gather_ids"]
