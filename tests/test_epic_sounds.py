"""EPIC-Sounds: the synthetic writer -> loader round trip, the published format, every
bad-input error on hand-made files, and the DataModule's batches."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from avbench.data.datamodules.epic_sounds import EPICSoundsDataModule
from avbench.data.datasets.epic_sounds import (
    CLASSES,
    COLUMNS,
    SAMPLE_RATE,
    TEST_COLUMNS,
    EPICSounds,
    format_timestamp,
    parse_timestamp,
)
from avbench.data.errors import AnnotationError, DuplicateIdError, MissingFileError
from avbench.data.synthetic import generate, get_preset
from avbench.data.synthetic.writers.epic_sounds import (
    class_sounds,
    event_waveform,
    plan_videos,
    preset_counts,
    render_recording,
)

TS = r"^\d{2}:\d{2}:\d{2}\.\d{3}$"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("epic_sounds")
    generate("epic_sounds", root, "tiny", seed=3, progress=False)
    return root


def _scenes(root: Path) -> dict[str, dict]:
    lines = (root / "synthetic_scenes.jsonl").read_text().splitlines()
    return {s["id"]: s for s in map(json.loads, lines)}


# ----------------------------------------------------------------------------
# published format
# ----------------------------------------------------------------------------
def test_timestamps_round_trip() -> None:
    assert parse_timestamp("00:01:02.069") == 62069
    assert format_timestamp(3_723_004) == "01:02:03.004"
    for bad in ("0:00:01.000", "00:00:01.00", "00:61:00.000", "00:00:01,000", "1.5"):
        with pytest.raises(ValueError):
            parse_timestamp(bad)


def test_files_have_the_published_format(tiny: Path) -> None:
    for name, cols in (("EPIC_Sounds_train.csv", COLUMNS), ("EPIC_Sounds_validation.csv", COLUMNS),
                       ("EPIC_Sounds_recognition_test_timestamps.csv", TEST_COLUMNS)):
        text = (tiny / name).read_text()
        header = text.splitlines()[0]
        assert header == ",".join(cols)
        frame = pd.read_csv(tiny / name, dtype=str)
        assert frame.start_timestamp.str.match(TS).all() and frame.stop_timestamp.str.match(TS).all()
        ms = frame.start_timestamp.map(parse_timestamp)
        assert (frame.start_sample.astype(int) == ms * 24).all()  # 24 kHz samples
        assert frame.annotation_id.tolist() == [
            f"{v}_{k}" for v, g in frame.groupby("video_id", sort=False) for k in range(len(g))]
        if "class_id" in frame:
            assert all(CLASSES[int(i)] == c for i, c in zip(frame.class_id, frame["class"]))
        pkl = pd.read_pickle((tiny / name).with_suffix(".pkl"))
        assert list(pkl.columns) == list(cols) and len(pkl) == len(frame)
    with h5py.File(tiny / "EPIC_audio.hdf5", "r") as f:
        videos = set(pd.concat([pd.read_csv(tiny / n) for n in (
            "EPIC_Sounds_train.csv", "EPIC_Sounds_validation.csv",
            "EPIC_Sounds_recognition_test_timestamps.csv")]).video_id)
        assert set(f.keys()) == videos
        for k in f:
            assert f[k].ndim == 1 and f[k].dtype == np.float32
            assert f[k].shape[0] == 20 * SAMPLE_RATE
    assert len(CLASSES) == 44 and CLASSES[4] == "rustle" and CLASSES[13] == "background"


# ----------------------------------------------------------------------------
# writer -> loader round trip
# ----------------------------------------------------------------------------
def test_round_trip_labels_and_times(tiny: Path) -> None:
    scenes = _scenes(tiny)
    for split in ("train", "val", "test"):
        ds = EPICSounds(tiny, split, sample_rate=SAMPLE_RATE)
        planted = {k: s for k, s in scenes.items() if s["split"] == split}
        assert {r.annotation_id for r in ds.records} == set(planted)
        for i in range(len(ds)):
            x = ds[i]
            s = planted[x["id"]]
            assert x["start"] == s["start_ms"] / 1000 and x["stop"] == s["stop_ms"] / 1000
            assert x["audio"].shape == (1, (s["stop_ms"] - s["start_ms"]) * 24)
            if split == "test":
                assert x["label"] == -1 and x["class_name"] == ""
            else:
                assert x["label"] == s["labels"][0] and x["class_name"] == s["class"]
    # overlapping events exist, and the splits are disjoint by video
    assert any(s["overlaps"] for s in scenes.values())
    vids = {sp: {s["video_id"] for s in scenes.values() if s["split"] == sp} for sp in ("train", "val", "test")}
    assert not (vids["train"] & vids["val"]) and not (vids["train"] & vids["test"])


def test_segment_is_the_planted_event(tiny: Path) -> None:
    plans = {p.video_id: p for p in plan_videos(preset_counts(get_preset("tiny")), 3)}
    sounds = class_sounds(3)
    ds = EPICSounds(tiny, "train", sample_rate=SAMPLE_RATE)
    scenes = _scenes(tiny)
    checked = 0
    for i, r in enumerate(ds.records):
        s = scenes[r.annotation_id]
        if s["overlaps"]:
            continue
        plan = plans[r.video_id]
        event = next(e for e in plan.events if e.start_ms == r.start_ms and e.stop_ms == r.stop_ms)
        _, amb = render_recording(plan, sounds)
        seg = ds[i]["audio"][0].numpy()
        planted = event_waveform(event, sounds, SAMPLE_RATE)
        np.testing.assert_allclose(seg - amb[r.start_ms * 24:r.stop_ms * 24], planted, atol=1e-6)
        # the event is louder than the ambient bed under it
        assert np.sqrt(np.mean(planted**2)) > np.sqrt(np.mean(amb[r.start_ms * 24:r.stop_ms * 24]**2))
        checked += 1
    assert checked >= 2


def test_resampled_and_windowed(tiny: Path) -> None:
    ds = EPICSounds(tiny, "val", sample_rate=16000)
    r = ds.records[0]
    x = ds[0]["audio"]
    assert x.dtype == torch.float32 and x.shape == (1, (r.stop_ms - r.start_ms) * 16)
    w = EPICSounds(tiny, "val", sample_rate=16000, clip_seconds=1.0)[0]["audio"]
    assert w.shape == (1, 16000)


# ----------------------------------------------------------------------------
# bad inputs (hand-made files)
# ----------------------------------------------------------------------------
def _layout(root: Path, rows: list[list[str]], seconds: float = 5.0, header=COLUMNS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "EPIC_Sounds_train.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    with h5py.File(root / "EPIC_audio.hdf5", "w") as f:
        n = int(seconds * SAMPLE_RATE)
        f.create_dataset("P01_01", data=(np.arange(n) % 1000).astype(np.int16))
    return root


def _row(aid="P01_01_0", vid="P01_01", start="00:00:01.000", stop="00:00:02.000",
         cls="rustle", cid="4", samples=None) -> list[str]:
    if samples is None:
        try:
            samples = (str(parse_timestamp(start) * 24), str(parse_timestamp(stop) * 24))
        except ValueError:
            samples = ("0", "0")
    s0, s1 = samples
    return [aid, "P01", vid, start, stop, s0, s1, "paper rustle", cls, cid]


def test_hand_made_layout_reads_int16(tmp_path: Path) -> None:
    root = _layout(tmp_path / "ok", [_row()])
    x = EPICSounds(root, "train", sample_rate=SAMPLE_RATE)[0]
    expected = (np.arange(24000, 48000) % 1000).astype(np.float32) / 32768
    np.testing.assert_array_equal(x["audio"][0].numpy(), expected)
    # the first release's 8 columns (no *_sample) are read too
    legacy = [c for c in COLUMNS if not c.endswith("_sample")]
    root2 = _layout(tmp_path / "legacy", [[v for c, v in zip(COLUMNS, _row()) if c in legacy]],
                    header=legacy)
    assert EPICSounds(root2, "train")[0]["label"] == 4


@pytest.mark.parametrize("row, message", [
    (_row(start="00:00:1.000"), "bad timestamp"),
    (_row(stop="00:00:02.5"), "bad timestamp"),
    (_row(start="00:00:02.000", stop="00:00:02.000"), "is not after"),
    (_row(cid="44"), "not in 0..43"),
    (_row(cid="-1"), "not in 0..43"),
    (_row(cls="water"), "does not match class_id 4"),
    (_row(samples=("1", "48000")), "start_sample 1 disagrees"),
    (_row(stop="00:00:06.000"), "after the end of recording 'P01_01'"),
])
def test_bad_rows_name_file_and_line(tmp_path: Path, row: list[str], message: str) -> None:
    root = _layout(tmp_path / "bad", [_row(aid="P01_01_9"), row])
    with pytest.raises(AnnotationError) as err:
        EPICSounds(root, "train")
    assert "EPIC_Sounds_train.csv" in str(err.value) and "line 3" in str(err.value)
    assert message in str(err.value)
    ds = EPICSounds(root, "train", bad_rows="skip")
    assert len(ds) == 1 and ds.skipped["invalid annotation row"] == 1


def test_video_missing_from_store(tmp_path: Path) -> None:
    root = _layout(tmp_path / "nov", [_row(), _row(aid="P09_01_0", vid="P09_01")])
    with pytest.raises(MissingFileError) as err:
        EPICSounds(root, "train")
    assert "EPIC_audio.hdf5" in str(err.value) and "'P09_01'" in str(err.value)
    assert "line 3" in str(err.value)
    ds = EPICSounds(root, "train", missing="skip")
    assert len(ds) == 1 and ds.skipped["video not in audio store"] == 1


def test_missing_files_and_duplicates(tmp_path: Path) -> None:
    root = _layout(tmp_path / "dup", [_row(), _row()])
    with pytest.raises(DuplicateIdError):
        EPICSounds(root, "train")
    with pytest.raises(MissingFileError, match="EPIC_Sounds_validation.csv"):
        EPICSounds(root, "val")
    (root / "EPIC_audio.hdf5").unlink()
    with pytest.raises(MissingFileError, match="no audio HDF5"):
        EPICSounds(root, "train")
    with pytest.raises(AnnotationError, match="header"):
        _layout(tmp_path / "hdr", [], header=["id", "video", "start"])
        EPICSounds(tmp_path / "hdr", "train")


# ----------------------------------------------------------------------------
# datamodule
# ----------------------------------------------------------------------------
def test_datamodule_batches(tiny: Path) -> None:
    dm = EPICSoundsDataModule(tiny, batch_size=4, num_workers=0, sample_rate=16000,
                              clip_seconds=1.0, drop_last_train=False)
    dm.setup()
    assert [len(dm.dataset(s)) for s in ("train", "val", "test")] == [24, 16, 16]
    batch = next(iter(dm.train_dataloader()))
    assert batch["audio"].shape == (4, 1, 16000)
    assert batch["label"].shape == (4,) and batch["label"].min() >= 0
    assert len(batch["class_name"]) == 4 and len(batch["id"]) == 4
    test = next(iter(dm.test_dataloader()))
    assert (test["label"] == -1).all()
    assert dm.classes == list(CLASSES)
    # the in-memory cache serves the same samples (h5py handles are not pickled)
    cached = EPICSoundsDataModule(tiny, batch_size=16, num_workers=0, sample_rate=16000,
                                  clip_seconds=1.0, cache="memory")
    cached.setup("validate")
    a = next(iter(cached.val_dataloader()))
    b = next(iter(dm.val_dataloader()))
    assert a["id"][:4] == b["id"]
    assert torch.equal(a["audio"][:4], b["audio"])
