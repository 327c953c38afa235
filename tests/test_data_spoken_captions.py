"""Spoken captions (Places Audio Captions layout): writer -> loader, published fields,
word timings that point at the right word, and errors naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avbench.data import SpokenCaptions, SpokenCaptionsDataModule
from avbench.data.datasets.spoken_captions import DISTRO_DIR, WORD_TIMINGS_FILE
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.synthetic import generate
from avbench.data.synthetic.speech import word_extent
from avbench.data.synthetic.writers.spoken_captions import speaker_seed
from avbench.data.synthetic.writers.ssl_layout import get_world

SR = 16000


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("spoken") / "data"
    generate("spoken_captions", root, "tiny", seed=3, progress=False)
    return root


def _copy(places: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(places, dst)
    return dst


def _meta(root: Path, name: str = "train.json") -> dict:
    return json.loads((root / DISTRO_DIR / "metadata" / name).read_text())


def test_published_field_names(places: Path) -> None:
    meta_dir = places / DISTRO_DIR / "metadata"
    assert sorted(p.name for p in meta_dir.iterdir()) == ["train.json", "val.json"]
    for name in ("train.json", "val.json"):
        doc = _meta(places, name)
        assert set(doc) == {"image_base_path", "audio_base_path", "data"}
        for entry in doc["data"]:
            assert set(entry) == {"image", "wav", "uttid", "speaker", "asr_text"}
            assert entry["wav"].startswith("wavs/") and entry["wav"].endswith(".wav")
            assert (places / "places_subset" / entry["image"]).is_file()
            assert (places / DISTRO_DIR / entry["wav"]).is_file()


def test_round_trip_splits_and_samples(places: Path) -> None:
    train_ids = [e["uttid"] for e in _meta(places)["data"]]
    test_ids = [e["uttid"] for e in _meta(places, "val.json")["data"]]
    tr = SpokenCaptions(places, "train", image_size=32, clip_seconds=2.0)
    va = SpokenCaptions(places, "val", image_size=32, clip_seconds=2.0)
    te = SpokenCaptions(places, "test", image_size=32, clip_seconds=2.0)
    assert sorted(r.id for r in tr.records + va.records) == sorted(train_ids)
    assert not {r.id for r in tr.records} & {r.id for r in va.records}
    assert [r.id for r in te.records] == test_ids
    by_id = {e["uttid"]: e for e in _meta(places, "val.json")["data"]}
    for i in range(len(te)):
        s = te[i]
        wav, sr = sf.read(places / DISTRO_DIR / by_id[s["id"]]["wav"], dtype="float32")
        assert sr == SR
        n = min(len(wav), 2 * SR)
        assert s["image"].shape == (3, 32, 32) and s["image"].dtype == torch.float32
        assert s["audio"].shape == (1, 2 * SR)
        assert s["audio_mask"].shape == (2 * SR,) and s["audio_mask"].sum() == n
        torch.testing.assert_close(s["audio"][0, :n], torch.from_numpy(wav[:n]))
        assert s["audio"][0, n:].abs().sum() == 0  # zero padding, never tiled
        assert s["text"] == by_id[s["id"]]["asr_text"] and s["speaker"].startswith("S")


def test_word_timings_point_at_the_spoken_word(places: Path) -> None:
    """Each word window holds the energy, and its audio IS that category's word in the
    utterance's voice (correlation with a fresh render of the word)."""
    summary = json.loads((places / "avbench_synthetic.json").read_text())
    world = get_world(summary["world_config"], 3)
    entries = {e["uttid"]: e for n in ("train.json", "val.json") for e in _meta(places, n)["data"]}
    lines = (places / WORD_TIMINGS_FILE).read_text().splitlines()
    assert len(lines) == len(entries)
    for line in lines:
        rec = json.loads(line)
        assert rec["synthetic_only"] is True
        wav, _ = sf.read(places / DISTRO_DIR / rec["wav"], dtype="float32")
        inside = np.zeros(len(wav), bool)
        voice = speaker_seed(3, int(entries[rec["uttid"]]["speaker"][1:]))
        for w in rec["words"]:
            a, b = round(w["start"] * SR), round(w["end"] * SR)
            inside[a:b] = True
            ref = world.render_speech(w["category"], voice, SR)
            ra, rb = (round(x * SR) for x in word_extent(ref, SR))
            seg, ref_seg = wav[a:b], ref[ra:rb]
            assert len(seg) == len(ref_seg)
            corr = float(np.dot(seg, ref_seg) / np.linalg.norm(seg) / np.linalg.norm(ref_seg))
            assert corr > 0.98, (rec["uttid"], w, corr)
            assert world.categories[w["category"]].speech.word == w["word"]
        rms_in = np.sqrt(np.mean(wav[inside] ** 2))
        rms_out = np.sqrt(np.mean(wav[~inside] ** 2))
        assert rms_in > 20 * rms_out


def test_spoken_words_name_visible_categories(places: Path) -> None:
    scenes = {json.loads(x)["uttid"]: json.loads(x)
              for x in (places / "synthetic_scenes.jsonl").read_text().splitlines()}
    for line in (places / WORD_TIMINGS_FILE).read_text().splitlines():
        rec = json.loads(line)
        cats = [w["category"] for w in rec["words"]]
        assert cats and len(set(cats)) == len(cats)
        assert set(cats) <= set(scenes[rec["uttid"]]["visible"])


def test_word_timings_in_samples(places: Path) -> None:
    dm = SpokenCaptionsDataModule(places, word_timings=True, image_size=32, clip_seconds=2.0,
                                  num_workers=0, batch_size=4)
    s = dm.dataset("test")[0]
    assert s["word_start"].dtype == torch.float32 and s["word_label"].dtype == torch.long
    assert len(s["word_start"]) == len(s["word_end"]) == len(s["word_label"]) >= 1
    assert bool((s["word_start"] < s["word_end"]).all())
    # each word window lies inside the real (unpadded) audio
    assert float(s["word_end"].max()) * SR <= float(s["audio_mask"].sum()) + 1
    batch = next(iter(dm.test_dataloader()))
    assert batch["audio_mask"].shape == (4, 2 * SR) and len(batch["word_label"]) == 4


def test_absolute_foreign_base_paths_fall_back(places: Path, tmp_path: Path) -> None:
    root = _copy(places, tmp_path)
    path = root / DISTRO_DIR / "metadata" / "val.json"
    doc = json.loads(path.read_text())
    doc["image_base_path"] = "/data/sls/scratch/images256/"  # the authors' machine
    doc["audio_base_path"] = "/data/sls/scratch/PlacesAudio_400k_distro/"
    path.write_text(json.dumps(doc))
    ds = SpokenCaptions(root / DISTRO_DIR, "test", image_size=32)  # the distro folder as root
    assert len(ds) == len(doc["data"]) and ds[0]["image"].shape == (3, 32, 32)


def test_missing_wav_names_the_file(places: Path, tmp_path: Path) -> None:
    root = _copy(places, tmp_path)
    entry = _meta(root, "val.json")["data"][1]
    (root / DISTRO_DIR / entry["wav"]).unlink()
    with pytest.raises(MissingFileError, match=Path(entry["wav"]).name):
        SpokenCaptions(root, "test")
    ds = SpokenCaptions(root, "test", missing="skip")
    assert ds.skipped["file does not exist"] == 1 and entry["uttid"] not in {r.id for r in ds.records}


def test_malformed_entry_names_file_and_entry(places: Path, tmp_path: Path) -> None:
    root = _copy(places, tmp_path)
    path = root / DISTRO_DIR / "metadata" / "val.json"
    doc = json.loads(path.read_text())
    del doc["data"][2]["wav"]
    path.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=r"val\.json.*data\[2\].*wav"):
        SpokenCaptions(root, "test")
    path.write_text('{"data": [')
    with pytest.raises(AnnotationError, match=r"val\.json: not valid JSON"):
        SpokenCaptions(root, "test")
    path.write_text(json.dumps({"data": doc["data"]}))
    with pytest.raises(AnnotationError, match="image_base_path"):
        SpokenCaptions(root, "test")


def test_missing_metadata_and_sidecar_name_the_file(places: Path, tmp_path: Path) -> None:
    root = _copy(places, tmp_path)
    (root / WORD_TIMINGS_FILE).unlink()
    with pytest.raises(MissingFileError, match=WORD_TIMINGS_FILE):
        SpokenCaptions(root, "test", word_timings=True)
    (root / DISTRO_DIR / "metadata" / "val.json").unlink()
    with pytest.raises(MissingFileError, match=r"metadata/val\.json"):
        SpokenCaptions(root, "test")


def test_writer_is_deterministic(places: Path, tmp_path: Path) -> None:
    generate("spoken_captions", tmp_path / "again", "tiny", seed=3, progress=False)
    for rel in (f"{DISTRO_DIR}/metadata/train.json", WORD_TIMINGS_FILE):
        assert (tmp_path / "again" / rel).read_bytes() == (places / rel).read_bytes()
