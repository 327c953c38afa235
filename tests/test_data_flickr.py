"""Flickr-SoundNet loader: XML/list parsing on planted fixtures, content on synthetic data.

The consensus map (each annotator box adds 1, /2, cap 1) is checked against a
hand-computed map; the synthetic ``tiny`` preset is generated once per module
and the loaded GT must cover the planted sounding object, the annotators must
disagree a little (0.5 bands) and the audio must carry the category's pitch.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from avbench.data.datasets.flickr import FlickrSoundNet, parse_flickr_xml
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.synthetic.media import write_image, write_wav

SR = 16000
TRAIN = ["10004743663", "10011898123", "10014818564", "10015653405", "10024712346"]
TEST = ["10000130166", "10007936344"]

XML = """<annotation>
  <filename>{id}.jpg</filename>
  <object><bbox><annotator>1</annotator><xmin>0</xmin><ymin>0</ymin><xmax>128</xmax><ymax>128</ymax></bbox></object>
  <object><bbox><annotator>2</annotator><xmin>64</xmin><ymin>64</ymin><xmax>192</xmax><ymax>192</ymax></bbox></object>
  <object><bbox><annotator>3</annotator><xmin>0</xmin><ymin>0</ymin><xmax>128</xmax><ymax>128</ymax></bbox></object>
</annotation>
"""


def object_colour_error(image: torch.Tensor, mask: torch.Tensor, obj) -> float:
    """Median over ``mask`` of the distance (0..1) from each pixel to the nearer of the
    object's two planted colours (body and texture)."""
    pix = image[:, mask]
    dists = [(pix - torch.tensor(c, dtype=torch.float32).reshape(3, 1) / 255).abs().mean(0)
             for c in (obj.color, obj.texture_color)]
    return float(torch.minimum(*dists).median())


def pitch_is_loudest(audio: torch.Tensor, sr: int, own: int, present: set[int], pitches) -> bool:
    """Is the band around ``own``'s pitch (+-3 %) louder than every absent category's band
    (and 10x their median)? Categories within 10 % of ``own``'s pitch are not compared."""
    x = audio.reshape(-1).double()
    spec = torch.fft.rfft(x * torch.hann_window(x.numel(), dtype=torch.float64)).abs() ** 2
    freqs = torch.fft.rfftfreq(x.numel(), 1 / sr)

    def band(f0: float) -> float:
        return float(spec[(freqs > 0.97 * f0) & (freqs < 1.03 * f0)].mean())

    e_own = band(pitches[own])
    others = [band(p) for c, p in enumerate(pitches)
              if c not in present and abs(p - pitches[own]) > 0.1 * pitches[own]]
    return e_own > max(others) and e_own > 10 * float(np.median(others))


def _write_clip(folder: Path, ident: str, freq: float, colour) -> None:
    img = np.zeros((32, 32, 3), np.uint8)
    img[:] = colour
    write_image(folder / "frames" / f"{ident}.jpg", img)
    t = np.arange(SR * 2) / SR
    write_wav(folder / "audio" / f"{ident}.wav", (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)


@pytest.fixture
def fixture_root(tmp_path: Path) -> Path:
    root = tmp_path / "flickr"
    meta = root / "metadata"
    meta.mkdir(parents=True)
    (meta / "flickr_10k.txt").write_text("\n".join(TRAIN[:3]) + "\n")
    (meta / "flickr_144k.csv").write_text("\n".join(TRAIN) + "\n")  # EZ-VSL's extension
    (meta / "flickr_test.csv").write_text(f"{TEST[0]},202\n{TEST[1]},0\n")  # LVS format
    for k, ident in enumerate(TRAIN):
        _write_clip(root, ident, 400 + 100 * k, (200, 40 * k, 20))
    for k, ident in enumerate(TEST):
        _write_clip(root / "test", ident, 1000 + 200 * k, (20, 40, 200))
        (root / "test" / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "test" / "Annotations" / f"{ident}.xml").write_text(XML.format(id=ident))
    return root


def test_consensus_map_matches_hand_computed(fixture_root):
    ds = FlickrSoundNet(fixture_root, "test", image_size=8, clip_seconds=1.0)
    assert ds.classes == [] and len(ds) == 2
    s = ds[0]
    assert "label" not in s and s["id"] == TEST[0]
    # boxes at 8 px: A = [0:4,0:4] twice, B = [2:6,2:6] once -> A 1.0, B only 0.5
    expected = torch.zeros(8, 8)
    expected[2:6, 2:6] = 0.5
    expected[0:4, 0:4] = 1.0
    assert torch.equal(s["gt_map"], expected)
    assert s["boxes"][1] == [0.25, 0.25, 0.75, 0.75] and len(s["boxes"]) == 3
    assert s["image"].shape == (3, 8, 8) and s["audio"].shape == (1, SR)


def test_reference_scaling_at_224():
    ds_map = torch.zeros(224, 224)
    # reference: int(224 * v / 256) per coordinate
    x0, y0, x1, y1 = (int(224 * v / 256) for v in (37, 12, 201, 250))
    ds_map[y0:y1, x0:x1] = 1
    from avbench.data.datasets.ssl_layout import boxes_to_gt_map

    got = boxes_to_gt_map([[37 / 256, 12 / 256, 201 / 256, 250 / 256]] * 2, 224, "consensus")
    assert torch.equal(got, ds_map)


def test_xml_positional_children_and_clipping(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text("<a><o><bbox><difficult>0</difficult><v>-5</v><v>10</v><v>300</v>"
                    "<v>20.0</v></bbox></o><filename>x.jpg</filename></a>")
    assert parse_flickr_xml(path) == [(0.0, 10.0, 256.0, 20.0)]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("<annotation><object><bbox><a>1</a><xmin>3</xmin></bbox></object>", "malformed XML"),
        ("<annotation><filename>x.jpg</filename></annotation>", "no <bbox>"),
        ("<annotation><object><bbox><a>1</a><b>1</b><c>2</c></bbox></object></annotation>",
         "expected a first child"),
        ("<annotation><object><bbox><a>1</a><b>x</b><c>2</c><d>3</d><e>4</e></bbox>"
         "</object></annotation>", "not a number"),
    ],
)
def test_malformed_xml_error_names_the_file(fixture_root, text, problem):
    bad = fixture_root / "test" / "Annotations" / f"{TEST[1]}.xml"
    bad.write_text(text)
    ds = FlickrSoundNet(fixture_root, "test", image_size=8, clip_seconds=1.0)
    with pytest.raises(AnnotationError) as err:
        ds[1]
    assert f"{TEST[1]}.xml" in str(err.value) and problem in str(err.value)
    assert ds[0]["id"] == TEST[0]
    skip = FlickrSoundNet(fixture_root, "test", image_size=8, clip_seconds=1.0, missing="skip")
    assert skip[1]["id"] == TEST[0] and sum(skip.load_failures.values()) == 1


def test_lists_txt_csv_fallback_and_holdout(fixture_root):
    ten = FlickrSoundNet(fixture_root, "train", image_size=8, clip_seconds=1.0, val_fraction=0.0)
    assert [r.id for r in ten.records] == TRAIN[:3]
    big_train = FlickrSoundNet(fixture_root, "train", train_list="flickr_144k.txt", image_size=8)
    big_val = FlickrSoundNet(fixture_root, "val", train_list="flickr_144k.txt", image_size=8)
    ids_t, ids_v = {r.id for r in big_train.records}, {r.id for r in big_val.records}
    assert ids_t | ids_v == set(TRAIN) and not ids_t & ids_v and len(ids_v) >= 1
    s = ten[0]
    assert set(s) == {"id", "image", "audio"}
    spec = torch.fft.rfft(s["audio"].reshape(-1)).abs()
    assert abs(float(spec.argmax()) * SR / s["audio"].numel() - 400) < 5


def test_labelled_test_csv_gives_labels(fixture_root):
    (fixture_root / "metadata" / "flickr_test.csv").write_text(
        f'{TEST[0]},child singing\n{TEST[1]},"male speech, man speaking"\n')  # ACL-SSL format
    ds = FlickrSoundNet(fixture_root, "test", image_size=8, clip_seconds=1.0)
    assert ds.classes == ["child singing", "male speech, man speaking"]
    assert ds[1]["label"] == 1 and ds[1]["class_name"] == "male speech, man speaking"


def test_missing_annotation_error_and_skip(fixture_root):
    (fixture_root / "test" / "Annotations" / f"{TEST[0]}.xml").unlink()
    with pytest.raises(MissingFileError, match=f"{TEST[0]}.xml"):
        FlickrSoundNet(fixture_root, "test", image_size=8)
    ds = FlickrSoundNet(fixture_root, "test", image_size=8, missing="skip")
    assert [r.id for r in ds.records] == [TEST[1]] and ds.skipped["file does not exist"] == 1


# ---------------------------------------------------------------------------
# the tiny synthetic preset
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from avbench.data.synthetic import generate

    root = tmp_path_factory.mktemp("flickr_tiny")
    summary = generate("flickr", root, "tiny", seed=5, progress=False)
    truth = {}
    with open(root / "synthetic_scenes.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            truth[rec["id"]] = rec
    return root, summary, truth


@pytest.fixture(scope="module")
def world(tiny):
    from avbench.data.synthetic.writers.ssl_layout import get_world

    root, _, _ = tiny
    meta = json.loads((root / "avbench_synthetic.json").read_text())
    return get_world(meta["world_config"], meta["seed"])


def test_tiny_layout(tiny):
    from avbench.data.synthetic.presets import get_preset

    root, summary, truth = tiny
    p = get_preset("tiny")
    test_ids = [line for line in (root / "metadata" / "flickr_test.csv").read_text().split()]
    train_ids = (root / "metadata" / "flickr_144k.txt").read_text().split()
    assert len(test_ids) == p.count("flickr", "test") and len(train_ids) == p.count("flickr", "train")
    assert set((root / "metadata" / "flickr_10k.txt").read_text().split()) < set(train_ids)
    assert not set(test_ids) & set(train_ids)
    for i in train_ids:
        assert (root / "frames" / f"{i}.jpg").is_file() and (root / "audio" / f"{i}.wav").is_file()
        assert i.isdigit()
    for i in test_ids:
        for rel in (f"frames/{i}.jpg", f"audio/{i}.wav", f"Annotations/{i}.xml"):
            assert (root / "test" / rel).is_file(), rel
        assert len(parse_flickr_xml(root / "test" / "Annotations" / f"{i}.xml")) == 3 * len(
            truth[i]["boxes"])
    assert (root / "cooccurrence_graph.json").is_file()


def test_tiny_consensus_covers_the_sounding_object(tiny, world):
    from avbench.data.synthetic.writers.ssl_layout import ClipSpec, make_scene

    root, _, truth = tiny
    ds = FlickrSoundNet(root, "test", image_size=64, clip_seconds=0.5)
    half_bands = 0
    for i in range(len(ds)):
        s = ds[i]
        rec = truth[s["id"]]
        values = set(s["gt_map"].unique().tolist())
        assert values <= {0.0, 0.5, 1.0} and 1.0 in values
        half_bands += 0.5 in values
        scene = make_scene(world, ClipSpec(s["id"], "test", tuple(rec["labels"]), rec["rng_seed"]))
        mask = torch.from_numpy(world.sounding_mask(scene, rec["t_eval"], 64))
        # the annotators agree on most of the object; little of it is outside every box
        assert float((s["gt_map"][mask] == 1.0).float().mean()) > 0.8
        assert float((s["gt_map"][mask] > 0).float().mean()) > 0.93
        obj = next(o for o in scene.objects if o.annotated)
        assert obj.category == rec["labels"][0]
        core = mask & (s["gt_map"] == 1.0)
        assert object_colour_error(s["image"], core, obj) < 0.06
    assert half_bands >= len(ds) // 2  # annotators disagree at the borders


def test_tiny_audio_pitch_and_splits(tiny, world):
    from avbench.data.synthetic.presets import get_preset

    root, _, truth = tiny
    kw = dict(image_size=32, clip_seconds=get_preset("tiny").clip_seconds)
    ids = {s: {r.id for r in FlickrSoundNet(root, s, train_list="flickr_144k.txt", **kw).records}
           for s in ("train", "val", "test")}
    assert all(ids.values())
    assert not ids["train"] & ids["val"] and not (ids["train"] | ids["val"]) & ids["test"]
    ds = FlickrSoundNet(root, "train", train_list="flickr_144k.txt", **kw)
    pitches = [c.sound.pitch_hz for c in world.categories]
    wins = 0
    for i in range(len(ds)):
        s = ds[i]
        rec = truth[s["id"]]
        present = set(rec["labels"]) | set(rec["offscreen"]) | {
            c for c, m in rec["cooccurring"] if m == "audio"}
        wins += pitch_is_loudest(s["audio"], SR, rec["labels"][0], present, pitches)
    assert wins >= math.ceil(0.9 * len(ds))


def test_tiny_graph_file_explains_cooccurrence(tiny):
    root, _, truth = tiny
    graph = json.loads((root / "cooccurrence_graph.json").read_text())
    edges = {(e["src"], e["dst"]) for e in graph["edges"]}
    for rec in truth.values():
        for cat, modality in rec["cooccurring"]:
            assert any((f"{m}_{a}", f"{modality}_{cat}") in edges
                       for a in rec["labels"] for m in ("audio", "visual"))


def test_tiny_datamodule_and_plot(tiny, tmp_path):
    from avbench.data.datamodules.flickr import FlickrSoundNetDataModule

    root, _, _ = tiny
    dm = FlickrSoundNetDataModule(root, batch_size=4, num_workers=0, clip_seconds=0.5,
                                  image_size=48)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 48, 48) and batch["audio"].shape == (4, 1, 8000)
    dm.setup("test")
    tb = next(iter(dm.test_dataloader()))
    assert tb["gt_map"].shape == (4, 48, 48)
    fig = dm.plot(dm.dataset("test")[0])
    fig.savefig(tmp_path / "flickr.png")
    assert (tmp_path / "flickr.png").stat().st_size > 1000
    assert len(dm.dataset("val")) >= 1


def test_tiny_deleted_audio_skip_and_error(tiny, tmp_path):
    root, _, _ = tiny
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    victim = FlickrSoundNet(copy, "test", image_size=32).records[-1].id
    (copy / "test" / "audio" / f"{victim}.wav").unlink()
    with pytest.raises(MissingFileError, match=f"{victim}.wav"):
        FlickrSoundNet(copy, "test", image_size=32)
    ds = FlickrSoundNet(copy, "test", image_size=32, missing="skip")
    assert victim not in {r.id for r in ds.records} and ds.skipped["file does not exist"] == 1


def test_frame_interpolation_reaches_every_split_and_matches_io(fixture_root):
    """The paper configs' ``frame_interpolation: bicubic`` is what the loader resizes with."""
    from avbench.data import FlickrSoundNetDataModule
    from avbench.data.io import read_image

    stripes = np.zeros((32, 32, 3), np.uint8)
    stripes[:, ::3] = 255  # fine detail: bilinear and bicubic resizing differ
    path = fixture_root / "test" / "frames" / f"{TEST[0]}.jpg"
    write_image(path, stripes)
    got = {}
    for mode in ("bilinear", "bicubic"):
        dm = FlickrSoundNetDataModule(fixture_root, image_size=12, num_workers=0,
                                      clip_seconds=1.0, frame_interpolation=mode)
        test = dm.dataset("test")
        assert test.frame_interpolation == mode and dm.dataset("train").frame_interpolation == mode
        got[mode] = next(s["image"] for s in (test[i] for i in range(len(test)))
                         if s["id"] == TEST[0])
        assert torch.equal(got[mode], read_image(path, 12, interpolation=mode))
    assert not torch.equal(got["bilinear"], got["bicubic"])
    with pytest.raises(ValueError, match="frame_interpolation"):
        FlickrSoundNetDataModule(fixture_root, frame_interpolation="nearest")
