"""Shared disk cache of decoded samples: bit-identical to decoding, one writer across
processes, invalidated by preprocessing or data changes, torn entries rebuilt."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from avbench.data import VGGSoundDataModule
from avbench.data.cache import (
    cache_on_disk,
    clear_disk_cache,
    default_cache_dir,
    disk_cache_entries,
    prune_disk_cache,
)
from avbench.data.synthetic import generate


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("disk_cache") / "vggsound"
    generate("vggsound", root, "tiny", seed=0, progress=False)
    return root


def _dm(root: Path, cache, cache_dir: Path | None = None, **kw) -> VGGSoundDataModule:
    args = dict(root=root, train_list=None, batch_size=5, num_workers=0, image_size=32,
                clip_seconds=1.0, cache=cache, cache_dir=cache_dir) | kw
    return VGGSoundDataModule(**args)


def _cached(dm: VGGSoundDataModule, split: str, cache_dir: Path):
    return cache_on_disk(dm.dataset(split), dm._settings() | {"split": split}, cache_dir,
                         progress=False)


def _assert_same_samples(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key, value in a.items():
        if isinstance(value, torch.Tensor):
            assert b[key].dtype == value.dtype and b[key].shape == value.shape, key
            assert torch.equal(b[key], value), key
        else:
            assert type(b[key]) is type(value) and b[key] == value, key


def _count_loads(monkeypatch, dm: VGGSoundDataModule, split: str) -> list:
    calls: list = []
    cls = type(dm.dataset(split))
    original = cls.load

    def counting(self, record):
        calls.append(record)
        return original(self, record)

    monkeypatch.setattr(cls, "load", counting)
    return calls


@pytest.mark.parametrize("split", ["train", "test"])
def test_disk_cache_is_bit_identical_to_decoding(root, tmp_path, split):
    plain = _dm(root, False).dataset(split)
    cached = _cached(_dm(root, "disk"), split, tmp_path)
    assert cached.built_here and len(cached) == len(plain) > 0
    for i in range(len(plain)):
        _assert_same_samples(plain[i], cached[i])
    # the datamodule's loaders: same batches, no workers; a forked reader reopens the maps
    dm, ref = _dm(root, "disk", tmp_path), _dm(root, False)
    dm.setup(None)
    ref.setup(None)
    loader = dm._loader(split, shuffle=False, drop_last=False)
    assert loader.num_workers == 0 and not loader.dataset.built_here
    expected = ref._loader(split, shuffle=False, drop_last=False)
    for a, b in zip(expected, loader, strict=True):
        _assert_same_samples(a, b)
    forked = DataLoader(cached, batch_size=None, num_workers=1, collate_fn=lambda s: s)
    for i, sample in enumerate(forked):
        _assert_same_samples(plain[i], sample)


class _Mixed(Dataset):
    """Samples whose fields change shape (ragged), dtype (kept pickled) or are absent."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        sample = {
            "id": f"s{i}",
            "fixed": torch.rand(2, 3, generator=g),
            "ragged": torch.rand(1 + i % 3, 4, generator=g).double(),
            "dtype_changes": torch.arange(3, dtype=torch.int64 if i < 3 else torch.int32),
            "flag": torch.tensor([i % 2 == 0]),
            "boxes": [[i, i + 1.5]],
            "label": i,
        }
        if i % 2:
            sample["sometimes"] = torch.full((5,), float(i), dtype=torch.float16)
        return sample


def test_ragged_mixed_and_absent_fields_round_trip(tmp_path):
    data = _Mixed()
    cached = cache_on_disk(data, {"v": 1}, tmp_path, progress=False)
    kinds = {k: v["kind"] for k, v in cached.manifest["fields"].items()}
    assert kinds == {"fixed": "fixed", "ragged": "ragged", "flag": "fixed", "sometimes": "fixed"}
    for i in range(len(data)):
        _assert_same_samples(data[i], cached[i])
    assert cached[-1]["id"] == "s5"


def test_preprocessing_change_is_another_entry(root, tmp_path, monkeypatch):
    first = _cached(_dm(root, "disk"), "test", tmp_path)
    dm = _dm(root, "disk")
    calls = _count_loads(monkeypatch, dm, "test")
    again = _cached(dm, "test", tmp_path)
    assert not again.built_here and again.entry == first.entry and calls == []
    for change in ({"image_size": 16}, {"frame_interpolation": "bicubic"},
                   {"sample_rate": 8000}, {"clip_seconds": 0.5}):
        other = _cached(_dm(root, "disk", **change), "test", tmp_path)
        assert other.built_here and other.entry != first.entry, change
    assert other[0]["audio"].shape[-1] == 8000  # 0.5 s at 16 kHz
    assert len(disk_cache_entries(tmp_path)) == 5


def test_attaching_a_trainer_keeps_the_key(root, tmp_path):
    dm = _dm(root, "disk")
    before = _cached(dm, "test", tmp_path)
    dm.trainer = object()  # what Lightning sets on fit; None before
    after = _cached(dm, "test", tmp_path)
    assert not after.built_here and after.entry == before.entry


def test_touched_data_file_rebuilds(root, tmp_path):
    dm = _dm(root, "disk")
    first = _cached(dm, "test", tmp_path)
    media = Path(dm.dataset("test").required_files(dm.dataset("test").records[0])[0])
    st = media.stat()
    try:
        os.utime(media, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        again = _cached(_dm(root, "disk"), "test", tmp_path)
        assert again.built_here and again.entry != first.entry
    finally:
        os.utime(media, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not _cached(_dm(root, "disk"), "test", tmp_path).built_here


def test_truncated_or_torn_entry_is_rebuilt_never_read(root, tmp_path, caplog):
    dm = _dm(root, "disk")
    plain = _dm(root, False).dataset("test")
    first = _cached(dm, "test", tmp_path)
    image = first.entry / "image.npy"
    with open(image, "r+b") as f:  # truncate a published file
        f.truncate(image.stat().st_size - 100)
    with caplog.at_level(logging.WARNING, logger="avbench.data.cache"):
        again = _cached(_dm(root, "disk"), "test", tmp_path)
    assert again.built_here and "image.npy has" in caplog.text
    _assert_same_samples(plain[3], again[3])
    # a checksum mismatch of the same size
    with open(image, "r+b") as f:
        f.seek(image.stat().st_size - 10)
        f.write(b"\x01" * 10)
    assert _cached(_dm(root, "disk"), "test", tmp_path).built_here
    # a published entry without its manifest, and one of another key
    (first.entry / "manifest.json").unlink()
    assert _cached(_dm(root, "disk"), "test", tmp_path).built_here
    manifest = json.loads((first.entry / "manifest.json").read_text())
    (first.entry / "manifest.json").write_text(json.dumps(manifest | {"key": "0" * 64}))
    rebuilt = _cached(_dm(root, "disk"), "test", tmp_path)
    assert rebuilt.built_here
    _assert_same_samples(plain[0], rebuilt[0])


_CHILD = r"""
import os, sys, time, torch
from pathlib import Path
from avbench.data import VGGSoundDataModule
from avbench.data.cache import cache_on_disk
root, cache_dir, out, mode, ready = sys.argv[1:6]
dm = VGGSoundDataModule(root=root, train_list=None, batch_size=5, num_workers=0, image_size=32,
                        clip_seconds=1.0, cache="disk", cache_dir=cache_dir)
ds = dm.dataset("test")
cls, calls = type(ds), []
original = cls.load
def load(self, record):
    calls.append(record)
    if mode == "kill" and len(calls) == 5:
        os.kill(os.getpid(), 9)  # the writer dies mid-write
    time.sleep(0.1)  # a slow decoder: the other process arrives while this one writes
    return original(self, record)
cls.load = load
Path(ready, str(os.getpid())).touch()
deadline = time.time() + 120
while len(os.listdir(ready)) < 2 and mode == "race" and time.time() < deadline:
    time.sleep(0.01)
cached = cache_on_disk(ds, dm._settings() | {"split": "test"}, cache_dir, progress=False)
torch.save({"built": cached.built_here, "loads": len(calls),
            "samples": [cached[i] for i in range(len(cached))]}, out)
"""


def _child(root: Path, cache_dir: Path, out: Path, mode: str, ready: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(root), str(cache_dir), str(out),
                             mode, str(ready)], stderr=subprocess.PIPE)


@pytest.mark.slow
def test_two_processes_one_writer_identical_samples(root, tmp_path):
    ready = tmp_path / "ready"
    ready.mkdir()
    cache_dir = tmp_path / "cache"
    outs = [tmp_path / "a.pt", tmp_path / "b.pt"]
    procs = [_child(root, cache_dir, out, "race", ready) for out in outs]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    results = [torch.load(out, weights_only=False) for out in outs]
    assert sorted(r["built"] for r in results) == [False, True]
    assert [r["loads"] for r in results if not r["built"]] == [0]  # the reader decoded nothing
    plain = _dm(root, False).dataset("test")
    for r in results:
        assert len(r["samples"]) == len(plain)
        for i, sample in enumerate(r["samples"]):
            _assert_same_samples(plain[i], sample)
    assert len(disk_cache_entries(cache_dir)) == 1


@pytest.mark.slow
def test_killed_writer_leaves_a_temp_dir_that_is_removed_and_rebuilt(root, tmp_path):
    ready = tmp_path / "ready"
    ready.mkdir()
    cache_dir = tmp_path / "cache"
    proc = _child(root, cache_dir, tmp_path / "never.pt", "kill", ready)
    proc.communicate(timeout=300)
    assert proc.returncode == -9
    torn = [p for p in cache_dir.iterdir() if ".tmp-" in p.name]
    assert len(torn) == 1 and any(torn[0].iterdir())  # the writer had started writing
    assert disk_cache_entries(cache_dir) == []  # nothing published
    cached = _cached(_dm(root, "disk"), "test", cache_dir)
    assert cached.built_here and not torn[0].exists()
    plain = _dm(root, False).dataset("test")
    for i in range(len(plain)):
        _assert_same_samples(plain[i], cached[i])


def test_augmentation_after_the_disk_cache_is_random_per_epoch(root, tmp_path):
    dm = _dm(root, "disk", tmp_path, train_augment="resize_crop_flip", drop_last_train=False)
    dm.setup("fit")
    torch.manual_seed(0)
    loader = dm.train_dataloader()
    first = torch.cat([b["image"] for b in loader])
    second = torch.cat([b["image"] for b in loader])
    assert not torch.equal(first, second)  # drawn afresh in each epoch
    cached = loader.dataset.source  # the DiskCachedDataset under the augmentation
    plain = _dm(root, False).dataset("train")
    _assert_same_samples(plain[0], cached[0])  # the stored sample is untouched


def test_default_dir_clear_prune_and_bad_mode(root, tmp_path, monkeypatch):
    monkeypatch.setenv("AVBENCH_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    monkeypatch.delenv("AVBENCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "avbench" / "decoded"
    with pytest.raises(ValueError, match="cache must be"):
        _dm(root, "ram")
    _cached(_dm(root, "disk"), "test", tmp_path / "c")
    gone = cache_on_disk(_Mixed(), {}, tmp_path / "c", progress=False)
    assert prune_disk_cache(tmp_path / "c") == []  # every root exists (_Mixed has none)
    manifest = json.loads((gone.entry / "manifest.json").read_text())
    (gone.entry / "manifest.json").write_text(json.dumps(manifest | {"root": str(tmp_path / "x")}))
    assert prune_disk_cache(tmp_path / "c") == [gone.entry.name]
    assert clear_disk_cache(tmp_path / "c") > 0 and disk_cache_entries(tmp_path / "c") == []


def test_unwritable_cache_dir_is_a_data_error_naming_it(tmp_path):
    from avbench.data.errors import CacheDirError, MediaError

    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    with pytest.raises(CacheDirError, match=r"afile/cache.*AVBENCH_CACHE_DIR") as info:
        cache_on_disk(_Mixed(), {"v": 1}, afile / "cache", progress=False)
    assert isinstance(info.value, MediaError)  # the CLI prints it as one line, exit 1
