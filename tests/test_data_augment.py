"""EZ-VSL training augmentation: resize 1.1x, random crop, horizontal flip; train split only."""

from pathlib import Path

import pytest
import torch

from avbench.data import VGGSoundDataModule
from avbench.data.augment import resize_crop_flip
from avbench.data.cache import clear_cache
from avbench.data.synthetic import generate


def test_resize_crop_flip_shapes_range_and_both_flips():
    torch.manual_seed(0)
    image = torch.zeros(3, 20, 20)
    image[:, :, :10] = 1.0  # left half bright
    outs = [resize_crop_flip(image) for _ in range(40)]
    assert all(o.shape == image.shape and o.min() >= 0 and o.max() <= 1 for o in outs)
    left = [o[:, :, :5].mean().item() for o in outs]
    assert max(left) > 0.9 and min(left) < 0.1  # flipped and unflipped draws both occur
    # a crop of the 1.1x resize: the bright half keeps about half the image
    assert all(0.35 < o.mean().item() < 0.65 for o in outs)
    frames = torch.rand(4, 3, 16, 16)
    assert resize_crop_flip(frames).shape == frames.shape


def test_resize_crop_flip_is_reproducible_under_a_seed():
    image = torch.rand(3, 32, 32)
    torch.manual_seed(3)
    a = resize_crop_flip(image)
    torch.manual_seed(3)
    assert torch.equal(a, resize_crop_flip(image))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("augment") / "vggsound"
    generate("vggsound", root, "tiny", seed=0, progress=False)
    return root


@pytest.mark.parametrize("cache", [False, True])
def test_only_training_images_are_augmented_and_cache_is_untouched(root, cache):
    clear_cache()
    kw = dict(root=root, train_list=None, batch_size=64, num_workers=0, image_size=32,
              clip_seconds=1.0, cache=cache)
    plain, aug = VGGSoundDataModule(**kw), VGGSoundDataModule(**kw, train_augment="resize_crop_flip")
    for dm in (plain, aug):
        dm.setup("fit")
    torch.manual_seed(0)
    p_train = next(iter(plain._loader("train", shuffle=False, drop_last=False)))
    a_train = next(iter(aug._loader("train", shuffle=False, drop_last=False)))
    assert p_train["id"] == a_train["id"]
    assert p_train["image"].shape == a_train["image"].shape
    assert not torch.equal(p_train["image"], a_train["image"])
    assert torch.equal(p_train["audio"], a_train["audio"])  # audio is not augmented
    p_val = next(iter(plain.val_dataloader()))
    a_val = next(iter(aug.val_dataloader()))
    assert torch.equal(p_val["image"], a_val["image"])
    # the cached (or freshly loaded) samples are unchanged after augmenting
    again = next(iter(plain._loader("train", shuffle=False, drop_last=False)))
    assert torch.equal(again["image"], p_train["image"])
    clear_cache()


def test_unknown_augmentation_is_rejected(root):
    with pytest.raises(ValueError, match="train_augment"):
        VGGSoundDataModule(root=root, train_augment="mixup")
