"""What every avbench method shares: metadata, registry, optimiser, loss logging.

Each method is an :class:`AVModel` subclass in its own module with a
``meta: ModelMeta`` naming the paper and the capabilities it implements
(DESIGN 4.4). The evaluator decides which benchmarks apply to a model from
``meta.capabilities`` alone, so a capability is declared only when the method
really has it:

- ``embed(batch) -> {"audio": [B,D], "visual": [B,D], "text": [B,D]?}``,
  L2-normalised global embeddings (every model);
- ``localize(batch) -> [B,h,w]``, a sound-source heat map at feature
  resolution (the evaluator upsamples, min-max normalises and binarises);
- ``sounding_score(batch) -> [B]``, ``class_graph() -> adjacency``,
  ``prompted_heatmap``, ``generate_audio``: method-specific extras.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import lightning as L
import torch
from pydantic import BaseModel, ConfigDict, field_validator

from avbench.capabilities import CAPABILITIES


class ModelMeta(BaseModel):
    """Who a model is and what it can do."""

    model_config = ConfigDict(frozen=True)

    name: str
    paper: str
    year: int
    capabilities: frozenset[str]
    reference_code: str | None = None

    @field_validator("capabilities")
    @classmethod
    def _known(cls, caps: frozenset[str]) -> frozenset[str]:
        unknown = set(caps) - CAPABILITIES
        if unknown:
            raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}")
        return caps


REGISTRY: dict[str, type[AVModel]] = {}


def register(name: str) -> Callable[[type[AVModel]], type[AVModel]]:
    """Class decorator adding a model to :data:`REGISTRY` under ``name``."""

    def deco(cls: type[AVModel]) -> type[AVModel]:
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise KeyError(f"model name {name!r} already registered by {REGISTRY[name].__name__}")
        REGISTRY[name] = cls
        return cls

    return deco


class AVModel(L.LightningModule):
    """Base LightningModule of every method.

    Args:
        lr: learning rate.
        weight_decay: weight decay.
        optimizer: ``"adam"`` or ``"adamw"`` (the papers use one of the two).
        betas: Adam betas.
    """

    meta: ModelMeta

    def __init__(
        self,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        optimizer: Literal["adam", "adamw"] = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        super().__init__()
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer_name = optimizer
        self.betas = betas

    # --- capabilities (override what the method has) -----------------
    def embed(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} has no 'embed'")

    def localize(self, batch: Mapping[str, Any]) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no 'localize'")

    def has(self, capability: str) -> bool:
        return capability in self.meta.capabilities

    # --- training plumbing ---------------------------------------------
    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.parameters() if p.requires_grad]
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[self.optimizer_name]
        return cls(params, lr=self.lr, weight_decay=self.weight_decay, betas=self.betas)

    def log_losses(self, losses: Mapping[str, torch.Tensor], stage: str, batch_size: int) -> None:
        """Log every loss term by name (``{stage}/loss_{name}``) and the total.

        DESIGN 4.4: every loss term of a paper is its own named, logged quantity.
        """
        for name, value in losses.items():
            key = f"{stage}/loss" if name == "total" else f"{stage}/loss_{name}"
            self.log(key, value.detach(), prog_bar=name == "total", batch_size=batch_size,
                     sync_dist=stage != "train", on_step=stage == "train", on_epoch=True)
