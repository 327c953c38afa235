"""EZ-VSL: "Localizing Visual Sounds the Easy Way" (Mo & Morgado, ECCV 2022).

Reference code: https://github.com/stoneMo/EZ-VSL (``model.py``, ``train.py``,
``test.py``). The plumbing the whole EZ-VSL line shares (FNAC and SLAVC build
on EZ-VSL's code; LVS shares the backbones and front-end) is
:class:`~avbench.models.dense_vsl.DenseVSLModel`.

Architecture (REFERENCE C, shared SSL backbone)
    image: ResNet-18 to ``layer4`` (7x7x512 at 224 px; ImageNet weights in the
    paper) -> 1x1 conv to ``dim`` -> L2 normalisation per location: ``v_n(h,w)``.
    audio: log spectrogram (:class:`avbench.nn.frontends.LogSpectrogram`, 257
    bins) -> ResNet-18 from scratch with a 1-channel stem -> global MAX pool
    -> linear to ``dim`` -> L2 normalisation: ``a_m``.
    Weights not loaded from a checkpoint follow the reference initialisation
    (convs Kaiming-normal fan-out, linears truncated normal std 0.01,
    norm layers weight N(1, 0.02) and bias 0).

Loss (the paper's multiple-instance contrastive objective; reference
``max_xmil_loss``)
    Similarity map ``S[n,m,h,w] = <v_n(h,w), a_m> / tau`` and the
    multiple-instance score ``s(n,m) = max_{h,w} S[n,m,h,w]`` (at least one
    location of the image must match the sound).
    Symmetric cross-entropy, two named terms summed as in the reference
    (``F.cross_entropy(logits) + F.cross_entropy(logits.T)``, not averaged):

    - ``v2a``: cross-entropy of each image over the batch's audios;
    - ``a2v``: cross-entropy of each audio over the batch's images.

Localization
    ``localize`` = ``S[n,n]``: the own-pair similarity map at feature
    resolution (AVL map). ``localize_ogl`` adds the paper's object-guided
    localization (OGL): ``alpha * norm(AVL) + (1-alpha) * norm(OBJ)``
    with ``OBJ = mean_c |layer4_c|`` of an ImageNet ResNet-18 and
    ``alpha = 0.4`` (reference ``test.py``), reported as a separate column
    (REFERENCE A1).

Embeddings (``embed``; REFERENCE A3)
    audio: the normalised audio embedding ``a_n``. visual: the max over
    locations of ``S`` is a score, not an embedding, so the visual embedding is
    the MEAN over locations of the projected, per-location-normalised map
    ``v_n``, re-normalised. (The paper does not evaluate retrieval.)

Defaults (reference ``train.py``, README): ``tau = 0.03``, ``dim = 512``,
Adam, lr 1e-4, no weight decay, fp32, GLOBAL batch 128 (``train.py``
divides the command-line batch by the world size; ``global_batch_size``
here, from which the datamodule derives the per-device batch), 20 epochs
(100 for the 10k subsets; set in the paper suites), 224 px images, 3 s
audio at 16 kHz (``spectrogram.clip_seconds``: the centre 3 s of the loaded
window). Training augmentation (``datasets.py`` ``get_train_dataset``):
shorter side to 246 keeping the aspect ratio (bicubic), random 224 crop,
horizontal flip: the data's ``train_augment: ezvsl``. The paper configs and
every reference value are tabulated in docs/models.md ("Paper configs").

Deviations, with reasons
    - Negatives are gathered across ranks with gradient (DESIGN 4.4): under
      DDP each rank scores its local images against the audios of ALL ranks
      (and its audios against all images). The reference divides the batch
      by the number of GPUs and contrasts within each GPU's slice only, so
      the number of negatives depended on the GPU count; here it equals the
      global batch whatever the device count. ``gather_negatives=False``
      restores the per-device behaviour. On one device both are identical.
    - OGL's object prior: the reference uses a SEPARATE frozen ImageNet
      ResNet-18. Weights cannot be downloaded here, so it is built only when
      ``ogl_pretrained_path`` names a local file; otherwise ``localize_ogl``
      uses the model's own (fine-tuned) image backbone, which is documented
      as a fallback, not the paper's setting. OGL is combined at feature
      resolution: bilinear upsampling is a convex combination so per-image
      min-max normalisation commutes with it, and the result equals the
      reference's combination at 224 px up to the final upsampling.
    - The backbones are timm models (``resnet18`` by default) instead of
      torchvision's; with ``resnet18.tv_in1k`` weights the image network is
      torchvision's ImageNet ResNet-18 used by the paper.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from avbench.models.base import ModelMeta, register
from avbench.models.dense_vsl import DenseVSLModel, ezvsl_init_
from avbench.nn.distributed import gather_with_offset
from avbench.nn.heads import ConvProjection, LinearProjection
from avbench.nn.losses import info_nce_logits
from avbench.nn.similarity import (
    av_similarity,
    max_over_locations,
    mean_over_locations,
    paired_similarity,
)

__all__ = ["EZVSL"]


@register("ezvsl")
class EZVSL(DenseVSLModel):
    """EZ-VSL (see the module docstring for equations, defaults and deviations).

    Args:
        tau: temperature of the similarity map (0.03).
        dim: projection dimension (512).
        gather_negatives: contrast against all ranks' samples under DDP.
        out_stride: IMAGE backbone output stride (the audio ResNet keeps the
            reference stride 32, ``audio_out_stride``); 32 is the paper's (7x7 map at
            224 px). CPU configs at 128 px use 16 (8x8, close to the paper's
            7x7 map; 32 would give 4x4).
        **kwargs: backbone/front-end/optimiser arguments of
            :class:`DenseVSLModel`.
    """

    meta = ModelMeta(
        name="ezvsl",
        paper="Localizing Visual Sounds the Easy Way (Mo & Morgado, ECCV 2022)",
        year=2022,
        capabilities=frozenset({"embed", "localize"}),
        reference_code="https://github.com/stoneMo/EZ-VSL",
    )

    def __init__(
        self,
        tau: float = 0.03,
        dim: int = 512,
        gather_negatives: bool = True,
        out_stride: int = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__(out_stride=out_stride, **kwargs)
        self.save_hyperparameters()
        self.tau = tau
        self.dim = dim
        self.gather_negatives = gather_negatives
        self.image_proj = ConvProjection(self.image_encoder.out_channels, dim)
        self.audio_proj = LinearProjection(self.audio_encoder.out_channels, dim)
        ezvsl_init_(self.image_proj)
        ezvsl_init_(self.audio_proj)

    # --- features -------------------------------------------------------
    def visual_map(self, image: torch.Tensor) -> torch.Tensor:
        """Projected, per-location L2-normalised image map ``v`` [B,D,h,w]."""
        return self.image_proj(self.image_backbone(image))

    def audio_embedding(self, audio: torch.Tensor) -> torch.Tensor:
        """Projected, L2-normalised audio embedding ``a`` [B,D]."""
        return self.audio_proj(self.audio_backbone(audio))

    def _gather(self, t: torch.Tensor) -> tuple[torch.Tensor, int]:
        return gather_with_offset(t) if self.gather_negatives else (t, 0)

    def mil_logits(
        self, visual: torch.Tensor, audio: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Multiple-instance logits (max over locations) of local rows against gathered columns.

        Returns ``(v2a [B,N], a2v [B,N], offset)``: ``v2a[i,j] = max_hw
        <v_i, a_j>/tau`` over all ranks' audios j, ``a2v[i,j] = max_hw
        <v_j, a_i>/tau`` over all ranks' images j; local pair i sits at column
        ``offset + i``.
        """
        audio_all, offset = self._gather(audio)
        visual_all, _ = self._gather(visual)
        v2a = max_over_locations(av_similarity(visual, audio_all)) / self.tau
        a2v = max_over_locations(av_similarity(visual_all, audio)).t() / self.tau
        return v2a, a2v, offset

    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        visual = self.visual_map(batch["image"])
        audio = self.audio_embedding(batch["audio"])
        v2a, a2v, offset = self.mil_logits(visual, audio)
        loss_v2a = info_nce_logits(v2a, offset)
        loss_a2v = info_nce_logits(a2v, offset)
        return {"total": loss_v2a + loss_a2v, "v2a": loss_v2a, "a2v": loss_a2v}

    # --- capabilities -----------------------------------------------------
    def localize(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """AVL map ``S[n,n] = <v_n(h,w), a_n> / tau`` [B,h,w]."""
        visual = self.visual_map(batch["image"])
        audio = self.audio_embedding(batch["audio"])
        return paired_similarity(visual, audio) / self.tau

    def embed(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """``audio``: ``a_n``; ``visual``: mean over locations of ``v_n``, re-normalised."""
        visual = self.visual_map(batch["image"])
        audio = self.audio_embedding(batch["audio"])
        return {"audio": audio, "visual": F.normalize(mean_over_locations(visual), dim=-1)}
