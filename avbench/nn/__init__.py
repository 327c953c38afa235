"""Shared building blocks: audio front-ends, backbones, heads, similarity volume, losses, DDP gather."""

from avbench.nn.distributed import (
    all_gather_no_grad,
    all_gather_with_grad,
    gather_with_offset,
    get_rank,
    get_world_size,
    is_distributed,
)
from avbench.nn.encoders import AudioEncoder, ImageEncoder
from avbench.nn.frontends import LogMelSpectrogram, LogSpectrogram, scipy_window
from avbench.nn.heads import ConvProjection, LinearProjection, MLPHead
from avbench.nn.losses import info_nce, info_nce_logits, positive_targets
from avbench.nn.similarity import (
    av_similarity,
    max_over_locations,
    mean_over_locations,
    minmax_normalize,
    object_saliency,
    ogl_combine,
    paired_similarity,
)

__all__ = [
    "AudioEncoder",
    "ConvProjection",
    "ImageEncoder",
    "LinearProjection",
    "LogMelSpectrogram",
    "LogSpectrogram",
    "MLPHead",
    "all_gather_no_grad",
    "all_gather_with_grad",
    "av_similarity",
    "gather_with_offset",
    "get_rank",
    "get_world_size",
    "info_nce",
    "info_nce_logits",
    "is_distributed",
    "max_over_locations",
    "mean_over_locations",
    "minmax_normalize",
    "object_saliency",
    "ogl_combine",
    "paired_similarity",
    "positive_targets",
    "scipy_window",
]
