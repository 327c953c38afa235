"""AVE: list-file parsing, the event window on synthetic videos, and the feature format.

Content checks use ``synthetic_scenes.jsonl`` and the world: the event's category is
heard (its pitch) and seen (its colours) inside ``[start, end)`` and not outside,
per-second labels match the planted event, the feature file holds what was rendered.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from avbench.data import io
from avbench.data.datamodules.ave import AVEDataModule
from avbench.data.datasets.ave import AVE, AVE15_CLASSES, AVEFeatures, read_ave_annotations
from avbench.data.datasets.features import FeatureDataset
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.synthetic import generate
from avbench.data.synthetic.graph import CooccurrenceGraph
from avbench.data.synthetic.presets import get_preset
from avbench.data.synthetic.writers import ave as ave_writer
from avbench.data.synthetic.writers.features import default_standins, pooled_features
from avbench.data.synthetic.writers.ssl_layout import get_world, world_config_kwargs

SR = 16000
PRESET = get_preset("tiny")
SIZE = PRESET.image_size


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ave")
    generate("ave", out, "tiny", seed=0, progress=False)
    return out


@pytest.fixture(scope="module")
def truth(root: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in (root / "synthetic_scenes.jsonl").read_text().splitlines()]
    return {r["id"]: r for r in rows}


@pytest.fixture(scope="module")
def world():
    return get_world(world_config_kwargs(PRESET), 0)


def pitch_ratio(wave: np.ndarray, category: int, world) -> float:
    """Power within +-3% of the category's pitch over the median such power at the
    other categories' pitches."""
    spec = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(wave.size, 1 / SR)

    def band(p: float) -> float:
        return float(spec[(freqs > 0.97 * p) & (freqs < 1.03 * p)].mean())

    others = [band(c.pitch_hz) for c in world.categories if c.index != category]
    return band(world.categories[category].pitch_hz) / float(np.median(others))


def colour_fraction(image: torch.Tensor, obj: dict, box: list[float] | None = None,
                    tol: float = 30.0) -> tuple[float, float]:
    """Share of pixels in the object's colours (body or texture) inside ``box``
    (normalised x0, y0, x1, y1; the whole image if None) and outside it."""
    img = image.permute(1, 2, 0).numpy() * 255.0
    dist = np.min([np.linalg.norm(img - np.asarray(c, float), axis=-1)
                   for c in (obj["color"], obj["texture_color"])], axis=0)
    hit = dist < tol
    inside = np.ones_like(hit) if box is None else np.zeros_like(hit)
    if box is not None:
        h, w = hit.shape
        inside[int(box[1] * h):int(np.ceil(box[3] * h)), int(box[0] * w):int(np.ceil(box[2] * w))] = True
    return float(hit[inside].mean()), float(hit[~inside].mean()) if (~inside).any() else 0.0


# --------------------------------------------------------------------------- list files
ROWS = ["Church bell&RUhOCu3LNXM&good&0&10", "Baby cry, infant cry&abc-_123XYZ&good&3&7",
        "Bark&q9zz0000001&good&2&5"]


def test_header_and_no_header_parse_to_the_same_records(tmp_path: Path) -> None:
    with_header = tmp_path / "a.txt"
    without = tmp_path / "b.txt"
    with_header.write_text("Category&VideoID&Quality&StartTime&EndTime\r\n" + "\r\n".join(ROWS) + "\r\n\r\n")
    without.write_text("\n".join(ROWS) + "\n")
    a, b = read_ave_annotations(with_header), read_ave_annotations(without)
    key = [(r.category, r.video_id, r.quality, r.start, r.end) for r in a]
    assert key == [(r.category, r.video_id, r.quality, r.start, r.end) for r in b]
    assert key[1] == ("Baby cry, infant cry", "abc-_123XYZ", "good", 3, 7)


@pytest.mark.parametrize("bad, match", [
    ("Bark&q9zz0000002&good&2", r"line 3: expected 5 '&'-separated fields"),
    ("Bark&q9zz0000002&good&2&5&extra", r"line 3: expected 5 '&'-separated fields"),
    ("Bark&q9zz0000002&good&two&5", r"line 3: StartTime 'two' is not a number"),
    ("Bark&q9zz0000002&good&6&4", r"line 3: event \[6, 4\)"),
])
def test_bad_row_names_file_and_line(tmp_path: Path, bad: str, match: str) -> None:
    path = tmp_path / "trainSet.txt"
    path.write_text(f"{ROWS[0]}\n\n{bad}\n")
    with pytest.raises(AnnotationError, match=match) as err:
        read_ave_annotations(path)
    assert err.value.path == path and "trainSet.txt" in str(err.value)


def test_zero_length_events_dropped_and_counted(tmp_path: Path) -> None:
    d = tmp_path / "AVE_Dataset"
    (d / "AVE").mkdir(parents=True)
    (d / "trainSet.txt").write_text(f"{ROWS[0]}\nBark&zero0000000&good&4&4\n")
    (d / "AVE" / "RUhOCu3LNXM.mp4").write_bytes(b"")
    ds = AVE(tmp_path, "train")  # root = parent of AVE_Dataset is accepted
    assert [r.video_id for r in ds.records] == ["RUhOCu3LNXM"]
    assert ds.skipped["zero-length event"] == 1 and ds.classes == ["Bark", "Church bell"]


# --------------------------------------------------------------------------- raw videos
def test_list_files_match_the_plan_and_ids_are_disjoint(root: Path) -> None:
    ids = {}
    for split in ("train", "val", "test"):
        rows = read_ave_annotations(root / f"{split}Set.txt")
        assert len(rows) == PRESET.count("ave", split)
        ids[split] = {r.video_id for r in rows}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"])
    assert not (ids["val"] & ids["test"])
    ann = read_ave_annotations(root / "Annotations.txt")  # has the header line
    assert {r.video_id for r in ann} == ids["train"] | ids["val"] | ids["test"]


@pytest.mark.parametrize("split", ["train", "test"])
def test_event_is_heard_and_seen_only_inside_its_window(root: Path, truth: dict, world,
                                                        split: str) -> None:
    ds = AVE(root, split, image_size=SIZE, clip_seconds=2.0)
    plan = {c.video_id: c for c in ave_writer.plan(PRESET, 0)}
    classes = {r.category for r in read_ave_annotations(root / "Annotations.txt")}
    assert ds.classes == sorted(classes)
    for i in range(len(ds)):
        s, rec = ds[i], ds.records[i]
        t = truth[s["id"]]
        c = t["labels"][0]
        assert s["class_name"] == t["category"] and ds.classes[s["label"]] == s["class_name"]
        assert (s["event_start"], s["event_end"]) == (t["event_start"], t["event_end"])
        assert s["event_labels"].tolist() == t["event_labels"]
        assert s["audio"].shape == (1, 2 * SR) and s["image"].shape == (3, SIZE, SIZE)
        # the window centred on the event carries the category's pitch
        assert pitch_ratio(s["audio"][0].numpy(), c, world) > 10
        full = io.read_audio(ds.video_path(rec), SR)[0].numpy()
        a, b = (SR * t["event_start"], SR * t["event_end"])
        inside = pitch_ratio(full[a:b], c, world)
        assert inside > 10, (s["id"], inside)
        if b - a < full.size:
            outside = pitch_ratio(np.concatenate([full[:a], full[b:]]), c, world)
            assert outside * 10 < inside, (s["id"], inside, outside)
        # the frame at the event centre shows the object in its colours inside its GT box.
        # Measured inside the box, not over the image: calibrated VGG-SS sizes (issue 11) give
        # boxes down to ~1-3 % of the frame, and at 64 px the codec's chroma blur leaves only
        # ~15 % of such a box in the exact colours (large objects: 40-90 %).
        obj = next(o for o in t["objects"] if o["annotated"])
        inside, outside = colour_fraction(s["image"], obj, t["boxes"][0])
        assert inside > 0.1 and inside > outside, (s["id"], inside, outside)
        # every second's frame is the scene with its source inside the event and the
        # scene without it outside (compared on the source's pixels, against the world)
        scene = ave_writer.make_scene(world, plan[s["id"]])
        empty = dataclasses.replace(scene, objects=[o for o in scene.objects if not o.annotated])
        src = scene.annotated_objects[0]
        frames = io.read_video_frames(ds.video_path(rec), fps=1.0, start=0.5, num_frames=10)
        for sec in range(10):
            when = sec + 0.5
            frame = frames[sec].permute(1, 2, 0).numpy()
            m = world.object_mask(scene, src, when, SIZE)
            d_with = np.abs(frame - world.render_frame(scene, when, SIZE) / 255.0)[m].mean()
            d_without = np.abs(frame - world.render_frame(empty, when, SIZE) / 255.0)[m].mean()
            if t["event_labels"][sec]:
                assert d_with < d_without, (s["id"], sec, d_with, d_without)
            else:
                assert d_without < d_with, (s["id"], sec, d_with, d_without)


def test_event_mix_is_the_world_mix_inside_the_event(world) -> None:
    """Guard: the AVE writer's gated mix must stay the world's own mix in the event."""
    clip = next(c for c in ave_writer.plan(PRESET, 0) if 0 < c.start and c.end - c.start >= 2)
    scene = ave_writer.make_scene(world, clip)
    gated = ave_writer.event_mix(world, scene, clip.start, clip.end, 10, SR)
    full = world.render_audio(scene, 10, SR)
    a, b = SR * clip.start + SR // 10, SR * clip.end - SR // 10
    np.testing.assert_allclose(gated[a:b], full[a:b], atol=1e-6)
    outside = gated[: SR * clip.start - SR // 10]
    assert np.sqrt(np.mean(outside**2)) < np.sqrt(np.mean(full[a:b] ** 2))


def test_frames_option_spans_the_ten_seconds(root: Path) -> None:
    ds = AVE(root, "val", image_size=SIZE, num_frames=10)
    s = ds[0]
    assert s["frames"].shape == (10, 3, SIZE, SIZE)
    assert not torch.equal(s["frames"][0], s["frames"][-1])


def test_ave15_restricts_classes(root: Path) -> None:
    ds = AVE(root, "train", classes="ave15", image_size=SIZE)
    assert ds.classes == sorted(AVE15_CLASSES) and len(ds.classes) == 15
    assert all(r.category in AVE15_CLASSES for r in ds.records)
    full = AVE(root, "train")
    assert len(ds) == sum(r.category in AVE15_CLASSES for r in full.records)


def test_cooccurrence_only_along_planted_edges(root: Path, truth: dict) -> None:
    graph = CooccurrenceGraph.load(root / "cooccurrence_graph.json")
    for rec in truth.values():
        allowed = {(b, m) for a in rec["labels"] for b, m, _ in graph.out_edges(a)}
        assert all((c, m) in allowed for c, m in rec["cooccurring"])


def test_missing_video_skip_counts_and_error_names_it(root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ave"
    shutil.copytree(root, copy)
    ds = AVE(copy, "test")
    gone = ds.video_path(ds.records[1])
    gone.unlink()
    with pytest.raises(MissingFileError, match=gone.name):
        AVE(copy, "test")
    skip = AVE(copy, "test", missing="skip")
    assert len(skip) == len(ds) - 1 and skip.skipped["file does not exist"] == 1


# --------------------------------------------------------------------------- features
def test_feature_file_holds_the_rendered_clips(root: Path, world) -> None:
    for split in ("train", "val", "test"):
        feats = AVEFeatures(root, split)
        raw = {r.video_id: r.category for r in read_ave_annotations(root / f"{split}Set.txt")}
        assert {feats[i]["id"]: feats[i]["class_name"] for i in range(len(feats))} == raw
        assert feats.audio_dim == 128 and feats.visual_dim == 1024
        assert feats.classes == sorted(feats.classes)
    # recompute one clip's features from the world: the file stores exactly them
    clip = next(c for c in ave_writer.plan(PRESET, 0) if c.split == "test")
    scene = ave_writer.make_scene(world, clip)
    audio = ave_writer.event_mix(world, scene, clip.start, clip.end, 10, SR)
    video = ave_writer.event_video(world, scene, clip.start, clip.end, 10, PRESET.fps, SIZE)
    a, v = pooled_features(video[[int((s + 0.5) * PRESET.fps) for s in range(10)]], audio, SR,
                           default_standins())  # tests/conftest.py: the tiny stand-ins
    feats = AVEFeatures(root, "test")
    item = next(feats[i] for i in range(len(feats)) if feats[i]["id"] == clip.video_id)
    np.testing.assert_allclose(item["audio_feat"].numpy(), a, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(item["visual_feat"].numpy(), v, rtol=1e-5, atol=1e-5)


def test_features_ave15_filter(root: Path) -> None:
    feats = AVEFeatures(root, "train", classes="ave15")
    assert feats.classes == sorted(AVE15_CLASSES)
    assert all(feats[i]["class_name"] in AVE15_CLASSES for i in range(len(feats)))


def _write_h5(path: Path, keys: dict[str, np.ndarray]) -> None:
    with h5py.File(path, "w") as h5:
        for k, v in keys.items():
            h5.create_dataset(k, data=v)


def test_feature_file_missing_key_names_file_and_key(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "ave_feature.h5"
    _write_h5(path, {"audio_train": rng.normal(size=(6, 128)), "visual_train": rng.normal(size=(6, 1024)),
                     "lab_train": np.arange(6) % 3, "audio_test": rng.normal(size=(2, 128)),
                     "visual_test": rng.normal(size=(2, 1024))})
    assert len(AVEFeatures(tmp_path, "train")) + len(AVEFeatures(tmp_path, "val")) == 6
    with pytest.raises(AnnotationError, match=r"ave_feature\.h5.*'lab_test'"):
        AVEFeatures(tmp_path, "test")
    bad = tmp_path / "bad.h5"
    _write_h5(bad, {"audio_train": rng.normal(size=(6, 128)), "lab_train": np.arange(6)})
    with pytest.raises(AnnotationError, match=r"bad\.h5.*'visual_train'"):
        FeatureDataset(tmp_path, "bad.h5", "train")
    with pytest.raises(MissingFileError, match="nope.h5"):
        FeatureDataset(tmp_path, "nope.h5", "train")


def test_feature_val_holdout_one_hot_and_per_second(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 40
    labels = np.eye(15)[np.arange(n) % 15]  # one-hot, 15 classes, no class_names: ILI order
    _write_h5(tmp_path / "f.h5", {
        "audio_train": rng.normal(size=(n, 10, 128)), "visual_train": rng.normal(size=(n, 10, 1024)),
        "lab_train": labels, "audio_test": rng.normal(size=(5, 10, 128)),
        "visual_test": rng.normal(size=(5, 10, 1024)), "lab_test": labels[:5]})
    train = AVEFeatures(tmp_path, "train", file="f.h5", val_fraction=0.2)
    val = AVEFeatures(tmp_path, "val", file="f.h5", val_fraction=0.2)
    ids_t, ids_v = {r.id for r in train.records}, {r.id for r in val.records}
    assert ids_v and not (ids_t & ids_v) and len(ids_t | ids_v) == n
    assert ids_v == {r.id for r in AVEFeatures(tmp_path, "val", file="f.h5", val_fraction=0.2).records}
    s = train[0]
    assert s["audio_feat"].shape == (128,) and s["visual_feat"].shape == (1024,)
    assert s["class_name"] == AVE15_CLASSES[int(s["id"].split("_")[1]) % 15]


@pytest.mark.parametrize("source", ["video", "features"])
def test_datamodule_batches(root: Path, tmp_path: Path, source: str) -> None:
    dm = AVEDataModule(root, source=source, batch_size=3, num_workers=0, image_size=32,
                       clip_seconds=1.0)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["label"].shape == (3,)
    if source == "video":
        assert batch["image"].shape == (3, 3, 32, 32) and batch["event_labels"].shape == (3, 10)
        fig = dm.plot(dm.dataset("test")[0])
        fig.savefig(tmp_path / "ave.png")
        assert (tmp_path / "ave.png").stat().st_size > 1000
    else:
        assert batch["audio_feat"].shape == (3, 128) and batch["visual_feat"].shape == (3, 1024)
    assert len(dm.dataset("val")) == PRESET.count("ave", "val")
    assert AVEDataModule(root, source=source, classes="ave15").classes == sorted(AVE15_CLASSES)
