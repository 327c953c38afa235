"""ADE20K speech/sound-prompted layout (DenseAV): writer -> loader, published columns,
class-0 rows dropped, masks of the prompted class, timings, errors naming the file."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avbench.data import ADE20KPrompted, ADE20KPromptedDataModule
from avbench.data.datasets.ade20k_prompted import (
    CSV_NAME,
    FOLDERS,
    decode_class_map,
    encode_class_map,
)
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.synthetic import generate
from avbench.data.synthetic.writers.ssl_layout import get_world

SR = 16000


@pytest.fixture(scope="module")
def ade(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ade") / "data"
    generate("ade20k_prompted", root, "tiny", seed=2, progress=False)
    return root


def _rows(root: Path, kind: str) -> tuple[list[str], list[dict[str, str]]]:
    with open(root / FOLDERS[kind] / CSV_NAME, newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _copy(ade: Path, tmp_path: Path) -> Path:
    shutil.copytree(ade, tmp_path / "copy")
    return tmp_path / "copy"


def test_published_columns_and_folders(ade: Path) -> None:
    assert _rows(ade, "speech")[0] == ["image_location", "ade_class_id", "speech_prompt_file",
                                       "timing"]
    assert _rows(ade, "sound")[0] == ["image_location", "ade_class_id", "vggsound_file"]
    for folder in ("ADE20KSpeechPrompted", "ADE20KSoundPrompted"):
        for sub in ("frames", "annotations", "audio"):
            assert (ade / folder / sub).is_dir()
    for row in _rows(ade, "speech")[1]:
        assert (ade / FOLDERS["speech"] / "annotations"
                / row["image_location"].replace(".jpg", "_seg.png")).is_file()
        start, end = json.loads(row["timing"])
        assert 0 < start < end


def test_class_map_encoding_round_trip() -> None:
    classes = np.array([[0, 1, 255], [256, 3661, 700]])
    rgb = encode_class_map(classes)
    assert rgb.dtype == np.uint8 and rgb[1, 1].tolist() == [140, 77, 0]  # 3661 = 14*256 + 77
    np.testing.assert_array_equal(decode_class_map(rgb), classes)
    with pytest.raises(ValueError):
        encode_class_map(np.array([[-1]]))


@pytest.mark.parametrize("kind", ["speech", "sound"])
def test_round_trip_masks_and_dropped_class0(ade: Path, kind: str) -> None:
    rows = _rows(ade, kind)[1]
    n0 = sum(r["ade_class_id"] == "0" for r in rows)
    assert n0 >= 1  # the writer plants some, as the published file has
    ds = ADE20KPrompted(ade, kind, image_size=None)
    assert ds.class0_rows == n0 and len(ds) == len(rows) - n0
    truth = {json.loads(x)["image_location"]: json.loads(x)
             for x in (ade / "synthetic_scenes.jsonl").read_text().splitlines()}
    names = json.loads((ade / "synthetic_classes.json").read_text())
    for i in range(len(ds)):
        s = ds[i]
        assert s["prompt_kind"] == kind and s["ade_class_id"] > 0
        assert s["mask"].dtype == torch.bool and s["mask"].shape == s["image"].shape[1:]
        assert torch.equal(s["mask"], s["semseg"] == s["ade_class_id"])
        # the prompted class's pixels are exactly the world's visible pixels of that category
        assert int(s["mask"].sum()) == truth[s["image_location"]]["pixels"][str(s["ade_class_id"])]
        assert s["class_name"] == names[str(s["ade_class_id"])]
        assert s["audio"].shape == (1, 3 * SR) and s["audio_mask"].shape == (3 * SR,)
        assert s["timing"].shape == (2,)
        if kind == "sound":
            assert torch.isnan(s["timing"]).all()


def test_resized_masks_stay_class_masks(ade: Path) -> None:
    dm = ADE20KPromptedDataModule(ade, kind="speech", image_size=32, num_workers=0, batch_size=5)
    assert dm.available_splits() == ("test",) and dm.test_family == ("ade20k_prompted", "speech")
    b = next(iter(dm.test_dataloader()))
    assert b["image"].shape == (5, 3, 32, 32) and b["mask"].shape == (5, 32, 32)
    assert b["mask"].dtype == torch.bool and b["semseg"].dtype == torch.long
    assert b["timing"].shape == (5, 2) and b["ade_class_id"].dtype == torch.long
    assert all(b["mask"][i].any() or b["semseg"][i].max() > 0 for i in range(5))


def test_speech_timing_holds_the_word(ade: Path) -> None:
    ds = ADE20KPrompted(ade, "speech", image_size=32)
    for rec in ds.records:
        wav, sr = sf.read(ds.paths(rec)["audio"], dtype="float32")
        a, b = (round(t * sr) for t in rec.timing)
        inside = np.zeros(len(wav), bool)
        inside[a:b] = True
        assert np.sqrt(np.mean(wav[inside] ** 2)) > 20 * np.sqrt(np.mean(wav[~inside] ** 2))


def test_sound_prompt_is_a_clip_of_the_class(ade: Path) -> None:
    """The sound prompt is the world's one-source scene of the prompted category."""
    summary = json.loads((ade / "avbench_synthetic.json").read_text())
    world = get_world(summary["world_config"], 2)
    seeds = {json.loads(x)["image_location"]: json.loads(x)["scene_seed"]
             for x in (ade / "synthetic_scenes.jsonl").read_text().splitlines()}
    ds = ADE20KPrompted(ade, "sound", image_size=32)
    for rec in ds.records[:4]:
        cat = rec.ade_class_id - 1
        scene = world.sample_scene(np.random.default_rng([seeds[rec.image_location],
                                                          rec.ade_class_id]), [cat])
        assert scene.labels == [cat]
        ref = world.render_audio(scene, summary["clip_seconds"], SR)
        wav, _ = sf.read(ds.paths(rec)["audio"], dtype="float32")
        np.testing.assert_allclose(wav, ref, atol=1e-4)


def test_missing_column_names_file_and_column(ade: Path, tmp_path: Path) -> None:
    root = _copy(ade, tmp_path)
    path = root / FOLDERS["speech"] / CSV_NAME
    header, rows = _rows(root, "speech")
    _write_rows(path, [c for c in header if c != "timing"], rows)
    with pytest.raises(AnnotationError, match=r"prompted_segmentation\.csv.*timing"):
        ADE20KPrompted(root, "speech")


def _write_rows(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def test_bad_rows_name_file_and_line(ade: Path, tmp_path: Path) -> None:
    root = _copy(ade, tmp_path)
    path = root / FOLDERS["speech"] / CSV_NAME
    header, rows = _rows(root, "speech")
    bad = [dict(r) for r in rows]
    bad[1]["timing"] = "[0.5"
    _write_rows(path, header, bad)
    with pytest.raises(AnnotationError, match=r"prompted_segmentation\.csv: line 3: timing"):
        ADE20KPrompted(root, "speech")
    bad = [dict(r) for r in rows]
    bad[0]["ade_class_id"] = "dog"
    _write_rows(path, header, bad)
    with pytest.raises(AnnotationError, match=r"line 2: ade_class_id 'dog'"):
        ADE20KPrompted(root, "speech")


def test_missing_files_name_them(ade: Path, tmp_path: Path) -> None:
    root = _copy(ade, tmp_path)
    row = _rows(root, "sound")[1][0]
    seg = root / FOLDERS["sound"] / "annotations" / row["image_location"].replace(".jpg", "_seg.png")
    seg.unlink()
    with pytest.raises(MissingFileError, match=seg.name):
        ADE20KPrompted(root, "sound")
    ds = ADE20KPrompted(root, "sound", missing="skip")
    assert ds.skipped["file does not exist"] >= 1
    (root / FOLDERS["speech"] / CSV_NAME).unlink()
    with pytest.raises(MissingFileError, match=CSV_NAME):
        ADE20KPrompted(root, "speech")
