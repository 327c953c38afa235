"""AVSBenchMetric (REFERENCE A2): mIoU with the empty-mask convention, whole-set F-score."""

from __future__ import annotations

import pytest
import torch

from avbench.metrics import AVSBenchMetric
from avbench.metrics.segmentation import (
    frame_fcurves,
    frame_iou,
    fscore_thresholds,
    reference_batchwise,
)


def F(p: float, r: float, b2: float = 0.3) -> float:
    return (1 + b2) * p * r / (b2 * p + r)


# frame A: best F 0.8125 at t in (0.6, 0.9]; frame B: best F 0.5652 at t <= 0.25
A_S, A_G = [0.9, 0.6, 0.2, 0.1], [1, 0, 1, 0]
B_S, B_G = [0.3, 0.25, 0.8, 0.7], [1, 1, 0, 0]


def frames(*pairs):
    s = torch.tensor([p[0] for p in pairs], dtype=torch.float32).reshape(len(pairs), 1, 2, 2)
    g = torch.tensor([p[1] for p in pairs], dtype=torch.float32).reshape(len(pairs), 1, 2, 2)
    return s, g


def test_iou_hand_computed_and_empty_mask_convention():
    pred = torch.tensor([[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    gt = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    iou = frame_iou(pred, gt)
    # frame 0: |P&G| = 1, |P|G| = 3; frame 1 (empty GT): TN / pixels = 3/4; frame 2: 4/4
    assert iou.tolist() == [pytest.approx(1 / 3), 0.75, 1.0]


def test_fscore_curve_single_frame_hand_computed():
    s, g = frames((A_S, A_G))
    curve = frame_fcurves(s.reshape(1, -1), g.reshape(1, -1) > 0.5, fscore_thresholds())[0]
    assert curve.max().item() == pytest.approx(F(1.0, 0.5), abs=1e-12)  # 0.8125
    th = fscore_thresholds()
    # t = 0: everything predicted: p = .5, r = 1
    assert curve[0].item() == pytest.approx(F(0.5, 1.0), abs=1e-12)
    # a threshold in (0.2, 0.6]: {0.9, 0.6} predicted: p = .5, r = .5
    k = int(((th > 0.2) & (th <= 0.6)).nonzero()[0])
    assert curve[k].item() == pytest.approx(F(0.5, 0.5), abs=1e-12)
    # the last threshold is 1.0 in float32 (linspace(0, 1 - 1e-10)): nothing predicted -> F = 0
    assert th[-1].item() == 1.0 and curve[-1].item() == 0.0


def test_whole_set_fscore_vs_batchwise_reference():
    s, g = frames((A_S, A_G), (B_S, B_G))
    m = AVSBenchMetric()
    m.update(s, g, ids=["a", "b"])
    r = m.compute()
    # mean curve is max on t in (0.1, 0.2]: (F(2/3, 1) + F(1/2, 1)) / 2
    whole = (F(2 / 3, 1.0) + F(0.5, 1.0)) / 2
    assert r["fscore"].item() == pytest.approx(whole, abs=1e-12)  # 0.6437
    # the reference at batch size 1 averages per-frame maxima: (0.8125 + 0.5652) / 2
    iou = frame_iou(s.reshape(2, -1) > 0.5, g.reshape(2, -1) > 0.5)
    curves = frame_fcurves(s.reshape(2, -1), g.reshape(2, -1) > 0.5, fscore_thresholds())
    ref1 = reference_batchwise(iou, curves, torch.zeros(2), batch_size=1)
    assert ref1["fscore"] == pytest.approx((F(1.0, 0.5) + F(0.5, 1.0)) / 2, abs=1e-12)
    assert ref1["fscore"] > r["fscore"].item()
    ref2 = reference_batchwise(iou, curves, torch.zeros(2), batch_size=2)
    assert ref2["fscore"] == pytest.approx(r["fscore"].item(), abs=1e-12)
    # mIoU at S > .5: frame A P={.9,.6} G={.9,.2}: 1/3; frame B P={.8,.7} G={.3,.25}: 0
    assert r["miou"].item() == pytest.approx((1 / 3 + 0) / 2, abs=1e-15)


def test_empty_gt_frames_excluded_from_f_but_scored_in_iou():
    s, g = frames((A_S, A_G), ([0.9, 0.1, 0.1, 0.1], [0, 0, 0, 0]))
    m = AVSBenchMetric()
    m.update(s, g, ids=["a", "e"])
    r = m.compute()
    assert r["fscore"].item() == pytest.approx(F(1.0, 0.5), abs=1e-12)  # frame A only
    assert r["miou"].item() == pytest.approx((1 / 3 + 3 / 4) / 2, abs=1e-15)
    assert r["n_empty_gt"].item() == 1 and r["n_frames"].item() == 2


def test_logits_and_valid_mask_and_frame_keys():
    s, g = frames((A_S, A_G), (B_S, B_G))
    logits = torch.logit(s.double()).float()
    clip_s = torch.cat([s, s], dim=1)  # 2 clips x 2 identical frames
    clip_g = torch.cat([g, g], dim=1)
    m = AVSBenchMetric(from_logits=True)
    m.update(torch.cat([logits, logits], dim=1), clip_g, ids=["x", "y"])
    ref = AVSBenchMetric()
    ref.update(clip_s, clip_g, ids=["x", "y"])
    assert m.compute()["miou"].item() == pytest.approx(ref.compute()["miou"].item(), abs=1e-12)
    # frame 1 of each clip unannotated -> ignored
    valid = torch.tensor([[True, False], [True, False]])
    mv = AVSBenchMetric()
    mv.update(clip_s, clip_g, valid=valid, ids=["x", "y"])
    one = AVSBenchMetric()
    one.update(s, g, ids=["x", "y"])
    rv, r1 = mv.compute(), one.compute()
    assert rv["n_frames"].item() == 2
    assert rv["miou"].item() == r1["miou"].item() and rv["fscore"].item() == r1["fscore"].item()


def test_batch_size_invariance_and_duplicates():
    gen = torch.Generator().manual_seed(0)
    n, t = 70, 2
    scores = torch.rand(n, t, 16, 16, generator=gen)
    masks = (torch.rand(n, t, 16, 16, generator=gen) > 0.6).float()
    masks[::9] = 0  # some empty frames
    ids = [f"v{i}" for i in range(n)]
    res = []
    for bs in (1, 7, 64):
        m = AVSBenchMetric()
        for lo in range(0, n, bs):
            m.update(scores[lo : lo + bs], masks[lo : lo + bs], ids=ids[lo : lo + bs])
        res.append({k: v.item() for k, v in m.compute().items()})
    assert res[0] == res[1] == res[2]
    m = AVSBenchMetric()
    m.update(scores, masks, ids=ids)
    m.update(scores[:5], masks[:5], ids=ids[:5])
    r = m.compute()
    assert r["n_duplicates"].item() == 10 and r["miou"].item() == res[0]["miou"]


def test_shape_errors():
    m = AVSBenchMetric()
    with pytest.raises(ValueError):
        m.update(torch.rand(2, 1, 4, 4), torch.rand(2, 1, 5, 5))
