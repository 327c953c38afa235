"""evaluate(): trivial baselines and fake models through the one evaluation path, on
constructed data with known answers; skips, failures, leak report, split, invariance."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avbench.benchmarks import (
    CenterPriorBaseline,
    FullImageBaseline,
    RandomEmbeddingBaseline,
    evaluate,
    evaluate_all,
)
from avbench.benchmarks.baselines import center_gaussian
from avbench.data.sample import collate

S = 32  # image side


class FakeDM:
    """Minimal LightningDataModule stand-in: setup(stage) + <split>_dataloader()."""

    def __init__(
        self, test: list[dict], val: list[dict] | None = None, batch_size: int = 4, root=None
    ):
        self.splits = {"test": test, "val": val or []}
        self.batch_size = batch_size
        self.root = root
        self.stages: list[str | None] = []

    def setup(self, stage: str | None = None) -> None:
        self.stages.append(stage)

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(
            self.splits[split], batch_size=self.batch_size, collate_fn=collate
        )

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")


def fake_model(name: str, caps: set[str], **methods: Any) -> SimpleNamespace:
    return SimpleNamespace(meta=SimpleNamespace(name=name, capabilities=frozenset(caps)), **methods)


def disc(radius: float) -> torch.Tensor:
    c = torch.arange(S, dtype=torch.float64) + 0.5 - S / 2
    return ((c[:, None] ** 2 + c[None, :] ** 2) <= radius**2).float()


def flickr_items(areas_rows=(7, 13, 19, 26, 32)) -> list[dict]:
    items = []
    for i, rows in enumerate(areas_rows):
        gt = torch.zeros(S, S)
        gt[:rows] = 1.0
        items.append({"id": f"img{i}", "image": torch.rand(3, S, S), "gt_map": gt, "label": i % 2})
    return items


# --- trivial baselines on constructed data ------------------------------------------
def test_full_image_baseline_scores_gt_area():
    rows = (7, 13, 19, 26, 32)
    r = evaluate(FullImageBaseline(), "flickr-test", FakeDM(flickr_items(rows)), progress=False)
    assert r.status == "ok" and r.n_samples == 5
    areas = [k / S for k in rows]  # cIoU of the full map = GT area fraction
    assert r.metrics["ap50"] == pytest.approx(np.mean([a >= 0.5 for a in areas]))  # 3/5
    assert r.metrics["mean_ciou"] == pytest.approx(np.mean(areas))
    y = [np.mean([a >= i / 20 for a in areas]) for i in range(21)]
    assert r.metrics["auc"] == pytest.approx(np.trapezoid(y, [i / 20 for i in range(21)]))
    assert r.main_value == r.metrics["ap50"] and r.tasks[0].capability_used == "localize"
    assert r.protocol["localization"]["threshold_rule"] == "top50"


def test_center_prior_baseline_central_vs_corner_objects():
    items = []
    for i in range(6):
        if i % 3 == 0:  # small corner object: disjoint from the central half-disc -> cIoU 0
            gt = torch.zeros(S, S)
            gt[:6, :6] = 1
        else:  # central disc of radius 14 (> 12.8, the radius of half the image) -> I within G
            gt = disc(14.0)
        items.append({"id": f"c{i}", "image": torch.zeros(3, S, S), "gt_map": gt})
    r = evaluate(CenterPriorBaseline(), "flickr-test", FakeDM(items), progress=False)
    assert r.metrics["ap50"] == pytest.approx(4 / 6)
    # independent check of the central cases: I = pixels with Gaussian >= the median-rank value
    g = center_gaussian(S, S).numpy()
    thr = np.sort(g.flatten())[S * S // 2]
    inside = (g >= thr).sum()
    expected = inside / disc(14.0).sum().item()  # I within G: cIoU = |I| / |G|
    assert r.metrics["mean_ciou"] == pytest.approx(4 / 6 * expected, abs=1e-12)
    # the full-image map on the same data: area fractions
    f = evaluate(FullImageBaseline(), "flickr-test", FakeDM(items), progress=False)
    assert f.metrics["mean_ciou"] == pytest.approx(
        (2 * 36 + 4 * disc(14.0).sum().item()) / 6 / S**2
    )


def test_random_embeddings_chance_and_seeded():
    n, c = 240, 4
    items = [{"id": f"s{i}", "label": i % c, "sounding": bool(i % 3 == 0)} for i in range(n)]
    dm = FakeDM(items, batch_size=32)
    r = evaluate(RandomEmbeddingBaseline(seed=0), "vegas-retrieval", dm, progress=False)
    chance = sum(1 / p + (n / c - 1) / (n - 1) * (p - 1) / p for p in range(1, n + 1)) / n
    assert r.metrics["map"] == pytest.approx(chance, abs=0.03)
    r_again = evaluate(
        RandomEmbeddingBaseline(seed=0),
        "vegas-retrieval",
        FakeDM(items, batch_size=7),
        progress=False,
    )
    assert r_again.metrics == r.metrics  # seeded per id: batch size does not matter
    other = evaluate(RandomEmbeddingBaseline(seed=1), "vegas-retrieval", dm, progress=False)
    assert other.metrics != r.metrics
    d = evaluate(RandomEmbeddingBaseline(seed=0), "ego4d-discovery", dm, progress=False)
    assert d.metrics["roc_auc"] == pytest.approx(0.5, abs=0.1)
    assert d.tasks[0].capability_used == "embed" and d.tasks[0].info[
        "positive_rate"
    ] == pytest.approx(80 / 240)
    e = evaluate(RandomEmbeddingBaseline(seed=0), "ego4d-retrieval", dm, progress=False)
    assert e.metrics["a2v_r10"] == pytest.approx(10 / n, abs=0.04)  # instance: 1 match of n


# --- AVSBench zero-shot ------------------------------------------------------------
def avs_items() -> list[dict]:
    items = []
    for i in range(3):
        masks = torch.zeros(2, S, S)
        masks[0, : 8 * (i + 1)] = 1  # area (i+1)/4
        if i == 1:
            masks[1] = 0  # an empty annotated mask
        else:
            masks[1, :, :16] = 1  # area 1/2
        valid = torch.tensor([True, i != 2])  # frame 1 of clip 2 is not annotated
        items.append(
            {
                "id": f"v{i}",
                "frames": torch.rand(2, 3, S, S),
                "audio": torch.zeros(1, 160),
                "masks": masks,
                "mask_valid": valid,
            }
        )
    return items


def test_avsbench_full_image_zero_shot_hand_computed():
    r = evaluate(FullImageBaseline(), "avsbench-s4", FakeDM(avs_items()), progress=False)
    assert r.status == "ok"
    # annotated frames: v0: 1/4, 1/2 ; v1: 1/2, empty ; v2: 3/4 (frame 1 not annotated)
    # S = 1 everywhere -> IoU = area; empty GT -> TN/pixels = 0
    assert r.metrics["miou"] == pytest.approx((0.25 + 0.5 + 0.5 + 0 + 0.75) / 5)

    def f(p):  # recall 1 at every threshold (S = 1 >= t for all t, the last one is 1.0)
        return 1.3 * p / (0.3 * p + 1)

    assert r.metrics["fscore"] == pytest.approx((f(0.25) + f(0.5) + f(0.5) + f(0.75)) / 4)
    seg, loc = r.tasks
    assert seg.capability_used == "localize" and "min-max" in seg.info["score_transform"]
    assert seg.info["n_frames"] == 5 and seg.info["n_empty_gt"] == 1
    # localization on masks: empty frame excluded, cIoU = area
    assert loc.info["n"] == 4 and loc.info["n_empty_gt"] == 1
    assert r.metrics["ap50"] == pytest.approx(3 / 4)


def test_avsbench_segment_capability_uses_sigmoid_logits():
    calls = []

    def segment(batch):
        calls.append(1)
        return (batch["masks"] * 2 - 1) * 10  # perfect logits

    m = fake_model("oracle-seg", {"segment"}, segment=segment)
    r = evaluate(m, "avsbench-ms3", FakeDM(avs_items()), progress=False)
    assert r.metrics["miou"] == 1.0 and r.metrics["fscore"] == pytest.approx(1.0)
    assert r.tasks[0].capability_used == "segment"
    loc = r.tasks[1]
    assert loc.status == "skipped" and "localize" in loc.reason


# --- retrieval + localization together, one embed call per batch ----------------------
def test_vggss_loc_and_retrieval_and_shared_outputs():
    n_calls = {"embed": 0, "localize": 0}

    def embed(batch):
        n_calls["embed"] += 1
        oh = torch.nn.functional.one_hot(batch["label"], 2).float()
        return {"audio": oh, "visual": oh}

    def localize(batch):
        n_calls["localize"] += 1
        return torch.ones(len(batch["id"]), 7, 7)

    m = fake_model("oracle", {"embed", "localize"}, embed=embed, localize=localize)
    dm = FakeDM(flickr_items(), batch_size=2)
    r = evaluate(m, "vggss", dm, progress=False)
    assert r.metrics["a2v_r1"] == 1.0 and "v2a_r10" not in r.metrics  # 5 items: R@10 trivial
    assert r.metrics["ap50"] == pytest.approx(3 / 5)
    assert n_calls == {"embed": 3, "localize": 3}
    assert list(r.metrics)[:3] == ["ap50", "auc", "mean_ciou"]
    # a localization-only model: the retrieval task is skipped with its reason
    r2 = evaluate(FullImageBaseline(), "vggss", dm, progress=False)
    assert r2.status == "ok" and r2.tasks[1].status == "skipped" and "embed" in r2.tasks[1].reason


def test_batch_size_invariance_through_evaluate():
    gen = torch.Generator().manual_seed(0)
    items = []
    for i in range(70):
        gt = torch.zeros(S, S)
        x0, y0 = torch.randint(0, 16, (2,), generator=gen).tolist()
        gt[y0 : y0 + 16, x0 : x0 + 12] = 1
        items.append({"id": f"i{i}", "image": torch.zeros(3, S, S), "gt_map": gt})
    maps = {f"i{i}": torch.rand(7, 7, generator=gen) for i in range(70)}
    m = fake_model(
        "noise", {"localize"}, localize=lambda b: torch.stack([maps[i] for i in b["id"]])
    )
    res = [
        evaluate(m, "vggss-unheard", FakeDM(items, batch_size=bs), progress=False).metrics
        for bs in (1, 7, 64)
    ]
    assert res[0] == res[1] == res[2]


# --- discovery with a sounding_score model ------------------------------------------
def test_discovery_prefers_sounding_score():
    items = [{"id": f"s{i}", "sounding": i % 2 == 0, "label": 0} for i in range(20)]
    m = fake_model(
        "mc3",
        {"embed", "sounding_score"},
        sounding_score=lambda b: b["sounding"].float() * 2 - 1 + 0.01 * torch.arange(len(b["id"])),
        embed=lambda b: pytest.fail("embed must not be used when sounding_score exists"),
    )
    r = evaluate(m, "ego4d-discovery", FakeDM(items), progress=False)
    assert r.metrics == {"roc_auc": 1.0, "pr_auc": 1.0}
    assert r.tasks[0].capability_used == "sounding_score"


# --- graph recovery ------------------------------------------------------------------
def test_graph_recovery_from_planted_file(tmp_path):
    nodes = ["audio_0", "audio_1", "visual_0", "visual_1"]
    (tmp_path / "cooccurrence_graph.json").write_text(
        json.dumps({"nodes": nodes, "edges": [{"src": "visual_0", "dst": "audio_1", "prob": 0.4}]})
    )
    adj = np.zeros((4, 4), dtype=int)
    adj[2, 1] = adj[1, 2] = 1  # the right adjacency, orientation unresolved (CPDAG)
    ili = fake_model("ili", {"embed", "class_graph"}, class_graph=lambda: (adj, nodes))
    r = evaluate(ili, "synthetic-graph-recovery", FakeDM([], root=tmp_path), progress=False)
    assert r.status == "ok"
    assert r.metrics["edge_precision"] == 0.5 and r.metrics["edge_recall"] == 1.0
    assert r.metrics["shd"] == 1 and r.metrics["skeleton_f1"] == 1.0
    assert r.tasks[0].info["graph_file"].endswith("cooccurrence_graph.json")
    # metric direction comes from the task spec; the main score (edge_f1) is higher-better
    assert r.lower_is_better == ["shd"] and r.higher_is_better
    # loader-free: the planted file can be given directly, no datamodule needed
    direct = evaluate(ili, "synthetic-graph-recovery",
                      graph_path=tmp_path / "cooccurrence_graph.json", progress=False)
    assert direct.metrics == r.metrics
    missing = evaluate(
        ili, "synthetic-graph-recovery", FakeDM([], root=tmp_path / "nope"), progress=False
    )
    assert missing.status == "failed" and "does not exist" in missing.reason


# --- skips, failures, leaks, splits, modes -----------------------------------------------
def test_skipped_failed_and_raise_errors():
    dm = FakeDM(flickr_items())
    s = evaluate(RandomEmbeddingBaseline(), "flickr-test", dm, progress=False)
    assert s.status == "skipped" and "localize" in s.reason and s.metrics == {}

    def boom(batch):
        raise RuntimeError("model exploded")

    bad = fake_model("bad", {"localize"}, localize=boom)
    f = evaluate(bad, "flickr-test", dm, progress=False)
    assert f.status == "failed" and "model exploded" in f.reason
    with pytest.raises(RuntimeError, match="exploded"):
        evaluate(bad, "flickr-test", dm, progress=False, raise_errors=True)
    nan = fake_model(
        "nan", {"localize"}, localize=lambda b: torch.full((len(b["id"]), 7, 7), float("nan"))
    )
    assert "NaN" in evaluate(nan, "flickr-test", dm, progress=False).reason
    results = evaluate_all(
        [FullImageBaseline(), RandomEmbeddingBaseline()],
        ["flickr-test"],
        {"flickr": dm},
        progress=False,
    )
    assert [r.status for r in results] == ["ok", "skipped"]


def test_leak_report_split_and_train_mode_restored():
    val = [{"id": "val0", "image": torch.zeros(3, S, S), "gt_map": torch.ones(S, S)}]
    dm = FakeDM(flickr_items(), val=val)
    r = evaluate(
        FullImageBaseline(),
        "flickr-test",
        dm,
        train_ids=["frames/img0.jpg", "img3", "zzz"],
        progress=False,
    )
    assert r.leak is not None and r.leak.n_overlap == 2 and r.leak.n_test == 5
    assert r.leak.examples == ["img0", "img3"]
    dumped = json.loads(r.model_dump_json())  # results are written as JSON by the runner
    assert (
        dumped["leak"]["n_overlap"] == 2
        and dumped["protocol"]["localization"]["threshold_rule"] == "top50"
    )
    v = evaluate(FullImageBaseline(), "flickr-test", dm, split="val", progress=False)
    assert v.split == "val" and v.n_samples == 1 and v.metrics["ap50"] == 1.0
    assert dm.stages == ["test", "validate"]

    class Net(torch.nn.Module):
        meta = SimpleNamespace(name="net", capabilities=frozenset({"localize"}))

        def localize(self, batch):
            assert not self.training
            return torch.ones(len(batch["id"]), 7, 7)

    net = Net().train()
    assert evaluate(net, "flickr-test", dm, progress=False, raise_errors=True).status == "ok"
    assert net.training
