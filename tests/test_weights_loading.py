"""Strict weights loading: stand-ins and timm files load completely, anything else is a WeightsError."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

from avbench.nn.encoders import AudioEncoder, ImageEncoder
from avbench.nn.weights import WeightsError, WeightsNotFoundError, load_state_dict_strict
from avbench.pretrain.image import ImageClassifier


def _trained_like(tmp_path, width=16):
    """An ImageClassifier with non-default weights (and BN statistics), saved as a stand-in file."""
    torch.manual_seed(0)
    model = ImageClassifier(n_classes=5, width=width)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.train()
    model(torch.rand(4, 3, 64, 64))  # BN running statistics move away from their init
    model.eval()
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.weights_state().items()}, str(path))
    return model, path


def test_standin_loads_into_the_cpu_image_encoder(tmp_path):
    model, path = _trained_like(tmp_path)
    enc = ImageEncoder(width=16, layers=[1, 1, 1, 1], pretrained_path=str(path)).eval()
    fresh = ImageEncoder(width=16, layers=[1, 1, 1, 1]).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), model.encoder(x), rtol=0, atol=0)
        assert not torch.allclose(fresh(x), enc(x))
    # the narrowed stem itself was loaded (timm's own loader would lose it)
    torch.testing.assert_close(enc.backbone.conv1.weight, model.encoder.backbone.conv1.weight)


def test_standin_loads_with_out_stride_16_and_a_one_channel_stem(tmp_path):
    model, path = _trained_like(tmp_path)
    enc = ImageEncoder(width=16, layers=[1, 1, 1, 1], out_stride=16, pretrained_path=str(path))
    torch.testing.assert_close(enc.backbone.layer4[0].conv1.weight,
                               model.encoder.backbone.layer4[0].conv1.weight)
    aud = AudioEncoder(width=16, layers=[1, 1, 1, 1], pretrained_path=str(path))
    torch.testing.assert_close(aud.backbone.conv1.weight,
                               model.encoder.backbone.conv1.weight.sum(1, keepdim=True))


def test_missing_file_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "model.safetensors"
    with pytest.raises(WeightsNotFoundError, match="nowhere/model.safetensors"):
        ImageEncoder(width=16, layers=[1, 1, 1, 1], pretrained_path=str(missing))
    with pytest.raises(FileNotFoundError, match="never downloads"):  # also a FileNotFoundError
        load_state_dict_strict(torch.nn.Linear(2, 2), missing)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_truncated_file_is_an_error_naming_it(tmp_path, suffix):
    model, path = _trained_like(tmp_path)
    if suffix == ".pth":
        path = tmp_path / "model.pth"
        torch.save(model.weights_state(), path)
    data = path.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=f"cut{suffix}"):
        ImageEncoder(width=16, layers=[1, 1, 1, 1], pretrained_path=str(cut))


def test_file_of_another_width_is_an_error_listing_the_keys(tmp_path):
    _, path = _trained_like(tmp_path, width=8)
    with pytest.raises(WeightsError) as err:
        ImageEncoder(width=16, layers=[1, 1, 1, 1], pretrained_path=str(path))
    msg = str(err.value)
    assert "model.safetensors" in msg and "shape mismatches" in msg and "conv1.weight" in msg
    assert "more)" in msg  # more than MAX_LISTED mismatches: the count is given, not all keys


def test_file_of_another_architecture_is_an_error_listing_the_keys(tmp_path):
    _, path = _trained_like(tmp_path)
    with pytest.raises(WeightsError) as err:  # two blocks per stage expected, the file has one
        ImageEncoder(width=16, layers=[2, 2, 2, 2], pretrained_path=str(path))
    assert "missing keys" in str(err.value) and "layer1.1.conv1.weight" in str(err.value)
    with pytest.raises(WeightsError, match="unexpected keys"):
        load_state_dict_strict(torch.nn.Linear(3, 4), path)


def test_plain_timm_resnet18_file_with_fc_loads_at_full_width(tmp_path):
    """The paper path: an ImageNet resnet18 state dict (with ``fc.*``) into ``ImageEncoder()``."""
    ref = timm.create_model("resnet18")
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()
               if not k.endswith("num_batches_tracked")}, str(path))  # as timm publishes them
    enc = ImageEncoder(pretrained_path=str(path))
    for name in ("conv1.weight", "layer4.1.bn2.running_var", "layer2.0.downsample.0.weight"):
        torch.testing.assert_close(enc.backbone.state_dict()[name], ref.state_dict()[name])


def test_a_file_that_differs_from_its_standin_card_is_refused(tmp_path):
    import time

    from avbench.pretrain.card import make_card, write_card

    model, path = _trained_like(tmp_path)
    write_card(tmp_path, make_card(tmp_path, name="image-resnet18", architecture={}, files={
        "weights": path.name}, seed=0, world_seed=0, categories=[], corpus={}, steps=1,
        heldout={}, size="tiny", started=time.time()))
    ImageEncoder(width=16, layers=[1, 1, 1, 1], pretrained_path=str(path))  # as the card says
    # other weights of the same architecture under the same name: refused, naming the card
    state = {k: v + 1 for k, v in model.weights_state().items()}
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(WeightsError, match=r"card .*card\.json.* says .*avbench pretrain image-resnet18"):
        ImageEncoder(width=16, layers=[1, 1, 1, 1], pretrained_path=str(path))
