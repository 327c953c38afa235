"""Behaviour of the synthetic audio-visual world (docs/synthetic_world.md, DESIGN 4.3).

Each test checks a planted phenomenon from the rendered arrays, not from the
parameters that produced them: the mask is where the object's colour is, the
audio has energy at the category's pitch, edge frequencies match the graph,
the object's motion follows the audio envelope, and a trivial classifier can
tell categories apart from pixels alone and from sound alone.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pytest
from scipy.signal import welch

from avbench.data.synthetic.calibration import baseline_scores, ciou, top50
from avbench.data.synthetic.scene import mask_box
from avbench.data.synthetic.speech import formant_envelope
from avbench.data.synthetic.world import (
    CooccurrenceGraph,
    Scene,
    World,
    WorldConfig,
    frame_times,
)

SR = 16000


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldConfig(image_size=96, sample_rate=SR), seed=0)


def _render_all(world: World, scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (world.render_video(scene, 2.0, 4), world.render_audio(scene, 2.0),
            world.sounding_mask(scene, 1.0))


def _render_in_child(args: tuple[dict, int, bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    config, seed, scene_bytes = args
    return _render_all(World(WorldConfig(**config), seed), pickle.loads(scene_bytes))


# ----------------------------------------------------------------------------- contract & determinism


def test_shapes_and_dtypes(world: World) -> None:
    scene = world.sample_scene(np.random.default_rng(0), [3])
    video = world.render_video(scene, 3.0, 8)
    assert video.shape == (24, 96, 96, 3) and video.dtype == np.uint8
    assert world.render_frame(scene, 0.5, 64).shape == (64, 64, 3)
    audio = world.render_audio(scene, 3.0)
    assert audio.shape == (48000,) and audio.dtype == np.float32
    assert 0 < np.abs(audio).max() < 1.0
    assert world.render_audio(scene, 1.0, 8000).shape == (8000,)
    mask = world.sounding_mask(scene, 1.5)
    assert mask.shape == (96, 96) and mask.dtype == bool and mask.any()
    assert world.sounding_masks(scene, [0.0, 1.0], 48).shape == (2, 48, 48)
    assert len(world.sounding_boxes(scene, 1.5)) == len(scene.labels) == 1
    np.testing.assert_array_equal(frame_times(3.0, 8), np.arange(24) / 8)
    # frame k of the video is the frame at k / fps
    np.testing.assert_array_equal(video[5], world.render_frame(scene, 5 / 8))
    speech = world.render_speech(3, seed=1)
    assert speech.dtype == np.float32 and 0.4 * SR <= speech.size <= 0.9 * SR
    assert scene.labels == [3] and all(o.category != 3 or o.annotated for o in scene.objects)


def test_determinism(world: World) -> None:
    cfg = WorldConfig(image_size=96, sample_rate=SR)
    twin = World(cfg, seed=0)
    assert [c.name for c in twin.categories] == [c.name for c in world.categories]
    assert twin.graph.to_json() == world.graph.to_json()
    s1 = world.sample_scene(np.random.default_rng(7), [1, 5])
    s2 = twin.sample_scene(np.random.default_rng(7), [1, 5])
    assert s1 == s2
    for a, b in zip(_render_all(world, s1), _render_all(twin, s2)):
        np.testing.assert_array_equal(a, b)
    # rendering the same scene twice, in any order, is identical
    other = world.sample_scene(np.random.default_rng(8), [2])
    first = _render_all(world, s1)
    _render_all(world, other)
    for a, b in zip(first, _render_all(world, s1)):
        np.testing.assert_array_equal(a, b)
    # ... and in another process, from a pickled scene
    ctx = get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        child = pool.submit(_render_in_child, (dataclasses.asdict(cfg), 0, pickle.dumps(s1))).result()
    for a, b in zip(first, child):
        np.testing.assert_array_equal(a, b)
    # different seeds differ
    s3 = world.sample_scene(np.random.default_rng(9), [1, 5])
    assert not np.array_equal(world.render_video(s3, 2.0, 4), first[0])
    assert not np.array_equal(world.render_audio(s3, 2.0), first[1])
    other_world = World(cfg, seed=1)
    assert [c.name for c in other_world.categories] != [c.name for c in world.categories]
    assert world.render_source(4, 1.0, 1).tobytes() != world.render_source(4, 1.0, 2).tobytes()


def test_config_round_trip() -> None:
    cfg = WorldConfig(image_size=64, offscreen_rate=0.5)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert WorldConfig.from_dict(d) == cfg
    with pytest.raises(KeyError, match="unknown"):
        WorldConfig.from_dict({"image_sizes": 3})


# ----------------------------------------------------------------------------- masks and boxes


def test_mask_is_the_object_and_boxes_are_tight(world: World) -> None:
    rng = np.random.default_rng(1)
    n_checked_area = 0
    for k in range(40):
        scene = world.sample_scene(rng, [k % 32], n_distractors=0, cooccurrence=False)
        t = float(rng.uniform(0, 3))
        frame = world.render_frame(scene, t)
        mask = world.sounding_mask(scene, t)
        (i,) = scene.annotated_objects
        obj = scene.objects[i]
        assert mask.any()
        # the object's colours (main or texture, +-shading) fill the mask, and only the mask
        px = frame[mask].astype(float)
        d = np.minimum(np.abs(px - obj.color).max(1), np.abs(px - obj.texture_color).max(1))
        assert (d <= 25).mean() > 0.97
        out = frame[~mask].astype(float)
        if out.size:
            # main colour only: a muted texture colour can coincide with a muted background
            d_out = np.abs(out - obj.color).max(1)
            assert (d_out <= 3).mean() < 0.05
        # boxes: tight around the mask, and equal to the geometric box clipped to the image
        (box,) = world.sounding_boxes(scene, t)
        assert box == mask_box(mask)
        geo = np.clip(world.object_box(scene, i, t), 0.0, 1.0)
        # (<= 3 px: a frame-filling object is stretched, and a thin tip may miss pixel centres)
        assert np.abs(np.asarray(box) - geo).max() <= 3 / 96
        # area: for objects fully in the frame the box area is the sampled scale (x envelope)
        b = world.object_box(scene, i, t)
        if min(b) >= 0 and max(b) <= 1:
            s = 1 + obj.pulse * world.motion(scene, i, [t])[0]
            box_area = (box[2] - box[0]) * (box[3] - box[1])
            assert box_area == pytest.approx(obj.scale**2 * s**2, rel=0.08)
            assert 0.3 * box_area < mask.mean() <= box_area + 1e-9
            n_checked_area += 1
    assert n_checked_area >= 8


def test_object_masks_partition_visible_pixels(world: World) -> None:
    scene = world.sample_scene(np.random.default_rng(3), [4, 9], n_distractors=2)
    masks = [world.object_mask(scene, i, 1.0) for i in range(len(scene.objects))]
    total = np.sum(masks, axis=0)
    assert total.max() <= 1  # visible pixels of different objects never overlap
    union = np.zeros_like(masks[0])
    for i in scene.annotated_objects:
        union |= masks[i]
    np.testing.assert_array_equal(union, world.sounding_mask(scene, 1.0))


# ----------------------------------------------------------------------------- sound


def _psd(x: np.ndarray, nfft: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    return welch(x, SR, nperseg=nfft)


def test_source_energy_peaks_at_pitch(world: World) -> None:
    for cat in world.categories:
        f, p = _psd(world.render_source(cat.index, 3.0, 11))
        bin_hz = f[1]
        if cat.sound.kind == "noise_band":
            width = max(3, int(cat.sound.bandwidth_hz / bin_hz / 2))
            p = np.convolve(p, np.ones(width) / width, mode="same")
            tol = max(2 * bin_hz, cat.sound.bandwidth_hz / 4)
        else:
            tol = 2 * bin_hz
        assert abs(f[np.argmax(p)] - cat.pitch_hz) <= tol, (cat.name, cat.sound.kind)


def test_scene_mix_has_energy_at_the_label_pitch(world: World) -> None:
    rng = np.random.default_rng(5)
    for _ in range(12):
        c = int(rng.integers(32))
        scene = world.sample_scene(rng, [c])
        f, p = _psd(world.render_audio(scene, 3.0))
        at = p[np.abs(f - world.categories[c].pitch_hz) <= 2 * f[1]].max()
        assert 10 * np.log10(at / np.median(p)) > 15


def test_offscreen_rate() -> None:
    for rate in (0.0, 1.0):
        w = World(WorldConfig(image_size=64, offscreen_rate=rate), seed=0)
        rng = np.random.default_rng(0)
        for _ in range(60):
            scene = w.sample_scene(rng, [int(rng.integers(32))])
            assert len(scene.offscreen) == (1 if rate == 1.0 else 0)
            visible = {o.category for o in scene.objects}
            for c in scene.offscreen:
                assert c not in visible and c not in scene.labels
                assert any(s.category == c and s.role == "offscreen" and s.object == -1
                           for s in scene.sources)
    w = World(WorldConfig(image_size=64, offscreen_rate=0.0), seed=0)
    assert w.sample_scene(np.random.default_rng(0), [1], offscreen=True).offscreen


# ----------------------------------------------------------------------------- co-occurrence graph


def test_cooccurrence_matches_planted_graph(world: World) -> None:
    g = world.graph
    assert len(g.edges) == world.config.graph_edges
    sources = sorted({int(e.src.split("_")[1]) for e in g.edges})[:3]
    n = 600
    for a in sources:
        edges = {(d, m): p for d, m, p in g.out_edges(a)}
        counts: dict[tuple[int, str], int] = {}
        rng = np.random.default_rng(a)
        for _ in range(n):
            scene = world.sample_scene(rng, [a], n_distractors=0)
            for key in scene.cooccurring:
                assert key in edges, f"non-edge {key} appeared for category {a}"
                counts[key] = counts.get(key, 0) + 1
                c, m = key
                if m == "visual":
                    assert any(o.category == c and o.role == "cooccurring" and not o.sounding
                               and not o.annotated for o in scene.objects)
                else:
                    assert any(s.category == c and s.role == "cooccurring" for s in scene.sources)
                    assert all(o.category != c for o in scene.objects)
                assert c not in scene.labels
        for key, p in edges.items():
            sd = np.sqrt(p * (1 - p) / n)
            assert abs(counts.get(key, 0) / n - p) < 4 * sd + 1e-9, (a, key, p)
    # the flag turns it off
    scene = world.sample_scene(np.random.default_rng(0), [sources[0]], cooccurrence=False)
    assert scene.cooccurring == []


def test_graph_json_round_trip(world: World, tmp_path) -> None:
    g = world.graph
    assert g.nodes[:32] == [f"audio_{c}" for c in range(32)]
    assert g.nodes[32:] == [f"visual_{c}" for c in range(32)]
    a = g.adjacency()
    assert a.shape == (64, 64) and a.sum() == len(g.edges)
    # acyclic over categories
    cat_adj = (a[:32, :32] | a[:32, 32:] | a[32:, :32] | a[32:, 32:]).astype(bool)
    reach = cat_adj.copy()
    for _ in range(32):
        reach = reach | ((reach.astype(int) @ cat_adj.astype(int)) > 0)
    assert not np.diag(reach).any()
    g2 = CooccurrenceGraph.from_json(json.loads(json.dumps(g.to_json())))
    assert g2.edges == g.edges and g2.nodes == g.nodes
    np.testing.assert_array_equal(g2.adjacency(), a)
    path = g.save(tmp_path / "cooccurrence_graph.json")
    assert CooccurrenceGraph.load(path).edges == g.edges
    assert g.save(tmp_path).name == "cooccurrence_graph.json"


# ----------------------------------------------------------------------------- speech


def _log_spec(x: np.ndarray, nfft: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Log of the time-averaged power spectrum (Hann frames, 50% overlap)."""
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), nfft)[::nfft // 2]
    p = (np.abs(np.fft.rfft(frames * np.hanning(nfft), axis=1)) ** 2).mean(0)
    return np.fft.rfftfreq(nfft, 1 / SR), np.log(p + 1e-12)


def test_speech_is_not_the_sound_and_has_formants(world: World) -> None:
    logs, envs, sims = [], [], []
    for c, cat in enumerate(world.categories):
        speech = world.render_speech(c, seed=c + 100)
        f, ls = _log_spec(speech)
        _, lsnd = _log_spec(world.render_source(c, 1.0, 3))
        sims.append(np.corrcoef(ls, lsnd)[0, 1])
        # voiced: energy at f0 and low harmonics well above the 6-8 kHz floor
        assert ls[(f > 80) & (f < 400)].max() > ls[f > 6500].mean() + 5
        band = (f > 150) & (f < 4000)
        logs.append(ls[band])
        envs.append(np.log(formant_envelope(cat.speech, f[band]) + 1e-12))
    assert np.mean(sims) < 0.6  # a word does not sound like its category's sound
    # formants: with the tilt shared by all words removed, each spoken word's spectrum
    # follows its own vowels' vocal-tract envelope and not the other words'
    lg = np.array(logs) - np.mean(logs, axis=0)
    ev = np.array(envs) - np.mean(envs, axis=0)
    corr = np.corrcoef(lg, ev)[:32, 32:]
    off = corr[~np.eye(32, dtype=bool)]
    assert np.mean(np.diag(corr)) > 0.25 and np.mean(np.diag(corr)) > off.mean() + 0.2
    assert (corr.argmax(1) == np.arange(32)).mean() > 5 / 32


def test_spoken_word_identifies_the_category_across_speakers(world: World) -> None:
    x, y = [], []
    for c in range(32):
        for s in range(6):
            x.append(_log_spec(world.render_speech(c, seed=1000 + s))[1])
            y.append(c)
    acc = _nearest_centroid_accuracy(np.array(x), np.array(y), 3)
    assert acc > 0.6, acc


# ----------------------------------------------------------------------------- actions


def test_actions_sounding_vs_silent_and_ambience(world: World) -> None:
    from avbench.data.synthetic.actions import render_background_audio

    vocab = world.actions
    assert {v.sounding for v in vocab.verbs} == {True, False}
    videos = [world.sample_long_video(np.random.default_rng(v), 60.0, 12, f"vid{v}") for v in range(3)]
    excess: dict[bool, list[float]] = {True: [], False: []}
    for video in videos:
        times = [n.time for n in video.narrations]
        assert times == sorted(times) and len({n.uid for n in video.narrations}) == 12
        for n in video.narrations:
            assert n.text.startswith("#C C ") and n.noun in n.text
            assert n.verb in [v.name for v in vocab.verbs] and n.noun in vocab.nouns
            assert n.sounding == vocab.verb(n.verb).sounding
            frames, audio = world.render_action_clip(video, n.time - 1.5, 3.0, 8, 64)
            assert frames.shape == (24, 64, 64, 3) and audio.shape == (48000,)
            # the window without its visible action: ambient bed + off-screen events
            bg = render_background_audio(video, world.categories, n.time - 1.5, 3.0, SR)
            excess[n.sounding].append(float(np.mean(audio.astype(float) ** 2) / np.mean(bg.astype(float) ** 2)))
    assert excess[True] and excess[False]
    assert min(excess[True]) > 1.02 and np.median(excess[True]) > 2  # the action adds sound
    assert max(excess[False]) < 1.0 + 1e-4  # silent verbs add nothing above the background
    # the same video's ambience is consistent across clips and differs between videos
    def spec(video, start):
        return _log_spec(world.render_ambience(video, start, 2.0))[1]
    within = [np.linalg.norm(spec(v, 3.0) - spec(v, 40.0)) for v in videos]
    between = [np.linalg.norm(spec(videos[i], 3.0) - spec(videos[j], 3.0))
               for i in range(3) for j in range(3) if i < j]
    assert max(within) < min(between)
    # overlapping windows of one video hear the same bed
    a = world.render_ambience(videos[0], 10.0, 2.0)
    b = world.render_ambience(videos[0], 11.0, 2.0)
    np.testing.assert_allclose(a[SR:], b[:SR], atol=1e-4)
    # the quiet copy (no narrations, no off-screen events) renders the ambience alone
    quiet = dataclasses.replace(videos[0], narrations=[], offscreen=[])
    _, qa = world.render_action_clip(quiet, 10.0, 2.0, 8, 64)
    np.testing.assert_allclose(qa, np.clip(a, -0.99, 0.99), atol=1e-6)


def test_hand_moves_for_silent_verbs_too(world: World) -> None:
    video = world.sample_long_video(np.random.default_rng(4), 40.0, 8, "v")
    moved = {True: [], False: []}
    for n in video.narrations:
        if n.verb == "look":
            continue
        frames, _ = world.render_action_clip(video, n.time - 1.5, 3.0, 8, 64)
        moved[n.sounding].append(float(np.abs(np.diff(frames.astype(float), axis=0)).mean()))
    for k in (True, False):
        assert all(m > 0.2 for m in moved[k]), moved


# ----------------------------------------------------------------------------- synchrony


def test_motion_follows_sound_envelope() -> None:
    w = World(WorldConfig(image_size=96, snr_db=(40.0, 40.0)), seed=0)
    rng = np.random.default_rng(2)
    corrs = []
    fps, dur = 8, 3.0
    times = frame_times(dur, fps)
    for k in range(16):
        scene = w.sample_scene(rng, [k * 2 % 32], n_distractors=0, offscreen=False,
                               cooccurrence=False)
        area = np.array([w.sounding_mask(scene, t).sum() for t in times], float)
        audio = w.render_audio(scene, dur)
        half = int(SR / fps / 2)
        env = np.array([np.sqrt(np.mean(audio[max(0, int(t * SR) - half):int(t * SR) + half] ** 2))
                        for t in times])
        if area.std() > 0 and env.std() > 0:
            corrs.append(np.corrcoef(area, env)[0, 1])
    assert len(corrs) >= 12
    assert np.median(corrs) > 0.7, corrs


# ----------------------------------------------------------------------------- learnability


def _nearest_centroid_accuracy(x: np.ndarray, y: np.ndarray, n_train: int) -> float:
    classes = np.unique(y)
    train = np.concatenate([np.flatnonzero(y == c)[:n_train] for c in classes])
    test = np.setdiff1d(np.arange(len(y)), train)
    mu = (x - x[train].mean(0)) / (x[train].std(0) + 1e-6)
    cent = np.stack([mu[train][y[train] == c].mean(0) for c in classes])
    d = ((mu[test][:, None, :] - cent[None]) ** 2).sum(-1)
    return float((classes[np.argmin(d, 1)] == y[test]).mean())


def test_each_modality_alone_identifies_the_category(world: World) -> None:
    rng = np.random.default_rng(6)
    vis, aud, ys = [], [], []
    for _ in range(20):
        for c in range(32):
            scene = world.sample_scene(rng, [c])
            frame = world.render_frame(scene, 1.0, 40).reshape(-1, 3) // 64  # 4 levels per channel
            hist = np.bincount(frame[:, 0] * 16 + frame[:, 1] * 4 + frame[:, 2], minlength=64)
            vis.append(np.sqrt(hist / hist.sum()))
            _, ls = _log_spec(world.render_audio(scene, 1.0))
            aud.append(ls)
            ys.append(c)
    y = np.array(ys)
    acc_v = _nearest_centroid_accuracy(np.array(vis), y, 10)
    acc_a = _nearest_centroid_accuracy(np.array(aud), y, 10)
    chance = 1 / 32
    print(f"\nnearest-centroid accuracy: visual {acc_v:.2f}, audio {acc_a:.2f} (chance {chance:.3f})")
    assert acc_v > 6 * chance
    assert acc_a > 10 * chance


# ----------------------------------------------------------------------------- calibration


def test_top50_rule_and_ciou_hand_values() -> None:
    gt = np.zeros((10, 10))
    gt[:, :3] = 1  # 30% of the image
    assert ciou(top50(np.ones((10, 10))), gt) == pytest.approx(0.3)  # ties: all pixels kept
    m = np.zeros((10, 10))
    m[:, :5] = 1.0
    m[:, 5:] = np.linspace(0, 0.5, 5)[None, :]  # top 50% = the left half
    pred = top50(m)
    assert pred.sum() == 50 and pred[:, :5].all()
    assert ciou(pred, gt) == pytest.approx(30 / (30 + 20))


def test_trivial_baselines_are_calibrated(world: World) -> None:
    # VGG-SS-like sizes (docs "Calibration"): full image ~ P(area >= .5) ~ 0.2, oracle ~ 0.5
    s = baseline_scores(world, n=150, seed=1, size=64)["box"]
    assert 0.1 <= s["full_image"]["ap50"] <= 0.35
    assert 0.1 <= s["centre_prior"]["ap50"] <= 0.45
    assert s["oracle_blur"]["ap50"] >= 0.4
    assert s["oracle_blur"]["ap50"] > s["centre_prior"]["ap50"] + 0.1


# ----------------------------------------------------------------------------- speed (report only)


def test_render_timing_report() -> None:
    w = World(WorldConfig(image_size=128, sample_rate=SR), seed=0)
    rng = np.random.default_rng(0)
    scenes = [w.sample_scene(rng, int(rng.integers(32))) for _ in range(40)]
    w.render_video(scenes[0], 3.0, 8)
    t0 = time.process_time()
    for s in scenes:
        w.render_video(s, 3.0, 8)
        w.render_audio(s, 3.0)
    ms = (time.process_time() - t0) / len(scenes) * 1e3
    print(f"\nrender: {ms:.1f} ms CPU per 3-s 128-px clip at 8 fps + 16 kHz audio")
