"""ILI in the default synthetic suite, end to end on tiny data: the suite's ILI entry and
feature datasets, the runner, the result store and the leaderboard's graph figure."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from avbench.benchmarks import BENCHMARKS
from avbench.data.synthetic import generate
from avbench.data.synthetic.presets import get_preset
from avbench.runner.leaderboard import write_leaderboard
from avbench.runner.results import ResultStore, read_result
from avbench.runner.runner import run_suite
from avbench.runner.suite import expand, load_suite

ILI_BENCHMARKS = ("ave-features-retrieval", "vegas-features-retrieval", "ave-graph-recovery",
                  "vegas-graph-recovery")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    before = dict(BENCHMARKS)  # load_suite registers the suite's define_benchmarks
    yield
    BENCHMARKS.clear()
    BENCHMARKS.update(before)


@pytest.mark.slow  # ~45 s on 2 shared cores: writing the AVE clips and features dominates
def test_ili_part_of_the_default_suite_on_tiny_features(tmp_path: Path) -> None:
    tiny = get_preset("tiny")
    # enough clips for a batch of 16 and a test gallery over the 15 / 10 classes
    preset = replace(tiny, counts={**tiny.counts, "vegas": {"train": 100, "test": 40},
                                   "ave": {"train": 100, "val": 20, "test": 40}})
    roots = {}
    for name in ("ave", "vegas"):
        roots[name] = tmp_path / name
        generate(name, roots[name], preset, seed=0, progress=False)

    suite = load_suite("synthetic", {"seeds": [0], "baselines": ["random-embedding"],
                                     "parallel_jobs": 1})
    ili = next(m for m in suite.models if m.name == "ili")
    ili.overrides.update(teacher_epochs=2, student_epochs=2, hidden_dim=32, embed_dim=16,
                         graph_bootstrap=2)
    datasets = [d for d in suite.datasets if d.name in ili.datasets]
    for d in datasets:
        d.overrides.update(root=str(roots["ave" if d.name.startswith("ave") else "vegas"]),
                           batch_size=16)
    suite = suite.model_copy(update={
        "models": [ili], "datasets": datasets,
        "benchmarks": {k: suite.benchmarks[k] for k in ILI_BENCHMARKS}})
    assert [j.id for j in expand(suite)] == ["ili.ave15_features.seed0", "ili.vegas_features.seed0"]

    summary = run_suite(suite, tmp_path / "results", progress=False)
    assert summary.exit_code == 0, summary.text()
    store = ResultStore(tmp_path / "results")
    ave = read_result(store.path("synthetic", "ave-features-retrieval", "ili.ave15_features.seed0"))
    assert ave.ok and 0.0 < ave.metrics["map"] <= 1.0
    assert ave.config["model"]["init_args"]["num_classes"] is None
    assert ave.leak["n_train"] > 0 and ave.leak["n_overlap"] == 0
    for bench, job, n_classes in (("ave-graph-recovery", "ili.ave15_features.seed0", 15),
                                  ("vegas-graph-recovery", "ili.vegas_features.seed0", 10)):
        rec = read_result(store.path("synthetic", bench, job))
        assert rec.status in ("ok", "not-scorable"), (bench, rec.error)
        info = rec.tasks[0]["info"]
        assert len(info["nodes"]) == 2 * n_classes and info["n_world_edges"] > 0
        if rec.ok:
            assert {"edge_f1", "shd", "edge_stability"} <= set(rec.metrics)
            assert rec.lower_is_better == ["shd"]
    # a model trained on VEGAS is never scored on the AVE benchmarks and vice versa
    assert not store.path("synthetic", "ave-graph-recovery", "ili.vegas_features.seed0").exists()

    out = tmp_path / "leaderboards"
    write_leaderboard(tmp_path / "results", out, wandb_mode="disabled")
    assert (out / "vegas-graph-recovery.md").exists()
    rec = read_result(store.path("synthetic", "vegas-graph-recovery", "ili.vegas_features.seed0"))
    if rec.ok:
        assert (out / "plots" / "vegas-graph-recovery_graph.png").stat().st_size > 0
