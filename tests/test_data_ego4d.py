"""Ego4D-Sounds clips: the loader on hand-made files, then on the synthetic world.

Part 1 builds a small layout by hand (tables, mp4 clips with known tones) so every
loader rule is checked against values chosen here. Part 2 writes the ``tiny``
preset once per module and checks the planted content: a clip's audio is its
window's background (ambient bed + off-screen events) plus the sound of the visible
action, which only sounding verbs make; narration.json agrees with the clip tables;
splits are disjoint by video. Part 3 checks the loudness model on sampled long
videos (no files): bed levels vary across videos, some actions are quiet, off-screen
events have no visual counterpart, and an action's sound follows the hand.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avbench.data.datasets.ego4d import Ego4DClips, condition_map, val_videos
from avbench.data.datasets.ego4d_narrations import clean_narration, narration_verb, read_narrations
from avbench.data.datasets.ego4d_tables import COLUMNS, read_clip_table
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.synthetic.media import write_mp4

SR = 16000
FPS = 4
SIZE = 32
CLIP = 2.0

# ----------------------------------------------------------------------------
# part 1: hand-made layout
# ----------------------------------------------------------------------------
# (video_uid, table, [(narration_time, text, positive, tone_hz)])
VIDEOS = {
    "aaaa-1": ("train", [(3.0, "#C C cuts the carrot", 1.0, 440.0),
                         (9.0, "#c  c opens the drawer ", 0.0, None),
                         (15.0, "# c c cuts the onion", 1.0, 660.0)]),
    "bbbb-2": ("train", [(2.0, "#C c picks the cup", 0.0, None),
                         (8.0, "#O Woman X taps the table", 1.0, 880.0)]),
    "cccc-3": ("train", [(4.0, "#C C stirs the pot", 1.0, 550.0),
                         (5.0, "#C C holds the pot", 0.0, None)]),
    "tttt-9": ("test", [(6.0, "#C C scrubs the pan", 1.0, 770.0),
                        (12.0, "#C C looks around", 0.0, None)]),
}
COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200)]


def _clip_media(k: int, tone: float | None, seconds: float = CLIP) -> tuple[np.ndarray, np.ndarray]:
    frames = np.zeros((int(seconds * FPS), SIZE, SIZE, 3), np.uint8)
    frames[:] = COLORS[k % len(COLORS)]
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(k)
    audio = 0.01 * rng.standard_normal(t.size)
    if tone is not None:
        audio = audio + 0.4 * np.sin(2 * np.pi * tone * t)
    return frames, audio.astype(np.float32)


def _rows() -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = {"train": [], "test": []}
    for uid, (table, items) in VIDEOS.items():
        for ind, (t, text, pos, _tone) in enumerate(items):
            rows[table].append({
                "video_uid": uid, "video_dur": "-1", "narration_source": "narration_pass_2",
                "narration_ind": str(ind), "narration_time": repr(t),
                "clip_start": repr(t - 0.5), "clip_end": repr(t + 1.0), "clip_text": text,
                "tag_verb": "[]", "tag_noun": "[]", "positive": repr(pos),
                "clip_file": f"{uid}/{uid}_narration_pass_2_{ind}.mp4",
                "speech": "0.02", "background_music": "0.01", "traffic_noise": "0.0001",
                "wind_noise": "0.0004",
            })
    return rows


def _write_table(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


@pytest.fixture(scope="module")
def handmade(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ego4d_handmade")
    rows = _rows()
    _write_table(root / "train_clips_1.2m.csv", rows["train"])
    _write_table(root / "test_clips_11k.csv", rows["test"])
    k = 0
    for uid, (_table, items) in VIDEOS.items():
        for ind, (_t, _text, _pos, tone) in enumerate(items):
            frames, audio = _clip_media(k, tone)
            write_mp4(root / "ego4dsounds_224p" / uid / f"{uid}_narration_pass_2_{ind}.mp4",
                      frames, FPS, audio, SR)
            k += 1
    return root


def _copy_layout(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _ds(root: Path, split: str, **kw) -> Ego4DClips:
    kw.setdefault("clip_seconds", CLIP)
    kw.setdefault("fps", FPS)
    kw.setdefault("image_size", 24)
    return Ego4DClips(root, split, sample_rate=SR, **kw)


def _tone_energy(wave: torch.Tensor, hz: float) -> float:
    spec = torch.fft.rfft(wave.reshape(-1).double()).abs()
    freqs = torch.fft.rfftfreq(wave.numel(), 1 / SR)
    band = (freqs - hz).abs() < 15
    return float(spec[band].max() / spec.median())


def test_clean_narration_variants():
    assert clean_narration("#C C cuts the carrot") == "cuts the carrot"
    assert clean_narration("#c  c raises his hand") == "raises his hand"
    assert clean_narration("# c c fits the pipe on wood") == "fits the pipe on wood"
    assert clean_narration("#C c picks shoes ") == "picks shoes"
    assert clean_narration("#O Woman X puts the card on the table") == "Woman X puts the card on the table"
    assert clean_narration("#C C holds #Unsure") == "holds #Unsure"
    assert clean_narration("#C C cuts  the carrot", strip_prefix=False) == "#C C cuts the carrot"
    assert narration_verb("#C C Rinses spoons") == "rinses"
    assert narration_verb("#O Woman X puts the card") == "puts"
    assert narration_verb("#O man Y walks") == "walks"


def test_samples_carry_clip_content(handmade):
    ds = _ds(handmade, "test")
    assert len(ds) == 2 and ds.video_uids == ["tttt-9"]
    s = ds[0]
    assert s["id"] == "tttt-9_narration_pass_2_0"
    assert s["text"] == "scrubs the pan" and s["sounding"] is True
    assert s["class_name"] == "scrubs" and ds.classes[s["label"]] == "scrubs"
    assert s["video_uid"] == "tttt-9" and s["narration_time"] == pytest.approx(6.0)
    T = int(np.ceil(FPS * CLIP))
    assert s["frames"].shape == (T, 3, 24, 24) and s["image"].shape == (3, 24, 24)
    assert s["audio"].shape == (1, int(SR * CLIP))
    # the frame colour and the planted tone are what this clip was written with
    k = sum(len(v[1]) for v in list(VIDEOS.values())[:3])
    want = torch.tensor(COLORS[k % len(COLORS)], dtype=torch.float32) / 255
    assert torch.allclose(s["image"].mean(dim=(1, 2)), want, atol=0.04)
    assert _tone_energy(s["audio"], 770.0) > 50
    silent = ds[1]
    assert silent["sounding"] is False and silent["text"] == "looks around"
    assert silent["audio"].abs().max() < 0.1


def test_classes_shared_across_splits(handmade):
    tr, te = _ds(handmade, "train"), _ds(handmade, "test")
    assert tr.classes == te.classes == sorted(tr.classes)
    assert {"cuts", "opens", "taps", "scrubs", "looks"} <= set(tr.classes)


def test_splits_disjoint_by_video(handmade):
    parts = {s: _ds(handmade, s) for s in ("train", "val", "test")}
    uids = {s: set(d.video_uids) for s, d in parts.items()}
    assert all(uids.values()), uids
    assert not (uids["train"] & uids["val"]) and not (uids["train"] & uids["test"])
    assert not (uids["val"] & uids["test"])
    assert uids["train"] | uids["val"] == {"aaaa-1", "bbbb-2", "cccc-3"}
    ids = [r.clip_id for d in parts.values() for r in d.records]
    assert len(ids) == len(set(ids)) == 9


def test_val_holdout_is_stable():
    uids = [f"video-{i}" for i in range(400)]
    held = val_videos(uids, 0.05)
    assert 8 <= len(held) <= 35
    # membership of a video does not depend on the other videos
    sub = {u for u in held if u in uids[:200]}
    assert sub and val_videos(uids[:200], 0.05) == sub
    assert val_videos(list(reversed(uids)), 0.05) == held
    # a copy too small for 5% still gets one val video, and never loses all training
    assert len(val_videos(["a", "b", "c"], 0.05)) == 1
    assert len(val_videos(["a", "b"], 0.99)) == 1 and val_videos(["a"], 0.5) == set()


def test_test_videos_in_train_table_are_dropped(handmade, tmp_path):
    root = _copy_layout(handmade, tmp_path / "leak")
    rows = _rows()
    _write_table(root / "train_clips_1.2m.csv", rows["train"] + rows["test"])
    ds_tr, ds_va = _ds(root, "train"), _ds(root, "val")
    assert "tttt-9" not in set(ds_tr.video_uids) | set(ds_va.video_uids)
    assert ds_tr.skipped["video in test table"] + ds_va.skipped["video in test table"] == 4


def test_malformed_row_names_file_and_line(handmade, tmp_path):
    root = _copy_layout(handmade, tmp_path / "bad")
    table = root / "test_clips_11k.csv"
    lines = table.read_text().splitlines()
    lines[2] = "\t".join(lines[2].split("\t")[:-3])  # line 3: 13 columns instead of 16
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError) as err:
        _ds(root, "test")
    msg = str(err.value)
    assert "test_clips_11k.csv" in msg and "line 3" in msg and "16" in msg and "13" in msg
    ds = _ds(root, "test", bad_rows="skip")
    assert len(ds) == 1 and ds.skipped["malformed table row"] == 1


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [("narration_time", "soon", "narration_time"), ("tag_verb", "[3, x]", "tag_verb"),
     ("positive", "", "positive"), ("narration_ind", "1.5", "narration_ind")],
)
def test_bad_values_name_file_line_and_column(tmp_path, column, value, needle):
    rows = _rows()["test"]
    rows[1][column] = value
    _write_table(tmp_path / "test_clips_11k.csv", rows)
    with pytest.raises(AnnotationError, match=rf"test_clips_11k\.csv.*line 3.*{needle}"):
        read_clip_table(tmp_path / "test_clips_11k.csv")


def test_duplicate_id_and_missing_column(tmp_path):
    rows = _rows()["test"]
    _write_table(tmp_path / "dup.csv", [rows[0], rows[1], rows[0]])
    with pytest.raises(AnnotationError, match=r"line 4: duplicate clip id .* \(first on line 2\)"):
        read_clip_table(tmp_path / "dup.csv")
    (tmp_path / "nohead.csv").write_text("video_uid\tclip_text\nx\ty\n")
    with pytest.raises(AnnotationError, match=r"nohead\.csv: line 1: header lacks"):
        read_clip_table(tmp_path / "nohead.csv")


def test_missing_clip_policy(handmade, tmp_path):
    root = _copy_layout(handmade, tmp_path / "missing")
    gone = root / "ego4dsounds_224p/tttt-9/tttt-9_narration_pass_2_1.mp4"
    gone.unlink()
    with pytest.raises(MissingFileError) as err:
        _ds(root, "test")
    assert "tttt-9_narration_pass_2_1.mp4" in str(err.value) and "1 of 2" in str(err.value)
    ds = _ds(root, "test", missing="skip")
    assert [r.clip_id for r in ds.records] == ["tttt-9_narration_pass_2_0"]
    assert ds.skipped["file does not exist"] == 1 and "skipped 1" in ds.skip_report()


def test_missing_table_is_named(tmp_path):
    with pytest.raises(MissingFileError, match="test_clips_11k.csv"):
        Ego4DClips(tmp_path, "test")


def test_cond_audio_same_video_other_time(handmade):
    ds = _ds(handmade, "train", with_cond_audio=True, val_fraction=0.0)
    by_id = {r.clip_id: r for r in ds.records}
    tones = {f"{u}_narration_pass_2_{i}": it[3] for u, (_, items) in VIDEOS.items()
             for i, it in enumerate(items)}
    seen_valid = 0
    for i in range(len(ds)):
        s = ds[i]
        assert s["cond_audio"].shape == s["audio"].shape
        if s["cond_id"] == "":
            assert not s["cond_audio"].any()
            continue
        seen_valid += 1
        me, other = by_id[s["id"]], by_id[s["cond_id"]]
        assert other.video_uid == me.video_uid and other.clip_id != me.clip_id
        assert abs(other.narration_time - me.narration_time) >= CLIP
        tone = tones[other.clip_id]
        if tone is not None:  # the condition is that other clip's audio
            assert _tone_energy(s["cond_audio"], tone) > 50
        assert ds[i]["cond_id"] == s["cond_id"]  # deterministic
    assert seen_valid >= 5
    # cccc-3 has two narrations 1 s apart: no non-overlapping condition exists
    assert ds[[r.clip_id for r in ds.records].index("cccc-3_narration_pass_2_0")]["cond_id"] == ""


def test_condition_choice_depends_on_seed_only():
    from avbench.data.datasets.ego4d_tables import ClipRow

    def row(uid, t, k):
        return ClipRow(f"{uid}_p_{k}", uid, -1, "p", k, t, t, t, "#C C x", (), (), 1.0, "f",
                       0, 0, 0, 0, k + 2)

    rows = [row("v", 10.0 * k, k) for k in range(12)] + [row("w", 0.0, 0)]
    a = condition_map(rows, 3.0, 3, seed=0)
    assert a == condition_map(list(rows), 3.0, 3, seed=0)
    assert a[-1] is None  # alone in its video
    for i, j in enumerate(a[:-1]):
        assert j is not None and rows[j].video_uid == "v" and abs(j - i) <= 3 and j != i
    assert any(x != y for x, y in zip(a, condition_map(rows, 3.0, 3, seed=1)))


def test_datamodule_batches_and_plot(handmade, tmp_path):
    from avbench.data.datamodules.ego4d import Ego4DClipsDataModule

    dm = Ego4DClipsDataModule(handmade, batch_size=2, num_workers=0, clip_seconds=CLIP,
                              fps=FPS, image_size=24, with_cond_audio=True)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["frames"].shape == (2, int(FPS * CLIP), 3, 24, 24)
    assert batch["audio"].shape == (2, 1, int(SR * CLIP)) and batch["cond_audio"].shape == batch["audio"].shape
    assert batch["sounding"].dtype == torch.bool and isinstance(batch["text"], list)
    assert set(dm.available_splits()) == {"train", "val", "test"}
    assert len(dm.dataset("val")) >= 1 and dm.classes == dm.dataset("test").classes
    fig = dm.plot(dm.dataset("test")[0])
    out = tmp_path / "ego4d_sample.png"
    fig.savefig(out)
    assert out.stat().st_size > 1000


def test_read_narrations_errors(tmp_path):
    p = tmp_path / "narration.json"
    p.write_text(json.dumps({"v": {"status": "complete", "narration_pass_1": {
        "narrations": [{"timestamp_sec": 1.5, "timestamp_frame": 45,
                        "narration_text": "#C C cuts", "annotation_uid": "a"}],
        "summaries": []}}}))
    n = read_narrations(p)
    assert n[("v", "narration_pass_1", 0)].timestamp_sec == 1.5
    p.write_text(json.dumps({"v": {"narration_pass_1": {"narrations": [{"timestamp_sec": 1}]}}}))
    with pytest.raises(AnnotationError, match=r"narration\.json.*\['narrations'\]\[0\]"):
        read_narrations(p)


# ----------------------------------------------------------------------------
# part 2: the synthetic world in the Ego4D-Sounds layout (tiny preset)
# ----------------------------------------------------------------------------
def _rms(x: torch.Tensor) -> float:
    return float(x.double().pow(2).mean().sqrt())


def _band_energy(wave: torch.Tensor, hz: float, rel: float = 0.03) -> float:
    spec = torch.fft.rfft(wave.reshape(-1).double()).abs() ** 2
    freqs = torch.fft.rfftfreq(wave.numel(), 1 / SR)
    return float(spec[(freqs - hz).abs() <= rel * hz].sum() / wave.numel())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    from avbench.data.synthetic import generate
    from avbench.data.synthetic.presets import get_preset

    root = tmp_path_factory.mktemp("ego4d_tiny")
    summary = generate("ego4d", root, "tiny", seed=0, progress=False)
    scenes = [json.loads(x) for x in (root / "synthetic_scenes.jsonl").read_text().splitlines()]
    return {"root": root, "summary": summary, "scenes": {s["id"]: s for s in scenes},
            "preset": get_preset("tiny")}


def _tiny_ds(tiny: dict, split: str, **kw) -> Ego4DClips:
    p = tiny["preset"]
    return Ego4DClips(tiny["root"], split, sample_rate=p.sample_rate, clip_seconds=p.clip_seconds,
                      fps=p.fps, image_size=p.image_size, **kw)


def test_synthetic_layout_is_the_release_layout(tiny):
    root = tiny["root"]
    for name in ("narration.json", "train_clips_1.2m.csv", "test_clips_11k.csv",
                 "cooccurrence_graph.json", "avbench_synthetic.json", "synthetic_scenes.jsonl"):
        assert (root / name).is_file(), name
    n_rows = 0
    for name in ("train_clips_1.2m.csv", "test_clips_11k.csv"):
        lines = (root / name).read_text().splitlines()
        assert lines[0].split("\t") == list(COLUMNS)
        for line in lines[1:]:
            cells = line.split("\t")
            assert len(cells) == 16
            uid, source, ind, clip_file = cells[0], cells[2], cells[3], cells[11]
            assert clip_file == f"{uid}/{uid}_{source}_{ind}.mp4"
            assert (root / "ego4dsounds_224p" / clip_file).is_file()
            n_rows += 1
    p = tiny["preset"]
    assert n_rows == len(tiny["scenes"]) == p.count("ego4d", "videos") * p.count("ego4d", "clips_per_video")
    assert len({s["id"] for s in tiny["scenes"].values()}) == n_rows
    assert not list(root.rglob("*.partial"))


def test_narrations_agree_with_tables_and_clip_windows(tiny):
    from avbench.data import io

    root, p = tiny["root"], tiny["preset"]
    narr = read_narrations(root / "narration.json")
    rows = list(read_clip_table(root / "train_clips_1.2m.csv").rows) + \
        list(read_clip_table(root / "test_clips_11k.csv").rows)
    assert len(narr) == len(rows)
    for r in rows:
        n = narr[(r.video_uid, r.narration_source, r.narration_ind)]
        assert n.timestamp_sec == r.narration_time and n.narration_text == r.clip_text
        assert n.timestamp_frame == round(r.narration_time * 30)
        assert r.clip_start == pytest.approx(r.narration_time - 0.5)
        assert r.clip_end == pytest.approx(r.narration_time + 1.0)
        s = tiny["scenes"][r.clip_id]
        assert s["media_end"] - s["media_start"] == pytest.approx(p.clip_seconds)
        assert 0.0 <= s["media_start"] and s["media_end"] <= r.video_dur
        if r.narration_time - p.clip_seconds / 2 >= 0 and r.narration_time + p.clip_seconds / 2 <= r.video_dur:
            assert s["media_start"] == pytest.approx(r.narration_time - p.clip_seconds / 2)
        assert r.sounding == s["sounding"] and r.tag_verb == tuple(s["labels"])
    info = io.probe(root / "ego4dsounds_224p" / rows[0].clip_file)
    assert info.has_audio and info.has_video and info.sample_rate == p.sample_rate
    assert info.duration == pytest.approx(p.clip_seconds, abs=0.15)
    assert (info.width, info.height) == (p.image_size, p.image_size)


def test_synthetic_splits_disjoint_and_recorded(tiny):
    parts = {s: _tiny_ds(tiny, s) for s in ("train", "val", "test")}
    vids = {s: set(d.video_uids) for s, d in parts.items()}
    assert all(vids.values()) and not (vids["train"] & vids["val"])
    assert not (vids["train"] & vids["test"]) and not (vids["val"] & vids["test"])
    ids = [r.clip_id for d in parts.values() for r in d.records]
    assert sorted(ids) == sorted(tiny["scenes"])  # every clip in exactly one split
    for split, d in parts.items():
        assert all(tiny["scenes"][r.clip_id]["split"] == split for r in d.records)
    assert tiny["summary"]["clips_per_split"] == {s: len(d) for s, d in parts.items()}


def test_clip_audio_is_background_plus_the_visible_action(tiny):
    """Silent verb: the clip is its window's background (bed + off-screen events) exactly;
    sounding verb: louder than that background (recorded before encoding); the decoded
    clip keeps the recorded level (AAC round trip)."""
    n_sounding = n_silent = 0
    for split in ("train", "val", "test"):
        ds = _tiny_ds(tiny, split)
        for i in range(len(ds)):
            sample = ds[i]
            truth = tiny["scenes"][sample["id"]]
            assert sample["sounding"] is truth["sounding"]
            assert sample["text"] == clean_narration(truth["text"]) and not sample["text"].startswith("#")
            assert sample["class_name"] == sample["text"].split()[0]
            assert 0.8 < _rms(sample["audio"]) / truth["audio_rms"] < 1.25, sample["id"]
            assert truth["background_rms"] >= 0.99 * truth["ambience_rms"]
            if truth["sounding"]:
                n_sounding += 1
                assert truth["audio_rms"] > 1.02 * truth["background_rms"], truth
            else:
                n_silent += 1
                assert truth["audio_rms"] == pytest.approx(truth["background_rms"], rel=1e-5)
                assert truth["snr_db"] is None
    assert n_sounding >= 2 and n_silent >= 2
    # off-screen events are heard in some clips (tiny, seed 0: silent ones among them)
    heard = [s for s in tiny["scenes"].values() if s["background_rms"] > 1.05 * s["ambience_rms"]]
    assert heard and any(not s["sounding"] for s in heard)
    assert all(s["offscreen"] for s in heard)


def _backgrounds(tiny: dict) -> dict[str, np.ndarray]:
    """The background audio (bed + off-screen events) of every tiny clip's media window."""
    from avbench.data.synthetic.actions import render_background_audio
    from avbench.data.synthetic.writers.ego4d import plan

    world, videos = plan(tiny["preset"], 0)
    by_uid = {pv.video.uid: pv.video for pv in videos}
    sr = tiny["preset"].sample_rate
    return {cid: render_background_audio(by_uid[s["video_uid"]], world.categories,
                                         s["media_start"], s["media_end"] - s["media_start"], sr)
            for cid, s in tiny["scenes"].items()}


def test_hits_ring_at_the_objects_pitch(tiny):
    """A struck object sounds at its category's pitch: the clip has far more energy at that
    pitch than its own window without the action (bed + off-screen events)."""
    backgrounds = _backgrounds(tiny)
    checked = 0
    for split in ("train", "val", "test"):
        ds = _tiny_ds(tiny, split)
        index = {r.clip_id: i for i, r in enumerate(ds.records)}
        for cid, s in tiny["scenes"].items():
            if cid not in index or s["sound_kind"] != "hits" or not 150 <= s["pitch_hz"] <= 2500:
                continue
            hit = _band_energy(ds[index[cid]]["audio"], s["pitch_hz"])
            base = _band_energy(torch.from_numpy(backgrounds[cid]), s["pitch_hz"])
            assert hit > (10 if s["snr_db"] >= 10 else 2) * base, (cid, s["pitch_hz"], hit, base)
            checked += 1
    assert checked >= 1


def test_cond_audio_is_the_same_videos_ambience(tiny):
    ds = _tiny_ds(tiny, "train", with_cond_audio=True)
    by_id = {r.clip_id: r for r in ds.records}
    n_valid = 0
    for i in range(len(ds)):
        s = ds[i]
        if not s["cond_id"]:
            continue
        n_valid += 1
        me, other = by_id[s["id"]], by_id[s["cond_id"]]
        assert other.video_uid == me.video_uid
        assert abs(other.narration_time - me.narration_time) >= tiny["preset"].clip_seconds
        cond_truth = tiny["scenes"][other.clip_id]
        ratio = _rms(s["cond_audio"]) / cond_truth["background_rms"]
        if not cond_truth["sounding"]:  # a silent neighbour is the background itself
            assert 0.75 < ratio < 1.3
        # ... of THIS video: the recorded ambience level of target and condition agree
        assert cond_truth["ambience_db"] == tiny["scenes"][me.clip_id]["ambience_db"]
    assert n_valid >= 4


def test_graph_file_matches_world_and_scenes(tiny):
    from avbench.data.synthetic.graph import CooccurrenceGraph
    from avbench.data.synthetic.world import World, WorldConfig

    meta = json.loads((tiny["root"] / "avbench_synthetic.json").read_text())
    world = World(WorldConfig.from_dict(meta["world_config"]), meta["seed"])
    graph = CooccurrenceGraph.load(tiny["root"] / "cooccurrence_graph.json")
    assert graph.to_json() == world.graph.to_json()
    edges = {(e.src, e.dst) for e in graph.edges}
    for s in tiny["scenes"].values():
        for cat, modality in s["cooccurring"]:  # action clips plant none; any must be an edge
            assert any(dst == f"{modality}_{cat}" for _, dst in edges)
    # the planted verb/noun indices are the world's vocabulary
    for s in tiny["scenes"].values():
        assert world.actions.verbs[s["labels"][0]].name == s["verb"]
        assert world.actions.verb(s["verb"]).sounding == s["sounding"]


def test_synthetic_missing_clip_policy(tiny, tmp_path):
    root = _copy_layout(tiny["root"], tmp_path / "copy")
    victim = next(s for s in tiny["scenes"].values() if s["split"] == "test")
    path = root / "ego4dsounds_224p" / victim["video_uid"] / f"{victim['id']}.mp4"
    path.unlink()
    p = tiny["preset"]
    with pytest.raises(MissingFileError, match=victim["id"]):
        Ego4DClips(root, "test", clip_seconds=p.clip_seconds, fps=p.fps, image_size=p.image_size)
    ds = Ego4DClips(root, "test", clip_seconds=p.clip_seconds, fps=p.fps, image_size=p.image_size,
                    missing="skip")
    n_test = sum(1 for s in tiny["scenes"].values() if s["split"] == "test")
    assert len(ds) == n_test - 1 and ds.skipped["file does not exist"] == 1
    assert victim["id"] not in {r.clip_id for r in ds.records}


def test_synthetic_is_deterministic(tiny, tmp_path):
    from avbench.data.synthetic import generate

    again = tmp_path / "again"
    generate("ego4d", again, "tiny", seed=0, progress=False)
    for name in ("train_clips_1.2m.csv", "test_clips_11k.csv", "narration.json",
                 "synthetic_scenes.jsonl"):
        assert (again / name).read_bytes() == (tiny["root"] / name).read_bytes(), name


def test_datamodule_on_synthetic_and_plot(tiny, tmp_path):
    from avbench.data.datamodules.ego4d import Ego4DClipsDataModule

    p = tiny["preset"]
    dm = Ego4DClipsDataModule(tiny["root"], batch_size=4, num_workers=0, clip_seconds=p.clip_seconds,
                              fps=p.fps, image_size=p.image_size, with_cond_audio=True)
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    T = int(np.ceil(p.fps * p.clip_seconds))
    assert batch["frames"].shape[1:] == (T, 3, p.image_size, p.image_size)
    assert batch["audio"].shape[1:] == (1, int(p.sample_rate * p.clip_seconds))
    truth = [tiny["scenes"][i]["sounding"] for i in batch["id"]]
    assert batch["sounding"].tolist() == truth
    sample = dm.dataset("test")[0]
    out = tmp_path / "ego4d_synthetic.png"
    dm.plot(sample).savefig(out)
    assert out.stat().st_size > 1000


# ----------------------------------------------------------------------------
# part 3: the loudness model on sampled long videos (no files)
# ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sampled() -> tuple:
    """A world and 40 long videos of 10 narrations, as the default preset samples them."""
    from avbench.data.synthetic.world import World, WorldConfig

    world = World(WorldConfig(image_size=64), 0)
    videos = [world.sample_long_video(np.random.default_rng([0, v]), 43.0, 10, f"v{v}")
              for v in range(40)]
    return world, videos


def test_bed_levels_vary_across_videos_and_some_actions_are_quiet(sampled):
    from avbench.data.synthetic.actions import LEVELS

    _, videos = sampled
    beds = np.array([v.ambience.level_db for v in videos])
    lo, hi = LEVELS.ambience_db
    assert lo <= beds.min() and beds.max() <= hi and beds.max() - beds.min() > 20
    acts = [n for v in videos for n in v.narrations if n.sounding]
    snr = np.array([n.snr_db for n in acts])
    assert all(n.level_db <= LEVELS.action_max_db for n in acts)
    assert (snr < 0).mean() > 0.05 and (snr > 10).mean() > 0.2  # quiet and clear actions
    for v in videos:  # an action's level is its SNR over its own video's bed
        for n in v.narrations:
            if n.sounding:
                assert n.level_db == pytest.approx(v.ambience.level_db + n.snr_db)


def test_offscreen_events_have_no_visual_counterpart_and_are_heard(sampled):
    from avbench.data.synthetic.actions import render_ambience, render_background_audio

    world, videos = sampled
    events = [(v, e) for v in videos for e in v.offscreen]
    assert len(events) > 40 and {e.kind for _, e in events} == {"source", "hits", "scrape",
                                                                 "pour", "rattle"}
    for v, e in events:  # never a category on the table
        assert e.category not in {o.category for o in v.objects}
    # they fall into silent actions' clips (same rate as into sounding ones)
    during = [n.sounding for v, e in events for n in v.narrations
              if e.start < n.time + 1.5 and e.end > n.time - 1.5]
    assert during.count(False) > 20 and during.count(True) > 20
    v, e = max(events, key=lambda ve: ve[1].level_db - ve[0].ambience.level_db)
    bg = render_background_audio(v, world.categories, e.start, e.duration, 16000)
    bed = render_ambience(v.ambience, e.start, e.duration, 16000)
    assert np.sqrt(np.mean(bg**2)) > 2 * np.sqrt(np.mean(bed**2))


def test_a_strike_sounds_at_the_hands_contacts(sampled):
    """The visible action causes its sound: a strike's hits start where the hand touches
    the object (its lowest point in the image), however quiet the action is."""
    from avbench.data.synthetic.actions import (
        APPROACH_S,
        hand_position,
        render_action_audio,
        render_background_audio,
    )

    world, videos = sampled
    sr, checked = 16000, 0
    for v in videos:
        for n in v.narrations:
            if world.actions.verb(n.verb).motion != "strike" or n.rate_hz * (n.end - n.start) < 4:
                continue
            a0, a1 = n.start + APPROACH_S, n.end - APPROACH_S
            action = render_action_audio(v, world.categories, world.actions, a0, a1 - a0, sr) \
                - render_background_audio(v, world.categories, a0, a1 - a0, sr)
            env = np.sqrt(np.mean(action[: action.size // 160 * 160].reshape(-1, 160) ** 2, 1))
            t = a0 + (np.arange(env.size) + 0.5) / 100  # 10-ms frames
            y = hand_position(v, world.actions, t)[:, 1]
            contact = y > np.quantile(y, 0.8)  # hand nearest the object (image y grows down)
            onset = np.maximum(np.diff(env, prepend=0.0), 0.0)  # where the sound rises
            assert onset[contact].mean() > 5 * onset[~contact].mean(), (n.verb, n.snr_db)
            checked += 1
    assert checked >= 3


def test_world_config_sets_the_bed_level():
    """`avbench synth ego4d --world "ambience_db=[lo, hi]"` moves every video's bed."""
    from avbench.data.synthetic.world import World, WorldConfig

    world = World(WorldConfig(image_size=64, ambience_db=(-30.0, -29.0)), 0)
    beds = [world.sample_long_video(np.random.default_rng([0, v]), 20.0, 4, f"v{v}").ambience.level_db
            for v in range(5)]
    assert all(-30.0 <= b <= -29.0 for b in beds)
