"""Shared machinery of the avbench metrics: sample keys, DDP de-duplication.

Why keys
--------
Every avbench metric stores *per-sample* values (a cIoU, a per-frame F curve,
an embedding, a score) together with an int64 **key** derived from the
sample id (``batch["id"]``), and reduces them only in ``compute()``:

1. torchmetrics gathers the states of all ranks with ``dist_reduce_fx="cat"``;
2. ``compute()`` sorts the samples by key and keeps the first occurrence of
   each key. A ``DistributedSampler`` pads the last shard by repeating
   samples; those copies carry the same id, hence the same key, and are
   dropped, so the numbers of a 2-process run equal the single-process ones;
3. because the reduction runs over samples in key order, it sums the same
   numbers in the same order whatever the batch size or the number of ranks:
   results are bitwise identical, not merely close.

Keys are the first 8 bytes of BLAKE2b of the id (a collision among 10^5 ids
has probability ~1e-10). Without ids, keys fall back to a running per-process
counter, which is exact on one process but cannot de-duplicate under DDP, so
:func:`keys_for` refuses to run without ids when ``torch.distributed`` has more
than one rank.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

IdLike = Sequence[str] | Tensor | None


class NotScorableError(ValueError):
    """The metric is undefined on this data (one class only, a single item, no positives).

    Raised by a metric's ``compute()``; it is not a bug of the model or the code but a
    property of the evaluated split, so the evaluator stores the result as
    ``status="not-scorable"`` with :attr:`reason` instead of a NaN or a trivial number.

    Args:
        reason: what about the data makes the metric undefined (counts included).
        metrics: the metric names that are undefined.
    """

    def __init__(self, reason: str, metrics: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.metrics = tuple(metrics)


def stable_key(sample_id: str) -> int:
    """64-bit signed integer key of a sample id (process- and run-independent)."""
    digest = hashlib.blake2b(sample_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def keys_for(ids: IdLike, n: int, offset: int, device: torch.device | None = None) -> Tensor:
    """Int64 keys for ``n`` samples.

    Args:
        ids: sample ids (strings, hashed with :func:`stable_key`), integer
            tensor of dataset indices (used as is), or ``None``.
        n: number of samples in the update.
        offset: number of samples this metric has already seen (used for the
            counter fallback when ``ids`` is None).
    """
    if ids is None:
        if _world_size() > 1:
            raise ValueError(
                "sample ids are required under DDP: without them the padded "
                "duplicates of a DistributedSampler cannot be removed"
            )
        return torch.arange(offset, offset + n, dtype=torch.long, device=device)
    if isinstance(ids, Tensor):
        if ids.dtype.is_floating_point or ids.numel() != n:
            raise ValueError(
                f"ids tensor must hold {n} integers, got {tuple(ids.shape)} {ids.dtype}"
            )
        return ids.reshape(-1).to(dtype=torch.long, device=device)
    ids = list(ids)
    if len(ids) != n:
        raise ValueError(f"got {len(ids)} ids for {n} samples")
    return torch.tensor([stable_key(str(i)) for i in ids], dtype=torch.long, device=device)


def dedup_by_key(keys: Tensor, *values: Tensor) -> tuple[Tensor, tuple[Tensor, ...], int]:
    """Sort samples by key and keep the first occurrence of every key.

    "First" is in the gathered order (rank 0's samples, then rank 1's, ...),
    made deterministic by a stable sort. Returns the sorted unique keys, the
    matching rows of every ``values`` tensor and the number of rows dropped.
    """
    order = torch.argsort(keys, stable=True)
    sorted_keys = keys[order]
    keep = torch.ones_like(sorted_keys, dtype=torch.bool)
    if sorted_keys.numel() > 1:
        keep[1:] = sorted_keys[1:] != sorted_keys[:-1]
    idx = order[keep]
    n_dropped = int(keys.numel() - idx.numel())
    return sorted_keys[keep], tuple(v[idx] for v in values), n_dropped


def cat_state(state: list[Tensor] | Tensor) -> Tensor:
    """Concatenate a ``cat`` state (a list before sync, maybe a tensor after)."""
    if isinstance(state, Tensor):
        return state
    if not state:
        raise RuntimeError("the metric has no samples: update() was never called with data")
    return torch.cat(state, dim=0)


def as_float_dict(d: dict[str, Tensor | float | int]) -> dict[str, float]:
    """Plain-float copy of a metric dict (for JSON results)."""
    return {k: float(v) for k, v in d.items()}


class KeyedMetric(Metric):
    """A torchmetrics Metric whose per-sample states carry a de-duplication key.

    Subclasses add their own ``cat`` states, call :meth:`_append_keys` once per
    update and reduce through :meth:`_deduplicated` (see the module docstring).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("key", default=[], dist_reduce_fx="cat")
        self._seen = 0

    def reset(self) -> None:
        super().reset()
        self._seen = 0

    def _append_keys(self, ids: IdLike, n: int) -> None:
        """Store the keys of ``n`` new samples (counter fallback without ids)."""
        self.key.append(keys_for(ids, n, self._seen, self.device))
        self._seen += n

    def _deduplicated(self, *states: list[Tensor] | Tensor) -> tuple[Tensor, tuple[Tensor, ...], int]:
        """:func:`dedup_by_key` over the gathered key state and ``states``."""
        return dedup_by_key(cat_state(self.key), *(cat_state(x) for x in states))
