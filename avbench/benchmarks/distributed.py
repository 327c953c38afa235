"""Distributed evaluation helpers: rank/world size, the sharded loader, gathering ids.

DDP: when ``torch.distributed`` is initialised with several ranks, the
evaluation loader is re-built with a ``DistributedSampler`` (no shuffle) and
each rank evaluates its shard; the metrics gather per-sample values and drop
the sampler's padded duplicates by id, so every rank returns the
single-process numbers.

Only the padding may be dropped: the sampler repeats exactly
``sampler.total_size - len(dataset)`` samples (:func:`sampler_padding`, 0 in one
process). More repeated ids than that mean two different samples share an id,
which de-duplication would silently lose; :func:`duplicate_ids_problem` names
them and the evaluator fails the evaluation.
"""

from __future__ import annotations

from collections import Counter
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


def gather_id_lists(ids: list[str]) -> list[list[str]]:
    """Every rank's ``ids``, one list per rank in rank order (``[ids]`` when not distributed)."""
    _, world = dist_info()
    if world == 1:
        return [ids]
    parts: list[Any] = [None] * world
    torch.distributed.all_gather_object(parts, ids)
    return [list(p) for p in parts]


def gather_ids(ids: list[str]) -> list[str]:
    """Every rank's ``ids`` concatenated in rank order (this rank's list when not distributed)."""
    return [i for p in gather_id_lists(ids) for i in p]


def padded_ids(per_rank: list[list[str]], loader: Any) -> list[str]:
    """The ids of the samples a non-shuffling ``DistributedSampler`` appended as padding.

    Rank ``r``'s ``i``-th sample is position ``i * world + r`` of the padded index list;
    positions ``>= len(dataset)`` are the padding. Empty without such a sampler (or when
    it shuffles: the positions are then unknown).
    """
    from torch.utils.data.distributed import DistributedSampler

    sampler = getattr(loader, "sampler", None)
    if not isinstance(sampler, DistributedSampler) or sampler.shuffle:
        return []
    n, world = len(sampler.dataset), len(per_rank)  # type: ignore[arg-type]
    return [x for r, ids in enumerate(per_rank) for i, x in enumerate(ids) if i * world + r >= n]


def sampler_padding(loader: Any) -> int:
    """Samples a ``DistributedSampler`` repeats to even out the shards (0 without one)."""
    from torch.utils.data.distributed import DistributedSampler

    sampler = getattr(loader, "sampler", None)
    if not isinstance(sampler, DistributedSampler):
        return 0
    return max(0, int(sampler.total_size) - len(sampler.dataset))  # type: ignore[arg-type]


def duplicate_ids_problem(ids: list[str], padding: int, benchmark: str,
                          padded: list[str] | None = None) -> str | None:
    """Why the evaluated ``ids`` (all ranks) are not one id per sample, None when they are.

    Args:
        ids: every evaluated sample id, padding included.
        padding: repeats the sampler added (:func:`sampler_padding`); these are expected.
        benchmark: named in the message.
        padded: the padding's ids (:func:`padded_ids`), when known: then they are left out
            of the examples; otherwise only the count is compared with ``padding``.
    """
    counts = Counter(ids)
    extra = len(ids) - len(counts)
    if extra <= padding:
        return None
    if padded and len(padded) == padding:
        counts.subtract(padded)
    dup = sorted(i for i, c in counts.items() if c > 1)
    shown = ", ".join(f"{i!r} x{counts[i]}" for i in dup[:5])
    return (f"{benchmark}: {len(dup)} sample id(s) occur more than once ({extra} repeated "
            f"sample(s), {padding} expected from DDP padding), e.g. {shown}: two different "
            "samples share an id, and de-duplication by id would drop one of them; give every "
            "sample a unique id (the dataset's id rule)")


__all__ = ["dist_info", "distributed_loader", "duplicate_ids_problem", "gather_id_lists",
           "gather_ids", "padded_ids", "sampler_padding"]
