"""The sample/batch contract (DESIGN 4.1) and a collate that handles optional keys.

A dataset item is a ``dict``; keys are present only where the dataset has them:

=============  ===========================  ==========================================
key            type                         meaning
=============  ===========================  ==========================================
id             str                          the dataset's own clip/image id
image          FloatTensor[3,H,W]           evaluation frame, RGB in [0, 1]
frames         FloatTensor[T,3,H,W]         video frames, RGB in [0, 1]
audio          FloatTensor[1,L]             mono waveform at the datamodule's rate
label          int                          single class index
labels         FloatTensor[C]               multi-hot classes
class_name     str                          class name
gt_map         FloatTensor[H,W]             localization GT in [0, 1]
masks          FloatTensor[T,H,W]           AVSBench per-frame masks
text           str                          narration (Ego4D)
sounding       bool                         whether the action makes sound
=============  ===========================  ==========================================

Datasets may add further keys (e.g. ``boxes``, ``mask_valid``); :func:`collate`
stacks tensors of equal shape, keeps ragged tensors and strings as lists, and
turns ints/floats/bools into tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

SAMPLE_KEYS = (
    "id",
    "image",
    "frames",
    "audio",
    "label",
    "labels",
    "class_name",
    "gt_map",
    "masks",
    "text",
    "sounding",
)


def _collate_values(values: list[Any]) -> Any:
    first = values[0]
    if isinstance(first, torch.Tensor):
        if all(v.shape == first.shape for v in values):
            return torch.stack(values)
        return values
    if isinstance(first, bool):
        return torch.tensor(values, dtype=torch.bool)
    if isinstance(first, int):
        return torch.tensor(values, dtype=torch.long)
    if isinstance(first, float):
        return torch.tensor(values, dtype=torch.float32)
    return list(values)


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Collate sample dicts; a key must be present in every sample or in none.

    A key missing from only some samples is a dataset bug, so it raises with
    the key and the ids involved rather than silently dropping data.
    """
    if not samples:
        raise ValueError("collate() got an empty list of samples")
    keys = set(samples[0])
    for s in samples[1:]:
        if set(s) != keys:
            diff = sorted(keys.symmetric_difference(s))
            ids = [x.get("id") for x in samples]
            raise KeyError(f"samples disagree on keys {diff} (ids {ids})")
    return {k: _collate_values([s[k] for s in samples]) for k in samples[0]}
