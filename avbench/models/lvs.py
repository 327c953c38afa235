"""LVS: "Localizing Visual Sounds the Hard Way" (Chen et al., CVPR 2021).

Reference code: https://github.com/hche11/Localizing-Visual-Sounds-the-Hard-Way
(``model.py`` class ``AVENet``, ``models/base_models.py``, ``test.py``; the
training script is not released).

Architecture (reference ``AVENet``)
    image: ResNet-18 whose ``layer4`` has stride 1 (no dilation), giving a
    14x14x512 map at 224 px, L2-normalised per location, NO projection.
    audio: log spectrogram -> ResNet-18 (1-channel stem, the same stride-1
    ``layer4``) -> global MAX pool -> L2 normalisation, no projection.
    Both backbones use ``out_stride=16`` of :class:`avbench.nn.ImageEncoder`.

Loss (the paper's tri-map contrastive loss with hard negatives; reference
``forward``)
    ``A[n,h,w] = <v_n(h,w), a_n>`` (cosine map of the own pair) and
    ``A0[n,m,h,w] = <v_n(h,w), a_m>`` (all pairs). Differentiable tri-map:

    - positive region ``P = sigmoid((A - eps_p) / t)`` (eps_p 0.65, t 0.03);
    - negative region ``N = 1 - sigmoid((A - eps_n) / t)`` (eps_n 0.4); the
      band in between is ignored (``tri_map=False`` uses ``N = 1 - P``);
    - for other pairs ``P0 = sigmoid((A0 - eps_p) / t)``.

    Region similarities (weighted means): ``pos_n = <P, A>/|P|``,
    ``neg_nm = <P0_nm, A0_nm>/|P0_nm|`` (easy negatives: other audios on
    their own positive region), ``hard_n = <N, A>/|N|`` (hard negative: the
    own audio on the image's background). Logits
    ``[pos_n, neg_n., hard_n] / 0.07`` with cross-entropy to index 0
    (logged as ``hard_contrastive``; ``hard_negative=False`` drops
    ``hard_n``). As in the reference, the own-pair entry of ``neg`` is
    multiplied by ``1 - 100`` (the "mask" ``1 - 100 * eye``): the features are
    post-ReLU so cosines are >= 0 and this pushes the positive out of the
    negatives.

Localization: ``A[n]``, the 14x14 own-pair cosine map (reference ``test.py``
upsamples ``A``). Embeddings (not in the paper): audio ``a_n``; visual the
mean over locations of the normalised map ``v_n``, re-normalised.

Defaults: eps_p 0.65, eps_n 0.4, sigmoid temperature 0.03, logit temperature
0.07, tri-map and hard negative on (reference ``test.py``/``model.py``);
ImageNet-pretrained image ResNet-18, audio from scratch, 224 px, 16 kHz.
Audio length: the public test code reads 10 s (``datasets/dataloader.py``:
``samples[:samplerate*10]``, 257 x 671 at 16 kHz with the line's STFT); the
paper states 257 x 300 spectrograms, which no clip length gives at 16 kHz
with that STFT (300 frames = 4.5 s), so ``lvs.yaml`` follows the released
code: ``spectrogram.clip_seconds: 10`` (the datamodule's centre 10-s window,
i.e. the whole 10-s VGGSound clip; the reference takes the FIRST 10 s, the
same for 10-s clips). Optimiser and schedule: the training code is
unreleased, so the paper config uses the EZ-VSL line's protocol (Adam, lr
1e-4, GLOBAL batch 128, fp32, 20 epochs, 100 on the 10k sets; the reference
train transform of ``dataloader.py``) under which EZ-VSL/FNAC/SLAVC re-report
LVS.

Deviations, with reasons
    - Under DDP the easy negatives are all ranks' audios (gathered with
      gradient) so the softmax matches the single-device global batch; the
      reference code contrasts within its (DataParallel) batch.
      ``gather_negatives=False`` restores per-device negatives.
    - The reference constructor re-initialises every conv/BN (Kaiming
      fan-out; BN weight N(1, 0.02)) and leaves ImageNet loading commented
      out; here pretrained image weights are kept when a local file is
      given and everything else gets that initialisation.
    - Backbones are timm ``resnet18`` with ``layer4``'s stride set to 1,
      matching the reference's stride-1 ``layer4`` exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from avbench.models.base import ModelMeta, register
from avbench.models.dense_vsl import DenseVSLModel, ezvsl_init_
from avbench.nn.distributed import gather_with_offset
from avbench.nn.similarity import av_similarity, mean_over_locations, paired_similarity

__all__ = ["LVS", "lvs_logits"]


def _region_mean(weight: torch.Tensor, sim: torch.Tensor) -> torch.Tensor:
    """``sum_hw(weight * sim) / sum_hw(weight)`` over the trailing two dims."""
    return (weight * sim).flatten(-2).sum(-1) / weight.flatten(-2).sum(-1)


def lvs_logits(
    own: torch.Tensor,
    cross: torch.Tensor,
    offset: int = 0,
    eps_pos: float = 0.65,
    eps_neg: float = 0.4,
    sharpness: float = 0.03,
    temperature: float = 0.07,
    tri_map: bool = True,
    hard_negative: bool = True,
) -> torch.Tensor:
    """LVS logits ``[pos, easy negatives..., hard negative] / temperature``.

    Args:
        own: [B, h, w] cosine map of each image with its own audio (``A``).
        cross: [B, N, h, w] cosine maps of each local image with all N
            (gathered) audios (``A0``); the own pair sits at ``offset + i``.

    Returns:
        [B, 1 + N (+1)] logits whose target is column 0.
    """
    b = own.shape[0]
    pos_w = torch.sigmoid((own - eps_pos) / sharpness)
    neg_w = 1.0 - torch.sigmoid((own - eps_neg) / sharpness) if tri_map else 1.0 - pos_w
    pos = _region_mean(pos_w, own)[:, None]
    easy = _region_mean(torch.sigmoid((cross - eps_pos) / sharpness), cross)
    mask = torch.ones_like(easy)
    mask[torch.arange(b, device=own.device), offset + torch.arange(b, device=own.device)] = 1 - 100
    parts = [pos, easy * mask]
    if hard_negative:
        parts.append(_region_mean(neg_w, own)[:, None])
    return torch.cat(parts, dim=1) / temperature


@register("lvs")
class LVS(DenseVSLModel):
    """LVS (see the module docstring for equations, defaults and deviations).

    Args:
        eps_pos: positive-region threshold (0.65).
        eps_neg: negative-region threshold (0.4).
        sharpness: sigmoid temperature of the tri-map (0.03).
        temperature: logit temperature (0.07).
        tri_map: separate negative threshold (True) or ``N = 1 - P``.
        hard_negative: include the own background as a hard negative (True).
        gather_negatives: contrast against all ranks' audios under DDP.
        **backbone arguments**: as :class:`~avbench.models.dense_vsl.DenseVSLModel`
            (both backbones are built with output stride 16).
    """

    meta = ModelMeta(
        name="lvs",
        paper="Localizing Visual Sounds the Hard Way (Chen et al., CVPR 2021)",
        year=2021,
        capabilities=frozenset({"embed", "localize"}),
        reference_code="https://github.com/hche11/Localizing-Visual-Sounds-the-Hard-Way",
    )

    def __init__(
        self,
        eps_pos: float = 0.65,
        eps_neg: float = 0.4,
        sharpness: float = 0.03,
        temperature: float = 0.07,
        tri_map: bool = True,
        hard_negative: bool = True,
        gather_negatives: bool = True,
        image_pretrained: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(image_pretrained=image_pretrained, out_stride=16, audio_out_stride=16,
                         **kwargs)
        self.save_hyperparameters()
        if image_pretrained is None:
            ezvsl_init_(self.image_encoder)
        self.eps_pos = eps_pos
        self.eps_neg = eps_neg
        self.sharpness = sharpness
        self.temperature = temperature
        self.tri_map = tri_map
        self.hard_negative = hard_negative
        self.gather_negatives = gather_negatives

    def visual_map(self, image: torch.Tensor) -> torch.Tensor:
        """Per-location L2-normalised image map [B,C,h,w] (no projection)."""
        return F.normalize(self.image_backbone(image), dim=1)

    def audio_embedding(self, audio: torch.Tensor) -> torch.Tensor:
        """Max-pooled, L2-normalised audio feature [B,C] (no projection)."""
        return F.normalize(self.audio_backbone(audio), dim=-1)

    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        visual = self.visual_map(batch["image"])
        audio = self.audio_embedding(batch["audio"])
        audio_all, offset = gather_with_offset(audio) if self.gather_negatives else (audio, 0)
        logits = lvs_logits(
            paired_similarity(visual, audio), av_similarity(visual, audio_all), offset,
            self.eps_pos, self.eps_neg, self.sharpness, self.temperature, self.tri_map,
            self.hard_negative,
        )
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        loss = F.cross_entropy(logits, target)
        return {"total": loss, "hard_contrastive": loss}

    def localize(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Own-pair cosine map ``A`` [B,h,w] (14x14 at 224 px)."""
        return paired_similarity(self.visual_map(batch["image"]),
                                 self.audio_embedding(batch["audio"]))

    def embed(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """``audio``: ``a_n``; ``visual``: mean over locations of ``v_n``, re-normalised."""
        visual = self.visual_map(batch["image"])
        return {"audio": self.audio_embedding(batch["audio"]),
                "visual": F.normalize(mean_over_locations(visual), dim=-1)}
