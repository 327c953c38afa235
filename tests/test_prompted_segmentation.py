"""Speech- and sound-prompted segmentation (DenseAV, REFERENCE A4): the metric on hand-built
maps whose answer is known, the word window against the reference's token bounds, and
``evaluate`` on the tiny synthetic ADE20K prompted data (a planted-truth reader, an untrained
DenseAV, EZ-VSL at its CPU config, the trivial baselines)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from avbench.benchmarks import evaluate, get_benchmark, trivial_baselines
from avbench.benchmarks.tasks.prompted_segmentation import (
    ORACLE_LABEL,
    PromptedSegmentationTask,
    class_scores,
    heads_time_average,
    minmax_over_set,
    oracle_iou,
    timing_window,
)

HOP = 9 * 320 / 16000  # DenseAV's token spacing (s)


def times(t: int) -> torch.Tensor:
    return (torch.arange(t, dtype=torch.float32) + 0.5) * HOP


# --- the metric on hand-built inputs ------------------------------------------------------------
def square_mask(size: int = 8, lo: int = 2, hi: int = 5) -> torch.Tensor:
    m = torch.zeros(size, size, dtype=torch.bool)
    m[lo:hi, lo:hi] = True
    return m


def test_perfect_map_scores_one_and_inverted_map_scores_low():
    masks = [square_mask(lo=1, hi=4), square_mask(lo=3, hi=7), square_mask(lo=0, hi=2)]
    classes = [5, 5, 9]
    perfect = [m.float() * 3.0 + 1.0 for m in masks]  # any affine scale: min-max over the set
    per_class, empty = class_scores(perfect, masks, classes)
    assert empty == 0 and set(per_class) == {5, 9}
    for c in per_class.values():
        assert c["ap"] == pytest.approx(1.0) and c["iou"] == pytest.approx(1.0)
    inverted = [1.0 - m.float() for m in masks]
    per_class, _ = class_scores(inverted, masks, classes)
    for c, ms in ((5, masks[:2]), (9, masks[2:])):
        prevalence = float(torch.cat([m.flatten() for m in ms]).float().mean())
        # every positive ranks last: precision only reaches the prevalence at full recall
        assert per_class[c]["ap"] < 0.5 and per_class[c]["ap"] == pytest.approx(prevalence, abs=0.05)
        assert per_class[c]["iou"] == 0.0


def test_constant_map_gets_the_prevalence_as_ap_and_no_oracle_iou():
    masks = [square_mask(), square_mask(lo=0, hi=4)]
    per_class, _ = class_scores([torch.ones(8, 8), torch.ones(8, 8)], masks, [1, 1])
    prevalence = float(torch.stack(masks).float().mean())
    assert per_class[1]["ap"] == pytest.approx(prevalence)
    assert per_class[1]["iou"] == 0.0  # strict ">" from the minimum: "everything" is no candidate
    assert all(float(m.abs().max()) == 0 for m in minmax_over_set([torch.ones(2, 2)] * 2))


def test_min_max_is_over_the_whole_set_not_per_image():
    """Two images of one class, each perfectly ranked alone, on different scales: pooled with
    ONE min-max the weak image's positives sit below the strong image's negatives."""
    masks = [square_mask(), square_mask()]
    strong = masks[0].float() * 0.5 + 0.5  # negatives 0.5, positives 1.0
    weak = masks[1].float() * 0.1  # negatives 0.0, positives 0.1
    pooled, _ = class_scores([strong, weak], masks, [3, 3])
    assert pooled[3]["ap"] < 0.9
    alone = [class_scores([m], [g], [3])[0][3]["ap"] for m, g in zip((strong, weak), masks)]
    assert alone == [pytest.approx(1.0), pytest.approx(1.0)]


def test_bilinear_upsampling_to_the_mask_size():
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[:4, :4] = True  # the top-left quadrant
    low = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # 2x2 token map, top-left token on
    per_class, _ = class_scores([low], [mask], [2])
    # bilinear (align_corners False): per axis 1, 1, .875, .625 inside, .375, .125, 0, 0 outside;
    # the ranking is perfect, but no threshold k/19 falls between .375 and .625^2 = .39: the
    # best, 8/19, drops the inner corner pixel: IoU 15/16
    assert per_class[2]["ap"] == pytest.approx(1.0)
    assert per_class[2]["iou"] == pytest.approx(15 / 16)
    nearest_corner = torch.zeros(8, 8, dtype=torch.bool)
    nearest_corner[:2, :2] = True  # the pixels the clamped bilinear keeps at exactly 1
    assert class_scores([low], [nearest_corner], [2])[0][2]["iou"] == pytest.approx(1.0)


def test_oracle_iou_by_hand():
    scores = torch.tensor([0.0, 0.2, 0.6, 0.9, 1.0])
    target = torch.tensor([False, False, True, True, False])
    # thresholds 0..1 in 20 steps; "> 0.5" keeps {0.6, 0.9, 1.0}: IoU 2/3; no cut isolates {0.6, 0.9}
    assert oracle_iou(scores, target) == pytest.approx(2 / 3)
    assert oracle_iou(scores, target, n_thresholds=2) == pytest.approx(2 / 4)  # "> 0" only


def test_empty_class_is_left_out_and_counted():
    masks = [square_mask(), torch.zeros(8, 8, dtype=torch.bool)]
    per_class, empty = class_scores([masks[0].float(), torch.rand(8, 8)], masks, [1, 2])
    assert set(per_class) == {1} and empty == 1
    with pytest.raises(ValueError, match="as many"):
        class_scores([torch.ones(2, 2)], [], [1])


# --- heat maps from per-head, per-token maps --------------------------------------------------
def test_heads_max_combined_then_averaged_over_the_window():
    # B=1, K=2, T=3, h=w=1; token 2 is silent
    heat = torch.tensor([[[1.0, 4.0, 9.0], [3.0, 2.0, 9.0]]]).reshape(1, 2, 3, 1, 1)
    amask = torch.tensor([[True, True, False]])
    clip = heads_time_average(heat, amask)
    assert float(clip) == pytest.approx((3.0 + 4.0) / 2)  # max over heads per token, mean
    window = torch.tensor([[False, True, True]])
    # the reference divides by the window's token count; the silent token counts as zero
    assert float(heads_time_average(heat, amask, window)) == pytest.approx((4.0 + 0.0) / 2)


def test_timing_window_equals_the_reference_token_bounds():
    """Tokens tiling a clip of T*HOP seconds; the reference takes tokens
    ``floor(T * (start - 0.2) / L) <= t < ceil(T * (end + 0.2) / L)``."""
    t = 17
    length = t * HOP
    rng = np.random.default_rng(0)
    starts = rng.uniform(0.0, length - 0.6, 200)
    ends = starts + rng.uniform(0.05, 0.6, 200)
    timing = torch.tensor(np.stack([starts, ends], 1), dtype=torch.float32)
    window = timing_window(times(t), timing, 0.2)
    for row, (a, b) in zip(window, timing.tolist()):
        lo = max(math.floor(t * (a - 0.2) / length), 0)
        hi = min(math.ceil(t * (b + 0.2) / length), t)
        expected = torch.zeros(t, dtype=torch.bool)
        expected[lo:hi] = True
        assert torch.equal(row, expected), (a, b)
    # a window outside the clip selects no token
    assert not timing_window(times(t), torch.tensor([[10.0, 11.0]]), 0.2).any()


# --- the benchmarks ------------------------------------------------------------------------------
def test_benchmarks_are_registered_with_the_reference_protocol():
    speech, sound = get_benchmark("ade20k-speech-prompted"), get_benchmark("ade20k-sound-prompted")
    for b, kind in ((speech, "speech"), (sound, "sound")):
        task = b.primary_task
        assert isinstance(task, PromptedSegmentationTask) and task.prompt == kind
        assert (b.dataset, b.subset, b.split, b.main_score) == ("ade20k_prompted", kind, "test",
                                                                "map")
        assert b.requires == ("prompted_heatmap", "localize")
        assert (task.timing_margin_s, task.n_thresholds, task.align_corners) == (0.2, 20, False)
        assert "oracle" in b.description
    assert ORACLE_LABEL == "oracle threshold"


# --- evaluate on the tiny synthetic ADE20K prompted data ------------------------------------
@pytest.fixture(scope="module")
def ade_root(tmp_path_factory) -> Path:
    from avbench.data.synthetic import generate

    root = tmp_path_factory.mktemp("ade") / "ade20k_prompted"
    generate("ade20k_prompted", root, "tiny", 0, progress=False)
    return root


def datamodule(root: Path, kind: str, image_size: int = 32, batch_size: int = 8) -> Any:
    from avbench.data.datamodules.ade20k_prompted import ADE20KPromptedDataModule

    return ADE20KPromptedDataModule(str(root), kind=kind, batch_size=batch_size, num_workers=0,
                                    image_size=image_size, sample_rate=16000, clip_seconds=3.0)


def mask_reader(window_only: bool = False) -> SimpleNamespace:
    """Reads the planted mask back: ``localize`` returns it; ``prompted_heatmap`` returns it on
    the tokens of the word's timing +/- 0.2 s and its inverse on every other token."""

    def localize(batch: dict[str, Any]) -> torch.Tensor:
        return batch["mask"].float()

    def prompted_heatmap(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        mask = batch["mask"].float()
        b, t = mask.shape[0], 17
        inside = timing_window(times(t), batch["timing"], 0.2)  # [B, T]
        per_token = torch.where(inside[:, :, None, None], mask[:, None], 1.0 - mask[:, None])
        heat = torch.stack([per_token, torch.zeros_like(per_token)], 1)  # second head silent
        return {"heatmap": heat, "time_s": times(t), "audio_mask": torch.ones(b, t, dtype=bool)}

    caps = {"prompted_heatmap"} if window_only else {"localize"}
    return SimpleNamespace(meta=SimpleNamespace(name="mask-reader", capabilities=frozenset(caps)),
                           localize=localize, prompted_heatmap=prompted_heatmap)


@pytest.mark.parametrize("kind", ["speech", "sound"])
def test_planted_mask_reader_scores_perfectly(ade_root, kind):
    res = evaluate(mask_reader(), f"ade20k-{kind}-prompted", datamodule(ade_root, kind),
                   progress=False, raise_errors=True)
    assert res.status == "ok" and res.tasks[0].capability_used == "localize"
    assert res.metrics == {"map": pytest.approx(1.0), "miou_oracle": pytest.approx(1.0)}
    info = res.tasks[0].info
    assert info["n"] == res.n_samples > 0 and info["n_classes"] >= 2
    assert ORACLE_LABEL in info["miou"] and "localize" in info["heatmap"]


def test_speech_prompts_average_over_the_word_window(ade_root):
    """The mask is only on the word's tokens: the window map is perfect, the whole-clip map
    (mostly inverted tokens) is not."""
    res = evaluate(mask_reader(window_only=True), "ade20k-speech-prompted",
                   datamodule(ade_root, "speech"), progress=False, raise_errors=True)
    assert res.status == "ok" and res.tasks[0].capability_used == "prompted_heatmap"
    assert res.metrics == {"map": pytest.approx(1.0), "miou_oracle": pytest.approx(1.0)}
    info = res.tasks[0].info
    assert info["n_window_fallback"] == 0
    assert info["whole_clip"]["map"] < 0.7 and info["whole_clip"]["miou_oracle"] < 0.7


def test_sample_store_keeps_one_row_per_id():
    from avbench.benchmarks.tasks.sample_store import SampleStore

    store = SampleStore(("x",))
    store.update(["a", "b"], x=torch.tensor([1.0, 2.0]))
    store.update(["b", "c"], x=torch.tensor([2.0, 3.0]))  # "b" again (DDP padding)
    values, dropped = store.compute()
    assert sorted(values["x"].tolist()) == [1.0, 2.0, 3.0] and dropped == 1
    with pytest.raises(KeyError, match="needs"):
        store.update(["d"])


def test_the_set_level_metric_does_not_depend_on_the_batch_size(ade_root):
    # half the mask plus the image's brightness: imperfect, different in every image
    noisy = SimpleNamespace(
        meta=SimpleNamespace(name="noisy", capabilities=frozenset({"localize"})),
        localize=lambda b: 0.5 * b["mask"].float() + b["image"].mean(1))
    one, eight = (evaluate(noisy, "ade20k-sound-prompted", datamodule(ade_root, "sound",
                                                                       batch_size=bs),
                           progress=False, raise_errors=True).metrics for bs in (1, 8))
    assert one == eight and 0.3 < one["map"] < 1.0


def test_trivial_baselines_through_the_same_evaluator(ade_root):
    full, center, _ = trivial_baselines()
    dm = datamodule(ade_root, "sound")
    res = {b.meta.name: evaluate(b, "ade20k-sound-prompted", dm, progress=False,
                                 raise_errors=True) for b in (full, center)}
    assert all(r.status == "ok" for r in res.values())
    # full image: AP = each class's pixel share, oracle IoU 0 (reference thresholds)
    ds = dm.dataset("test")
    by_class: dict[int, list[torch.Tensor]] = {}
    for i in range(len(ds)):
        s = ds[i]
        by_class.setdefault(int(s["ade_class_id"]), []).append(s["mask"].flatten())
    shares = [float(torch.cat(v).float().mean()) for v in by_class.values()]
    assert res["full-image"].metrics["map"] == pytest.approx(sum(shares) / len(shares), rel=1e-4)
    assert res["full-image"].metrics["miou_oracle"] == 0.0
    assert 0.0 < res["center-prior"].metrics["miou_oracle"] < 1.0


def test_untrained_denseav_and_ezvsl_end_to_end(ade_root):
    from test_denseav import tiny

    from avbench.configs import CONFIG_DIR
    from avbench.models.base import AVModel
    from avbench.runner.instantiation import instantiate

    dense = tiny()
    for kind in ("speech", "sound"):
        res = evaluate(dense, f"ade20k-{kind}-prompted", datamodule(ade_root, kind),
                       progress=False, raise_errors=True)
        assert res.status == "ok" and res.tasks[0].capability_used == "prompted_heatmap"
        assert 0.0 < res.metrics["map"] <= 1.0 and 0.0 <= res.metrics["miou_oracle"] <= 1.0
    assert set(res.tasks[0].info) >= {"n", "n_classes", "heatmap", "miou"}

    cfg = yaml.safe_load((CONFIG_DIR / "model" / "ezvsl_cpu.yaml").read_text())["model"]
    ezvsl = instantiate(cfg, AVModel)  # loads standins/image-resnet18
    res = evaluate(ezvsl, "ade20k-sound-prompted", datamodule(ade_root, "sound", 64),
                   progress=False, raise_errors=True)
    assert res.status == "ok" and res.tasks[0].capability_used == "localize"
    assert 0.0 < res.metrics["map"] <= 1.0
    assert "localize" in res.tasks[0].info["heatmap"]


def test_checkpoint_plan_scores_the_datamodule_kind_only(ade_root):
    from avbench.runner.checkpoint_eval import plan_datamodule

    full = trivial_baselines()[0]
    for kind, other in (("speech", "sound"), ("sound", "speech")):
        plan = plan_datamodule(full, datamodule(ade_root, kind))
        assert plan.family == ("ade20k_prompted", kind)
        assert plan.run == [f"ade20k-{kind}-prompted"]
        assert "subset" in plan.not_run[f"ade20k-{other}-prompted"]


def test_gallery_keeps_the_scored_maps_and_draws(ade_root):
    from avbench.benchmarks.tasks.base import PlotRow

    res = evaluate(mask_reader(), "ade20k-sound-prompted", datamodule(ade_root, "sound"),
                   progress=False, raise_errors=True, gallery=5)
    g = res.gallery
    assert g is not None and len(g["ids"]) == 5 and g["image"].dtype == np.uint8
    assert g["image"].shape == (5, 32, 32, 3) and g["map"].shape == g["gt"].shape == (5, 32, 32)
    # the reader's map is the mask: min-max per item gives the mask back
    np.testing.assert_array_equal(g["map"].astype(np.float32), g["gt"].astype(np.float32))
    row = PlotRow(label="mask-reader", baseline=False, color="C0", records=[], gallery=g)
    figs = get_benchmark("ade20k-sound-prompted").primary_task.leaderboard_figures(
        "ade20k-sound-prompted", [row])
    assert [slug for slug, _ in figs] == ["gallery"]
