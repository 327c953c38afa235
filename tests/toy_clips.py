"""Toy clips shared by the runner and fit-stage tests (a helper module, not a test file).

Each clip has a square sounding object in the quadrant of its label and a tone whose
pitch follows the label, so a tiny contrastive model learns something in a few steps.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from torch.utils.data import Dataset

#: image side in pixels; audio is 160 samples
SIZE = 16
N_CLASSES = 4


class ListDataset(Dataset):
    """A dataset over a list of sample dicts, with ``records`` (ids) for the leak check."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.records = [SimpleNamespace(id=it["id"]) for it in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def toy_clips(split: str, n: int, leak: int = 0) -> list[dict[str, Any]]:
    """``n`` clips of ``split`` (seeded per split): ``id``, ``image`` [3,S,S], ``audio`` [1,160],
    ``gt_map`` [S,S], ``label``. The first ``leak`` test clips reuse training ids."""
    g = torch.Generator().manual_seed({"train": 0, "val": 1, "test": 2}[split])
    items = []
    for i in range(n):
        label = i % N_CLASSES
        gt = torch.zeros(SIZE, SIZE)
        y, x = (label // 2) * 8, (label % 2) * 8
        gt[y:y + 8, x:x + 8] = 1
        image = 0.1 * torch.rand(3, SIZE, SIZE, generator=g) + gt * (label + 1) / 4
        audio = torch.sin(torch.arange(160) * (label + 1) / 4.0)[None] + 0.1 * torch.randn(
            1, 160, generator=g)
        sid = f"train{i}" if split == "test" and i < leak else f"{split}{i}"
        items.append({"id": sid, "image": image, "audio": audio, "gt_map": gt, "label": label})
    return items
