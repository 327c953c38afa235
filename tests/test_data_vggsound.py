"""VGGSound / VGG-SS loaders: real-layout parsing on planted fixtures, content on synthetic data.

Part 1 builds tiny hand-made roots (a few files written with media.py) to pin
the parsing rules and the bad-input behaviour. Part 2 generates the ``tiny``
synthetic preset once per module and checks that what the loaders return is
what the world planted: the GT box covers the sounding object, the audio has
energy at the category's pitch, splits and class sets are disjoint, and the
co-occurrence graph file explains every planted co-occurrence.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from avbench.data.datasets.ssl_layout import boxes_to_gt_map
from avbench.data.datasets.vggsound import VGGSound, parse_vggsound_csv
from avbench.data.datasets.vggss import VGGSS
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.splits import holdout_split
from avbench.data.synthetic.media import write_image, write_mp4, write_wav

SR = 16000
COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 220), (220, 200, 30)]


# ---------------------------------------------------------------------------
# part 1: planted fixtures
# ---------------------------------------------------------------------------
ROWS = [
    ("aaaaaaaaaaa", 30, "dog barking", "train"),
    ("bbbbbbbbbbb", 0, "male speech, man speaking", "train"),
    ("ccccccccccc", 12, "dog barking", "train"),
    ("ddddddddddd", 7, "playing cello", "train"),
    ("eeeeeeeeeee", 5, "dog barking", "test"),
    ("fffffffffff", 110, "male speech, man speaking", "test"),
    ("ggggggggggg", 3, "playing cello", "test"),
]
IDS = [f"{a}_{b:06d}" for a, b, _, _ in ROWS]
FREQS = [300.0, 450.0, 600.0, 750.0, 900.0, 1050.0, 1200.0]


def _tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(wave: torch.Tensor, sr: int = SR) -> float:
    spec = torch.fft.rfft(wave.reshape(-1) * torch.hann_window(wave.numel())).abs()
    return float(spec.argmax()) * sr / wave.numel()


@pytest.fixture
def fixture_root(tmp_path: Path) -> Path:
    """A 7-clip VGGSound root: csv with quoted labels, lists, VGG-SS json, jpg/wav/mp4."""
    root = tmp_path / "vggsound"
    meta = root / "metadata"
    meta.mkdir(parents=True)
    with open(root / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(ROWS)
    # the 144k list also holds a test clip (the public list's overlap problem)
    (meta / "vggsound_144k.txt").write_text("\n".join(IDS[:4] + [IDS[4]]) + "\n")
    (meta / "vggsound_10k.txt").write_text("\n".join(IDS[:2]) + "\n")
    vggss = [
        {"file": IDS[4], "class": "dog barking", "bbox": [[0.25, 0.25, 0.75, 0.75]]},
        {"file": IDS[5], "class": "male speech, man speaking", "bbox": [[0, 0, 0.5, 1]]},
        {"file": IDS[6], "class": "playing cello", "bbox": [[0.5, 0, 1, 0.5]]},
    ]
    (meta / "vggss.json").write_text(json.dumps(vggss))
    (meta / "vggss_heard_test.csv").write_text(f'{IDS[4]}\n{IDS[5]}\n')
    (meta / "vggss_unheard_test.csv").write_text(f'{IDS[6]},playing cello\n')
    for k, ident in enumerate(IDS):
        img = np.zeros((32, 32, 3), np.uint8)
        img[:] = COLOURS[k % len(COLOURS)]
        audio = _tone(FREQS[k], 2.0)
        write_image(root / "frames" / f"{ident}.jpg", img)
        write_wav(root / "audio" / f"{ident}.wav", audio, SR)
        write_mp4(root / "video" / f"{ident}.mp4", np.repeat(img[None], 8, 0), 4, audio, SR)
    return root


def test_csv_wrong_field_count_names_file_and_line(tmp_path):
    path = tmp_path / "vggsound.csv"
    path.write_text('aaaaaaaaaaa,30,"dog barking",train\nbbbbbbbbbbb,12,dog barking\n')
    with pytest.raises(AnnotationError) as err:
        parse_vggsound_csv(path)
    assert "vggsound.csv" in str(err.value) and "line 2" in str(err.value)
    assert "expected 4 fields" in str(err.value)


@pytest.mark.parametrize(
    "bad_row, problem",
    [("aaaaaaaaaaa,thirty,dog,train", "start_seconds"), ("aaaaaaaaaaa,30,dog,validation", "split")],
)
def test_csv_bad_values_name_line(tmp_path, bad_row, problem):
    path = tmp_path / "vggsound.csv"
    path.write_text(f"ccccccccccc,1,dog,test\n{bad_row}\n")
    with pytest.raises(AnnotationError, match=rf"vggsound.csv: line 2: .*{problem}"):
        parse_vggsound_csv(path)


def test_csv_quoted_labels_header_and_ids(tmp_path):
    path = tmp_path / "vggsound.csv"
    path.write_text(
        "# YouTube ID,start seconds,label,train/test split\n"
        '---g-f_I2yQ,1,"people marching",test\n'
        '--0PQM4-hqg,30.0,"male speech, man speaking",train\n\n'
    )
    rows = parse_vggsound_csv(path)
    assert [r.id for r in rows] == ["---g-f_I2yQ_000001", "--0PQM4-hqg_000030"]
    assert rows[1].label == "male speech, man speaking" and rows[1].split == "train"


def test_training_split_removes_and_reports_test_overlap(fixture_root):
    train = VGGSound(fixture_root, "train", clip_seconds=1.0, image_size=16, val_fraction=0.0)
    assert train.test_overlap == [IDS[4]]
    assert [r.id for r in train.records] == IDS[:4]
    assert "train/test overlap" in train.skip_report()
    kept = VGGSound(fixture_root, "train", clip_seconds=1.0, image_size=16, val_fraction=0.0,
                    allow_test_overlap=True)
    assert IDS[4] in [r.id for r in kept.records] and kept.test_overlap == [IDS[4]]


def test_labels_index_sorted_csv_classes(fixture_root):
    ds = VGGSound(fixture_root, "test", clip_seconds=1.0, image_size=16)
    assert ds.classes == ["dog barking", "male speech, man speaking", "playing cello"]
    sample = ds[1]
    assert sample["id"] == IDS[5] and sample["class_name"] == "male speech, man speaking"
    assert sample["label"] == 1 and ds.classes[sample["label"]] == sample["class_name"]


def test_holdout_is_deterministic_disjoint_and_never_empty():
    ids = [f"clip{i:04d}" for i in range(2000)]
    train, val = holdout_split(ids, 0.05)
    assert set(train).isdisjoint(val) and len(train) + len(val) == len(ids)
    assert 60 <= len(val) <= 140  # ~5 %
    assert holdout_split(list(reversed(ids)), 0.05)[1] == list(reversed(val))
    # a sub-list holds out exactly its members of the big list's val set
    assert set(holdout_split(ids[:500], 0.05)[1]) == set(val) & set(ids[:500])
    assert len(holdout_split(ids[:3], 0.05)[1]) == 1


def test_val_and_train_partition_the_list(fixture_root):
    kw = dict(clip_seconds=1.0, image_size=16, val_fraction=0.3)
    train = VGGSound(fixture_root, "train", **kw)
    val = VGGSound(fixture_root, "val", **kw)
    assert {r.id for r in train.records} | {r.id for r in val.records} == set(IDS[:4])
    assert not {r.id for r in train.records} & {r.id for r in val.records}
    assert len(val) >= 1


@pytest.mark.parametrize("source", ["frames", "video"])
def test_content_matches_planted_colour_and_tone(fixture_root, source):
    ds = VGGSound(fixture_root, "train", source=source, clip_seconds=1.0, image_size=16,
                  val_fraction=0.0, train_list="vggsound_10k.txt")
    for k in range(2):
        s = ds[k]
        assert s["id"] == IDS[k] and s["image"].shape == (3, 16, 16)
        colour = torch.tensor(COLOURS[k], dtype=torch.float32) / 255
        assert torch.allclose(s["image"].mean(dim=(1, 2)), colour, atol=0.04)
        assert s["audio"].shape == (1, SR)
        assert abs(_peak_hz(s["audio"]) - FREQS[k]) < 5


def test_vggss_garbage_and_zero_area_boxes_clipped_dropped_reported(fixture_root, caplog):
    meta = fixture_root / "metadata"
    data = json.loads((meta / "vggss.json").read_text())
    data[0]["bbox"] = [
        [-2.8823037615171174e16, 0.5, 0.5, 1.0],  # garbage xmin -> clipped to 0
        [0.26875, 1.0, 0.753125, 1.0],  # zero area (a public-file box) -> dropped
        [0.00625, 0.015625, 0.00625, 0.015625],  # zero area -> dropped
    ]
    data[1]["bbox"] = [[0.5, 1.0, 0.7, 1.0]]  # its only box is degenerate
    (meta / "vggss.json").write_text(json.dumps(data))
    ds = VGGSS(fixture_root, "all", clip_seconds=1.0, image_size=16)
    rep = ds.box_report
    assert (rep.boxes, rep.kept, rep.clipped, rep.zero_area) == (5, 2, 1, 3)
    assert rep.without_boxes == [IDS[5]] and ds.without_boxes == [IDS[5]]
    assert "1 clipped" in ds.skip_report() and "3 zero-area" in ds.skip_report()
    assert "vggss.json" in caplog.text
    s0 = ds[0]
    expected = torch.zeros(16, 16)
    expected[8:16, 0:8] = 1
    assert torch.equal(s0["gt_map"], expected)
    assert s0["boxes"] == [[0.0, 0.5, 0.5, 1.0]]
    assert ds[1]["gt_map"].sum() == 0 and ds[1]["boxes"] == []


def test_vggss_malformed_box_names_file_and_entry(fixture_root):
    meta = fixture_root / "metadata"
    data = json.loads((meta / "vggss.json").read_text())
    data[2]["bbox"] = [[0.1, 0.2, 0.3]]
    (meta / "vggss.json").write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=rf"vggss.json: entry 2 \({IDS[6]}\): box 0"):
        VGGSS(fixture_root, clip_seconds=1.0, image_size=16)
    (meta / "vggss.json").write_text('[{"file": "x", "class": "y", "bbox": [[0,0,1,1]]},')
    with pytest.raises(AnnotationError, match="vggss.json: invalid JSON"):
        VGGSS(fixture_root, clip_seconds=1.0, image_size=16)


def test_vggss_union_map_and_heard_unheard_formats(fixture_root):
    all_ = VGGSS(fixture_root, "all", clip_seconds=1.0, image_size=8)
    s = all_[0]
    assert s["gt_map"].sum() == 16 and s["gt_map"][2:6, 2:6].all()  # [0.25,0.75]^2 of 8 px
    heard = VGGSS(fixture_root, "heard", clip_seconds=1.0, image_size=8)  # id-only rows
    unheard = VGGSS(fixture_root, "unheard", clip_seconds=1.0, image_size=8)  # id,class rows
    assert [r.id for r in heard.records] == IDS[4:6] and [r.id for r in unheard.records] == [IDS[6]]
    assert heard.classes == all_.classes == VGGSound(fixture_root, "test").classes
    lst = fixture_root / "metadata" / "vggss_unheard_test.csv"
    lst.write_text(f"{IDS[4]}\n{IDS[5]}\nzzzzzzzzzzz_000001\n")  # one unknown id among known ones
    with pytest.raises(AnnotationError, match="vggss_unheard_test.csv: row 3"):
        VGGSS(fixture_root, "unheard")
    lst.write_text("zzzzzzzzzzz_000001\n")  # a list of another dataset: names both sides
    with pytest.raises(AnnotationError, match=r"vggss_unheard_test.csv: 0 of its 1 distinct ids.*zzzz"):
        VGGSS(fixture_root, "unheard")


def test_missing_media_error_names_file_and_skip_counts(fixture_root):
    (fixture_root / "audio" / f"{IDS[5]}.wav").unlink()
    with pytest.raises(MissingFileError) as err:
        VGGSS(fixture_root, clip_seconds=1.0, image_size=16)
    assert f"{IDS[5]}.wav" in str(err.value) and "1 of 3" in str(err.value)
    ds = VGGSS(fixture_root, clip_seconds=1.0, image_size=16, missing="skip")
    assert [r.id for r in ds.records] == [IDS[4], IDS[6]]
    assert ds.skipped["file does not exist"] == 1 and "skipped 1" in ds.skip_report()
    # the mp4 source does not need the wav
    assert len(VGGSS(fixture_root, source="video", clip_seconds=1.0, image_size=16)) == 3


def test_boxes_to_gt_map_follows_reference_rasterisation():
    m = boxes_to_gt_map([[0.1, 0.2, 0.55, 0.9]], 224, "union")
    assert m.sum() == (int(0.55 * 224) - int(0.1 * 224)) * (int(0.9 * 224) - int(0.2 * 224))
    c = boxes_to_gt_map([[0, 0, 0.5, 0.5]] * 2 + [[0.25, 0.25, 1, 1]], 4, "consensus")
    assert sorted(set(c.flatten().tolist())) == [0.0, 0.5, 1.0]


# ---------------------------------------------------------------------------
# part 2: the tiny synthetic preset, loaded by the real loaders
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from avbench.data.synthetic import generate

    root = tmp_path_factory.mktemp("vggsound_tiny")
    summary = generate("vggsound", root, "tiny", seed=3, progress=False)
    return root, summary


@pytest.fixture(scope="module")
def world_and_truth(tiny):
    from avbench.data.synthetic.writers.ssl_layout import get_world

    root, summary = tiny
    meta = json.loads((root / "avbench_synthetic.json").read_text())
    world = get_world(meta["world_config"], meta["seed"])
    truth = {}
    with open(root / "synthetic_scenes.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            truth[rec["id"]] = rec
    return world, truth


def test_tiny_layout_is_the_real_one(tiny):
    from avbench.data.synthetic.presets import get_preset

    root, summary = tiny
    p = get_preset("tiny")
    for name in ["vggsound.csv", "metadata/vggsound_10k.txt", "metadata/vggsound_144k.txt",
                 "metadata/vggss.json", "metadata/vggss_heard.txt",
                 "metadata/vggss_heard_test.csv", "metadata/vggss_unheard_test.csv",
                 "cooccurrence_graph.json", "synthetic_scenes.jsonl", "avbench_synthetic.json"]:
        assert (root / name).is_file(), name
    rows = parse_vggsound_csv(root / "vggsound.csv")
    n_train, n_test = p.count("vggsound", "train"), p.count("vggsound", "test")
    assert sum(r.split == "train" for r in rows) == n_train
    assert sum(r.split == "test" for r in rows) == n_test
    for r in rows:
        assert len(r.youtube_id) == 11
        for path in (f"frames/{r.id}.jpg", f"audio/{r.id}.wav", f"video/{r.id}.mp4"):
            assert (root / path).is_file(), path
    assert summary["counts"]["train"] == n_train


def test_tiny_splits_disjoint_and_heard_classes_disjoint(tiny):
    root, _ = tiny
    kw = dict(clip_seconds=0.5, image_size=32)
    ids = {s: {r.id for r in VGGSound(root, s, **kw).records} for s in ("train", "val", "test")}
    assert ids["train"] and ids["val"] and ids["test"]
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"]
    assert not ids["val"] & ids["test"]
    vggss = {r.id for r in VGGSS(root, "all", **kw).records}
    assert vggss == ids["test"]
    heard, unheard = VGGSS(root, "heard", **kw), VGGSS(root, "unheard", **kw)
    heard_cls = {r.class_name for r in heard.records}
    unheard_cls = {r.class_name for r in unheard.records}
    assert heard_cls and unheard_cls and not heard_cls & unheard_cls
    assert {r.id for r in heard.records} | {r.id for r in unheard.records} == vggss
    heard_train = VGGSound(root, "train", train_list="vggss_heard.txt", val_fraction=0.0, **kw)
    assert {r.class_name for r in heard_train.records} <= heard_cls | (
        set(heard_train.classes) - unheard_cls)
    assert not {r.class_name for r in heard_train.records} & unheard_cls
    ten_k = VGGSound(root, "train", train_list="vggsound_10k.txt", val_fraction=0.0, **kw)
    assert {r.id for r in ten_k.records} < ids["train"] | ids["val"]


def object_colour_error(image: torch.Tensor, mask: torch.Tensor, obj) -> float:
    """Median over ``mask`` of the distance (0..1, mean over RGB) from each pixel to the
    nearer of the object's two planted colours (body and texture)."""
    pix = image[:, mask]
    dists = [(pix - torch.tensor(c, dtype=torch.float32).reshape(3, 1) / 255).abs().mean(0)
             for c in (obj.color, obj.texture_color)]
    return float(torch.minimum(*dists).median())


@pytest.mark.parametrize("source", ["frames", "video"])
def test_tiny_gt_box_covers_the_sounding_object(tiny, world_and_truth, source):
    from avbench.data.synthetic.writers.ssl_layout import ClipSpec, make_scene

    root, _ = tiny
    world, truth = world_and_truth
    ds = VGGSS(root, "all", source=source, clip_seconds=0.5, image_size=64)
    assert len(ds) > 0
    for i in range(len(ds)):
        s = ds[i]
        rec = truth[s["id"]]
        cat = world.categories[rec["labels"][0]]
        assert s["class_name"] == cat.name
        scene = make_scene(world, ClipSpec(s["id"], "test", tuple(rec["labels"]), rec["rng_seed"]))
        obj = next(o for o in scene.objects if o.annotated)
        assert obj.category == cat.index
        mask = torch.from_numpy(world.sounding_mask(scene, rec["t_eval"], 64))
        assert mask.sum() > 0
        gt = s["gt_map"] > 0
        # the box holds the whole object (up to the rasterisation's floor at the far edges)
        assert float(gt[mask].float().mean()) > 0.95
        # ... and the object is a large part of the box, not a corner of it
        assert float(mask[gt].float().mean()) > 0.3
        # the pixels of the object in the loaded frame have the category's colour
        inside = object_colour_error(s["image"], mask & gt, obj)
        outside = object_colour_error(s["image"], ~gt, obj)
        assert inside < 0.06 and inside < outside


def pitch_is_loudest(audio: torch.Tensor, sr: int, own: int, present: set[int], pitches) -> bool:
    """Is the band around category ``own``'s pitch (+-3 %) louder than the band of every
    category absent from the clip (and 10x their median)? Categories within 10 % of
    ``own``'s pitch are not compared (audio-confusable pairs)."""
    x = audio.reshape(-1).double()
    spec = torch.fft.rfft(x * torch.hann_window(x.numel(), dtype=torch.float64)).abs() ** 2
    freqs = torch.fft.rfftfreq(x.numel(), 1 / sr)

    def band(f0: float) -> float:
        return float(spec[(freqs > 0.97 * f0) & (freqs < 1.03 * f0)].mean())

    e_own = band(pitches[own])
    others = [band(p) for c, p in enumerate(pitches)
              if c not in present and abs(p - pitches[own]) > 0.1 * pitches[own]]
    return e_own > max(others) and e_own > 10 * float(np.median(others))


def test_tiny_audio_has_energy_at_the_category_pitch(tiny, world_and_truth):
    from avbench.data.synthetic.presets import get_preset

    root, _ = tiny
    world, truth = world_and_truth
    # the whole clip: sources are event trains, a short window can fall between events
    ds = VGGSound(root, "test", clip_seconds=get_preset("tiny").clip_seconds, image_size=32)
    pitches = [c.sound.pitch_hz for c in world.categories]
    wins = 0
    for i in range(len(ds)):
        s = ds[i]
        rec = truth[s["id"]]
        present = set(rec["labels"]) | set(rec["offscreen"]) | {
            c for c, m in rec["cooccurring"] if m == "audio"}
        wins += pitch_is_loudest(s["audio"], ds.sample_rate, rec["labels"][0], present, pitches)
    assert wins >= math.ceil(0.9 * len(ds))


def test_tiny_cooccurrence_only_along_graph_edges(tiny, world_and_truth):
    root, _ = tiny
    _, truth = world_and_truth
    graph = json.loads((root / "cooccurrence_graph.json").read_text())
    edges = {(e["src"], e["dst"]) for e in graph["edges"]}
    assert edges
    planted = 0
    for rec in truth.values():
        for cat, modality in rec["cooccurring"]:
            planted += 1
            assert any((f"{m}_{a}", f"{modality}_{cat}") in edges
                       for a in rec["labels"] for m in ("audio", "visual")), (rec["id"], cat)
            assert cat not in rec["labels"]


@pytest.mark.parametrize("test_set", ["vggss", "vggss_unheard", "vggsound"])
def test_datamodule_batches_and_plot(tiny, tmp_path, test_set):
    from avbench.data.datamodules.vggsound import VGGSoundDataModule

    root, _ = tiny
    dm = VGGSoundDataModule(root, test_set=test_set, batch_size=4, num_workers=0,
                            clip_seconds=0.5, image_size=48)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 48, 48) and batch["audio"].shape == (4, 1, 8000)
    assert batch["label"].dtype == torch.long
    dm.setup("test")
    tb = next(iter(dm.test_dataloader()))
    if test_set == "vggsound":
        assert "gt_map" not in tb
    else:
        assert tb["gt_map"].shape[1:] == (48, 48) and tb["gt_map"].sum() > 0
        assert isinstance(tb["boxes"], list)
    sample = dm.dataset("test")[0]
    fig = dm.plot(sample)
    out = tmp_path / "sample.png"
    fig.savefig(out)
    assert out.stat().st_size > 1000
    assert len(dm.dataset("val")) >= 1


def test_tiny_deleted_file_skip_counts_error_names(tiny, tmp_path):
    import shutil

    root, _ = tiny
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("video"))
    victim = VGGSS(copy, clip_seconds=0.5, image_size=32).records[0].id
    (copy / "frames" / f"{victim}.jpg").unlink()
    with pytest.raises(MissingFileError, match=f"{victim}.jpg"):
        VGGSS(copy, clip_seconds=0.5, image_size=32)
    ds = VGGSS(copy, clip_seconds=0.5, image_size=32, missing="skip")
    assert victim not in {r.id for r in ds.records} and ds.skipped["file does not exist"] == 1
