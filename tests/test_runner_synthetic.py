"""End to end on real code: a registered model from its CPU config, the real VGGSound and
Flickr DataModules on the tiny synthetic preset, the runner and the leaderboard."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from avbench.data.synthetic import generate
from avbench.runner.leaderboard import write_leaderboard
from avbench.runner.results import ResultStore, read_result
from avbench.runner.runner import run_suite
from avbench.runner.suite import load_suite

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


@pytest.fixture(autouse=True)
def _restore_benchmarks():
    """load_suite("synthetic") registers the suite's define_benchmarks in the global
    registry: leave it as the builtin-dump tests expect it."""
    from avbench.benchmarks import BENCHMARKS

    before = dict(BENCHMARKS)
    yield
    BENCHMARKS.clear()
    BENCHMARKS.update(before)


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("synthetic")
    out = {}
    for name in ("vggsound", "flickr"):
        generate(name, base / name, "tiny", 0, progress=False)
        out[name] = base / name
    return out


def test_registered_model_on_tiny_synthetic_suite(tmp_path, roots):
    small = {"batch_size": 4, "num_workers": 0, "image_size": 64}
    suite = load_suite("synthetic", {
        "name": "tiny",
        "seeds": [0],
        "models": [{"name": "ezvsl", "config": "configs/model/ezvsl_cpu.yaml"}],
        "trainer_overrides": {"max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1,
                              "num_sanity_val_steps": 0},
        "baselines": ["full-image", "random-embedding"],
    })
    # the two benchmarks whose tiny data this test writes (the suite has more), and the
    # training dataset they are listed for (ezvsl here trains on every suite dataset)
    two = ("vggss", "flickr-test")
    suite = suite.model_copy(update={
        "benchmarks": {k: suite.benchmarks[k] for k in two},
        "datasets": [d.model_copy(update={"benchmarks": list(two)})
                     for d in suite.datasets if d.name == "vggsound"]})
    suite.datasets[0].overrides.update(small | {"root": str(roots["vggsound"])})
    suite.benchmarks["flickr-test"].overrides.update(small | {"root": str(roots["flickr"])})
    summary = run_suite(suite, tmp_path / "results", progress=False)
    assert summary.exit_code == 0, summary.text()
    assert len(summary.ok) == 2 + 2  # ezvsl on vggss + flickr-test; full-image on both
    store = ResultStore(tmp_path / "results")
    rec = read_result(store.path("tiny", "vggss", "ezvsl.vggsound.seed0"))
    assert rec.model_class == "avbench.models.ezvsl.EZVSL" and rec.paper
    assert rec.config["data"]["class_path"].endswith("VGGSoundDataModule")
    assert rec.data["train"]["synthetic"]["preset"] == "tiny"
    assert rec.leak["n_train"] > 0 and rec.leak["n_overlap"] == 0  # synthetic splits are disjoint
    assert rec.selection.rule.startswith("best val/loss") and rec.selection.best_score is not None
    assert {"ap50", "a2v_r1"} <= set(rec.metrics) and rec.timings.eval_samples == 12
    flickr = read_result(store.path("tiny", "flickr-test", "ezvsl.vggsound.seed0"))
    assert flickr.leak["train_source"] == "vggsound:train"

    out = tmp_path / "leaderboards"
    write_leaderboard(tmp_path / "results", out, wandb_mode="disabled")
    overview = (out / "overview.md").read_text()
    assert re.search(r"\|\s*ezvsl( †)?\s*\|\s*vggsound\s*\|", overview)  # padding; † = fit warnings
    assert "data preset tiny" in overview


def test_default_suite_configs_resolve_and_every_model_has_benchmarks():
    """The `make leaderboard` suite: every config file exists and builds its DataModule,
    every registered model is in it, and each model is planned on every benchmark of
    each of its training datasets (nothing skipped)."""
    from avbench.benchmarks import plan
    from avbench.models import REGISTRY
    from avbench.runner.instantiation import import_object
    from avbench.runner.suite import component_config, expand

    suite = load_suite("synthetic")
    # AV-LDM (issue 17) runs in its own suite
    pending = {"avldm"}
    assert {m.name for m in suite.models} == set(REGISTRY) - pending
    assert len(suite.seeds) >= 2
    n_datasets = {m.name: len(suite.datasets_for(m)) for m in suite.models}
    assert n_datasets["ili"] == 2 and all(n == 1 for k, n in n_datasets.items() if k != "ili")
    assert [d.name for d in suite.datasets_for(next(m for m in suite.models if m.name == "mc3"))] \
        == ["ego4d"]
    assert [d.name for d in suite.datasets_for(next(m for m in suite.models
                                                    if m.name == "denseav"))] \
        == ["mixed_speech_sound"]
    assert len(expand(suite)) == sum(n_datasets.values()) * len(suite.seeds)
    for name, spec in suite.benchmarks.items():
        if spec.dataset is None:
            cfg = component_config(spec, "data", suite.source)
            dm = import_object(cfg["class_path"])(**cfg["init_args"])
            assert dm.sample_rate == 16000, name
            if not name.startswith("epic-sounds"):  # audio only
                assert dm.image_size == 128, name
    for d in suite.datasets:
        cfg = component_config(d, "data", suite.source)
        dm = import_object(cfg["class_path"])(**cfg["init_args"])
        assert (getattr(dm, "source", None) == "features") == d.name.endswith("_features"), d.name
    for entry in suite.models:
        cls = import_object(component_config(entry, "model", suite.source)["class_path"])
        for d in suite.datasets_for(entry):
            run, skipped = plan([cls], suite.benchmarks_for(d))
            assert {b.name for _, b in run} == set(suite.benchmarks_for(d)), (entry.name, d.name)
            assert not skipped, (entry.name, d.name)
