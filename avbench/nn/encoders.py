"""Shared image and audio backbones (REFERENCE C, "shared SSL backbone").

The EZ-VSL line (EZ-VSL, FNAC, SLAVC, LVS) and JSA all use a ResNet-18 to
``layer4`` for images (ImageNet weights in the papers) and a ResNet-18 trained
from scratch on a 1-channel log spectrogram for audio. Both are built with
``timm`` so any timm CNN can replace them from a config.

Weights are never downloaded (DESIGN 2): ``pretrained_path`` names a local
file (``.pth``/``.bin``/``.safetensors`` state dict in timm's key layout: a
timm ImageNet resnet18 file, or a stand-in of ``avbench pretrain``). The model
is built without timm's pretrained loading, shrunk as below, and only then
loaded with :func:`avbench.nn.weights.load_state_dict_strict`: every weight of
the (possibly narrowed) network must be in the file with its shape, classifier
keys (``fc.``, ``head.``, ``classifier.``) are ignored, and anything else is a
:class:`~avbench.nn.weights.WeightsError` naming the file and the keys (timm's
own loader would load before the stem is rebuilt and lose those weights).
A 3-channel stem in the file is summed to the encoder's ``in_chans`` (timm's
``adapt_input_conv``, e.g. ImageNet weights for a 1-channel spectrogram).
The default is no pretrained weights.

Shrinking for CPU: ``width`` sets the ResNet channel widths to
``(w, 2w, 4w, 8w)`` and ``layers`` the blocks per stage, both passed to
timm's ``ResNet`` constructor. Only the ResNet family accepts them.
timm's plain ResNet stem is always a 64-channel 7x7 stride-2 conv whatever
``channels`` says (its ``stem_width`` only applies to the "deep" stems), and at
full input resolution that stem dominates the cost of a narrow network (on a
257x200 spectrogram the stem and layer1's 64-channel inputs are ~60% of the
multiply-adds of a width-16, one-block-per-stage ResNet). So when
``width`` is given, the stem (``conv1``/``bn1``, same 7x7 stride-2 geometry)
is rebuilt with ``w`` channels and the first block of ``layer1`` is adapted to
take ``w`` input channels (its shortcut projection is dropped when it would
map ``w`` to ``w`` at stride 1, as in a ResNet whose stem and ``layer1`` have
the same width). ``width=None`` leaves the architecture untouched (the
paper's resnet18 with its 64-channel stem).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import adapt_input_conv
from timm.models._features import FeatureGetterNet
from torch import nn

from avbench.nn.weights import WeightsNotFoundError, load_state_dict_strict, resolve_weights_path

__all__ = ["AudioEncoder", "ImageEncoder", "build_backbone"]


def _layer4_stride_one(model: nn.Module) -> None:
    """Make ``layer4`` keep its input resolution WITHOUT dilation.

    This is how the LVS reference code gets its 14x14 map at 224 px
    (``layer4`` built with ``stride=1``; ResNet output stride 16). timm's own
    ``output_stride=16`` would instead dilate ``layer4``, which changes the
    receptive field; we follow LVS.
    """
    first = model.layer4[0]
    for m in first.modules():
        if isinstance(m, (nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d)):
            stride = m.stride if isinstance(m.stride, tuple) else (m.stride, m.stride)
            if stride != (1, 1):
                m.stride = (1, 1) if isinstance(m, nn.Conv2d) else 1
                if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)):
                    # a stride-1 pool in a shortcut must not change the size
                    m.kernel_size, m.padding = 1, 0


def _narrow_stem(model: nn.Module, in_chans: int, width: int) -> None:
    """Rebuild a timm ResNet stem with ``width`` channels; adapt ``layer1[0]``'s inputs."""
    old = model.conv1
    if not isinstance(old, nn.Conv2d):  # a "deep" stem (Sequential): left as timm builds it
        return
    if old.out_channels == width:
        return
    model.conv1 = nn.Conv2d(
        in_chans, width, kernel_size=old.kernel_size, stride=old.stride,
        padding=old.padding, bias=False,
    )
    model.bn1 = type(model.bn1)(width)
    block = model.layer1[0]
    block.conv1 = nn.Conv2d(
        width, block.conv1.out_channels, kernel_size=block.conv1.kernel_size,
        stride=block.conv1.stride, padding=block.conv1.padding, bias=False,
    )
    ds = getattr(block, "downsample", None)
    if ds is not None:
        conv = next(m for m in ds.modules() if isinstance(m, nn.Conv2d))
        stride = conv.stride if isinstance(conv.stride, tuple) else (conv.stride,) * 2
        if conv.out_channels == width and stride == (1, 1):
            block.downsample = None  # identity shortcut, as a same-width ResNet stage
        else:
            new = nn.Conv2d(width, conv.out_channels, kernel_size=conv.kernel_size,
                            stride=conv.stride, padding=conv.padding, bias=False)
            for name, m in ds.named_children():
                if m is conv:
                    setattr(ds, name, new)
    # timm's ResNet initialisation for the rebuilt layers
    for m in (model.conv1, model.bn1, *block.modules()):
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d) and m is model.bn1:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_backbone(
    arch: str,
    in_chans: int,
    pretrained_path: str | None,
    out_stride: int,
    width: int | None,
    layers: Sequence[int] | None,
    zero_init_last: bool = True,
) -> tuple[nn.Module, int]:
    """A timm feature extractor returning its last feature map, and its channels.

    ``pretrained_path``: a local weights file, strict-loaded after the stem is
    narrowed (module docstring).

    Raises:
        WeightsNotFoundError: ``pretrained_path`` names no file (also a ``FileNotFoundError``).
        WeightsError: the file is unreadable or does not fit the network.
        ValueError: ``width``/``layers`` on an architecture that has no such options.

    ``zero_init_last=False`` keeps the last BatchNorm weight of every residual
    block at 1 (torchvision's ``zero_init_residual=False``, the JSA reference
    audio ResNet); ``True`` is timm's default (those weights start at 0).
    """
    kwargs: dict[str, Any] = {}
    if not zero_init_last:
        kwargs["zero_init_last"] = False
    if width is not None:
        kwargs["channels"] = (width, 2 * width, 4 * width, 8 * width)
    if layers is not None:
        kwargs["layers"] = tuple(layers)
    path = None if pretrained_path is None else resolve_weights_path(pretrained_path)
    if path is not None and not path.is_file():
        raise WeightsNotFoundError(
            f"pretrained weights for {arch!r} not found at {str(path)!r}: avbench never "
            "downloads weights; give the path of a local state-dict file (the synthetic "
            "world's stand-ins: `make standins`, or `avbench pretrain NAME --out DIR`)"
        )
    if out_stride not in (16, 32):
        raise ValueError(f"out_stride must be 16 or 32, got {out_stride}")
    manual_stride = out_stride == 16 and arch.startswith("resnet")
    if out_stride == 16 and not manual_stride:
        kwargs["output_stride"] = 16  # dilated last stage for non-ResNet archs
    try:
        model = timm.create_model(
            arch,
            pretrained=False,
            in_chans=in_chans,
            features_only=True,
            out_indices=(-1,),
            **kwargs,
        )
    except TypeError as err:  # e.g. width/layers on a non-ResNet architecture
        raise ValueError(f"cannot build {arch!r} with {sorted(kwargs)}: {err}") from err
    if width is not None and hasattr(model, "conv1") and hasattr(model, "layer1"):
        _narrow_stem(model, in_chans, width)
    if manual_stride:
        _layer4_stride_one(model)
    if path is not None:
        _load_local(model, path, arch, in_chans)
    return model, int(model.feature_info.channels()[-1])


def _load_local(model: nn.Module, path: Path, arch: str, in_chans: int) -> None:
    """Strict-load ``path`` into the built (narrowed) feature extractor (module docstring)."""
    target = model.model if isinstance(model, FeatureGetterNet) else model
    first = (getattr(model, "pretrained_cfg", None) or {}).get("first_conv", "conv1")
    first = first[0] if isinstance(first, (list, tuple)) else first

    def adapt(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        key = f"{first}.weight"
        w = state.get(key)
        if w is not None and w.ndim == 4 and w.shape[1] != in_chans:
            state = {**state, key: adapt_input_conv(in_chans, w)}
        return state

    load_state_dict_strict(target, path, what=f"{arch} backbone", adapt=adapt)


class ImageEncoder(nn.Module):
    """Image backbone to its last feature map.

    Args:
        arch: timm architecture (paper default ``resnet18``).
        pretrained_path: local weights file, ``None`` = random init.
        out_stride: 32 (7x7 at 224 px, EZ-VSL/FNAC/SLAVC/JSA) or 16 (14x14,
            LVS: ``layer4`` with stride 1, no dilation).
        width: ResNet base width (``None`` = the architecture's, 64).
        layers: ResNet blocks per stage (``None`` = the architecture's).
        zero_init_last: timm's zero init of each block's last BN weight
            (default); ``False`` keeps them at 1 (:func:`build_backbone`).

    ``forward(image [B,3,H,W] RGB in [0,1]) -> [B, out_channels, h, w]``;
    ImageNet mean/std normalisation happens inside (a buffer), so loaders
    hand over raw [0,1] images (DESIGN 4.1).
    """

    def __init__(
        self,
        arch: str = "resnet18",
        pretrained_path: str | None = None,
        out_stride: int = 32,
        width: int | None = None,
        layers: Sequence[int] | None = None,
        zero_init_last: bool = True,
    ) -> None:
        super().__init__()
        self.backbone, self.out_channels = build_backbone(
            arch, 3, pretrained_path, out_stride, width, layers, zero_init_last
        )
        cfg = getattr(self.backbone, "pretrained_cfg", None) or {}
        mean = cfg.get("mean", IMAGENET_DEFAULT_MEAN)
        std = cfg.get("std", IMAGENET_DEFAULT_STD)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = (image - self.mean) / self.std
        return self.backbone(x)[-1]


class AudioEncoder(nn.Module):
    """Audio backbone on a spectrogram, to its last feature map.

    Args:
        arch: timm architecture (paper default ``resnet18``, from scratch).
        in_chans: spectrogram channels (1 in every paper here).
        pretrained_path: local weights file (timm adapts the first conv to
            ``in_chans``), ``None`` = random init (the papers' choice).
        out_stride: 32, or 16 (LVS builds its audio ResNet with the same
            stride-1 ``layer4`` as its image ResNet).
        width, layers, zero_init_last: as for :class:`ImageEncoder`.

    ``forward(spec [B,in_chans,F,T]) -> [B, out_channels, f, t]``. Global
    pooling is left to each model (the EZ-VSL line uses global max pooling).
    """

    def __init__(
        self,
        arch: str = "resnet18",
        in_chans: int = 1,
        pretrained_path: str | None = None,
        out_stride: int = 32,
        width: int | None = None,
        layers: Sequence[int] | None = None,
        zero_init_last: bool = True,
    ) -> None:
        super().__init__()
        self.backbone, self.out_channels = build_backbone(
            arch, in_chans, pretrained_path, out_stride, width, layers, zero_init_last
        )

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.backbone(spec)[-1]
