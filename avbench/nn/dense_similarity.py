"""DenseAV's dense audio-visual similarity volume and its aggregations, computed in chunks.

DenseAV (Hamilton et al., CVPR 2024; reference ``denseav/aggregators.py``)
compares every audio token with every image token, per head. With audio
features split into ``K`` heads ``a[i, k, :, t]`` (``C`` channels each) and
image features ``v[j, k, :, y, x]``, the volume is

    S[i, j, k, y, x, t] = <a[i, k, :, t], v[j, k, :, y, x]>          [A, V, K, h, w, T]

(the reference's ``"akcft,vkchw->avkhwft"``; DenseAV's audio aligner averages the
frequency axis ``f`` away, so it is absent here). Rows are audio clips, columns
images. Two aggregations turn it into clip-level scores:

- training, "max image, mean audio" (reference ``sim_agg_type: misa``,
  ``head_agg: max_elementwise``)::

      s(i, j) = sum_t m[i, t] * max_{k, y, x} S[i, j, k, y, x, t] / max(sum_t m[i, t], 1e-3)

  with ``m`` the non-silent mask of audio ``i`` (1 = real audio);
- evaluation, the per-head retrieval score summed over heads (reference
  ``calc_recalls``: ``agg_heads=False`` then ``sim.sum(-1)``)::

      r_k(i, j) = masked mean_t max_{y, x} S[i, j, k, y, x, t],   r(i, j) = sum_k r_k(i, j).

For ablations the image reduction may be ``"mean"`` and the time reduction
``"max"`` (the reference's ``sisa`` / ``mima``); the masked max subtracts 1e7
from silent steps as the reference's ``masked_max``.

The volume is never materialised whole: :func:`aggregate_similarity` loops over
chunks of the IMAGE batch (``chunk_size`` images at a time), computes that slice
of the volume with one batched matmul, reduces it at once, and keeps only the
``[A, v]`` result and the integer arg-max indices autograd needs. Peak memory is about
one slice ``[A, chunk, K, h, w, T]`` (forward; its gradient in backward) instead of the
whole volume and its gradient (benchmarks/perf/denseav_loss.py); values and gradients are
those of the plain reference :func:`aggregate_volume` applied to
:func:`similarity_volume` (``tests/test_dense_similarity.py``).
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = [
    "aggregate_similarity",
    "aggregate_volume",
    "masked_time_mean",
    "paired_volume",
    "retrieval_scores",
    "similarity_volume",
    "split_heads",
    "training_similarity",
]

ImageReduce = Literal["max", "mean"]
TimeReduce = Literal["mean", "max"]
_MASKED_MAX_OFFSET = 1e7  # reference masked_max


def split_heads(features: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, K*C, ...] -> [B, K, C, ...]``: contiguous channel groups, one per head (reference reshape).

    Raises:
        ValueError: the channel count is not divisible by ``heads``.
    """
    b, c = features.shape[:2]
    if c % heads:
        raise ValueError(f"{c} channels cannot be split into {heads} heads")
    return features.reshape(b, heads, c // heads, *features.shape[2:])


def similarity_volume(audio: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """The full volume ``S[i, j, k, y, x, t]`` ``[A, V, K, h, w, T]`` (plain einsum; the reference).

    Args:
        audio: ``[A, K, C, T]`` head-split audio tokens.
        image: ``[V, K, C, h, w]`` head-split image tokens.
    """
    return torch.einsum("akct,vkchw->avkhwt", audio, image)


def paired_volume(audio: torch.Tensor, image: torch.Tensor,
                  audio_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The diagonal of the volume, each clip with its own image: ``[B, K, h, w, T]``.

    ``audio_mask`` ``[B, T]`` (1 = real audio) multiplies the result, as the
    reference's ``get_pairwise_sims`` does (``"bkcft,bkchw,bt->bkhwft"``).
    """
    vol = torch.einsum("bkct,bkchw->bkhwt", audio, image)
    if audio_mask is not None:
        vol = vol * audio_mask.to(vol.dtype)[:, None, None, None, :]
    return vol


def masked_time_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``sum_t x * m / max(sum_t m, 1e-3)`` over the last axis; ``mask`` ``[A, T]`` broadcasts as
    ``[A, 1, ..., 1, T]`` (the reference's ``masked_mean``)."""
    m = mask.to(x.dtype).reshape(mask.shape[0], *([1] * (x.dim() - 2)), mask.shape[1])
    return (x * m).sum(-1) / m.sum(-1).clamp_min(1e-3)


def _masked_time_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(torch.bool).reshape(mask.shape[0], *([1] * (x.dim() - 2)), mask.shape[1])
    return (x - (~m).to(x.dtype) * _MASKED_MAX_OFFSET).max(-1).values


def _reduce_slice(vol: torch.Tensor, mask: torch.Tensor, image_reduce: ImageReduce,
                  time_reduce: TimeReduce, max_heads: bool) -> torch.Tensor:
    """``[K, A, T, v, N]`` (``N = h * w``, the batched-matmul layout) -> ``[A, v]``
    (``max_heads``) or ``[A, v, K]``.

    The big reductions run over the contiguous last axis and the leading head axis (no
    copy of the slice); max reductions use ``max(dim)``, whose backward keeps only integer
    indices. Max over heads and max over image tokens commute.
    """
    if image_reduce == "max":
        red = vol.max(-1).values  # [K, A, T, v]
        if max_heads:
            red = red.max(0, keepdim=True).values
    else:
        if max_heads:  # heads max-combined elementwise BEFORE the image mean (reference order)
            vol = vol.max(0, keepdim=True).values
        red = vol.mean(-1)
    red = red.permute(1, 3, 0, 2)  # [A, v, K or 1, T] (small)
    out = masked_time_mean(red, mask) if time_reduce == "mean" else _masked_time_max(red, mask)
    return out.squeeze(2) if max_heads else out


def aggregate_volume(volume: torch.Tensor, audio_mask: torch.Tensor, *,
                     image_reduce: ImageReduce = "max", time_reduce: TimeReduce = "mean",
                     max_heads: bool = True) -> torch.Tensor:
    """Aggregate a materialised volume ``[A, V, K, h, w, T]`` (the plain reference).

    Args:
        audio_mask: ``[A, T]`` non-silent mask (1 = real audio).
        image_reduce: reduction over image tokens ``(y, x)``.
        time_reduce: masked reduction over audio time.
        max_heads: True: max over heads elementwise first (training score, ``[A, V]``);
            False: per head (``[A, V, K]``).
    """
    a, v, k, h, w, t = volume.shape
    flat = volume.permute(2, 0, 5, 1, 3, 4).reshape(k, a, t, v, h * w)
    return _reduce_slice(flat, audio_mask, image_reduce, time_reduce, max_heads)


def aggregate_similarity(audio: torch.Tensor, image: torch.Tensor, audio_mask: torch.Tensor | None
                         = None, *, image_reduce: ImageReduce = "max",
                         time_reduce: TimeReduce = "mean", max_heads: bool = True,
                         chunk_size: int = 8) -> torch.Tensor:
    """Clip-level scores of every audio against every image, the volume computed in image chunks.

    Equal (values and gradients) to
    ``aggregate_volume(similarity_volume(audio, image), audio_mask, ...)``.

    Args:
        audio: ``[A, K, C, T]`` head-split audio tokens.
        image: ``[V, K, C, h, w]`` head-split image tokens.
        audio_mask: ``[A, T]`` (1 = real audio); None: all real.
        chunk_size: images per slice; peak memory ``A * chunk_size * K * h * w * T`` values.

    Returns:
        ``[A, V]`` with ``max_heads`` (training), else ``[A, V, K]`` (per head).

    Raises:
        ValueError: head or channel counts of ``audio`` and ``image`` differ, or ``chunk_size < 1``.
    """
    if audio.shape[1:3] != image.shape[1:3]:
        raise ValueError(f"audio heads/channels {tuple(audio.shape[1:3])} != image "
                         f"{tuple(image.shape[1:3])}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if audio_mask is None:
        audio_mask = audio.new_ones(audio.shape[0], audio.shape[-1])
    a, k, c, t = audio.shape
    # one [K, A*T, C] copy of the audio shared by every slice's batched matmul (einsum would
    # copy and save it once per slice)
    audio_b = audio.permute(1, 0, 3, 2).reshape(k, a * t, c)
    parts = []
    # torch.split: one backward node concatenates the slices' gradients (indexing would add a
    # zero-filled full-size gradient per slice)
    for piece in torch.split(image.flatten(3), chunk_size):  # [v, K, C, N]
        v, n = piece.shape[0], piece.shape[-1]
        vol = torch.bmm(audio_b, piece.permute(1, 2, 0, 3).reshape(k, c, v * n))
        vol = vol.view(k, a, t, v, n)  # [K, A, T, v, N]
        parts.append(_reduce_slice(vol, audio_mask, image_reduce, time_reduce, max_heads))
        del vol  # free this slice before the next one is computed
    return torch.cat(parts, dim=1)


def training_similarity(audio: torch.Tensor, image: torch.Tensor,
                        audio_mask: torch.Tensor | None = None, chunk_size: int = 8) -> torch.Tensor:
    """DenseAV's training score ``[A, V]``: max over image tokens and heads, mean over non-silent
    audio time (see the module docstring), chunked."""
    return aggregate_similarity(audio, image, audio_mask, chunk_size=chunk_size)


def retrieval_scores(audio: torch.Tensor, image: torch.Tensor,
                     audio_mask: torch.Tensor | None = None, chunk_size: int = 8,
                     per_head: bool = False) -> torch.Tensor:
    """DenseAV's evaluation score: per head max over image tokens and masked mean over time,
    summed over heads: ``[A, V]`` (``per_head=True``: the per-head scores ``[A, V, K]``), chunked."""
    scores = aggregate_similarity(audio, image, audio_mask, max_heads=False, chunk_size=chunk_size)
    return scores if per_head else scores.sum(-1)
