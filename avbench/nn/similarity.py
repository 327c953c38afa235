"""Dense audio-visual similarity volume and its aggregators.

EZ-VSL (Mo & Morgado 2022, Eq. 1-2) and its successors score an image n
against an audio m through the similarity map

    S[n, m, h, w] = <v_n(h, w), a_m>

between every location of the (projected, normalised) image map and the
global audio embedding, and reduce it over locations: max pooling (EZ-VSL's
multiple-instance view: at least one location must match) or mean pooling.
DenseAV reuses the volume with an audio time axis.
"""

from __future__ import annotations

import torch

__all__ = [
    "av_similarity",
    "max_over_locations",
    "mean_over_locations",
    "minmax_normalize",
    "object_saliency",
    "ogl_combine",
    "paired_similarity",
]


def av_similarity(visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """All-pairs similarity volume.

    Args:
        visual: [N, C, h, w] image feature maps.
        audio: [M, C] global audio embeddings.

    Returns:
        [N, M, h, w] with ``S[n, m] = <visual[n], audio[m]>`` at every location.
    """
    return torch.einsum("nchw,mc->nmhw", visual, audio)


def paired_similarity(visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """Diagonal of :func:`av_similarity` without computing the rest: [N, h, w]."""
    return torch.einsum("nchw,nc->nhw", visual, audio)


def max_over_locations(sim: torch.Tensor) -> torch.Tensor:
    """Max over the trailing two (spatial) dims: [..., h, w] -> [...]."""
    return sim.flatten(-2).max(dim=-1).values


def mean_over_locations(sim: torch.Tensor) -> torch.Tensor:
    """Mean over the trailing two (spatial) dims: [..., h, w] -> [...]."""
    return sim.flatten(-2).mean(dim=-1)


def minmax_normalize(maps: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Per-map min-max normalisation of [..., h, w] to [0, 1].

    A constant map is returned as zeros (the reference ``normalize_img`` leaves
    it unchanged; both make it uninformative).
    """
    flat = maps.flatten(-2)
    lo = flat.min(dim=-1, keepdim=True).values
    hi = flat.max(dim=-1, keepdim=True).values
    span = hi - lo
    out = (flat - lo) / torch.where(span > 0, span + eps, torch.ones_like(span))
    return out.view_as(maps)


def object_saliency(features: torch.Tensor) -> torch.Tensor:
    """Object prior of EZ-VSL's OGL: mean absolute activation over channels.

    [B, C, h, w] -> [B, h, w] (reference ``NormReducer``: ``x.abs().mean(1)``).
    """
    return features.abs().mean(dim=1)


def ogl_combine(av_map: torch.Tensor, obj_map: torch.Tensor, alpha: float = 0.4) -> torch.Tensor:
    """Object-guided localization (EZ-VSL Sec. 3.4): min-max normalise both
    maps, mix ``alpha * av + (1 - alpha) * obj`` and normalise again."""
    mixed = alpha * minmax_normalize(av_map) + (1.0 - alpha) * minmax_normalize(obj_map)
    return minmax_normalize(mixed)
