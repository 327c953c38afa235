"""Object sizes as in the real benchmarks (issue 11, must-have 5; docs "Calibration").

Each test split's GT area, sampled exactly as its writer plans and draws scenes
(no files), matches the real quantiles within +/- 0.05 (Flickr: its estimated
ones, and the full-image map scores the real ~0.61 AP50); a tiny written
Flickr's consensus GT equals the calibration's; a tiny written VGG-SS /
AVSBench read back through the real loaders has GT areas of the calibrated
kind; small objects stay recognisable shapes with visible texture.

Fast part: fixed seeds and a few hundred scenes per split, sampled once per
module (deterministic, so the bounds cannot flake); the 1000-scene checks and
the written VGG-SS / AVSBench round trips are ``slow``.
"""

from __future__ import annotations

import numpy as np
import pytest

from avbench.data.synthetic import generate
from avbench.data.synthetic.calibration import (
    EGO4D_ENERGY_AUC_TARGET,
    REAL_AREA_TARGETS,
    REAL_FULL_IMAGE_AP50,
    SPLITS,
    STAT_KEYS,
    consensus_map,
    ego4d_clip_levels,
    ego4d_energy_auc,
    full_image_ap50,
    odds_shift,
    shifted_knots,
    split_calibration,
    split_scenes,
)
from avbench.data.synthetic.config import DATASET_LAYOUTS, WorldConfig
from avbench.data.synthetic.sprites import SHAPES, render_sprite

TOL = 0.05
#: scenes per split in the fast area check (seed 0, deterministic). A quantile of 300 draws
#: carries ~0.02-0.03 of sampling error (S4's p25 moves by 0.06 between 250 and 300 scenes),
#: so the fast check allows TOL_FAST on the quantiles and TOL on the mean; the slow
#: 1000-scene check holds TOL everywhere.
N_FAST = 300
TOL_FAST = 0.08


def _area_errors(got: dict) -> dict[str, float]:
    stats = got["areas"][got["calibrated_gt"]]
    target = REAL_AREA_TARGETS[got["split"]]
    return {k: round(stats[k] - target[k], 3) for k in STAT_KEYS}


@pytest.fixture(scope="module")
def fast_areas() -> dict[str, dict]:
    """GT areas of N_FAST test scenes per split (default preset, seed 0), sampled once."""
    return {s: split_calibration(s, n=N_FAST, seed=0, baselines=False) for s in sorted(SPLITS)}


@pytest.fixture(scope="module")
def small_scores() -> dict[str, dict]:
    """Trivial-map scores on a few test scenes of the small preset (fixed seeds)."""
    return {"vggss": split_calibration("vggss", n=120, seed=2, preset="small"),
            "flickr": split_calibration("flickr", n=120, seed=2, preset="small"),
            "avsbench_ms3": split_calibration("avsbench_ms3", n=80, seed=3, preset="small")}


@pytest.mark.parametrize("split", sorted(SPLITS))
def test_test_split_gt_area_matches_the_real_quantiles(split: str, fast_areas: dict) -> None:
    errors = _area_errors(fast_areas[split])
    tol = {k: TOL if k == "mean" else TOL_FAST for k in errors}
    assert all(abs(e) <= tol[k] for k, e in errors.items()), (split, errors)


@pytest.mark.slow
@pytest.mark.parametrize("split", sorted(SPLITS))
def test_test_split_gt_area_matches_the_real_quantiles_1000(split: str) -> None:
    errors = _area_errors(split_calibration(split, n=1000, seed=0, baselines=False))
    assert all(abs(e) <= TOL for e in errors.values()), (split, errors)


def test_every_split_has_a_layout_and_a_target() -> None:
    assert set(SPLITS) == set(REAL_AREA_TARGETS) == set(DATASET_LAYOUTS)
    for layout in DATASET_LAYOUTS.values():
        WorldConfig(**layout)  # valid knots
    assert set(REAL_FULL_IMAGE_AP50) == {"flickr"} and SPLITS["flickr"].calibrated_gt == "consensus"


def test_area_knots_are_validated() -> None:
    with pytest.raises(ValueError, match="object_area_quantiles"):
        WorldConfig(object_area_quantiles=(0.1, 0.05, 0.2, 0.3, 0.4, 0.5, 1.0))
    with pytest.raises(ValueError, match="object_area_quantiles"):
        WorldConfig(object_area_quantiles=(0.1, 0.2, 1.0))


def test_flickr_knots_are_vggss_knots_moved_on_the_odds_scale() -> None:
    from avbench.data.synthetic.calibration import FLICKR_ODDS_RATIO

    assert odds_shift([0.0, 0.5, 1.0], 3.0).tolist() == [0.0, 0.75, 1.0]
    base = WorldConfig().object_area_quantiles
    assert DATASET_LAYOUTS["flickr"]["object_area_quantiles"] == shifted_knots(base, FLICKR_ODDS_RATIO)


def test_consensus_map_values_and_rasterisation() -> None:
    # 3 annotators; two agree on [0, 128) x [0, 128) of the 256-px frame, one is off by 64 px
    g = consensus_map([[[0, 0, 128, 128]], [[0, 0, 128, 128]], [[64, 64, 192, 192]]], 8)
    assert set(np.unique(g).tolist()) == {0.0, 0.5, 1.0}
    assert g[:4, :4].min() == 1.0 and g[4:6, 4:6].min() == 0.5 and g[6:, :].max() == 0.0


def test_flickr_full_image_scores_like_the_real_test_set() -> None:
    """REFERENCE A1: the full-image map scores ~0.61 AP50 on Flickr's 250 test images; the
    written default test split (250 clips, world seed 0) scores that within 0.05."""
    ap50 = full_image_ap50("flickr", None, seed=0)
    assert abs(ap50 - REAL_FULL_IMAGE_AP50["flickr"]) <= TOL, ap50


@pytest.mark.slow
def test_flickr_full_image_ap50_on_both_seeds_and_1000_scenes() -> None:
    # a 250-image AP50 has a sampling error of ~0.03 (seed 0: 0.608, seed 1: 0.660)
    for seed in (0, 1):
        assert abs(full_image_ap50("flickr", None, seed=seed) - 0.61) <= 0.07, seed
    assert abs(full_image_ap50("flickr", 1000, seed=0) - 0.61) <= 0.02


@pytest.mark.parametrize("split", ["vggss", "flickr"])
def test_trivial_maps_fair_but_beatable(split: str, small_scores: dict) -> None:
    gt = SPLITS[split].calibrated_gt
    s = small_scores[split]["scores"][gt]
    if split == "vggss":
        # full image AP50 = P(area >= .5) (~0.22 on real VGG-SS); oracle ~ P(area >= .25)
        assert 0.1 <= s["full_image"]["ap50"] <= 0.35
        assert 0.1 <= s["centre_prior"]["ap50"] <= 0.45
    else:  # real Flickr: full image ~0.61
        assert 0.5 <= s["full_image"]["ap50"] <= 0.72
        assert 0.45 <= s["centre_prior"]["ap50"] <= 0.75
    assert s["oracle_blur"]["ap50"] > max(s["full_image"]["ap50"], s["centre_prior"]["ap50"]) + 0.1
    assert s["oracle_blur"]["auc"] > max(s["full_image"]["auc"], s["centre_prior"]["auc"]) + 0.1


def test_ms3_full_image_is_no_longer_a_strong_segmenter(small_scores: dict) -> None:
    r = small_scores["avsbench_ms3"]
    assert r["miou"]["full_image"] < 0.3  # was ~0.53 (mask area) before the calibration
    assert r["areas"]["mask"]["mean"] < r["areas"]["mask_box"]["mean"]


def test_written_flickr_gt_is_the_calibrated_consensus(tmp_path) -> None:
    """The calibration rebuilds the writer's GT exactly: the consensus maps a tiny written
    Flickr gives through the real loader equal ``consensus_map`` of the writer's jittered
    annotator boxes for the same planned scenes (so the fitted AP50 is the written one)."""
    from avbench.data.datasets.flickr import FlickrSoundNet
    from avbench.data.synthetic.presets import get_preset
    from avbench.data.synthetic.writers.flickr import annotator_boxes

    generate("flickr", tmp_path, get_preset("tiny"), seed=0, progress=False)
    ds = FlickrSoundNet(tmp_path, "test", image_size=64, clip_seconds=1.0)
    world, scenes = split_scenes("flickr", None, seed=0, preset="tiny")
    assert len(scenes) == len(ds) == 8
    for scene, t, ident in scenes:
        boxes = [list(b) for b in world.sounding_boxes(scene, t)]
        ours = consensus_map(annotator_boxes(boxes, ident, 0), 64)
        theirs = ds.gt(ident)[0].numpy()
        np.testing.assert_array_equal(ours, theirs)


def _quantile_bounds(areas: np.ndarray, split: str) -> None:
    """Loose bounds for a handful of clips: median between the real p25 and p75 +- 0.1."""
    t = REAL_AREA_TARGETS[split]
    assert areas.min() < t["p50"] < areas.max()
    assert t["p25"] - 0.1 <= float(np.median(areas)) <= t["p75"] + 0.1


@pytest.mark.slow
def test_tiny_vggss_through_the_real_loader_has_calibrated_areas(tmp_path) -> None:
    from dataclasses import replace

    from avbench.data.datasets.vggss import VGGSS
    from avbench.data.synthetic.presets import get_preset

    p = replace(get_preset("tiny"), counts={"vggsound": {"train": 2, "test": 40}})
    generate("vggsound", tmp_path, p, seed=0, progress=False)
    ds = VGGSS(tmp_path, "all", clip_seconds=1.0, image_size=64)
    areas = np.array([float(ds[i]["gt_map"].float().mean()) for i in range(len(ds))])
    assert len(areas) == 40
    _quantile_bounds(areas, "vggss")
    assert (areas < 0.1).mean() > 0.05  # small objects exist now (old world: none below 0.15)


@pytest.mark.slow
def test_tiny_avsbench_through_the_real_loader_has_calibrated_areas(tmp_path) -> None:
    from dataclasses import replace

    from avbench.data.datasets.avsbench import AVSBench
    from avbench.data.synthetic.calibration import box_map
    from avbench.data.synthetic.presets import get_preset
    from avbench.data.synthetic.scene import mask_box

    counts = {"avsbench_s4": {"train": 1, "val": 1, "test": 12},
              "avsbench_ms3": {"train": 1, "val": 1, "test": 8}}
    generate("avsbench", tmp_path, replace(get_preset("tiny"), counts=counts), seed=0,
             progress=False)
    for subset, split in (("s4", "avsbench_s4"), ("ms3", "avsbench_ms3")):
        ds = AVSBench(tmp_path, subset, "test", image_size=64)
        box_areas, mask_areas = [], []
        for i in range(len(ds)):
            for m in ds[i]["masks"].numpy() > 0.5:
                m = np.asarray(m).reshape(64, 64)
                box_areas.append(box_map([mask_box(m)], 64).mean() if m.any() else 0.0)
                mask_areas.append(m.mean())
        box_a, mask_a = np.array(box_areas), np.array(mask_areas)
        _quantile_bounds(box_a, split)
        assert (mask_a <= box_a + 1e-9).all() and mask_a.mean() < 0.8 * box_a.mean()


@pytest.mark.parametrize("side", [22, 13])
def test_small_objects_keep_their_shape_and_texture(side: int) -> None:
    """A 0.03-area object at 128 px is ~22 px wide (0.01: ~13 px). Every shape's silhouette at
    that size stays closest to its own large rendering (downsampled), and a textured sprite
    still shows both colours."""

    def sil(shape: str, px: int) -> np.ndarray:
        return render_sprite(shape, 0.0, 1.0, px, px, (200, 0, 0))[:px, :px] != 0

    big = {s: sil(s, side * 8).reshape(side, 8, side, 8).mean(axis=(1, 3)) > 0.5 for s in SHAPES}
    wrong = []
    for shape in SHAPES:
        small = sil(shape, side)
        ious = {s: (small & b).sum() / (small | b).sum() for s, b in big.items()}
        if max(ious, key=ious.get) != shape:
            wrong.append(shape)
    # at 22 px every shape is itself; at 13 px (below the real p5) a hexagon may read as a disk
    assert len(wrong) <= (0 if side >= 22 else 2), wrong
    for texture in ("stripes", "dots", "checker", "rings"):
        spr = render_sprite("square", 0.0, 1.0, side, side, (200, 0, 0), texture, (0, 0, 200), 4.0)
        px = spr[:side, :side]
        share = float((px & 0xFF == 0).mean())  # blue texture pixels have red == 0
        assert 0.1 < share < 0.9, (texture, share)


# ----------------------------------------------------------------------------- Ego4D loudness
#: A world seed's AUC over the small preset's 120 clips (12 videos) carries ~0.05 of sampling
#: error (0.653 and 0.745 for seeds 0 and 1), so the fast check holds the target range for the
#: mean of two seeds and the range +- TOL_ENERGY_SEED for each; the slow check holds the range
#: itself on the default preset's written test split (250 clips) of both seeds.
TOL_ENERGY_SEED = 0.1


def test_ego4d_loudness_alone_is_fair_but_beatable() -> None:
    """Issue 16: the clip RMS (the ``audio-energy`` baseline) discovers sounding actions
    above chance but far from perfectly (it was ROC-AUC 1.0 before the loudness model),
    while within one video a sounding clip is still louder than its own background."""
    lo, hi = EGO4D_ENERGY_AUC_TARGET
    levels = {s: ego4d_clip_levels("small", s, splits=("train", "val", "test")) for s in (0, 1)}
    from sklearn.metrics import roc_auc_score

    aucs = [float(roc_auc_score(df["sounding"], df["rms"])) for df in levels.values()]
    assert lo <= float(np.mean(aucs)) <= hi, aucs
    assert all(lo - TOL_ENERGY_SEED <= a <= hi + TOL_ENERGY_SEED for a in aucs), aucs
    for df in levels.values():
        sounding = df[df["sounding"]]
        assert (sounding["rms"] > sounding["background_rms"]).all()
        assert (sounding["snr_db"] < 0).any()  # quiet actions exist


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_ego4d_energy_auc_on_the_default_test_split(seed: int) -> None:
    lo, hi = EGO4D_ENERGY_AUC_TARGET
    assert lo <= ego4d_energy_auc("default", seed) <= hi
