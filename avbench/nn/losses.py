"""Contrastive losses shared by the methods (DESIGN 4.4).

All of them follow one convention: each rank holds ``B`` local queries, the
keys are gathered from every rank with gradient
(:func:`avbench.nn.distributed.gather_with_offset`), and the positive of local
query ``i`` is gathered key ``offset + i``. On a single process this is the
usual in-batch InfoNCE (van den Oord et al. 2018, Eq. 4):

    L = -1/B sum_i log( exp(s_ii / tau) / sum_j exp(s_ij / tau) ).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from avbench.nn.distributed import gather_with_offset

__all__ = ["info_nce", "info_nce_logits", "positive_targets"]


def positive_targets(batch_size: int, offset: int, device: torch.device) -> torch.Tensor:
    """Column of each local row's positive in a gathered logits matrix."""
    return torch.arange(batch_size, device=device) + offset


def info_nce_logits(
    logits: torch.Tensor,
    offset: int = 0,
    negative_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of each row of ``logits`` [B, N] to column ``offset + row``.

    ``logits`` are already scaled by the temperature. ``negative_mask`` [B, N]
    (bool, True = not a negative) removes entries from the softmax
    denominator, e.g. JSA's k-reciprocal false negatives; the positive itself
    is never removed.
    """
    b = logits.shape[0]
    target = positive_targets(b, offset, logits.device)
    if negative_mask is not None:
        keep_pos = F.one_hot(target, logits.shape[1]).bool()
        logits = logits.masked_fill(negative_mask.bool() & ~keep_pos, float("-inf"))
    return F.cross_entropy(logits, target)


def info_nce(
    logits_or_query: torch.Tensor,
    key: torch.Tensor | None = None,
    tau: float = 1.0,
    *,
    symmetric: bool = False,
    gather: bool = True,
    normalize: bool = False,
    negative_mask: torch.Tensor | None = None,
    reverse_negative_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE with negatives gathered across ranks.

    Two call forms:

    - ``info_nce(logits, tau=t)``: ``logits`` [B, N] are raw similarities of the
      local rows against all N (already gathered) candidates, the positive of
      row ``i`` at column ``i`` (single process) — divided by ``tau`` here.
    - ``info_nce(query, key, tau)``: ``query`` and ``key`` [B, D] are paired
      local embeddings; ``key`` is gathered from all ranks (``gather=True``),
      logits = ``query @ key_all.T / tau``. With ``symmetric=True`` the
      key->query direction (``key @ query_all.T``) is added and the two are
      averaged, the symmetric form CLIP and the EZ-VSL line use.

    Args:
        normalize: L2-normalise query and key first (cosine similarity).
        negative_mask: bool [B, N], True = drop from the query->key negatives.
        reverse_negative_mask: the same for key->query; defaults to
            ``negative_mask.T`` when the matrix is square (single process).
    """
    if key is None:
        if symmetric:
            raise ValueError("symmetric InfoNCE needs query and key, not a logits matrix")
        return info_nce_logits(logits_or_query / tau, 0, negative_mask)

    query = logits_or_query
    if normalize:
        query = F.normalize(query, dim=-1)
        key = F.normalize(key, dim=-1)
    key_all, offset = gather_with_offset(key) if gather else (key, 0)
    loss = info_nce_logits(query @ key_all.t() / tau, offset, negative_mask)
    if not symmetric:
        return loss
    query_all, offset_q = gather_with_offset(query) if gather else (query, 0)
    if reverse_negative_mask is None and negative_mask is not None:
        if negative_mask.shape[0] != negative_mask.shape[1]:
            raise ValueError("give reverse_negative_mask when the negatives are gathered")
        reverse_negative_mask = negative_mask.t()
    loss_rev = info_nce_logits(key @ query_all.t() / tau, offset_q, reverse_negative_mask)
    return 0.5 * (loss + loss_rev)
