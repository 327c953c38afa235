"""The EZ-VSL family's shared base: :class:`DenseVSLModel` and :func:`ezvsl_init_`.

EZ-VSL (:mod:`avbench.models.ezvsl`), FNAC and SLAVC build on EZ-VSL's code and
LVS shares its backbones and front-end; this module holds what they share: the
EZ-VSL log spectrogram (:class:`avbench.nn.frontends.LogSpectrogram`), the
image and audio ResNets (the audio one globally max-pooled), the reference
initialisation, the train/val steps over named loss terms and object-guided
localization (OGL). The backbone and OGL deviations from the reference code
are listed in :mod:`avbench.models.ezvsl`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from avbench.models.base import AVModel
from avbench.nn.encoders import AudioEncoder, ImageEncoder, _layer4_stride_one
from avbench.nn.frontends import LogSpectrogram
from avbench.nn.similarity import object_saliency, ogl_combine

__all__ = ["DenseVSLModel", "ezvsl_init_"]


def ezvsl_init_(module: nn.Module) -> None:
    """Reference initialisation of the EZ-VSL line for non-pretrained parts.

    Convs: Kaiming normal (fan-out, ReLU); linears: truncated normal std 0.01;
    batch/group norms: weight N(1, 0.02), bias 0 (EZ-VSL ``model.py``).
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, mean=1.0, std=0.02)
            nn.init.constant_(m.bias, 0.0)


class DenseVSLModel(AVModel):
    """Shared plumbing of the EZ-VSL line: front-end, backbones, steps, OGL.

    Subclasses implement :meth:`compute_losses` (a dict of named terms plus
    ``"total"``), :meth:`embed` and :meth:`localize`. Backbone arguments:

    Args:
        image_arch, audio_arch: timm architectures (paper: ``resnet18``).
        image_pretrained, audio_pretrained: local weight files (``None`` =
            random init; the papers use ImageNet weights for the image net).
        image_width, audio_width: ResNet base width (``None`` = 64); for CPU
            configs.
        image_layers, audio_layers: ResNet blocks per stage (``None`` =
            ``(2, 2, 2, 2)`` for resnet18); for CPU configs.
        out_stride: image backbone output stride, 32 or 16.
        audio_out_stride: audio backbone output stride (the EZ-VSL line's
            reference: 32; LVS: 16, as its image net).
        lr_scales: learning-rate multipliers by parameter-name prefix, e.g.
            ``{"image_encoder": 0.1}`` (:meth:`AVModel.lr_scales`); ``None``:
            the papers' single learning rate.
        spectrogram: keyword arguments of :class:`LogSpectrogram` (``None`` =
            its defaults, the EZ-VSL recipe: n_fft 512, hop 238, log(S+1e-7)/12).
        ogl_pretrained_path: local ImageNet weights for OGL's separate object
            prior network (see module docstring); ``None`` = own backbone.
        ogl_alpha: OGL mixing weight of the AV map.
        global_batch_size: the paper's GLOBAL training batch (all devices);
            the datamodule derives the per-device batch from it and the world
            size (:meth:`AVDataModule.resolve_batch_size`). ``None`` (default):
            the data config's per-device ``batch_size``.
        lr, weight_decay, optimizer, betas: see :class:`AVModel`.
    """

    def __init__(
        self,
        image_arch: str = "resnet18",
        image_pretrained: str | None = None,
        image_width: int | None = None,
        image_layers: Sequence[int] | None = None,
        audio_arch: str = "resnet18",
        audio_pretrained: str | None = None,
        audio_width: int | None = None,
        audio_layers: Sequence[int] | None = None,
        out_stride: int = 32,
        audio_out_stride: int = 32,
        lr_scales: Mapping[str, float] | None = None,
        spectrogram: dict[str, Any] | None = None,
        ogl_pretrained_path: str | None = None,
        ogl_alpha: float = 0.4,
        global_batch_size: int | None = None,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        optimizer: Literal["adam", "adamw"] = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay, optimizer=optimizer, betas=betas)
        self.spectrogram = LogSpectrogram(**(spectrogram or {}))
        self.image_encoder = ImageEncoder(
            image_arch, image_pretrained, out_stride=out_stride, width=image_width,
            layers=image_layers,
        )
        self.audio_encoder = AudioEncoder(
            audio_arch, 1, audio_pretrained, out_stride=audio_out_stride, width=audio_width,
            layers=audio_layers,
        )
        if audio_pretrained is None:
            ezvsl_init_(self.audio_encoder)
        bad = {k: v for k, v in (lr_scales or {}).items() if not v > 0}
        if bad:
            raise ValueError(f"lr_scales must be > 0, got {bad}")
        self._lr_scales = dict(lr_scales or {})
        self.audio_out_stride = audio_out_stride
        self.ogl_alpha = ogl_alpha
        self.global_batch_size = global_batch_size
        self.object_encoder: ImageEncoder | None = None
        if ogl_pretrained_path is not None:
            self.object_encoder = ImageEncoder(image_arch, ogl_pretrained_path)
            self.object_encoder.requires_grad_(False)
            self.object_encoder.eval()

    def lr_scales(self) -> Mapping[str, float]:
        """The ``lr_scales`` argument (empty by default)."""
        return self._lr_scales

    # --- checkpoints --------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the audio ResNet's stride (checkpoints before it existed ran it at ``out_stride``)."""
        checkpoint["audio_out_stride"] = self.audio_out_stride

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Build the audio ResNet at the stride the checkpoint was trained with.

        A checkpoint that records ``audio_out_stride`` 16 while this model was built at 32
        gets ``layer4`` at stride 1 (same weights, the trained network). Checkpoints without
        the record are ambiguous: before session 6 (commit 032a0a7) the EZ-VSL line ran the
        audio ResNet at the image ``out_stride``; from then on at 32. They load as built
        (32); pass ``audio_out_stride=16`` to load an older ``out_stride`` 16 checkpoint as
        it was trained.

        Raises:
            ValueError: the checkpoint's stride is 32 and the model was built at 16.
        """
        saved = checkpoint.get("audio_out_stride")
        if saved is None or saved == self.audio_out_stride:
            return
        if saved != 16:
            raise ValueError(f"checkpoint audio_out_stride {saved} but the model was built at "
                             f"{self.audio_out_stride}: build it with audio_out_stride={saved}")
        for m in self.modules():
            if isinstance(m, AudioEncoder):
                _layer4_stride_one(m.backbone)
        self.audio_out_stride = 16

    # --- features -------------------------------------------------------
    def audio_backbone(self, audio: torch.Tensor) -> torch.Tensor:
        """Waveform [B,1,L] -> globally MAX-pooled audio feature [B,C]."""
        feat = self.audio_encoder(self.spectrogram(audio))
        return feat.flatten(2).max(dim=-1).values

    def image_backbone(self, image: torch.Tensor) -> torch.Tensor:
        """Image [B,3,H,W] in [0,1] -> backbone map [B,C,h,w]."""
        return self.image_encoder(image)

    # --- steps ------------------------------------------------------------
    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.compute_losses(batch)
        self.log_losses(losses, "train", batch["image"].shape[0])
        return losses["total"]

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.compute_losses(batch)
        self.log_losses(losses, "val", batch["image"].shape[0])
        return losses["total"]

    # --- OGL ----------------------------------------------------------------
    def object_map(self, image: torch.Tensor) -> torch.Tensor:
        """Object saliency ``mean_c |layer4_c|`` [B,h,w] (EZ-VSL OGL prior)."""
        encoder = self.object_encoder if self.object_encoder is not None else self.image_encoder
        if self.object_encoder is not None:
            self.object_encoder.eval()
        return object_saliency(encoder(image))

    def localize_ogl(self, batch: Mapping[str, Any], alpha: float | None = None) -> torch.Tensor:
        """Object-guided localization: ``alpha*norm(AV) + (1-alpha)*norm(OBJ)`` [B,h,w]."""
        av = self.localize(batch)
        obj = self.object_map(batch["image"])
        if obj.shape[-2:] != av.shape[-2:]:
            obj = F.interpolate(obj[:, None], size=av.shape[-2:], mode="bilinear",
                                align_corners=False)[:, 0]
        return ogl_combine(av, obj, self.ogl_alpha if alpha is None else alpha)
