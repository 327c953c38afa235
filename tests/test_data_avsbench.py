"""AVSBench S4/MS3: the loader on synthetic data in the real layout returns the planted truth.

Content checks use the writer's ``synthetic_scenes.jsonl`` and the world's categories:
mask pixels have the annotated objects' colours, the audio carries the sounding
categories' pitch, splits are disjoint, co-occurrence only follows planted edges.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from avbench.data.datamodules.avsbench import AVSBenchDataModule
from avbench.data.datasets.avsbench import AVSBench
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.synthetic import generate
from avbench.data.synthetic.graph import CooccurrenceGraph
from avbench.data.synthetic.presets import get_preset
from avbench.data.synthetic.writers.ssl_layout import get_world, world_config_kwargs

SR = 16000
SIZE = get_preset("tiny").image_size


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("avsbench")
    generate("avsbench", out, "tiny", seed=0, progress=False)
    return out


@pytest.fixture(scope="module")
def truth(root: Path) -> dict[tuple[str, str], dict]:
    rows = [json.loads(line) for line in (root / "synthetic_scenes.jsonl").read_text().splitlines()]
    return {(r["subset"], r["id"]): r for r in rows}


@pytest.fixture(scope="module")
def world():
    return get_world(world_config_kwargs(get_preset("tiny")), 0)


def band_ratio(wave: np.ndarray, pitch: float, others: list[float]) -> float:
    """Power in +-3% around ``pitch`` over the median power around the ``others`` pitches."""
    spec = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(wave.size, 1 / SR)

    def band(p: float) -> float:
        return float(spec[(freqs > 0.97 * p) & (freqs < 1.03 * p)].mean())

    return band(pitch) / float(np.median([band(p) for p in others]))


def colour_near(image: torch.Tensor, colours: list[list[int]], tol: float = 40.0) -> np.ndarray:
    """bool [H,W]: pixels within ``tol`` (0..255 RGB distance) of any of ``colours``."""
    img = image.permute(1, 2, 0).numpy() * 255.0
    dist = np.min([np.linalg.norm(img - np.asarray(c, float), axis=-1) for c in colours], axis=0)
    return dist < tol


def annotated_colours(rec: dict) -> list[list[int]]:
    objs = [o for o in rec["objects"] if o["annotated"]]
    return [o["color"] for o in objs] + [o["texture_color"] for o in objs]


def test_layout_uses_reference_names(root: Path) -> None:
    with open(root / "Single-source" / "s4_meta_data.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["name", "start", "category", "split"]
    name, _, cat, split = rows[1]
    s4 = root / "Single-source" / "s4_data"
    assert (s4 / "visual_frames" / split / cat / name / f"{name}_5.png").is_file()
    assert (s4 / "gt_masks" / split / cat / name / f"{name}_1.png").is_file()
    assert (s4 / "audio_wav" / split / cat / f"{name}.wav").is_file()
    train = next(r for r in rows[1:] if r[3] == "train")
    assert not (s4 / "gt_masks" / "train" / train[2] / train[0] / f"{train[0]}_2.png").exists()
    with open(root / "Multi-sources" / "ms3_meta_data.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["video_id", "split"]
    vid, split = rows[1]
    ms3 = root / "Multi-sources" / "ms3_data"
    assert (ms3 / "visual_frames" / vid / f"{vid}.mp4_3.png").is_file()
    assert (ms3 / "gt_masks" / split / vid / f"{vid}_5.png").is_file()
    assert (ms3 / "audio_wav" / split / f"{vid}.wav").is_file()


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_s4_masks_cover_the_sounding_object(root: Path, truth: dict, split: str) -> None:
    ds = AVSBench(root, "s4", split, image_size=SIZE)
    assert len(ds) == get_preset("tiny").count("avsbench_s4", split)
    for i in range(len(ds)):
        s = ds[i]
        rec = truth[("s4", s["id"])]
        assert s["frames"].shape == (5, 3, SIZE, SIZE) and s["masks"].shape == (5, SIZE, SIZE)
        assert torch.equal(s["image"], s["frames"][0]) and torch.equal(s["gt_map"], s["masks"][0])
        expected_valid = [True] + [split != "train"] * 4
        assert s["mask_valid"].tolist() == expected_valid
        for k in range(5):
            m = s["masks"][k].numpy() > 0.5
            if not expected_valid[k]:
                assert not m.any()  # unannotated frames are empty, flagged invalid
                continue
            assert 0.03 < m.mean() < 0.95
            near = colour_near(s["frames"][k], annotated_colours(rec))
            assert near[m].mean() > 0.9, (s["id"], k)  # mask pixels are the object's pixels


def test_ms3_masks_cover_every_source(root: Path, truth: dict) -> None:
    for split in ("train", "val", "test"):
        ds = AVSBench(root, "ms3", split, image_size=SIZE)
        for i in range(len(ds)):
            s = ds[i]
            rec = truth[("ms3", s["id"])]
            assert 2 <= len(rec["labels"]) <= 3 and "label" not in s
            assert s["mask_valid"].all()
            m = s["gt_map"].numpy() > 0.5
            for obj in (o for o in rec["objects"] if o["annotated"]):
                near = colour_near(s["image"], [obj["color"], obj["texture_color"]], tol=30)
                assert near[m].sum() > 0, (s["id"], obj["category"])  # each source is in the mask


def test_audio_carries_every_sounding_pitch(root: Path, truth: dict, world) -> None:
    for subset in ("s4", "ms3"):
        ds = AVSBench(root, subset, "test", image_size=SIZE)
        for i in range(len(ds)):
            s = ds[i]
            rec = truth[(subset, s["id"])]
            assert s["audio"].shape == (1, 5 * SR)
            heard = set(rec["labels"]) | set(rec["offscreen"]) | {c for c, _ in rec["cooccurring"]}
            others = [c.pitch_hz for c in world.categories if c.index not in heard]
            for c in rec["labels"]:
                ratio = band_ratio(s["audio"][0].numpy(), world.categories[c].pitch_hz, others)
                assert ratio > 10, (s["id"], c, ratio)


def test_s4_labels_index_the_sorted_class_list(root: Path, truth: dict) -> None:
    ds = AVSBench(root, "s4", "train", image_size=SIZE)
    assert ds.classes == sorted(ds.classes) and len(ds.classes) >= 2
    assert AVSBench(root, "s4", "test").classes == ds.classes
    for i in range(len(ds)):
        s = ds[i]
        assert s["class_name"] == truth[("s4", s["id"])]["category"]
        assert ds.classes[s["label"]] == s["class_name"]


def test_ids_disjoint_across_splits_and_subsets(root: Path) -> None:
    seen: dict[str, str] = {}
    for subset in ("s4", "ms3"):
        for split in ("train", "val", "test"):
            for rec in AVSBench(root, subset, split).records:
                assert rec.name not in seen, (rec.name, seen.get(rec.name), split)
                seen[rec.name] = f"{subset}/{split}"


def test_cooccurrence_only_along_planted_edges(root: Path, truth: dict) -> None:
    graph = CooccurrenceGraph.load(root / "cooccurrence_graph.json")
    assert graph.edges  # a planted, non-empty graph
    for rec in truth.values():
        allowed = {(b, m) for a in rec["labels"] for b, m, _ in graph.out_edges(a)}
        for c, m in rec["cooccurring"]:
            assert (c, m) in allowed and c not in rec["labels"]


def test_missing_mask_skip_counts_and_error_names_it(root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "avs"
    shutil.copytree(root, copy)
    rec = AVSBench(copy, "s4", "test").records[0]
    rec.masks[2].unlink()
    with pytest.raises(MissingFileError, match=rec.masks[2].name) as err:
        AVSBench(copy, "s4", "test")
    assert "1 of 3" in str(err.value)
    ds = AVSBench(copy, "s4", "test", missing="skip")
    assert len(ds) == 2 and rec.name not in [r.name for r in ds.records]
    assert ds.skipped["file does not exist"] == 1 and "skipped 1" in ds.skip_report()


def test_root_may_be_the_subset_folder_and_sizes_follow_arguments(root: Path) -> None:
    ds = AVSBench(root / "Single-source", "s4", "val", image_size=32, sample_rate=8000,
                  clip_seconds=3.0)
    s = ds[0]
    assert s["frames"].shape == (5, 3, 32, 32) and s["masks"].shape == (5, 32, 32)
    assert s["audio"].shape == (1, 24000)
    assert set(s["masks"].unique().tolist()) <= {0.0, 1.0}


def test_bad_split_value_names_file_and_line(tmp_path: Path) -> None:
    d = tmp_path / "Single-source"
    d.mkdir()
    (d / "s4_meta_data.csv").write_text("name,start,category,split\nabc,0,dog_barking,train\n"
                                        "xyz,1,dog_barking,holdout\n")
    with pytest.raises(AnnotationError, match=r"s4_meta_data\.csv.*line 3"):
        AVSBench(tmp_path, "s4", "train")


@pytest.mark.parametrize("subset", ["s4", "ms3"])
def test_datamodule_batches_and_plot(root: Path, tmp_path: Path, subset: str) -> None:
    dm = AVSBenchDataModule(root, subset=subset, batch_size=2, num_workers=0, image_size=32)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert batch["frames"].shape == (2, 5, 3, 32, 32) and batch["masks"].shape == (2, 5, 32, 32)
    assert batch["mask_valid"].dtype == torch.bool and batch["audio"].shape == (2, 1, 5 * SR)
    assert ("label" in batch) == (subset == "s4")
    fig = dm.plot(dm.dataset("test")[0])
    out = tmp_path / f"{subset}.png"
    fig.savefig(out)
    assert out.stat().st_size > 1000
