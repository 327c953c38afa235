"""Trivial baselines, as model-like objects usable through :func:`evaluate`.

Every leaderboard table shows them so that a number can be read (DESIGN 1.3,
REFERENCE A1):

* :class:`FullImageBaseline` (``localize``): a constant map. Under the top-50%
  rule a constant map selects every pixel (ties at the threshold are kept), so
  its cIoU is ``sum(G) / (sum(G) + #{G == 0})``: the GT area fraction for a
  binary map. On Flickr it scores about 61 AP50 because most GT regions cover
  over half the image.
* :class:`CenterPriorBaseline` (``localize``): an isotropic Gaussian centred in
  the image (sigma = ``sigma`` x the shorter side). Any map that decreases
  with the distance to the centre selects the same central disc of half the
  image under the top-50% rule, so sigma matters only for the fixed
  threshold rule.
* :class:`RandomEmbeddingBaseline` (``embed``): seeded Gaussian embeddings,
  L2-normalised, drawn **per sample id** (and modality), so they do not
  depend on batch size, order or DDP rank. Retrieval then scores chance level
  and discovery (cosine of a clip's own audio and visual embeddings) an
  ROC-AUC of about 0.5.

They have no parameters and need no training; ``eval()``/``to()`` are
accepted for uniformity with LightningModules.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class BaselineMeta:
    """The subset of ``ModelMeta`` the evaluator and the leaderboard read."""

    name: str
    capabilities: frozenset[str]
    paper: str = "trivial baseline"
    year: int | None = None
    trivial: bool = True
    options: dict[str, Any] = field(default_factory=dict)


def _batch_size(batch: dict[str, Any]) -> int:
    if "id" in batch:
        return len(batch["id"])
    for key in ("image", "frames", "audio", "gt_map", "masks"):
        if isinstance(batch.get(key), Tensor):
            return int(batch[key].shape[0])
    raise ValueError("cannot infer the batch size (no 'id' and no tensor input)")


def _image_size(batch: dict[str, Any], default: int = 224) -> tuple[int, int]:
    for key, dims in (
        ("image", (-2, -1)),
        ("frames", (-2, -1)),
        ("gt_map", (-2, -1)),
        ("masks", (-2, -1)),
    ):
        x = batch.get(key)
        if isinstance(x, Tensor):
            return int(x.shape[dims[0]]), int(x.shape[dims[1]])
    return default, default


class _Baseline:
    meta: BaselineMeta

    def eval(self) -> _Baseline:
        return self

    def train(self, mode: bool = True) -> _Baseline:
        return self

    def to(self, *args: Any, **kwargs: Any) -> _Baseline:
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.meta.options})"


class FullImageBaseline(_Baseline):
    """Constant heat map: "the sound comes from everywhere"."""

    def __init__(self, resolution: int | None = None) -> None:
        self.resolution = resolution
        self.meta = BaselineMeta(
            "full-image", frozenset({"localize"}), options={"resolution": resolution}
        )

    def localize(self, batch: dict[str, Any]) -> Tensor:
        """Ones at the image resolution (or ``resolution``); no upsampling needed."""
        h, w = (self.resolution, self.resolution) if self.resolution else _image_size(batch)
        return torch.ones(_batch_size(batch), h, w)


def center_gaussian(h: int, w: int, sigma: float = 0.25) -> Tensor:
    """Isotropic Gaussian [h, w] centred at the image centre, sigma relative to min(h, w)."""
    ys = (torch.arange(h, dtype=torch.float64) + 0.5) - h / 2
    xs = (torch.arange(w, dtype=torch.float64) + 0.5) - w / 2
    d2 = ys[:, None] ** 2 + xs[None, :] ** 2
    s = sigma * min(h, w)
    return torch.exp(-d2 / (2 * s * s)).float()


class CenterPriorBaseline(_Baseline):
    """Centre Gaussian prior at the image resolution (no upsampling artefacts)."""

    def __init__(self, sigma: float = 0.25) -> None:
        self.sigma = sigma
        self.meta = BaselineMeta("center-prior", frozenset({"localize"}), options={"sigma": sigma})

    def localize(self, batch: dict[str, Any]) -> Tensor:
        h, w = _image_size(batch)
        return center_gaussian(h, w, self.sigma).expand(_batch_size(batch), h, w).clone()


def _seed_of(*parts: Any) -> int:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class RandomEmbeddingBaseline(_Baseline):
    """Seeded random unit embeddings, one per (seed, sample id, modality)."""

    def __init__(self, dim: int = 128, seed: int = 0) -> None:
        self.dim = dim
        self.seed = seed
        self.meta = BaselineMeta(
            "random-embedding", frozenset({"embed"}), options={"dim": dim, "seed": seed}
        )

    def _draw(self, ids: list[str], modality: str) -> Tensor:
        out = torch.empty(len(ids), self.dim)
        g = torch.Generator()
        for i, sid in enumerate(ids):
            g.manual_seed(_seed_of(self.seed, sid, modality))
            out[i] = torch.randn(self.dim, generator=g)
        return F.normalize(out, dim=1)

    def embed(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        if "id" not in batch:
            raise ValueError(
                "RandomEmbeddingBaseline draws embeddings per sample id: batch has no 'id'"
            )
        ids = [str(i) for i in batch["id"]]
        out = {"audio": self._draw(ids, "audio"), "visual": self._draw(ids, "visual")}
        if "text" in batch:
            out["text"] = self._draw(ids, "text")
        return out


def trivial_baselines(seed: int = 0) -> list[_Baseline]:
    """The baselines every leaderboard table shows."""
    return [FullImageBaseline(), CenterPriorBaseline(), RandomEmbeddingBaseline(seed=seed)]


#: name -> factory, for configs and the runner
BASELINES = {
    "full-image": FullImageBaseline,
    "center-prior": CenterPriorBaseline,
    "random-embedding": RandomEmbeddingBaseline,
}

__all__ = [
    "BASELINES",
    "BaselineMeta",
    "CenterPriorBaseline",
    "FullImageBaseline",
    "RandomEmbeddingBaseline",
    "center_gaussian",
    "trivial_baselines",
]
