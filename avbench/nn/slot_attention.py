"""Slot attention (Locatello et al., NeurIPS 2020) and JSA's joint image-audio variant.

Joint slot attention (JSA; Kim et al., "Improving Sound Source Localization with
Joint Slot Attention on Image and Audio", CVPR 2025; reference code
InhoKim429/JSA ``model_slot.py``) runs one slot-attention branch per modality.
Both branches start from the SAME learnable initial slots (``shared_slots``),
so slot ``i`` means the same thing in the image and in the audio; each branch
has its own input LayerNorm, key/value/query projections, GRU and residual MLP.

One iteration of a branch, for slots ``S`` [B,K,D] and tokens ``x`` [B,N,D]:

- ``k, v = W_k(LN(x)), W_v(LN(x))`` (once, before the loop);
- ``q = W_q(LN(S))``; ``M = q k^T / sqrt(D)`` [B,K,N];
- ``A = softmax over the SLOT axis of M`` (slots compete for each token: every
  token's weights over the slots sum to 1, :attr:`SlotBranchOutput.assign`);
- ``A' = (A + eps) / sum over tokens of (A + eps)`` (weighted mean,
  :attr:`SlotBranchOutput.attn`); ``U = A' v``;
- ``S = GRU(U, S_prev)``; ``S = S + MLP(LN(S))``.

The "cross-modal attention" of JSA uses the query of one modality over the keys
of the other with the same two normalisations (``ca^{a,v}`` = audio query over
image keys). As in the reference code, the attentions returned are those of
the LAST iteration (computed from the query before its final GRU update).

Training-time token masking (paper ablation: mask ratio 0.1 best): each input
token is independently replaced by a learnable per-modality mask token with
probability ``mask_ratio`` (Bernoulli, as the reference code does), only while
the module is in training mode.

:class:`SpatialBroadcastDecoder` is JSA's slot-reconstruction decoder
(reference ``MlpDecoder``, DINOSAUR-style MLP decoder): every slot is
broadcast over the token grid, decoded per location, and the slots are mixed
by a softmax over slots.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def slot_attention_weights(
    q: torch.Tensor, k: torch.Tensor, scale: float, eps: float = 1e-8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slot-competition attention of queries ``q`` [B,K,D] over keys ``k`` [B,N,D].

    Returns ``(assign, attn)``, both [B,K,N]: ``assign`` is the softmax over the
    slot axis (for every token the weights over the K slots sum to 1) and
    ``attn`` is ``assign + eps`` renormalised over tokens (the weighted-mean
    weights; each slot's row sums to 1).
    """
    logits = torch.einsum("bkd,bnd->bkn", q, k) * scale
    assign = logits.softmax(dim=1)
    attn = assign + eps
    attn = attn / attn.sum(dim=-1, keepdim=True)
    return assign, attn


@dataclass
class SlotBranchOutput:
    """What one modality's branch produced.

    Attributes:
        slots: final slots [B,K,D] (not normalised).
        query: last iteration's query ``W_q(LN(S))`` [B,K,D].
        keys: keys ``W_k(LN(x))`` of this modality's (masked) tokens [B,N,D].
        assign: last iteration's softmax over slots [B,K,N] (sums to 1 over K).
        attn: last iteration's attention normalised over tokens [B,K,N].
        cross_attn: ``attn`` of this modality's query over the OTHER modality's
            keys [B,K,N_other] (``None`` when no other keys were given).
    """

    slots: torch.Tensor
    query: torch.Tensor
    keys: torch.Tensor
    assign: torch.Tensor
    attn: torch.Tensor
    cross_attn: torch.Tensor | None


class SlotAttentionBranch(nn.Module):
    """One modality's slot attention (projections, GRU, residual MLP, mask token).

    Args:
        dim: token and slot dimension ``D``.
        mlp_hidden: hidden width of the residual MLP (ref: 2 * D).
        iters: number of attention iterations (paper: 5).
        mask_ratio: probability of replacing an input token by the mask token
            in training (paper: 0.1).
        eps: added to the slot-softmax before the weighted mean.
    """

    def __init__(
        self,
        dim: int = 512,
        mlp_hidden: int = 1024,
        iters: int = 5,
        mask_ratio: float = 0.1,
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        if iters < 1:
            raise ValueError(f"iters must be >= 1, got {iters}")
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        self.dim = dim
        self.iters = iters
        self.mask_ratio = mask_ratio
        self.eps = eps
        self.scale = dim**-0.5
        self.mask_token = nn.Parameter(torch.randn(1, 1, dim))
        self.norm_input = nn.LayerNorm(dim)
        self.norm_slots = nn.LayerNorm(dim)
        self.norm_pre_ff = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.gru = nn.GRUCell(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_hidden), nn.ReLU(), nn.Linear(mlp_hidden, dim))

    def mask_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Replace each token by the mask token with probability ``mask_ratio``."""
        if self.mask_ratio <= 0:
            return tokens
        b, n, _ = tokens.shape
        m = (torch.rand(b, n, 1, device=tokens.device) < self.mask_ratio).to(tokens.dtype)
        return tokens * (1 - m) + self.mask_token.to(tokens.dtype) * m

    def keys_values(self, tokens: torch.Tensor, mask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values [B,N,D] of ``tokens`` [B,N,D] (masked first if ``mask``)."""
        if tokens.dim() != 3 or tokens.shape[-1] != self.dim:
            raise ValueError(f"tokens must be [B,N,{self.dim}], got {tuple(tokens.shape)}")
        if mask:
            tokens = self.mask_tokens(tokens)
        x = self.norm_input(tokens)
        return self.to_k(x), self.to_v(x)

    def iterate(
        self,
        init_slots: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        other_keys: torch.Tensor | None = None,
        sharpen: float = 1.0,
    ) -> SlotBranchOutput:
        """Run the iterations from ``init_slots`` [1 or B,K,D].

        ``sharpen`` multiplies the attention logits of the RETURNED attentions
        only (the reference code's ``infer_sharpening`` at inference); the
        slot updates always use the unsharpened attention.
        """
        b = keys.shape[0]
        slots = init_slots.expand(b, -1, -1)
        k_slots = slots.shape[1]
        q = assign = attn = None
        for _ in range(self.iters):
            prev = slots
            q = self.to_q(self.norm_slots(slots))
            assign, attn = slot_attention_weights(q, keys, self.scale, self.eps)
            updates = torch.einsum("bkn,bnd->bkd", attn, values)
            slots = self.gru(updates.reshape(-1, self.dim), prev.reshape(-1, self.dim))
            slots = slots.reshape(b, k_slots, self.dim)
            slots = slots + self.mlp(self.norm_pre_ff(slots))
        assert q is not None and assign is not None and attn is not None
        if sharpen != 1.0:
            assign, attn = slot_attention_weights(q, keys, sharpen * self.scale, self.eps)
        cross = None
        if other_keys is not None:
            _, cross = slot_attention_weights(q, other_keys, sharpen * self.scale, self.eps)
        return SlotBranchOutput(slots, q, keys, assign, attn, cross)


class JointSlotAttention(nn.Module):
    """JSA's joint slot attention over image and audio tokens.

    Args:
        dim: token/slot dimension (ref: 512).
        n_slots: total number of slots K (paper: 2 = 1 target + 1 off-target;
            the model decides which are target slots).
        iters: iterations (paper: 5).
        mlp_hidden: residual-MLP hidden width (ref: 1024).
        mask_ratio: training-time token mask probability (paper: 0.1).
        shared_slots: one set of learnable initial slots for both modalities
            (paper); ``False`` gives each modality its own (paper ablation).
        eps: slot-softmax epsilon (ref: 1e-8).
    """

    def __init__(
        self,
        dim: int = 512,
        n_slots: int = 2,
        iters: int = 5,
        mlp_hidden: int = 1024,
        mask_ratio: float = 0.1,
        shared_slots: bool = True,
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        if n_slots < 1:
            raise ValueError(f"n_slots must be >= 1, got {n_slots}")
        self.dim = dim
        self.n_slots = n_slots
        self.shared_slots = shared_slots
        # Reference initialisation: standard normal learnable slots.
        self.slots = nn.Parameter(torch.randn(1, n_slots, dim))
        self.audio_slots = None if shared_slots else nn.Parameter(torch.randn(1, n_slots, dim))
        self.image = SlotAttentionBranch(dim, mlp_hidden, iters, mask_ratio, eps)
        self.audio = SlotAttentionBranch(dim, mlp_hidden, iters, mask_ratio, eps)

    def initial_slots(self, modality: str) -> torch.Tensor:
        """Learnable initial slots [1,K,D] of ``modality`` (``image``/``audio``)."""
        if modality == "audio" and self.audio_slots is not None:
            return self.audio_slots
        return self.slots

    def forward(
        self,
        image_tokens: torch.Tensor,
        audio_tokens: torch.Tensor,
        mask: bool | None = None,
        sharpen: float = 1.0,
    ) -> tuple[SlotBranchOutput, SlotBranchOutput]:
        """Slots and attentions of both modalities.

        Args:
            image_tokens: [B,N_v,D] image tokens (flattened h x w map).
            audio_tokens: [B,N_a,D] audio tokens.
            mask: apply token masking; default ``self.training``.
            sharpen: logit multiplier of the returned attentions (inference).

        Returns:
            ``(image, audio)`` branch outputs; ``image.cross_attn`` is the image
            query over audio keys, ``audio.cross_attn`` the audio query over
            image keys (``ca^{a,v}``, the localization map).
        """
        if image_tokens.shape[0] != audio_tokens.shape[0]:
            raise ValueError(
                f"batch sizes differ: image {image_tokens.shape[0]} vs audio {audio_tokens.shape[0]}"
            )
        mask = self.training if mask is None else mask
        img_k, img_v = self.image.keys_values(image_tokens, mask)
        aud_k, aud_v = self.audio.keys_values(audio_tokens, mask)
        img = self.image.iterate(self.initial_slots("image"), img_k, img_v, aud_k, sharpen)
        aud = self.audio.iterate(self.initial_slots("audio"), aud_k, aud_v, img_k, sharpen)
        return img, aud


class SpatialBroadcastDecoder(nn.Module):
    """Per-slot MLP spatial-broadcast decoder (JSA's slot reconstruction; DINOSAUR-style).

    Every slot [B,K,D] is broadcast to the ``grid_h x grid_w`` token grid, a
    learned 2-D position embedding is added (``D/2`` channels of column
    embedding then ``D/2`` of row embedding, uniform init, as the reference
    ``PositionEmbeddingLearned2D``), and an MLP (``depth`` hidden layers of
    width ``hidden``, ReLU) maps each location to ``feat_dim`` features plus
    one alpha logit. Alphas are softmax-normalised over the SLOTS and the
    reconstruction is the alpha-weighted sum of the slots' features:
    ``recon[b,n] = sum_k softmax_k(alpha[b,k,n]) feat[b,k,n]``.

    A grid other than the configured one (e.g. another clip length) is
    decoded by linearly interpolating the row/column embeddings (endpoints
    kept); on the configured grid the embeddings are used as learned.

    ``forward(slots [B,K,D], grid=None) -> [B, grid_h*grid_w, feat_dim]``
    (tokens in row-major order, matching ``map.flatten(2).transpose(1, 2)``).
    """

    def __init__(
        self,
        grid_h: int,
        grid_w: int,
        slot_dim: int,
        feat_dim: int,
        hidden: int | None = None,
        depth: int = 3,
    ) -> None:
        super().__init__()
        if grid_h < 1 or grid_w < 1:
            raise ValueError(f"grid must be positive, got {grid_h}x{grid_w}")
        hidden = slot_dim if hidden is None else hidden
        self.grid = (grid_h, grid_w)
        self.feat_dim = feat_dim
        col_dim = slot_dim // 2
        self.col_embed = nn.Parameter(torch.rand(grid_w, col_dim))
        self.row_embed = nn.Parameter(torch.rand(grid_h, slot_dim - col_dim))
        layers: list[nn.Module] = []
        width = slot_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, feat_dim + 1))
        self.mlp = nn.Sequential(*layers)

    @staticmethod
    def _resize(emb: torch.Tensor, n: int) -> torch.Tensor:
        if emb.shape[0] == n:
            return emb
        if emb.shape[0] == 1:
            return emb.expand(n, -1)
        out = nn.functional.interpolate(emb.t()[None], size=n, mode="linear", align_corners=True)
        return out[0].t()

    def position_embedding(self, grid: tuple[int, int] | None = None) -> torch.Tensor:
        """Position embedding [h*w, D] of ``grid`` (default: the configured one)."""
        h, w = self.grid if grid is None else grid
        col = self._resize(self.col_embed, w)  # [w, D/2]
        row = self._resize(self.row_embed, h)  # [h, D/2]
        pos = torch.cat([col[None].expand(h, -1, -1), row[:, None].expand(-1, w, -1)], dim=-1)
        return pos.reshape(h * w, -1)

    def forward(
        self, slots: torch.Tensor, grid: tuple[int, int] | None = None
    ) -> torch.Tensor:
        pos = self.position_embedding(grid)  # [N, D]
        x = slots[:, :, None, :] + pos[None, None]  # [B,K,N,D]
        out = self.mlp(x)
        feat, alpha = out[..., :-1], out[..., -1].softmax(dim=1)  # alpha over slots
        return torch.einsum("bknd,bkn->bnd", feat, alpha)
