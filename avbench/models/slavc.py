"""SLAVC: "A Closer Look at Weakly-Supervised Audio-Visual Source Localization"
(Mo & Morgado, NeurIPS 2022).

Reference code: https://github.com/stoneMo/SLAVC (``model.py`` class
``SLAVC``/``MoVSL``, ``train.py``, ``scripts/train_vggsound144k.sh``,
``test.py``).

Architecture
    EZ-VSL's backbones (:mod:`avbench.models.ezvsl`) with TWO projection heads
    per modality (1x1 convs ``P1, P2`` on the image map, linears ``Q1, Q2`` on
    the max-pooled audio feature; all outputs L2-normalised), extreme dropout
    (p = 0.9) on the image backbone map before the projections, optional
    audio dropout (p = 0), and a momentum (EMA) copy of every backbone and
    head, updated before each training step as
    ``theta_m <- m * theta_m + (1 - m) * theta`` with ``m = 0.999`` (script
    ``--m_img 0.999 --m_aud 0.999``). The momentum path also applies the
    (training-mode) dropout, as the reference does.

Loss (reference ``forward``): with ``v^k`` online image maps,
``a^k`` online audio embeddings and ``~`` the momentum ones,

    p1[n,m,l] = softmax_m(<v^1_n(l), ~a^1_m> / tau)     (which sound, per location)
    p2[n,m,l] = softmax_l(<v^2_n(l), ~a^2_m> / tau)     (which location, per sound)
    i2a[n,m]  = log sum_l p1[n,m,l] * p2[n,m,l]

and ``a2i`` the same with momentum image maps and online audio embeddings.
Both are cross-entropies over the batch's AUDIOS for each image (the
reference applies ``F.cross_entropy(., arange(B))`` to both ``[n,m]``
matrices), logged as ``i2a`` and ``a2i``; ``total = i2a + a2i``.
The ``log sum_l p1 p2`` is computed as ``logsumexp_l(log p1 + log p2)``:
the same quantity, without the underflow of ``log`` of a product of two
small probabilities at tau = 0.03.

Localization (``use_mom_eval``): the mean of the two heads' own-pair maps
from the MOMENTUM encoders, ``(S^1 + S^2)/2`` with ``S^k = <~v^k_n, ~a^k_n>
/ tau`` [B,h,w]. ``localize_ogl`` as EZ-VSL with alpha 0.9: both released
test scripts (``scripts/test_extended_*_with_vggsound144k.sh``) pass
``--alpha 0.9`` (``test.py``'s default is 0.4); ``slavc.yaml`` uses 0.9.
Test-time audio is 5 s (reference ``datasets.py`` ``get_test_dataset``,
``audio_dur=5.``) against 3 s in training: ``slavc.yaml`` sets
``spectrogram.clip_seconds: 3`` and ``eval_clip_seconds: 5``.

Embeddings (not in the paper): momentum encoders, head 1 (the head whose
softmax runs over sounds, i.e. the cross-clip matching head): audio
``~a^1_n``; visual the mean over locations of ``~v^1_n``, re-normalised.

Defaults (script ``train_vggsound144k.sh`` and ``train.py``): ``tau = 0.03``,
``dim = 512``, image dropout 0.9, audio dropout 0, momentum 0.999 (both),
Adam lr 1e-4, no weight decay, constant lr, GLOBAL batch 128 (``train.py``
divides it by the world size; ``global_batch_size``), fp32, 20 epochs, the
EZ-VSL line's training augmentation (data ``train_augment: ezvsl``).

Deviations, with reasons
    - Under DDP the audio candidates are gathered from all ranks (online
      embeddings with gradient, momentum ones without), so the softmax over
      sounds runs over the global batch, as on one device; the reference
      used each GPU's slice. ``gather_negatives=False`` restores that.
    - The reference ``train.py`` has a 0.9 momentum default, but the paper's
      script and text use 0.999, which is the default here.
    - See :mod:`avbench.models.ezvsl` for backbone/OGL deviations.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from avbench.models.base import ModelMeta, register
from avbench.models.dense_vsl import DenseVSLModel, ezvsl_init_
from avbench.nn.distributed import all_gather_no_grad, gather_with_offset
from avbench.nn.heads import ConvProjection, LinearProjection
from avbench.nn.losses import info_nce_logits
from avbench.nn.similarity import av_similarity, mean_over_locations, paired_similarity

__all__ = ["SLAVC", "slavc_logits"]


def slavc_logits(
    visual_sel: torch.Tensor,
    audio_sel: torch.Tensor,
    visual_loc: torch.Tensor,
    audio_loc: torch.Tensor,
    tau: float,
) -> torch.Tensor:
    """SLAVC's combined log-score ``log sum_l softmax_m(S1) * softmax_l(S2)`` [N, M].

    Args:
        visual_sel, visual_loc: [N, D, h, w] image maps of head 1 / head 2.
        audio_sel, audio_loc: [M, D] audio embeddings of head 1 / head 2.
        tau: temperature.
    """
    s1 = av_similarity(visual_sel, audio_sel).flatten(-2) / tau  # [N, M, L]
    s2 = av_similarity(visual_loc, audio_loc).flatten(-2) / tau
    log_p1 = F.log_softmax(s1, dim=1)  # over sounds
    log_p2 = F.log_softmax(s2, dim=2)  # over locations
    return torch.logsumexp(log_p1 + log_p2, dim=2)


@register("slavc")
class SLAVC(DenseVSLModel):
    """SLAVC (see the module docstring for equations, defaults and deviations).

    Args:
        tau: temperature (0.03).
        dim: projection dimension (512).
        dropout_img: dropout on the image backbone map (0.9).
        dropout_aud: dropout on the pooled audio feature (0).
        momentum_img, momentum_aud: EMA coefficients (0.999).
        use_mom_eval: localize/embed with the momentum encoders (True).
        gather_negatives: contrast against all ranks' audios under DDP.
        out_stride: IMAGE backbone output stride (the audio ResNet keeps the
            reference stride 32, ``audio_out_stride``); 32 is the paper's (7x7 at 224
            px); CPU configs at 128 px use 16 (8x8 instead of 4x4).
        **backbone arguments**: as :class:`~avbench.models.dense_vsl.DenseVSLModel`.
    """

    meta = ModelMeta(
        name="slavc",
        paper=(
            "A Closer Look at Weakly-Supervised Audio-Visual Source Localization "
            "(Mo & Morgado, NeurIPS 2022)"
        ),
        year=2022,
        capabilities=frozenset({"embed", "localize"}),
        reference_code="https://github.com/stoneMo/SLAVC",
    )

    def __init__(
        self,
        tau: float = 0.03,
        dim: int = 512,
        dropout_img: float = 0.9,
        dropout_aud: float = 0.0,
        momentum_img: float = 0.999,
        momentum_aud: float = 0.999,
        use_mom_eval: bool = True,
        gather_negatives: bool = True,
        out_stride: int = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__(out_stride=out_stride, **kwargs)
        self.save_hyperparameters()
        self.tau = tau
        self.dim = dim
        self.momentum_img = momentum_img
        self.momentum_aud = momentum_aud
        self.use_mom_eval = use_mom_eval
        self.gather_negatives = gather_negatives
        self.img_dropout = nn.Dropout(dropout_img)
        self.aud_dropout = nn.Dropout(dropout_aud)
        c_img, c_aud = self.image_encoder.out_channels, self.audio_encoder.out_channels
        self.image_proj1 = ConvProjection(c_img, dim)
        self.image_proj2 = ConvProjection(c_img, dim)
        self.audio_proj1 = LinearProjection(c_aud, dim)
        self.audio_proj2 = LinearProjection(c_aud, dim)
        for head in (self.image_proj1, self.image_proj2, self.audio_proj1, self.audio_proj2):
            ezvsl_init_(head)
        # Momentum copies: same weights at start, never updated by gradient.
        self._image_pairs = ("image_encoder", "image_proj1", "image_proj2")
        self._audio_pairs = ("audio_encoder", "audio_proj1", "audio_proj2")
        for name in self._image_pairs + self._audio_pairs:
            mom = copy.deepcopy(getattr(self, name))
            mom.requires_grad_(False)
            setattr(self, f"momentum_{name}", mom)

    # --- momentum ----------------------------------------------------------
    @torch.no_grad()
    def momentum_update(self) -> None:
        """``theta_m <- m theta_m + (1 - m) theta`` for every backbone and head."""
        for names, m in ((self._image_pairs, self.momentum_img),
                         (self._audio_pairs, self.momentum_aud)):
            for name in names:
                online = getattr(self, name)
                mom = getattr(self, f"momentum_{name}")
                for p_o, p_m in zip(online.parameters(), mom.parameters()):
                    p_m.mul_(m).add_(p_o.detach(), alpha=1.0 - m)

    # --- features ----------------------------------------------------------
    def visual_maps(
        self, image: torch.Tensor, momentum: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both heads' normalised image maps [B,D,h,w] (online or momentum)."""
        pre = "momentum_" if momentum else ""
        feat = self.img_dropout(getattr(self, f"{pre}image_encoder")(image))
        return getattr(self, f"{pre}image_proj1")(feat), getattr(self, f"{pre}image_proj2")(feat)

    def audio_embeddings(
        self, audio: torch.Tensor, momentum: bool = False, spec: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both heads' normalised audio embeddings [B,D] (online or momentum).

        ``spec`` (the front-end output of ``audio``) may be passed to avoid
        computing it twice.
        """
        pre = "momentum_" if momentum else ""
        spec = self.spectrogram(audio) if spec is None else spec
        feat = getattr(self, f"{pre}audio_encoder")(spec).flatten(2).max(dim=-1).values
        feat = self.aud_dropout(feat)
        return getattr(self, f"{pre}audio_proj1")(feat), getattr(self, f"{pre}audio_proj2")(feat)

    # --- loss ----------------------------------------------------------------
    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        image, audio = batch["image"], batch["audio"]
        spec = self.spectrogram(audio)
        v1, v2 = self.visual_maps(image)
        a1, a2 = self.audio_embeddings(audio, spec=spec)
        with torch.no_grad():
            if self.training:
                self.momentum_update()
            v1_m, v2_m = self.visual_maps(image, momentum=True)
            a1_m, a2_m = self.audio_embeddings(audio, momentum=True, spec=spec)

        if self.gather_negatives:
            a1_m_all, a2_m_all = all_gather_no_grad(a1_m), all_gather_no_grad(a2_m)
            a1_all, offset = gather_with_offset(a1)
            a2_all, _ = gather_with_offset(a2)
        else:
            a1_m_all, a2_m_all, a1_all, a2_all, offset = a1_m, a2_m, a1, a2, 0
        i2a = slavc_logits(v1, a1_m_all, v2, a2_m_all, self.tau)
        a2i = slavc_logits(v1_m, a1_all, v2_m, a2_all, self.tau)
        loss_i2a = info_nce_logits(i2a, offset)
        loss_a2i = info_nce_logits(a2i, offset)
        return {"total": loss_i2a + loss_a2i, "i2a": loss_i2a, "a2i": loss_a2i}

    # --- capabilities ----------------------------------------------------------
    def localize(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """``(S^1 + S^2) / 2`` own-pair maps of the two heads [B,h,w]."""
        v1, v2 = self.visual_maps(batch["image"], momentum=self.use_mom_eval)
        a1, a2 = self.audio_embeddings(batch["audio"], momentum=self.use_mom_eval)
        return 0.5 * (paired_similarity(v1, a1) + paired_similarity(v2, a2)) / self.tau

    def embed(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Head-1 embeddings of the (momentum) encoders; visual = mean-pooled map."""
        v1, _ = self.visual_maps(batch["image"], momentum=self.use_mom_eval)
        a1, _ = self.audio_embeddings(batch["audio"], momentum=self.use_mom_eval)
        return {"audio": a1, "visual": F.normalize(mean_over_locations(v1), dim=-1)}
