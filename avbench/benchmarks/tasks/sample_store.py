"""Per-sample tensors of a whole evaluation set, keyed by sample id (DDP-exact).

Tasks whose metric needs the whole set at once (a min-max over the set, per-class pooling,
an AP over every clip) keep their per-sample tensors here: a torchmetrics ``cat`` state per
name, gathered across ranks in ``compute()`` and de-duplicated by sample key (the padding a
``DistributedSampler`` adds), as every avbench metric (docs/protocols.md, "Common
machinery").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from avbench.metrics._common import KeyedMetric


class SampleStore(KeyedMetric):
    """Named per-sample tensors ``[B, ...]`` (same trailing shape in every batch).

    Args:
        names: the tensors each :meth:`update` gives.

    ``update(ids, **tensors)``; ``compute() -> ({name: [N, ...]}, n_duplicates)``, rows sorted
    by sample key, one per distinct id.
    """

    full_state_update = False

    def __init__(self, names: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.names = tuple(names)
        for name in self.names:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, ids: Sequence[str], **tensors: Tensor) -> None:  # type: ignore[override]
        """Add one batch: every name of the store, each with ``len(ids)`` rows.

        Raises:
            KeyError: a name is missing; ValueError: a tensor's row count differs from the ids.
        """
        missing = set(self.names) - set(tensors)
        if missing:
            raise KeyError(f"SampleStore.update needs {sorted(missing)}")
        for name in self.names:
            x = tensors[name]
            if x.shape[0] != len(ids):
                raise ValueError(f"{name}: {x.shape[0]} rows for {len(ids)} ids")
            getattr(self, name).append(x.detach().to(self.device))
        self._append_keys(list(ids), len(ids))

    def compute(self) -> tuple[dict[str, Tensor], int]:  # type: ignore[override]
        """The de-duplicated tensors (on CPU) and the number of dropped duplicate rows."""
        _, values, dropped = self._deduplicated(*(getattr(self, n) for n in self.names))
        return {n: v.cpu() for n, v in zip(self.names, values)}, dropped


__all__ = ["SampleStore"]
