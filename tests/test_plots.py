"""Leaderboard figures: the success curve in LocalizationMetric and the results, the gallery
kept by evaluate(gallery=N) and stored by the runner, the PNGs write_leaderboard makes, and the
task hook (a task kind registered from this test draws its own figure)."""

from __future__ import annotations

import ast
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from test_benchmarks_evaluate import FakeDM, avs_items, flickr_items
from test_leaderboard import DATE, FIXTURE

from avbench.benchmarks import CenterPriorBaseline, FullImageBaseline, evaluate
from avbench.benchmarks.tasks import TASK_KINDS, PlotRow, TaskSpec
from avbench.benchmarks.tasks.localization_figures import success_curve
from avbench.capabilities import Capability
from avbench.metrics import LocalizationMetric
from avbench.metrics.localization import AUC_THRESHOLDS, compute_ciou
from avbench.runner import plots
from avbench.runner.galleries import gallery_path, load_gallery, save_gallery
from avbench.runner.leaderboard import write_leaderboard
from avbench.runner.results import ResultStore


# --- the success curve ---------------------------------------------------------------------
def _metric_from_ciou(values: list[float]) -> LocalizationMetric:
    """A metric whose per-image cIoU are ``values`` (the full-image map scores the GT area)."""
    side = 20
    gts = torch.zeros(len(values), side, side)
    for i, v in enumerate(values):
        gts[i].view(-1)[: round(v * side * side)] = 1.0
    m = LocalizationMetric(success_curve=True)
    m.update(torch.ones(len(values), 5, 5), gts, [f"s{i}" for i in range(len(values))])
    return m


def test_success_curve_hand_case():
    m = _metric_from_ciou([0.0, 0.5, 1.0])
    r = m.compute()
    success = r["success"]
    assert success.shape == (21,) and success.dtype == torch.float64
    assert success[10].item() == pytest.approx(2 / 3)  # t = 0.5: cIoU 0.5 and 1.0
    assert success[0].item() == 1.0 and success[1].item() == pytest.approx(2 / 3)
    assert success[20].item() == pytest.approx(1 / 3)
    assert torch.trapezoid(success, AUC_THRESHOLDS).item() == pytest.approx(r["auc"].item(),
                                                                            abs=1e-15)


def test_success_curve_integrates_to_auc_and_is_opt_in():
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(40, 7, 7, generator=g)
    gts = (torch.rand(40, 24, 24, generator=g) > 0.6).float()
    ids = [f"c{i}" for i in range(40)]
    m = LocalizationMetric(success_curve=True)
    m.update(maps, gts, ids)
    r = m.compute()
    assert torch.trapezoid(r["success"], AUC_THRESHOLDS).item() == r["auc"].item()
    ciou, _ = compute_ciou(maps, gts)
    expected = torch.stack([(ciou >= t).double().mean() for t in AUC_THRESHOLDS])
    assert torch.equal(r["success"], expected)
    plain = LocalizationMetric()
    plain.update(maps, gts, ids)
    assert "success" not in plain.compute()  # default: every value stays a scalar


def test_evaluate_stores_the_curve_in_task_info():
    r = evaluate(FullImageBaseline(), "flickr-test", FakeDM(flickr_items()), progress=False)
    curve = r.tasks[0].info["success_curve"]
    assert curve["thresholds"] == [i / 20 for i in range(21)]
    assert np.trapezoid(curve["success"], curve["thresholds"]) == pytest.approx(r.metrics["auc"])


# --- the gallery -----------------------------------------------------------------------------
def test_evaluate_gallery_keeps_the_first_samples():
    dm = FakeDM(flickr_items(), batch_size=2)  # 3 samples span two batches
    r = evaluate(CenterPriorBaseline(), "flickr-test", dm, progress=False, gallery=3)
    g = r.gallery
    assert list(g["ids"]) == ["img0", "img1", "img2"]
    assert g["image"].shape == (3, 32, 32, 3) and g["image"].dtype == np.uint8
    assert g["map"].shape == g["gt"].shape == (3, 32, 32) and g["map"].dtype == np.float16
    assert float(g["map"].min()) == 0.0 and float(g["map"].max()) == 1.0  # min-max normalised
    items = flickr_items()
    assert np.array_equal(g["gt"][1].astype(np.float32), items[1]["gt_map"].numpy())
    assert "gallery" not in r.model_dump() and "gallery" not in r.model_dump_json()
    # none requested, none kept; a non-localization benchmark never has one
    assert evaluate(CenterPriorBaseline(), "flickr-test", dm, progress=False).gallery is None
    # AVSBench: the first annotated frame of each clip
    a = evaluate(FullImageBaseline(), "avsbench-s4", FakeDM(avs_items()), progress=False,
                 gallery=2)
    assert list(a.gallery["ids"]) == ["v0#0", "v1#0"] and a.gallery["image"].shape == (2, 32, 32, 3)


def test_gallery_is_downsampled_and_small(tmp_path):
    g = torch.Generator().manual_seed(0)
    box = torch.zeros(256, 320)
    box[40:160, 60:220] = 1.0
    # a noise image: the worst case for the compression
    items = [{"id": f"big{i}", "image": torch.rand(3, 256, 320, generator=g), "gt_map": box}
             for i in range(8)]
    r = evaluate(CenterPriorBaseline(), "vggss", FakeDM(items), progress=False, gallery=6)
    assert r.gallery["image"].shape == (6, 90, 112, 3) and r.gallery["map"].shape == (6, 90, 112)
    path = save_gallery(gallery_path(tmp_path / "x" / "job.json"), r.gallery)
    assert path.name == "job.gallery.npz" and path.stat().st_size < 300_000
    back = load_gallery(path)
    assert list(back["ids"]) == [f"big{i}" for i in range(6)]
    assert np.array_equal(back["map"], r.gallery["map"])
    assert not list(path.parent.glob("*.tmp"))


# --- the figures -------------------------------------------------------------------------------
def _png_ok(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50


def _store_with_curves_and_galleries(root: Path) -> Path:
    """The leaderboard fixture, plus success curves (localization results) and galleries."""
    results = root / "results"
    shutil.copytree(FIXTURE, results)
    store = ResultStore(results)
    records, _ = store.load_all()
    rng = np.random.default_rng(0)
    t = [i / 20 for i in range(21)]
    for rec in records:
        if rec.benchmark not in ("vggss", "flickr-test") or not rec.ok:
            continue
        ciou = rng.uniform(0, 1, 50) * (1.4 * rec.metrics["mean_ciou"])
        curve = {"thresholds": t, "success": [float(np.mean(ciou >= x)) for x in t]}
        tasks = [{"task": "localization", "status": "ok", "capability_used": "localize",
                  "info": {"n": 50, "success_curve": curve}}]
        if rec.model == "fnac" and rec.seed == 1:  # an older result without a curve
            tasks = [{"task": "localization", "status": "ok", "info": {"n": 50}}]
        path = store.write(rec.model_copy(update={"tasks": tasks}))
        if rec.benchmark == "vggss" and rec.model != "full-image":
            ids = np.array([f"vid{i}" for i in range(7)])
            if rec.model == "fnac":
                ids[2] = "other"  # a row missing one of the columns' samples
            yy, xx = np.mgrid[:40, :48]
            save_gallery(gallery_path(path), {
                "ids": ids,
                "image": rng.integers(0, 255, (7, 40, 48, 3), dtype=np.uint8),
                "map": np.stack([np.exp(-((yy - 5 * i) ** 2 + (xx - 20) ** 2) / 80.0)
                                 for i in range(7)]).astype(np.float16),
                "gt": np.stack([(abs(yy - 20) < 8) & (abs(xx - 5 * i) < 9)
                                for i in range(7)]).astype(np.float16),
            })
    return results


def test_write_leaderboard_writes_and_links_the_plots(tmp_path):
    results = _store_with_curves_and_galleries(tmp_path)
    assert len(list(results.rglob("*.gallery.npz"))) == 5
    records, corrupt = ResultStore(results).load_all()
    assert len(records) == 15 and not corrupt  # the .npz files are not read as results
    fnac1 = next(r for r in records if r.model == "fnac" and r.seed == 1 and r.benchmark == "vggss")
    assert success_curve(fnac1, "localization") is None

    out = tmp_path / "lb"
    summary = write_leaderboard(results, out, date=DATE, wandb_mode="disabled")
    expected = {"vggss_success.png", "vggss_gallery.png", "vggss_bars.png",
                "flickr-test_success.png", "flickr-test_bars.png", "vegas-retrieval_bars.png",
                "overview_bars.png"}  # flickr-test has no galleries
    assert {p.name for p in (out / "plots").iterdir()} == expected
    pngs = [p for p in summary.files if p.suffix == ".png"]
    assert {p.name for p in pngs} == expected
    for p in pngs:
        _png_ok(p)
    overview = (out / "overview.md").read_text()
    for name in expected:
        assert f"](plots/{name})" in overview
    assert "![vggss success](plots/vggss_success.png)" in overview
    # the gallery grid: 3 rows (ezvsl, fnac, center-prior) x 6 columns
    h, w = mpimg.imread(out / "plots" / "vggss_gallery.png").shape[:2]
    assert h < w


def test_store_without_curves_or_galleries_and_no_plots(tmp_path):
    out = tmp_path / "lb"
    summary = write_leaderboard(FIXTURE, out, date=DATE, wandb_mode="disabled")
    names = {p.name for p in (out / "plots").iterdir()}
    assert names == {"vggss_bars.png", "flickr-test_bars.png", "vegas-retrieval_bars.png",
                     "overview_bars.png"}
    assert {p.name for p in summary.files if p.suffix == ".png"} == names
    none = write_leaderboard(FIXTURE, tmp_path / "np", date=DATE, wandb_mode="disabled",
                             plots=False)
    assert not (tmp_path / "np" / "plots").exists()
    assert "plots/" not in (tmp_path / "np" / "overview.md").read_text()
    assert all(p.suffix != ".png" for p in none.files)


def test_cli_no_plots(tmp_path, monkeypatch):
    from avbench.cli import main

    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert main(["leaderboard", "--results", str(FIXTURE), "--out", str(tmp_path / "a"),
                 "--no-plots"]) == 0
    assert not (tmp_path / "a" / "plots").exists()


# --- end to end: the runner stores galleries next to the results ----------------------------
def test_runner_saves_galleries_and_leaderboard_shows_them(tmp_path, monkeypatch):
    from test_runner_core import suite_dict

    from avbench.runner.runner import run_suite
    from avbench.runner.suite import Suite

    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr("sys.argv", ["avbench"])
    root = tmp_path / "data"
    root.mkdir()
    (root / "list.txt").write_text("train0\n")
    models = [{"name": "tiny-a", "class_path": "test_runner_core.TinyAV"}]
    suite = Suite.model_validate(suite_dict(root, models=models, seeds=(0,)))
    summary = run_suite(suite, tmp_path / "results", progress=False)
    assert summary.exit_code == 0
    store = ResultStore(tmp_path / "results")
    vggss = store.root / "mock" / "vggss"
    assert sorted(p.name for p in vggss.glob("*.npz")) == [
        "baseline.center-prior.gallery.npz", "baseline.full-image.gallery.npz",
        "tiny-a.toy.seed0.gallery.npz"]
    assert not list((store.root / "mock" / "vegas-retrieval").glob("*.npz"))
    g = load_gallery(vggss / "tiny-a.toy.seed0.gallery.npz")
    assert len(g["ids"]) == 6 and g["image"].shape == (6, 16, 16, 3)
    records, corrupt = store.load_all()
    assert len(records) == 5 and not corrupt
    out = tmp_path / "lb"
    write_leaderboard(store.root, out, date=DATE, wandb_mode="disabled")
    for name in ("vggss_success.png", "vggss_gallery.png", "vggss_bars.png"):
        _png_ok(out / "plots" / name)


# --- a task kind registered from test code draws its own figure ---------------------------
SEEN: dict[str, list[PlotRow]] = {}


class ToyFigureTask(TaskSpec):
    """A made-up task kind whose hook draws one figure of the rows it is given."""

    task: Literal["toy_figure"] = "toy_figure"
    requires: tuple[Capability, ...] = ("embed",)

    def metric_names(self) -> list[str]:
        return ["energy"]

    def leaderboard_figures(self, benchmark: str, rows: Sequence[PlotRow]) -> list:
        from matplotlib.figure import Figure

        SEEN[benchmark] = list(rows)
        fig = Figure(figsize=(3, 2))
        ax = fig.subplots()
        for i, row in enumerate(rows):
            ax.bar(i, np.mean([r.metrics["energy"] for r in row.records]), color=row.color)
        return [("energy", fig)]


class BrokenFigureTask(TaskSpec):
    task: Literal["toy_broken"] = "toy_broken"
    requires: tuple[Capability, ...] = ("embed",)

    def metric_names(self) -> list[str]:
        return []

    def leaderboard_figures(self, benchmark: str, rows: Sequence[PlotRow]) -> list:
        raise RuntimeError("no figure today")


def test_task_hook_draws_figures_of_an_unregistered_benchmark(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(TASK_KINDS, "toy_figure", ToyFigureTask)
    monkeypatch.setitem(TASK_KINDS, "toy_broken", BrokenFigureTask)
    results = tmp_path / "results"
    shutil.copytree(FIXTURE, results)
    store = ResultStore(results)
    records, _ = store.load_all()
    # "toy-bench" is in no registry: its tasks come from the results' protocol
    protocol = {"toy_figure": ToyFigureTask().model_dump(mode="json"),
                "toy_broken": BrokenFigureTask().model_dump(mode="json")}
    energy = {("ezvsl", 0): 0.2, ("ezvsl", 1): 0.4, ("center-prior", None): 0.1,
              ("fnac", 1): None}
    for rec in records:
        if rec.benchmark != "vggss" or (rec.model, rec.seed) not in energy:
            continue
        value = energy[(rec.model, rec.seed)]
        toy = rec.model_copy(update={
            "benchmark": "toy-bench", "id": f"toy-bench/{rec.job_id}", "protocol": protocol,
            "metrics": {} if value is None else {"energy": value}, "main_score": "energy",
            "status": "ok" if value is not None else "error", "leak": None})
        path = store.write(toy)
        if rec.model == "ezvsl" and rec.seed == 1:
            save_gallery(gallery_path(path), {
                "ids": np.array(["a", "b"]), "image": np.zeros((2, 8, 8, 3), np.uint8),
                "map": np.zeros((2, 8, 8), np.float16), "gt": np.zeros((2, 8, 8), np.float16)})
    out = tmp_path / "lb"
    with caplog.at_level(logging.WARNING, logger="avbench.runner.plots"):
        summary = write_leaderboard(results, out, date=DATE, wandb_mode="disabled")
    assert "no figure today" in caplog.text  # the failing hook is logged, nothing else lost
    _png_ok(out / "plots" / "toy-bench_energy.png")
    _png_ok(out / "plots" / "toy-bench_bars.png")
    assert (out / "plots" / "toy-bench_energy.png") in summary.files
    overview = (out / "overview.md").read_text()
    assert "### toy-bench\n\n![toy-bench energy](plots/toy-bench_energy.png)\n" \
           "![toy-bench bars](plots/toy-bench_bars.png)" in overview
    # the rows handed to the hook: the ok rows in table order, with colour, records, gallery
    rows = SEEN["toy-bench"]
    assert [(r.label, r.baseline) for r in rows] == [("ezvsl (vggsound)", False),
                                                     ("center-prior (trivial)", True)]
    assert [r.seed for r in rows[0].records] == [0, 1]
    assert rows[0].color == plt.get_cmap("tab10")(0)  # the suite's first row key
    assert list(rows[0].gallery["ids"]) == ["a", "b"] and rows[1].gallery is None
    # the registered benchmarks still draw their task's figures only where there is data
    assert not (out / "plots" / "vggss_success.png").exists()


def test_plots_does_not_import_the_leaderboard():
    """No import cycle: the leaderboard imports the plots, never the other way round."""
    tree = ast.parse(Path(plots.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "avbench.runner.leaderboard" not in imported
    assert not {m for m in imported if m and m.startswith("avbench.benchmarks.tasks.")}


def test_gallery_store_keeps_any_task_arrays_and_the_localization_figure_skips_foreign_ones(
        tmp_path):
    """The store knows no task's format (one entry per id is all it checks); the localization
    hook draws only galleries that hold its arrays."""
    from avbench.benchmarks.tasks.base import PlotRow
    from avbench.benchmarks.tasks.localization_figures import plot_gallery

    path = save_gallery(tmp_path / "x.gallery.npz",
                        {"ids": np.array(["a", "b"]), "waveform": np.zeros((2, 160), np.float16)})
    back = load_gallery(path)
    assert set(back) == {"ids", "waveform"} and back["waveform"].shape == (2, 160)
    bad = save_gallery(tmp_path / "y.gallery.npz",
                       {"ids": np.array(["a", "b"]), "waveform": np.zeros((3, 160))})
    assert load_gallery(bad) is None  # three rows for two ids
    row = PlotRow(label="m", baseline=False, color="C0", records=[], gallery=back)
    assert plot_gallery("toy", [row]) is None
