"""The per-batch capability cache shared by the tasks of one benchmark.

Each capability is called at most once per batch and its output shared
between tasks (AVSBench: one ``localize`` call per frame feeds both the
segmentation and the localization scores, and the gallery reuses it).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def squeeze_map(x: Tensor) -> Tensor:
    """[B,1,h,w] -> [B,h,w]; any other shape is returned unchanged."""
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]
    return x


class BatchOutputs:
    """Capability outputs of one batch, computed on first use and cached.

    Args:
        model: the evaluated model (its capability methods are called lazily).
        batch: the collated batch, already on the model's device.
    """

    def __init__(self, model: Any, batch: dict[str, Any]) -> None:
        self.model = model
        self.batch = batch
        self._cache: dict[str, Any] = {}

    def ids(self) -> list[str]:
        """The sample ids of the batch; KeyError when the batch has none."""
        ids = self.batch.get("id")
        if ids is None:
            raise KeyError("batch has no 'id' (needed for exact, de-duplicated evaluation)")
        return [str(i) for i in ids]

    def embed(self) -> dict[str, Tensor]:
        """``model.embed(batch)``: ``{"audio": [B,D], "visual": [B,D], ...}``."""
        if "embed" not in self._cache:
            self._cache["embed"] = self.model.embed(self.batch)
        return self._cache["embed"]

    def localize(self) -> Tensor:
        """``model.localize(batch)`` as float [B,h,w] (a [B,1,h,w] map is squeezed)."""
        if "localize" not in self._cache:
            self._cache["localize"] = squeeze_map(self.model.localize(self.batch)).float()
        return self._cache["localize"]

    def localize_mismatched(self, shift: int = 1) -> Tensor | None:
        """``model.localize`` with every clip paired with ANOTHER clip's audio [B,h,w].

        Every ``audio*`` tensor of the batch is rolled by ``shift`` along the batch
        (clip i gets clip i-shift's sound); the images, ids and GT stay. None for a
        batch of one clip (no other audio to pair with).
        """
        n = len(self.ids())
        if n < 2:
            return None
        key = f"localize_mismatched{shift}"
        if key not in self._cache:
            batch = {k: (v.roll(shift, dims=0) if k.startswith("audio") and isinstance(v, Tensor)
                         and v.shape[:1] == (n,) else v)
                     for k, v in self.batch.items()}
            self._cache[key] = squeeze_map(self.model.localize(batch)).float()
        return self._cache[key]

    def masks(self) -> tuple[Tensor, Tensor | None]:
        """The batch's ``masks`` as [B,T,H,W] and ``mask_valid`` as bool [B,T] (or None).

        Raises KeyError when the batch has no ``masks`` tensor.
        """
        masks = self.batch.get("masks")
        if not isinstance(masks, Tensor):
            raise KeyError("batch has no 'masks' tensor [B,T,H,W]")
        if masks.ndim == 3:
            masks = masks.unsqueeze(1)
        valid = self.batch.get("mask_valid")
        if isinstance(valid, Tensor):
            valid = valid.reshape(masks.shape[0], masks.shape[1]).bool()
        else:
            valid = None
        return masks, valid

    def localize_frames(self) -> Tensor:
        """Heat maps [B, T, h, w] for each mask frame (one ``localize`` call per frame).

        Raises KeyError when there are T > 1 masks per clip but no matching
        ``frames`` [B,T,3,H,W].
        """
        if "localize_frames" in self._cache:
            return self._cache["localize_frames"]
        masks, _ = self.masks()
        t = masks.shape[1]
        frames = self.batch.get("frames")
        if t == 1 and not (isinstance(frames, Tensor) and frames.shape[1] > 1):
            out = self.localize().unsqueeze(1)
        else:
            if not isinstance(frames, Tensor) or frames.shape[1] != t:
                raise KeyError(
                    f"batch has {t} masks per clip but no matching 'frames' [B,{t},3,H,W]"
                )
            maps = []
            for k in range(t):
                sub = dict(self.batch)
                sub["image"] = frames[:, k]
                maps.append(squeeze_map(self.model.localize(sub)).float())
            out = torch.stack(maps, dim=1)
        self._cache["localize_frames"] = out
        return out

    def segment(self) -> Tensor:
        """``model.segment(batch)`` logits as float [B,T,H,W] ([B,H,W] gets T = 1)."""
        if "segment" not in self._cache:
            out = self.model.segment(self.batch).float()
            if out.ndim == 3:
                out = out.unsqueeze(1)
            self._cache["segment"] = out
        return self._cache["segment"]


__all__ = ["BatchOutputs", "squeeze_map"]
