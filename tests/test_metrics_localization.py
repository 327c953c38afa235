"""LocalizationMetric (REFERENCE A1) against hand computations and the reference loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avbench.metrics import LocalizationMetric, compute_ciou, stable_key, summarize_ciou


def consensus_map(boxes: list[tuple[int, int, int, int]], size: int) -> torch.Tensor:
    """Flickr consensus GT: each annotator box adds 1, then /2 and cap at 1 (values 0, .5, 1)."""
    g = torch.zeros(size, size)
    for x0, y0, x1, y1 in boxes:
        g[y0:y1, x0:x1] += 1
    return (g / 2).clamp(max=1)


def reference_loop(maps: np.ndarray, gts: np.ndarray, thr_rule: str = "top50") -> list[float]:
    """Per-image numpy loop in the style of the EZ-VSL/JSA test scripts."""

    def normalize_img(v: np.ndarray) -> np.ndarray:
        vmin, vmax = v.min(), v.max()
        return (v - vmin) / (vmax - vmin) if vmax - vmin != 0 else v

    out = []
    for pred, gt in zip(maps, gts):
        pred = normalize_img(pred)
        if thr_rule == "top50":
            thr = np.sort(pred.flatten())[int(pred.shape[0] * pred.shape[1] * 0.5)]
        else:
            thr = 0.6
        infer = np.zeros(gt.shape)
        infer[pred >= thr] = 1
        out.append(float(np.sum(infer * gt) / (np.sum(gt) + np.sum(infer * (gt == 0)))))
    return out


def test_ciou_hand_computed_consensus():
    # 4x4 map increasing row by row: the top-50% rule keeps rows 2 and 3
    pred = torch.arange(16, dtype=torch.float32).reshape(1, 4, 4)
    gt = torch.tensor(
        [[0.5, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0.5, 0.5], [0, 0, 0, 0]], dtype=torch.float32
    )[None]
    ciou, empty = compute_ciou(pred, gt)
    # sum(I*G) = 3; sum(G) = 3.5; sum(I*[G==0]) = 4 (row 3)  ->  3 / 7.5
    assert ciou.tolist() == [pytest.approx(3 / 7.5, abs=1e-15)]
    assert not bool(empty[0])


def test_consensus_map_from_three_annotators():
    # boxes of 3 annotators on an 8x8 image; overlap of 2+ boxes -> 1, single box -> 0.5
    gt = consensus_map([(0, 0, 4, 4), (2, 2, 6, 6), (2, 0, 4, 2)], 8)
    assert set(gt.unique().tolist()) == {0.0, 0.5, 1.0}
    assert gt[3, 3] == 1.0 and gt[0, 0] == 0.5 and gt[1, 2] == 1.0 and gt[7, 7] == 0.0
    # prediction = left half (a map decreasing from left to right)
    pred = (8 - torch.arange(8, dtype=torch.float32)).expand(8, 8)[None]
    ciou, _ = compute_ciou(pred, gt[None])
    inter = gt[:, :4].sum()  # I = columns 0..3
    denom = gt.sum() + (gt[:, :4] == 0).sum()
    assert ciou.item() == pytest.approx((inter.double() / denom.double()).item(), abs=1e-15)
    # by hand: left half holds 8 px at 1 and 12 px at .5 (inter 14); sum(G) = 8 + 20 * .5 = 18;
    # 12 zero pixels in the left half -> cIoU = 14 / 30
    assert inter.item() == 14.0 and gt.sum().item() == 18.0 and denom.item() == 30.0
    assert ciou.item() == pytest.approx(14 / 30, abs=1e-15)


def test_ties_at_threshold_are_kept_and_constant_map_selects_all():
    gt = torch.zeros(1, 4, 4)
    gt[0, :2] = 1  # top half
    one_hot = torch.zeros(1, 4, 4)
    one_hot[0, 0, 0] = 5.0  # min-max -> one 1, fifteen 0: the median value is 0 -> all selected
    c1, _ = compute_ciou(one_hot, gt)
    const = torch.full((1, 4, 4), 3.0)
    c2, _ = compute_ciou(const, gt)
    # every pixel selected: 8 / (8 + 8)
    assert c1.item() == 0.5 and c2.item() == 0.5
    # fixed threshold: the constant map normalises to 1 and is still fully selected
    c3, _ = compute_ciou(const, gt, rule="fixed", threshold=0.6)
    assert c3.item() == 0.5


def test_fixed_threshold_rule():
    pred = torch.tensor([[0.0, 1.0], [2.0, 10.0]])[None]  # min-max: 0, .1, .2, 1
    gt = torch.tensor([[0.0, 0.0], [1.0, 1.0]])[None]
    c_fixed, _ = compute_ciou(pred, gt, rule="fixed", threshold=0.6)  # only the 1.0 pixel
    assert c_fixed.item() == pytest.approx(1 / 2)
    c_top, _ = compute_ciou(pred, gt)  # threshold = sorted[2] = .2 -> bottom row
    assert c_top.item() == 1.0


def test_bilinear_upsampling_to_gt_size():
    pred = torch.tensor([[0.0, 0.0], [1.0, 1.0]])[None]  # bottom row hot
    gt = torch.zeros(1, 4, 4)
    gt[0, 2:] = 1
    # align_corners=True: row r of the 4x4 map has value r/3 -> top 50% = rows 2, 3
    c, _ = compute_ciou(pred, gt)
    assert c.item() == 1.0
    m = LocalizationMetric()
    assert m.protocol["upsample"] == "bilinear" and m.protocol["align_corners"] is True


def test_summary_auc_ap50_mean_hand_computed():
    ciou = torch.tensor([0.0, 0.3, 0.5, 0.75, 1.0], dtype=torch.float64)
    s = summarize_ciou(ciou)
    # success curve y(i/20): 1 at 0; .8 for i=1..6; .6 for 7..10; .4 for 11..15; .2 for 16..20
    # trapezoid: 0.05 * (sum(y) - (y0 + y20)/2) = 0.05 * (11.2 - 0.6) = 0.53
    assert s["auc"].item() == pytest.approx(0.53, abs=1e-12)
    assert s["ap50"].item() == pytest.approx(0.6, abs=1e-15)
    assert s["mean_ciou"].item() == pytest.approx(0.51, abs=1e-15)
    # the reference thresholds are 0.05*i in float: 0.05*6 = 0.30000000000000004 > 0.3, so
    # a cIoU of exactly 0.3 drops out at t = 0.3 there (AUC 0.52); avbench uses t = i/20 exactly
    y = [np.mean(ciou.numpy() >= 0.05 * i) for i in range(21)]
    ref_auc = np.trapezoid(y, [0.05 * i for i in range(21)])
    assert ref_auc == pytest.approx(0.52, abs=1e-12)
    y_exact = [np.mean(ciou.numpy() >= i / 20) for i in range(21)]
    assert s["auc"].item() == pytest.approx(
        np.trapezoid(y_exact, [i / 20 for i in range(21)]), abs=1e-12
    )


def _random_case(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    maps = torch.randn(n, 7, 7, generator=g)
    gts = torch.zeros(n, 64, 64)
    for i in range(n):
        for _ in range(3):
            x0, y0 = torch.randint(0, 40, (2,), generator=g).tolist()
            w, h = torch.randint(8, 40, (2,), generator=g).tolist()
            gts[i, y0 : y0 + h, x0 : x0 + w] += 1
    return maps, (gts / 2).clamp(max=1)


@pytest.mark.parametrize("rule", ["top50", "fixed"])
def test_matches_reference_numpy_loop_exactly(rule):
    maps, gts = _random_case(40)
    up = F.interpolate(maps[:, None], size=(64, 64), mode="bilinear", align_corners=True)[:, 0]
    ref = reference_loop(up.numpy(), gts.numpy().astype(np.float64), rule)
    ciou, _ = compute_ciou(maps, gts, rule=rule)
    assert ciou.tolist() == ref  # bitwise


def test_batch_size_invariance_1_7_64():
    maps, gts = _random_case(130, seed=1)
    ids = [f"clip{i}" for i in range(130)]
    results = []
    for bs in (1, 7, 64):
        m = LocalizationMetric()
        for lo in range(0, 130, bs):
            m.update(maps[lo : lo + bs], gts[lo : lo + bs], ids[lo : lo + bs])
        results.append({k: v.item() for k, v in m.compute().items()})
    assert results[0] == results[1] == results[2]
    assert results[0]["n"] == 130
    # per-sample values are keyed by id and reduced in key order
    m = LocalizationMetric()
    m.update(maps, gts, ids)
    keys, ciou = m.per_sample()
    assert keys.tolist() == sorted(stable_key(i) for i in ids)
    direct, _ = compute_ciou(maps, gts)
    order = torch.tensor([stable_key(i) for i in ids]).argsort()
    assert torch.equal(ciou, direct[order])


def test_duplicate_ids_counted_once():
    maps, gts = _random_case(10, seed=2)
    ids = [f"c{i}" for i in range(10)]
    a = LocalizationMetric()
    a.update(maps, gts, ids)
    b = LocalizationMetric()
    b.update(maps, gts, ids)
    b.update(maps[:3], gts[:3], ids[:3])  # like DistributedSampler padding
    ra, rb = a.compute(), b.compute()
    for k in ("ap50", "auc", "mean_ciou", "n"):
        assert ra[k].item() == rb[k].item()
    assert rb["n_duplicates"].item() == 3


def test_empty_gt_zero_or_excluded():
    pred = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0))
    gt = torch.zeros(3, 4, 4)
    gt[0] = 1
    gt[1, :2] = 1  # gt[2] is empty
    zero = LocalizationMetric(empty_gt="zero")
    zero.update(pred, gt, ["a", "b", "c"])
    excl = LocalizationMetric(empty_gt="exclude")
    excl.update(pred, gt, ["a", "b", "c"])
    rz, rx = zero.compute(), excl.compute()
    assert rz["n"].item() == 3 and rx["n"].item() == 2
    assert rz["n_empty_gt"].item() == rx["n_empty_gt"].item() == 1
    # frame a: everything in GT -> cIoU = |I|/16 = 0.5 ; the empty frame scores 0
    keys, ciou = zero.per_sample()
    by_key = dict(zip(keys.tolist(), ciou.tolist()))
    assert by_key[stable_key("a")] == 0.5 and by_key[stable_key("c")] == 0.0


def test_full_image_map_scores_gt_area():
    # binary GT with area fractions .2 .4 .6 .8 1: the full-image map has cIoU = area
    gts = torch.zeros(5, 10, 10)
    for i, rows in enumerate((2, 4, 6, 8, 10)):
        gts[i, :rows] = 1
    m = LocalizationMetric()
    m.update(torch.ones(5, 7, 7), gts, [str(i) for i in range(5)])
    r = m.compute()
    assert r["ap50"].item() == pytest.approx(3 / 5)
    assert r["mean_ciou"].item() == pytest.approx(0.6)
    # y(i/20) = fraction with area >= i/20: 1 (i<=4), .8 (5..8), .6 (9..12), .4 (13..16), .2 (17..20)
    y = [1.0] * 5 + [0.8] * 4 + [0.6] * 4 + [0.4] * 4 + [0.2] * 4
    assert r["auc"].item() == pytest.approx(0.05 * (sum(y) - (y[0] + y[-1]) / 2), abs=1e-12)


def test_non_finite_maps_raise():
    pred = torch.ones(2, 4, 4)
    pred[1, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        compute_ciou(pred, torch.ones(2, 4, 4))


def test_bad_rule_and_shapes_raise():
    with pytest.raises(ValueError):
        LocalizationMetric(threshold_rule="median")
    with pytest.raises(ValueError):
        compute_ciou(torch.ones(2, 4, 4), torch.ones(3, 4, 4))


def test_upsampled_constant_map_is_still_constant():
    # bilinear upsampling of ones leaves 1-ulp ripples; they must not become a random half
    up = F.interpolate(torch.ones(1, 1, 7, 7), size=(32, 32), mode="bilinear", align_corners=True)
    assert up.min() < 1.0  # the artefact exists
    gt = torch.zeros(1, 32, 32)
    gt[0, :7] = 1
    ciou, _ = compute_ciou(torch.ones(1, 7, 7), gt)
    assert ciou.item() == pytest.approx(7 / 32, abs=1e-15)  # every pixel selected


@pytest.mark.parametrize("rule", ["top50", "fixed"])
def test_numpy_and_torch_backends_agree_bitwise(rule):
    maps, gts = _random_case(37, seed=5)
    maps[3] = 2.0  # a constant map
    gts[4] = 0  # an empty GT
    full = torch.randn(5, 64, 64, generator=torch.Generator().manual_seed(1))  # maps at GT size
    a = compute_ciou(maps, gts, rule=rule, backend="numpy")
    b = compute_ciou(maps, gts, rule=rule, backend="torch")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(
        compute_ciou(full, gts[:5], rule=rule, backend="numpy")[0],
        compute_ciou(full, gts[:5], rule=rule, backend="torch")[0],
    )
