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


# --- the reference recipe on native frames, JSA's photometric part, global batch ---
from avbench.data.augment import (  # noqa: E402
    AugmentedDataset,
    ezvsl_train_transform,
    jsa_photometric,
    short_side_resize_crop,
)


def test_ezvsl_recipe_resizes_the_shorter_side_keeping_the_aspect_ratio():
    """A 2:1 frame whose right half is bright: the reference resizes the SHORTER
    side to int(1.1 S) (aspect kept) and crops S x S, so a crop sees a random
    horizontal window of a 2:1 image: fully dark, fully bright and mixed crops
    all occur (a squashed square frame would always be about half bright)."""
    torch.manual_seed(0)
    image = torch.zeros(3, 50, 100)
    image[:, :, 50:] = 1.0
    means = []
    for _ in range(60):
        out = short_side_resize_crop(image, 20)
        assert out.shape == (3, 20, 20) and out.min() >= 0 and out.max() <= 1
        means.append(out.mean().item())
    assert min(means) < 0.05 and max(means) > 0.95
    # the resized frame is int(20 * 1.1) = 22 high: at most 2 rows are cut
    tall = torch.zeros(3, 100, 50)
    tall[:, :50] = 1.0
    outs = [short_side_resize_crop(tall, 20) for _ in range(20)]
    assert all(o.shape == (3, 20, 20) for o in outs)
    assert {round(o.mean().item(), 1) for o in outs} <= {0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6,
                                                         0.7, 0.8, 0.9, 1.0}


def test_ezvsl_transform_flips_half_the_time_and_is_seeded():
    image = torch.zeros(3, 40, 40)
    image[:, :, :20] = 1.0
    torch.manual_seed(1)
    outs = [ezvsl_train_transform(image, 32) for _ in range(40)]
    left = [o[:, :, :8].mean().item() for o in outs]
    assert max(left) > 0.9 and min(left) < 0.1
    torch.manual_seed(1)
    assert torch.equal(outs[0], ezvsl_train_transform(image, 32))


def test_jsa_photometric_draws_per_sample_and_keeps_the_range():
    torch.manual_seed(0)
    images = torch.rand(16, 3, 24, 24)
    out = jsa_photometric(images)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0 and out.max() <= 1
    changed = [(not torch.allclose(o, i)) for o, i in zip(out, images)]
    assert sum(changed) >= 12  # p(no op at all) = 0.2 * 0.2 * 0.8 = 0.032 per sample
    gray = [bool(torch.allclose(o[0], o[1]) and torch.allclose(o[1], o[2])) for o in out]
    assert 0 < sum(gray) < 16  # grayscale drawn per sample (p 0.2), not per batch


def test_native_frame_recipe_loads_training_frames_at_their_stored_size(root):
    dm = VGGSoundDataModule(root=root, train_list=None, batch_size=4, num_workers=0,
                            image_size=32, clip_seconds=1.0, train_augment="ezvsl")
    assert dm.native_train_frames
    dm.setup("fit")
    assert dm.dataset("train").image_size is None  # loaded as stored
    assert dm.dataset("val").image_size == 32
    raw = dm.dataset("train")[0]["image"]
    assert raw.shape[-1] != 32  # the synthetic frames are stored larger than 32 px
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32)
    with pytest.raises(ValueError, match="needs the output size"):
        AugmentedDataset(dm.dataset("train"), recipe="ezvsl")


class _Recipe(torch.nn.Module):
    global_batch_size = 8


@pytest.mark.parametrize("world,own,expect", [
    (1, None, (8, 8, "model")), (2, None, (8, 4, "model")), (4, None, (8, 2, "model")),
    (2, 6, (6, 3, "datamodule")),
])
def test_per_device_batch_is_derived_from_the_global_batch(root, world, own, expect):
    dm = VGGSoundDataModule(root=root, train_list=None, batch_size=5, num_workers=0,
                            image_size=32, clip_seconds=1.0, global_batch_size=own)
    plan = dm.resolve_batch_size(world, _Recipe())
    assert (plan["global_batch_size"], plan["per_device_batch_size"],
            plan["batch_size_source"]) == expect
    assert plan["world_size"] == world and dm.train_batch_size == expect[1]
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["image"].shape[0] == expect[1]
    assert next(iter(dm.test_dataloader()))["image"].shape[0] == 5  # evaluation: batch_size


def test_without_a_global_batch_batch_size_stays_per_device(root):
    dm = VGGSoundDataModule(root=root, train_list=None, batch_size=5, num_workers=0)
    plan = dm.resolve_batch_size(2, torch.nn.Linear(1, 1))
    assert plan == {"global_batch_size": 10, "per_device_batch_size": 5, "world_size": 2,
                    "batch_size_source": "per_device"}
    with pytest.raises(ValueError, match="not divisible"):
        VGGSoundDataModule(root=root, global_batch_size=7).resolve_batch_size(2)


def test_fit_records_the_batch_plan_as_datamodule_hyperparameters(root, tmp_path):
    """Under a Trainer, setup derives the batch from the model and logs it with the
    model's hyperparameters (a CSV logger here)."""
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    from avbench.models.ezvsl import EZVSL

    model = EZVSL(dim=8, image_width=8, image_layers=(1, 1, 1, 1), audio_width=8,
                  audio_layers=(1, 1, 1, 1), global_batch_size=4,
                  spectrogram={"n_fft": 256, "hop_length": 480})
    dm = VGGSoundDataModule(root=root, train_list=None, batch_size=16, num_workers=0,
                            image_size=32, clip_seconds=1.0)
    logger = CSVLogger(tmp_path)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=1, limit_val_batches=1,
                        logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(model, datamodule=dm)
    assert dm.hparams["train_per_device_batch_size"] == 4
    assert dm.hparams["train_global_batch_size"] == 4 and dm.hparams["train_world_size"] == 1
    import yaml as _yaml
    logged = _yaml.unsafe_load((Path(logger.log_dir) / "hparams.yaml").read_text())
    assert logged["train_per_device_batch_size"] == 4 and logged["global_batch_size"] == 4
