"""Write a model's capability outputs over a split to a file (``avbench predict``).

Every capability the model declares that works on a batch is run once per
batch, as the evaluator runs it (:class:`~avbench.benchmarks.batch_outputs.BatchOutputs`),
and stacked over the split in loader order:

===================  ==============================  =========================================
capability           array(s) in the ``.npz``         shape
===================  ==============================  =========================================
(always)             ``id``                          ``[N]`` unicode, the batch ids
``embed``            ``embed_<modality>``            ``[N, D]`` float32, L2-normalised
``localize``         ``localize``                    ``[N, h, w]`` float32 heat map
``segment``          ``segment``                     ``[N, T, H, W]`` float32 mask logits
``sounding_score``   ``sounding_score``              ``[N]`` float32
``class_graph``      ``class_graph``                 the model's adjacency (once, not per item)
===================  ==============================  =========================================

Capabilities with no per-batch output here (``prompted_heatmap``,
``generate_audio``) are listed in the summary as not written. The file is
written atomically (:mod:`avbench.atomic_io`): a reader sees no partial file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: capabilities written per item, in this order
PER_ITEM = ("embed", "localize", "segment", "sounding_score")


@dataclass
class PredictionSummary:
    """What :func:`write_predictions` wrote.

    Attributes:
        path: the ``.npz`` file.
        n_items: rows per per-item array (= number of ids).
        arrays: ``{name: shape}`` of every array in the file.
        not_written: ``{capability: reason}`` for declared capabilities not written.
    """

    path: Path
    n_items: int
    arrays: dict[str, tuple[int, ...]] = field(default_factory=dict)
    not_written: dict[str, str] = field(default_factory=dict)


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


def write_predictions(model: Any, loader: Any, path: str | Path, *,
                      max_batches: int | None = None) -> PredictionSummary:
    """Run ``model``'s capabilities over ``loader`` and write them to ``path`` (``.npz``).

    Args:
        model: an ``AVModel`` with ``meta.capabilities``, on the device to run on
            (batches are moved there); evaluated in eval mode under ``no_grad``.
        loader: batches (dicts with ``id``) as the datamodule's loaders give them.
        path: the output file; parent folders are created.
        max_batches: stop after this many batches.

    Returns:
        :class:`PredictionSummary`.

    Raises:
        ValueError: the loader gave no batch, or a batch without ``id``.
    """
    from avbench.atomic_io import atomic_write_bytes
    from avbench.benchmarks.batch_outputs import BatchOutputs
    from avbench.benchmarks.registry import capabilities_of

    caps = capabilities_of(model)
    per_item = [c for c in PER_ITEM if c in caps]
    not_written = {c: "no per-batch output format in avbench predict" for c in sorted(caps)
                   if c not in PER_ITEM and c != "class_graph"}
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    chunks: dict[str, list[np.ndarray]] = {}
    ids: list[str] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i, batch in enumerate(loader):
                if max_batches is not None and i >= max_batches:
                    break
                if "id" not in batch:
                    raise ValueError("a batch without 'id': predictions need the item ids")
                batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v
                         for k, v in batch.items()}
                out = BatchOutputs(model, batch)
                ids.extend(out.ids())
                for cap in per_item:
                    value = getattr(out, cap)() if hasattr(out, cap) else getattr(model, cap)(batch)
                    if isinstance(value, dict):
                        for k, v in value.items():
                            chunks.setdefault(f"{cap}_{k}", []).append(_numpy(v))
                    else:
                        chunks.setdefault(cap, []).append(_numpy(value))
            arrays = {"id": np.asarray(ids, dtype=str)}
            arrays |= {k: np.concatenate(v) for k, v in chunks.items()}
            if "class_graph" in caps:
                graph = model.class_graph()
                arrays["class_graph"] = (_numpy(graph) if isinstance(graph, torch.Tensor)
                                         else np.asarray(graph))
    finally:
        model.train(was_training)
    if not ids:
        raise ValueError("the loader gave no batch: nothing to predict")
    path = Path(path)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return PredictionSummary(path=path, n_items=len(ids),
                             arrays={k: tuple(v.shape) for k, v in arrays.items()},
                             not_written=not_written)


__all__ = ["PER_ITEM", "PredictionSummary", "write_predictions"]
