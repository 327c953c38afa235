"""The leaderboard writer on a fixture result store (tests/fixtures/results, 15 results of a
made-up suite `demo`): exact Markdown, CSV aggregates, leak/failure notes, corrupt files,
metric direction from the results, typed W&B tables."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from avbench.runner.leaderboard import (
    benchmark_table,
    render_benchmark,
    scores_frame,
    write_leaderboard,
)
from avbench.runner.results import ErrorInfo, ResultStore

FIXTURE = Path(__file__).parent / "fixtures" / "results"
DATE = "2026-11-02 00:00 UTC"

EXPECTED_OVERVIEW = """\
# Leaderboard: suite `demo`

Main score of every benchmark, mean ± std over seeds; best in **bold**. Mean: over the benchmarks run for the row's training data, only for rows that have all of them. ⚠: train/test leak (see the benchmark page).

| Model                      | Train data   |   flickr-test (ap50) |   vegas-retrieval (map) |      vggss (ap50) |      Mean |   Coverage |
|:---------------------------|:-------------|---------------------:|------------------------:|------------------:|----------:|-----------:|
| ⚠ ezvsl                    | vggsound     |        0.620 ± 0.028 |       **0.305 ± 0.021** | **0.420 ± 0.028** | **0.448** |        3/3 |
| fnac                       | vggsound     |            **0.700** |                       — |     0.330 ± 0.042 |         — |        2/3 |
| center-prior (trivial)     | —            |                0.550 |                       — |             0.320 |         — |        2/3 |
| full-image (trivial)       | —            |                0.610 |                       — |             0.250 |         — |        2/3 |
| random-embedding (trivial) | —            |                    — |                   0.115 |                 — |         — |        1/3 |

- [flickr-test](flickr-test.md)
- [vegas-retrieval](vegas-retrieval.md)
- [vggss](vggss.md)

## Plots

### Main scores

![main scores of all benchmarks](plots/overview_bars.png)

### flickr-test

![flickr-test bars](plots/flickr-test_bars.png)

### vegas-retrieval

![vegas-retrieval bars](plots/vegas-retrieval_bars.png)

### vggss

![vggss bars](plots/vggss_bars.png)

---
Generated 2026-11-02 00:00 UTC by `avbench leaderboard` · suite `demo` · commit 0123456789ab · data preset default
"""

EXPECTED_VGGSS = """\
# vggss (suite `demo`)

Main score: `ap50`. Mean ± std over the seeds that finished; best in **bold**. Seeds: finished / run.

| Model                  | Train data   |              ap50 |               auc |         mean_ciou |            a2v_r1 |   Seeds |
|:-----------------------|:-------------|------------------:|------------------:|------------------:|------------------:|--------:|
| ⚠ ezvsl                | vggsound     | **0.420 ± 0.028** | **0.390 ± 0.014** | **0.420 ± 0.014** |     0.220 ± 0.028 |     2/2 |
| fnac                   | vggsound     |     0.330 ± 0.042 |     0.320 ± 0.014 |     0.360 ± 0.014 | **0.320 ± 0.028** |     2/2 |
| center-prior (trivial) | —            |             0.320 |             0.330 |             0.360 |                 — |     1/1 |
| full-image (trivial)   | —            |             0.250 |             0.300 |             0.330 |                 — |     1/1 |

Notes:

- ⚠ train/test leak, ezvsl (vggsound), seed 1: LEAK: 3 of 20 test ids (15.0%) are in the training list (100 ids), e.g. clip_a, clip_b, clip_c

---
Generated 2026-11-02 00:00 UTC by `avbench leaderboard` · suite `demo` · commit 0123456789ab · data preset default
"""

EXPECTED_FLICKR = """\
# flickr-test (suite `demo`)

Main score: `ap50`. Mean ± std over the seeds that finished; best in **bold**. Seeds: finished / run.

| Model                  | Train data   |          ap50 |           auc |     mean_ciou |   Seeds |
|:-----------------------|:-------------|--------------:|--------------:|--------------:|--------:|
| ezvsl                  | vggsound     | 0.620 ± 0.028 | 0.510 ± 0.014 | 0.560 ± 0.014 |     2/2 |
| fnac                   | vggsound     |     **0.700** |     **0.550** |     **0.600** |     1/2 |
| center-prior (trivial) | —            |         0.550 |         0.500 |         0.540 |     1/1 |
| full-image (trivial)   | —            |         0.610 |         0.520 |         0.580 |     1/1 |

Notes:

- fnac (vggsound), seed 1: failed in fit: non-finite training loss (nan) at step 12, batch 3

---
Generated 2026-11-02 00:00 UTC by `avbench leaderboard` · suite `demo` · commit 0123456789ab · data preset default
"""


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
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:3] == ["ezvsl", "vggsound", "**0.400**"]  # seed 0 only, no leak mark
    assert cells[-1] == "1/2"


def _cells(md: str, label: str) -> list[str]:
    """The stripped cells of the Markdown table row whose first cell is ``label``."""
    rows = [[c.strip() for c in line.strip().strip("|").split(" | ")]
            for line in md.splitlines() if line.startswith("|")]
    return next(r for r in rows if r[0] == label)


def test_lower_is_better_metric_bolds_the_minimum():
    records, _ = ResultStore(FIXTURE).load_all()
    vggss = [r.model_copy(update={"metrics": {"ap50": r.metrics.get("ap50"),
                                              "shd": r.metrics.get("auc")},
                                  "lower_is_better": ["shd"]})
             for r in records if r.benchmark == "vggss" and r.ok]
    md, _ = render_benchmark(benchmark_table(vggss))
    assert "shd ↓" in md and "**0.300**" in md  # full-image has the lowest "shd"
    assert "↓ lower is better" in md


def test_direction_comes_only_from_the_records():
    """No name rule ("shd", "*_loss"): vggss's task specs list no lower-is-better metric, so
    results without the field treat every metric as higher-is-better."""
    records, _ = ResultStore(FIXTURE).load_all()
    vggss = [r.model_copy(update={"metrics": {"ap50": r.metrics.get("ap50"),
                                              "shd": r.metrics.get("auc"),
                                              "val_loss": r.metrics.get("mean_ciou")}})
             for r in records if r.benchmark == "vggss" and r.ok]
    assert all(r.lower_is_better == [] for r in vggss)
    md, _ = render_benchmark(benchmark_table(vggss))
    assert "↓" not in md
    assert _cells(md, "⚠ ezvsl")[3:5] == ["**0.390 ± 0.014**", "**0.420 ± 0.014**"]
    assert _cells(md, "full-image (trivial)")[3] == "0.300"


def test_results_without_the_direction_field_take_it_from_the_registered_benchmark():
    """A result file from before ``lower_is_better`` was recorded: the registered benchmark's
    task specs decide (shd of graph recovery stays lower-is-better, as it always was)."""
    records, _ = ResultStore(FIXTURE).load_all()
    graph = []
    for r in records:
        if r.benchmark != "vggss" or not r.ok:
            continue
        data = r.model_dump(mode="json", exclude={"lower_is_better"})
        data |= {"benchmark": "synthetic-graph-recovery", "main_score": "edge_f1",
                 "metrics": {"edge_f1": r.metrics["ap50"], "shd": r.metrics["auc"]}}
        graph.append(type(r).model_validate(data))
    assert all("lower_is_better" not in r.model_fields_set for r in graph)
    t = benchmark_table(graph)
    assert t.lower == {"shd"}
    md, _ = render_benchmark(t)
    assert "shd ↓" in md and "**0.300**" in md  # full-image has the lowest "shd"
    # a result that lists its direction is taken at its word
    listed = [r.model_copy(update={"lower_is_better": []}) for r in graph]
    assert benchmark_table(listed).lower == frozenset()


def test_aggregates_with_pandas():
    records, _ = ResultStore(FIXTURE).load_all()
    flickr = [r for r in records if r.benchmark == "flickr-test"]
    frame = scores_frame(flickr)
    # one row per (result, metric); the failed fnac seed (no metrics) keeps one row
    assert len(frame) == 5 * 3 + 1 and frame["metric"].isna().sum() == 1
    t = benchmark_table(frame)
    assert t.metrics == ["ap50", "auc", "mean_ciou"] and t.seeds_expected == 2
    assert list(t.stats.index) == [("model", "ezvsl", "vggsound"), ("model", "fnac", "vggsound"),
                                   ("baseline", "center-prior", "—"),
                                   ("baseline", "full-image", "—")]
    ezvsl = t.stats.loc[("model", "ezvsl", "vggsound")]
    assert ezvsl[("ap50", "mean")] == pytest.approx(0.62)
    assert ezvsl[("ap50", "std")] == pytest.approx(pd.Series([0.64, 0.60]).std(ddof=1))
    assert ezvsl[("ap50", "n")] == 2
    fnac = t.rows.loc[("model", "fnac", "vggsound")]
    assert (fnac["seeds_ok"], fnac["failed"], fnac["leak"]) == (1, 1, False)
    assert pd.isna(t.stats.loc[("model", "fnac", "vggsound"), ("ap50", "std")])  # one seed
    assert t.best("ap50") == pytest.approx(0.70)
    # the same table from the records directly
    assert benchmark_table(flickr).stats.equals(t.stats)


def test_markdown_escapes_pipes_and_keeps_number_text():
    records, _ = ResultStore(FIXTURE).load_all()
    vegas = [r for r in records if r.benchmark == "vegas-retrieval"]
    ezvsl = next(r for r in vegas if r.model == "ezvsl")
    odd = ezvsl.model_copy(update={"model": "a|b", "job_id": "a.x.seed0", "leak": None,
                                   "metrics": {**ezvsl.metrics, "map": 0.5}})
    md, csv = render_benchmark(benchmark_table([*vegas, odd]))
    assert _cells(md, "a\\|b")[4] == "**0.500**"  # "|" escaped; "0.500" not re-formatted to 0.5
    assert _cells(md, "random-embedding (trivial)")[2:5] == ["0.120", "0.110", "0.115"]
    assert list(csv["model"]) == ["a|b", "ezvsl", "random-embedding"]
    assert csv["map_n"].dtype.kind == "i" and csv["seeds_ok"].dtype.kind == "i"


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
    # the tables keep their types: numbers stay numbers (NaN for a missing value), text text
    table = json.loads(next(run_dir.glob("files/media/table/leaderboard/demo/overview_*.json"))
                       .read_text())
    rows = {row[0]: dict(zip(table["columns"], row)) for row in table["data"]}
    assert rows["ezvsl"]["mean"] == pytest.approx((0.62 + 0.305 + 0.42) / 3)
    assert rows["ezvsl"]["coverage"] == 3 and isinstance(rows["ezvsl"]["coverage"], int)
    assert isinstance(rows["fnac"]["mean"], float) and rows["fnac"]["mean"] != rows["fnac"]["mean"]
    assert rows["center-prior"]["kind"] == "baseline" and rows["center-prior"]["train_dataset"] == ""
    vggss = json.loads(next(run_dir.glob("files/media/table/leaderboard/demo/vggss_*.json"))
                       .read_text())
    ezvsl = dict(zip(vggss["columns"], vggss["data"][0]))
    assert ezvsl["leak"] is True and ezvsl["ap50_n"] == 2
    assert ezvsl["ap50_std"] == pytest.approx(0.02828427, rel=1e-5)


def test_benchmark_where_every_run_failed(tmp_path):
    """No metric at all: the page lists the seeds and failures, the overview shows —."""
    results = tmp_path / "results"
    shutil.copytree(FIXTURE, results)
    store = ResultStore(results)
    for r in store.load_all()[0]:
        if r.benchmark == "flickr-test" and r.ok:
            store.write(r.model_copy(update={
                "status": "error", "metrics": {}, "leak": None,
                "error": ErrorInfo(stage="eval", type="OSError", message="disk gone")}))
    write_leaderboard(results, tmp_path / "lb", date=DATE, wandb_mode="disabled", plots=False)
    page = (tmp_path / "lb" / "flickr-test.md").read_text()
    assert _cells(page, "Model") == ["Model", "Train data", "Seeds"]
    assert _cells(page, "ezvsl") == ["ezvsl", "vggsound", "0/2"]
    assert "- center-prior (trivial) (—), seed None: failed in eval: disk gone" in page
    overview = (tmp_path / "lb" / "overview.md").read_text()
    assert _cells(overview, "⚠ ezvsl")[2:] == ["—", "**0.305 ± 0.021**", "**0.420 ± 0.028**", "—",
                                              "2/3"]
    csv = pd.read_csv(tmp_path / "lb" / "overview.csv").set_index("model")
    assert csv["flickr-test"].isna().all() and csv.loc["ezvsl", "coverage"] == 2


def _with(rec, **update):
    return rec.model_copy(update=update)


def test_sample_counts_and_fit_warning_markers(tmp_path):
    """A benchmark on few samples names them on its page and in the overview notes; rows with
    fit warnings are marked † in every table, with a legend; rows without are not."""
    from avbench.runner.leaderboard import FEW_SAMPLES, render_overview

    store = ResultStore(FIXTURE)
    records, _ = store.load_all()
    vggss = [r for r in records if r.benchmark == "vggss"]
    flickr = [r for r in records if r.benchmark == "flickr-test"]
    warned = "val-too-small: 1 val sample(s)"
    vggss = [_with(r, tasks=[{"task": "localization", "info": {"n": 12}}],
                   warnings=[warned] if r.model == "fnac" else []) for r in vggss]
    flickr = [_with(r, timings=r.timings.model_copy(update={"eval_samples": 250})) for r in flickr]
    tv, tf = benchmark_table(vggss), benchmark_table(flickr)
    assert tv.n_samples == (12, 12) and tf.n_samples == (250, 250)
    md, csv = render_benchmark(tv)
    assert f"Evaluated samples: 12 (fewer than {FEW_SAMPLES}" in md
    assert "Evaluated samples: 250." in render_benchmark(tf)[0]
    lines = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "fnac †" in lines and "⚠ ezvsl" in lines and "⚠ ezvsl †" not in lines
    assert "†: the row's checkpoint selection is doubtful" in md
    assert csv.set_index("model").loc["fnac", "fit_warnings"]
    assert int(csv.set_index("model").loc["ezvsl", "n_samples"]) == 12
    ov, ov_csv = render_overview([tf, tv])
    labels = [line.split("|")[1].strip() for line in ov.splitlines()[2:]]
    assert "fnac †" in labels and "⚠ ezvsl" in labels
    assert "†" not in render_benchmark(tf)[0]  # flickr has no warned row

    # the written overview: legend and few-samples note
    fixture = tmp_path / "store"
    for r in vggss + flickr:
        ResultStore(fixture).write(r)
    write_leaderboard(fixture, tmp_path / "lb", date=DATE, wandb_mode="disabled", plots=False)
    overview = (tmp_path / "lb" / "overview.md").read_text()
    assert "†: doubtful checkpoint selection" in overview
    assert "- vggss: 12 evaluated samples" in overview and "flickr-test:" not in overview


def test_diagnostic_benchmark_is_shown_but_not_averaged():
    """A benchmark registered with ``diagnostic: true`` (vggss-mismatched) gets its column,
    but the overview's Mean and Coverage are those without it."""
    import dataclasses

    from avbench.benchmarks import BENCHMARKS
    from avbench.runner.leaderboard import render_overview

    assert BENCHMARKS["vggss-mismatched"].diagnostic and not BENCHMARKS["vggss"].diagnostic
    assert "diagnostic" not in BENCHMARKS["vggss"].model_dump()
    records, _ = ResultStore(FIXTURE).load_all()
    tables = [benchmark_table([r for r in records if r.benchmark == b])
              for b in ("flickr-test", "vegas-retrieval", "vggss")]
    before, before_csv = render_overview(tables)
    diag = dataclasses.replace(tables[2], benchmark="vggss-drop", diagnostic=True)
    after, after_csv = render_overview([*tables, diag])
    assert "vggss-drop (ap50)" in after
    pd.testing.assert_series_equal(before_csv["mean"], after_csv["mean"])
    assert before_csv["coverage"].tolist() == after_csv["coverage"].tolist()
    assert "| **0.448** |        3/3 |" in after


def test_mean_is_per_training_dataset():
    """A model trained on other data (ILI on feature files) answers other benchmarks: its
    Mean is over those, and the VGGSound rows' Mean is unchanged."""
    from avbench.runner.leaderboard import render_overview

    records, _ = ResultStore(FIXTURE).load_all()
    ili = [_with(r, model="ili", train_dataset="vegas-features", id=r.id.replace("ezvsl", "ili"),
                 job_id=(r.job_id or "").replace("ezvsl", "ili"))
           for r in records if r.benchmark == "vegas-retrieval" and r.model == "ezvsl"]
    tables = [benchmark_table([r for r in records + ili if r.benchmark == b])
              for b in ("flickr-test", "vegas-retrieval", "vggss")]
    md, csv = render_overview(tables)
    csv = csv.set_index(["model", "train_dataset"])
    assert csv.loc[("ezvsl", "vggsound"), "mean"] == pytest.approx(0.448, abs=5e-4)
    assert csv.loc[("ili", "vegas-features"), "mean"] == pytest.approx(0.305, abs=5e-4)
    assert pd.isna(csv.loc[("fnac", "vggsound"), "mean"])  # fnac lacks vegas-retrieval
