"""Shared backbones: shapes, strides, shrinking, local-only pretrained weights."""

from __future__ import annotations

import pytest
import timm
import torch

from avbench.nn.encoders import AudioEncoder, ImageEncoder
from avbench.nn.heads import ConvProjection, LinearProjection, MLPHead


def test_image_encoder_default_is_resnet18_layer4_and_lvs_stride():
    enc = ImageEncoder()
    assert enc.out_channels == 512
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        assert enc(x).shape == (1, 512, 7, 7)
        lvs = ImageEncoder(out_stride=16)
        assert lvs(x).shape == (1, 512, 14, 14)
    # LVS: layer4 keeps resolution by stride 1, not by dilation
    convs = [m for m in lvs.backbone.layer4.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.stride == (1, 1) and c.dilation == (1, 1) for c in convs)


def test_encoders_shrink_for_cpu():
    img = ImageEncoder(width=8, layers=(1, 1, 1, 1))
    aud = AudioEncoder(width=8, layers=(1, 1, 1, 1))
    assert img.out_channels == aud.out_channels == 64
    assert img(torch.rand(2, 3, 64, 64)).shape == (2, 64, 2, 2)
    assert aud(torch.randn(2, 1, 257, 40)).shape[:2] == (2, 64)


def test_image_encoder_normalises_with_imagenet_stats():
    enc = ImageEncoder(width=8, layers=(1, 1, 1, 1))
    torch.testing.assert_close(enc.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    torch.testing.assert_close(enc.std.flatten(), torch.tensor([0.229, 0.224, 0.225]))


def test_pretrained_weights_load_only_from_a_local_file(tmp_path):
    ref = timm.create_model("resnet18", num_classes=0)
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    enc = ImageEncoder(pretrained_path=str(path))
    torch.testing.assert_close(enc.backbone.layer3[0].conv1.weight, ref.layer3[0].conv1.weight)
    aud = AudioEncoder(pretrained_path=str(path))  # 3-channel stem adapted to 1 channel
    torch.testing.assert_close(aud.backbone.conv1.weight, ref.conv1.weight.sum(1, keepdim=True))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        ImageEncoder(pretrained_path=str(tmp_path / "missing.pth"))


def test_heads_normalise():
    conv = ConvProjection(8, 4)
    lin = LinearProjection(8, 4)
    mlp = MLPHead(8, 16, 4)
    assert torch.allclose(conv(torch.randn(2, 8, 3, 3)).norm(dim=1), torch.ones(2, 3, 3))
    assert torch.allclose(lin(torch.randn(5, 8)).norm(dim=-1), torch.ones(5))
    assert torch.allclose(mlp(torch.randn(5, 8)).norm(dim=-1), torch.ones(5))
    assert not torch.allclose(ConvProjection(8, 4, normalize=False)(torch.randn(2, 8, 3, 3))
                              .norm(dim=1), torch.ones(2, 3, 3))


def test_width_narrows_the_stem_and_default_keeps_the_paper_stem():
    # timm's plain stem is 64 channels whatever ``channels`` says; ``width``
    # must shrink it too (it dominates a narrow network's cost at full resolution)
    aud = AudioEncoder(width=16, layers=(1, 1, 1, 1))
    bb = aud.backbone
    assert bb.conv1.in_channels == 1 and bb.conv1.out_channels == 16
    assert bb.conv1.kernel_size == (7, 7) and bb.conv1.stride == (2, 2)
    assert bb.bn1.num_features == 16
    assert bb.layer1[0].conv1.in_channels == 16
    assert bb.layer1[0].downsample is None  # 16 -> 16 at stride 1: identity shortcut
    img = ImageEncoder(width=16, layers=(1, 1, 1, 1))
    assert img.backbone.conv1.out_channels == 16
    x = torch.rand(2, 3, 128, 128)
    assert img(x).shape == (2, 128, 4, 4)
    lvs = ImageEncoder(width=16, layers=(1, 1, 1, 1), out_stride=16)
    assert lvs(x).shape == (2, 128, 8, 8)
    # narrower stem = fewer parameters than the 64-channel timm stem
    ref = timm.create_model("resnet18", features_only=True, out_indices=(-1,),
                            channels=(16, 32, 64, 128), layers=(1, 1, 1, 1))
    assert sum(p.numel() for p in img.parameters()) < sum(p.numel() for p in ref.parameters())
    # the paper default is untouched
    paper = ImageEncoder()
    assert paper.backbone.conv1.out_channels == 64
    assert paper.backbone.layer1[0].conv1.in_channels == 64
    assert paper.backbone.layer1[0].downsample is None


def test_narrow_stem_on_a_bottleneck_resnet_keeps_the_projection_shortcut():
    enc = ImageEncoder("resnet50", width=8, layers=(1, 1, 1, 1))
    block = enc.backbone.layer1[0]
    assert enc.backbone.conv1.out_channels == 8
    assert block.conv1.in_channels == 8
    ds_conv = next(m for m in block.downsample.modules() if isinstance(m, torch.nn.Conv2d))
    assert (ds_conv.in_channels, ds_conv.out_channels) == (8, 32)
    assert enc(torch.rand(1, 3, 64, 64)).shape == (1, 256, 2, 2)


def test_zero_init_last_option_keeps_block_batchnorm_weights_at_one():
    """timm zero-inits each residual block's last BN weight (default, unchanged);
    ``zero_init_last=False`` keeps them at 1 like torchvision's ResNet (JSA's audio net)."""
    for enc_cls in (AudioEncoder, ImageEncoder):
        default = enc_cls(width=8, layers=(1, 1, 1, 1))
        ones = enc_cls(width=8, layers=(1, 1, 1, 1), zero_init_last=False)
        for layer in ("layer1", "layer2", "layer3", "layer4"):
            assert torch.all(getattr(default.backbone, layer)[0].bn2.weight == 0)
            assert torch.all(getattr(ones.backbone, layer)[0].bn2.weight == 1)
