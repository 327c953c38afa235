"""VEGAS: the per-class raw layout, the deterministic hash split and the feature file.

Content checks use ``synthetic_scenes.jsonl``, ``avbench_synthetic.json`` (class ->
world category) and the world: each clip carries its class's pitch and colours, the
loader's split reproduces the writer's plan, the feature file separates the classes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from avbench.data.datamodules.vegas import VEGASDataModule
from avbench.data.datasets.vegas import VEGAS, VEGAS_CLASSES, VEGASFeatures, vegas_split
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.synthetic import generate
from avbench.data.synthetic.graph import CooccurrenceGraph
from avbench.data.synthetic.presets import get_preset
from avbench.data.synthetic.writers import vegas as vegas_writer
from avbench.data.synthetic.writers.features import default_standins, pooled_features
from avbench.data.synthetic.writers.ssl_layout import get_world, world_config_kwargs

SR = 16000
PRESET = get_preset("tiny")
SIZE = PRESET.image_size


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vegas")
    generate("vegas", out, "tiny", seed=0, progress=False)
    return out


@pytest.fixture(scope="module")
def truth(root: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in (root / "synthetic_scenes.jsonl").read_text().splitlines()]
    return {r["id"]: r for r in rows}


@pytest.fixture(scope="module")
def class_map(root: Path) -> dict[str, int]:
    return json.loads((root / "avbench_synthetic.json").read_text())["class_map"]


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


def test_layout_has_the_ten_class_folders(root: Path) -> None:
    dirs = sorted(d.name for d in root.iterdir() if d.is_dir())
    assert dirs == list(VEGAS_CLASSES)
    for d in dirs:
        videos = {p.stem for p in (root / d / "videos").glob("*.mp4")}
        audios = {p.stem for p in (root / d / "audios").glob("*.wav")}
        assert videos and videos == audios
        assert all(s.startswith("video_") for s in videos)


def test_hash_split_reproduces_the_plan(root: Path) -> None:
    counts = vegas_writer.split_counts(PRESET)
    ids = {}
    for split in ("train", "val", "test"):
        ds = VEGAS(root, split)
        ids[split] = {r.id for r in ds.records}
        assert len(ds) == counts[split]
        assert all(vegas_split(i) == split for i in ids[split])
        assert len({r.class_name for r in ds.records}) == min(10, counts[split])
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    # the split of an item depends on its id only: other fractions move it predictably
    assert {i for i in ids["train"] | ids["val"] if vegas_split(i, 0.0, 0.0) != "train"} == set()


def test_clips_carry_their_class_pitch_and_colours(root: Path, truth: dict, class_map: dict,
                                                    world) -> None:
    ds = VEGAS(root, "test", image_size=SIZE, clip_seconds=PRESET.clip_seconds)
    assert ds.classes == list(VEGAS_CLASSES)
    for i in range(len(ds)):
        s = ds[i]
        t = truth[s["id"]]
        cat = class_map[s["class_name"]]
        assert t["labels"] == [cat] and ds.classes[s["label"]] == s["class_name"]
        assert s["audio"].shape == (1, int(PRESET.clip_seconds * SR))
        assert pitch_ratio(s["audio"][0].numpy(), cat, world) > 10, s["id"]
        # the class's object is in the frame, in its colours inside its GT box. Measured in the
        # box, not over the image: calibrated VGG-SS sizes (issue 11) give boxes down to ~1 % of
        # the frame, which cannot fill 5 % of the image (in the box: 30-90 %)
        obj = next(o for o in t["objects"] if o["annotated"])
        img = s["image"].permute(1, 2, 0).numpy() * 255.0
        dist = np.min([np.linalg.norm(img - np.asarray(c, float), axis=-1)
                       for c in (obj["color"], obj["texture_color"])], axis=0)
        x0, y0, x1, y1 = t["boxes"][0]
        box = np.zeros(dist.shape, bool)
        box[int(y0 * SIZE):int(np.ceil(y1 * SIZE)), int(x0 * SIZE):int(np.ceil(x1 * SIZE))] = True
        inside, outside = (dist[box] < 30).mean(), (dist[~box] < 30).mean()
        assert inside > 0.1 and inside > outside, (s["id"], inside, outside)


def test_mp4_track_matches_the_wav(root: Path, class_map: dict, world) -> None:
    wav = VEGAS(root, "train", image_size=SIZE, clip_seconds=1.0)
    mp4 = VEGAS(root, "train", image_size=SIZE, clip_seconds=1.0, audio_source="mp4",
                num_frames=4)
    a, b = wav[0], mp4[0]
    assert a["id"] == b["id"] and b["frames"].shape == (4, 3, SIZE, SIZE)
    assert torch.equal(a["image"], b["image"])
    assert pitch_ratio(b["audio"][0].numpy(), class_map[b["class_name"]], world) > 10
    corr = np.corrcoef(a["audio"][0].numpy(), b["audio"][0].numpy())[0, 1]
    assert corr > 0.9  # the same mix, up to the AAC codec


def test_cooccurrence_only_along_planted_edges(root: Path, truth: dict) -> None:
    graph = CooccurrenceGraph.load(root / "cooccurrence_graph.json")
    for rec in truth.values():
        allowed = {(b, m) for a in rec["labels"] for b, m, _ in graph.out_edges(a)}
        assert all((c, m) in allowed for c, m in rec["cooccurring"])


def test_missing_wav_skip_counts_and_error_names_it(root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "vegas"
    shutil.copytree(root, copy)
    ds = VEGAS(copy, "test")
    gone = ds.records[0].audio
    gone.unlink()
    with pytest.raises(MissingFileError, match=gone.name):
        VEGAS(copy, "test")
    skip = VEGAS(copy, "test", missing="skip")
    assert len(skip) == len(ds) - 1 and skip.skipped["file does not exist"] == 1
    assert len(VEGAS(copy, "test", audio_source="mp4")) == len(ds)  # mp4 track still there
    with pytest.raises(AnnotationError, match="no VEGAS class folders"):
        VEGAS(tmp_path, "test")


def test_feature_file_splits_and_classes(root: Path) -> None:
    train, val, test = (VEGASFeatures(root, s) for s in ("train", "val", "test"))
    raw = {s: {r.id for r in VEGAS(root, s).records} for s in ("train", "val", "test")}
    ids = {s: {d.records[i].id for i in range(len(d))} for s, d in
           (("train", train), ("val", val), ("test", test))}
    assert ids["test"] == raw["test"]  # the file's test split = the raw test clips
    assert ids["train"] | ids["val"] == raw["train"] | raw["val"] and ids["val"]
    assert not ids["train"] & ids["val"]
    assert train.classes == list(VEGAS_CLASSES) and train.audio_dim == 128 and train.visual_dim == 1024
    s = test[0]
    assert s["class_name"] == s["id"].split("/")[0] and test.classes[s["label"]] == s["class_name"]


def test_features_separate_the_classes(root: Path) -> None:
    """Leave-one-out nearest class centroid over all the file's clips (10 classes: chance 0.1)
    on the AUDIO features; 2x chance (seed 0 gives 0.29).

    The features come from the TINY stand-ins of tests/conftest.py (6 training steps:
    near-random networks). Since issue 11 calibrated the object sizes (median box ~0.29 of
    the frame, down to ~0.01) their pooled visual features of this data carry no class
    information (LOO 0.13, permutation p ~0.25; the default stand-ins give LOO 0.61), so
    visual separation is tested on large objects in tests/test_synthetic_features.py and the
    visual column here by :func:`test_feature_file_holds_the_rendered_clips`."""
    parts = [VEGASFeatures(root, s) for s in ("train", "val", "test")]
    x = torch.stack([d[i]["audio_feat"] for d in parts for i in range(len(d))])
    y = torch.tensor([d[i]["label"] for d in parts for i in range(len(d))])
    hits = 0
    for i in range(len(x)):
        keep = torch.arange(len(x)) != i
        mu = x[keep].mean(0)
        cent = torch.stack([(x[keep & (y == k)] - mu).mean(0) for k in range(10)])
        sim = torch.nn.functional.normalize(cent, dim=1) @ torch.nn.functional.normalize(x[i] - mu, dim=0)
        hits += int(sim.argmax() == y[i])
    assert hits / len(x) >= 0.2, hits / len(x)


def test_feature_file_holds_the_rendered_clips(root: Path, world) -> None:
    """Recompute one test clip's features from the world: the file stores exactly them."""
    clip = next(c for c in vegas_writer.plan(PRESET, 0, len(world.categories)) if c.split == "test")
    scene = vegas_writer.make_scene(world, clip)
    audio = np.asarray(world.render_audio(scene, PRESET.clip_seconds, PRESET.sample_rate), np.float32)
    video = world.render_video(scene, PRESET.clip_seconds, PRESET.fps, SIZE)
    a, v = pooled_features(vegas_writer.second_frames(video, PRESET.fps), audio, PRESET.sample_rate,
                           default_standins())  # tests/conftest.py: the tiny stand-ins
    feats = VEGASFeatures(root, "test")
    item = next(feats[i] for i in range(len(feats)) if feats[i]["id"] == clip.id)
    np.testing.assert_allclose(item["audio_feat"].numpy(), a, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(item["visual_feat"].numpy(), v, rtol=1e-5, atol=1e-5)
    assert np.abs(v).sum() > 0 and item["class_name"] == clip.class_name


@pytest.mark.parametrize("source", ["video", "features"])
def test_datamodule_batches(root: Path, tmp_path: Path, source: str) -> None:
    dm = VEGASDataModule(root, source=source, batch_size=4, num_workers=0, image_size=32,
                         clip_seconds=1.0)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["label"].shape == (4,) and len(dm.dataset("val")) >= 1
    assert dm.classes == list(VEGAS_CLASSES)
    if source == "video":
        assert batch["image"].shape == (4, 3, 32, 32) and batch["audio"].shape == (4, 1, SR)
        fig = dm.plot(dm.dataset("test")[0])
        fig.savefig(tmp_path / "vegas.png")
        assert (tmp_path / "vegas.png").stat().st_size > 1000
    else:
        assert batch["audio_feat"].shape == (4, 128) and batch["visual_feat"].shape == (4, 1024)
