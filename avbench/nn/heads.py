"""Projection heads used on top of the shared backbones.

The EZ-VSL line projects the image map with a 1x1 convolution (one linear map
applied at every location, REFERENCE C) and the globally pooled audio feature
with a linear layer, then L2-normalises per location / per clip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvProjection", "MLPHead", "LinearProjection"]


class ConvProjection(nn.Module):
    """1x1 conv projection of a feature map, optionally L2-normalised per location.

    ``forward([B,C,h,w]) -> [B,D,h,w]``.
    """

    def __init__(self, in_dim: int, out_dim: int, normalize: bool = True, bias: bool = True) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_dim, out_dim, kernel_size=1, bias=bias)
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        return F.normalize(y, dim=1) if self.normalize else y


class LinearProjection(nn.Module):
    """Linear projection of a vector, optionally L2-normalised. ``[B,C] -> [B,D]``."""

    def __init__(self, in_dim: int, out_dim: int, normalize: bool = True, bias: bool = True) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim, bias=bias)
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        return F.normalize(y, dim=-1) if self.normalize else y


class MLPHead(nn.Module):
    """``Linear -> ReLU -> Linear`` head over the last dim (SimCLR-style),
    optionally L2-normalised. Works on ``[..., C]``."""

    def __init__(
        self, in_dim: int, hidden_dim: int, out_dim: int, normalize: bool = True
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
        )
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        return F.normalize(y, dim=-1) if self.normalize else y
