"""In-memory dataset cache: same batches as decoding, decoded once per process."""

from pathlib import Path

import pytest
import torch

from avbench.data import VGGSoundDataModule
from avbench.data.cache import cache_size, clear_cache
from avbench.data.synthetic import generate


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cache") / "vggsound"
    generate("vggsound", root, "tiny", seed=0, progress=False)
    return root


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def _dm(root: Path, cache: bool, **kw) -> VGGSoundDataModule:
    args = dict(root=root, train_list=None, batch_size=5, num_workers=0, image_size=32,
                clip_seconds=1.0, cache=cache) | kw
    return VGGSoundDataModule(**args)


def _batches(dm: VGGSoundDataModule, split: str) -> list[dict]:
    dm.setup("test" if split == "test" else "fit")
    loader = getattr(dm, f"{split}_dataloader")()
    return list(loader)


@pytest.mark.parametrize("split", ["val", "test"])
def test_cached_batches_equal_decoded_batches(root, split):
    plain, cached = _batches(_dm(root, False), split), _batches(_dm(root, True), split)
    assert len(plain) == len(cached) > 0
    for a, b in zip(plain, cached):
        assert a["id"] == b["id"]
        for key in ("image", "audio", "label"):
            assert torch.equal(a[key], b[key]), key
        if "gt_map" in a:
            assert torch.equal(a["gt_map"], b["gt_map"])


def test_second_module_reuses_the_decoded_samples(root, monkeypatch):
    first = _dm(root, True)
    _batches(first, "test")
    assert cache_size() == 1
    calls = []
    cls = type(first.dataset("test"))
    original = cls.load

    def counting(self, record):
        calls.append(record)
        return original(self, record)

    monkeypatch.setattr(cls, "load", counting)
    # other loader settings, same samples: served from the cache, nothing decoded
    second = _batches(_dm(root, True, batch_size=3), "test")
    assert cache_size() == 1 and calls == []
    assert sum(len(b["id"]) for b in second) == len(first.dataset("test"))
    # without the cache the same patch sees every item decoded
    _batches(_dm(root, False), "test")
    assert len(calls) == len(first.dataset("test"))


def test_different_settings_are_cached_separately(root):
    a = _batches(_dm(root, True), "test")
    b = _batches(_dm(root, True, image_size=16), "test")
    assert cache_size() == 2
    assert a[0]["image"].shape[-1] == 32 and b[0]["image"].shape[-1] == 16


def test_cached_loader_uses_no_workers_and_keeps_dataset_attributes(root):
    dm = _dm(root, True, num_workers=2)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert loader.num_workers == 0
    assert loader.dataset.classes == dm.dataset("train").classes
