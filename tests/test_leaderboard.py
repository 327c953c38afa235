"""The leaderboard writer on a fixture result store (tests/fixtures/results, 15 results of a
made-up suite `demo`): exact Markdown, CSV aggregates, leak/failure notes, corrupt files."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from avbench.runner.leaderboard import benchmark_table, render_benchmark, write_leaderboard
from avbench.runner.results import ResultStore

FIXTURE = Path(__file__).parent / "fixtures" / "results"
DATE = "2026-11-02 00:00 UTC"

EXPECTED_OVERVIEW = '# Leaderboard: suite `demo`\n\nMain score of every benchmark, mean ± std over seeds; best in **bold**. Mean: over benchmarks, only for rows that have all of them. ⚠: train/test leak (see the benchmark page).\n\n| Model | Train data | flickr-test (ap50) | vegas-retrieval (map) | vggss (ap50) | Mean | Coverage |\n| :--- | :--- | ---: | ---: | ---: | ---: | ---: |\n| ⚠ ezvsl | vggsound | 0.620 ± 0.028 | **0.305 ± 0.021** | **0.420 ± 0.028** | **0.448** | 3/3 |\n| fnac | vggsound | **0.700** | — | 0.330 ± 0.042 | — | 2/3 |\n| center-prior (trivial) | — | 0.550 | — | 0.320 | — | 2/3 |\n| full-image (trivial) | — | 0.610 | — | 0.250 | — | 2/3 |\n| random-embedding (trivial) | — | — | 0.115 | — | — | 1/3 |\n\n- [flickr-test](flickr-test.md)\n- [vegas-retrieval](vegas-retrieval.md)\n- [vggss](vggss.md)\n\n## Plots\n\n### Main scores\n\n![main scores of all benchmarks](plots/overview_bars.png)\n\n### flickr-test\n\n![flickr-test bars](plots/flickr-test_bars.png)\n\n### vegas-retrieval\n\n![vegas-retrieval bars](plots/vegas-retrieval_bars.png)\n\n### vggss\n\n![vggss bars](plots/vggss_bars.png)\n\n---\nGenerated 2026-11-02 00:00 UTC by `avbench leaderboard` · suite `demo` · commit 0123456789ab · data preset default\n'

EXPECTED_VGGSS = '# vggss (suite `demo`)\n\nMain score: `ap50`. Mean ± std over the seeds that finished; best in **bold**. Seeds: finished / run.\n\n| Model | Train data | ap50 | auc | mean_ciou | a2v_r1 | Seeds |\n| :--- | :--- | ---: | ---: | ---: | ---: | ---: |\n| ⚠ ezvsl | vggsound | **0.420 ± 0.028** | **0.390 ± 0.014** | **0.420 ± 0.014** | 0.220 ± 0.028 | 2/2 |\n| fnac | vggsound | 0.330 ± 0.042 | 0.320 ± 0.014 | 0.360 ± 0.014 | **0.320 ± 0.028** | 2/2 |\n| center-prior (trivial) | — | 0.320 | 0.330 | 0.360 | — | 1/1 |\n| full-image (trivial) | — | 0.250 | 0.300 | 0.330 | — | 1/1 |\n\nNotes:\n\n- ⚠ train/test leak, ezvsl (vggsound), seed 1: LEAK: 3 of 20 test ids (15.0%) are in the training list (100 ids), e.g. clip_a, clip_b, clip_c\n\n---\nGenerated 2026-11-02 00:00 UTC by `avbench leaderboard` · suite `demo` · commit 0123456789ab · data preset default\n'

EXPECTED_FLICKR = '# flickr-test (suite `demo`)\n\nMain score: `ap50`. Mean ± std over the seeds that finished; best in **bold**. Seeds: finished / run.\n\n| Model | Train data | ap50 | auc | mean_ciou | Seeds |\n| :--- | :--- | ---: | ---: | ---: | ---: |\n| ezvsl | vggsound | 0.620 ± 0.028 | 0.510 ± 0.014 | 0.560 ± 0.014 | 2/2 |\n| fnac | vggsound | **0.700** | **0.550** | **0.600** | 1/2 |\n| center-prior (trivial) | — | 0.550 | 0.500 | 0.540 | 1/1 |\n| full-image (trivial) | — | 0.610 | 0.520 | 0.580 | 1/1 |\n\nNotes:\n\n- fnac (vggsound), seed 1: failed in fit: non-finite training loss (nan) at step 12, batch 3\n\n---\nGenerated 2026-11-02 00:00 UTC by `avbench leaderboard` · suite `demo` · commit 0123456789ab · data preset default\n'


@pytest.fixture
def board(tmp_path):
    out = tmp_path / "leaderboards"
    summary = write_leaderboard(FIXTURE, out, date=DATE, wandb_mode="disabled")
    return out, summary


def test_markdown_matches_expected(board):
    out, summary = board
    assert summary.suites == ["demo"] and not summary.corrupt
    assert (out / "overview.md").read_text() == EXPECTED_OVERVIEW
    assert (out / "vggss.md").read_text() == EXPECTED_VGGSS
    assert (out / "flickr-test.md").read_text() == EXPECTED_FLICKR
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{b}.{ext}" for b in ("overview", "vggss", "flickr-test", "vegas-retrieval")
         for ext in ("md", "csv")] + ["plots"])


def test_csv_aggregates(board):
    out, _ = board
    vggss = pd.read_csv(out / "vggss.csv", keep_default_na=False).set_index("model")
    assert float(vggss.loc["ezvsl", "ap50_mean"]) == pytest.approx(0.42)
    assert float(vggss.loc["ezvsl", "ap50_std"]) == pytest.approx(0.02828427, rel=1e-5)  # ddof=1
    assert bool(vggss.loc["ezvsl", "leak"]) and not bool(vggss.loc["fnac", "leak"])
    assert vggss.loc["full-image", "kind"] == "baseline" and vggss.loc["full-image", "train_dataset"] == ""
    flickr = pd.read_csv(out / "flickr-test.csv").set_index("model")
    assert flickr.loc["fnac", "seeds_ok"] == 1 and flickr.loc["fnac", "failed"] == 1
    overview = pd.read_csv(out / "overview.csv").set_index("model")
    assert overview.loc["ezvsl", "mean"] == pytest.approx((0.62 + 0.305 + 0.42) / 3)
    assert pd.isna(overview.loc["fnac", "mean"])  # incomplete row: no mean
    assert overview.loc["fnac", "coverage"] == 2


def test_corrupt_result_is_reported_not_used(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(FIXTURE, results)
    victim = results / "demo" / "vggss" / "ezvsl.vggsound.seed1.json"
    victim.write_text(victim.read_text()[:300])
    summary = write_leaderboard(results, tmp_path / "lb", date=DATE, wandb_mode="disabled")
    assert [c.path for c in summary.corrupt] == [victim]
    overview = (tmp_path / "lb" / "overview.md").read_text()
    assert "Corrupt result files" in overview and "ezvsl.vggsound.seed1.json" in overview
    vggss = (tmp_path / "lb" / "vggss.md").read_text()
    row = next(line for line in vggss.splitlines() if "ezvsl" in line)
    assert row.startswith("| ezvsl | vggsound | **0.400** |")  # seed 0 only, no leak mark
    assert row.endswith("| 1/2 |")


def test_lower_is_better_metric_bolds_the_minimum():
    records, _ = ResultStore(FIXTURE).load_all()
    vggss = [r.model_copy(update={"metrics": {"ap50": r.metrics.get("ap50"),
                                              "shd": r.metrics.get("auc")}})
             for r in records if r.benchmark == "vggss" and r.ok]
    md, _ = render_benchmark(benchmark_table(vggss))
    assert "shd ↓" in md and "**0.300**" in md  # full-image has the lowest "shd"


def test_tables_logged_to_an_offline_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    results = tmp_path / "results"
    shutil.copytree(FIXTURE, results)
    summary = write_leaderboard(results, tmp_path / "lb", date=DATE, wandb_mode="offline")
    assert summary.wandb_run_id
    run_dir = next((results / "wandb").glob(f"offline-run-*-{summary.wandb_run_id}"))
    for _ in range(60):  # the W&B service flushes the log asynchronously after finish()
        log = (run_dir / f"run-{summary.wandb_run_id}.wandb").read_bytes()
        if b"leaderboard/demo/overview" in log and b"leaderboard/demo/vggss" in log:
            break
        time.sleep(0.25)
    assert b"leaderboard/demo/overview" in log and b"leaderboard/demo/vggss" in log
    assert ResultStore(results).load_all()[1] == []  # the W&B files are not read as results
