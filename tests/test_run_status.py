"""Honest run status: not-scorable metrics (Ego4D all-positive), duplicate sample ids, fit checks.

* a metric undefined on the data -> ``not-scorable`` with the reason, through evaluate, the
  runner (kept by ``only-missing``) and the leaderboard (a cell, not a number);
* two different samples with one id -> the evaluation fails naming the benchmark and ids;
* a fit without an optimizer step fails; a val set of one clip, a constant val monitor and a
  selection stuck at epoch 0 are marked (``warnings``) in the result and the leaderboard.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from test_runner_core import MOD as CORE
from test_runner_core import TinyAV, TinyDataModule, suite_dict
from torch.utils.data import DataLoader
from toy_clips import ListDataset, toy_clips

from avbench.benchmarks import evaluate, trivial_baselines
from avbench.data.datasets.ego4d_tables import COLUMNS
from avbench.data.sample import collate
from avbench.data.synthetic.media import write_mp4
from avbench.metrics import (
    CrossModalRetrieval,
    DiscoveryMetric,
    LocalizationMetric,
    NotScorableError,
)
from avbench.runner.fit_checks import FitChecks, FitObservations, check_fit
from avbench.runner.leaderboard import write_leaderboard
from avbench.runner.results import ResultStore, read_result
from avbench.runner.runner import run_suite
from avbench.runner.suite import Suite

MOD = __name__
SR, FPS, SIZE = 16000, 4, 32


@pytest.fixture(autouse=True)
def _no_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


def _baseline(name: str):
    return next(b for b in trivial_baselines(seed=0) if b.meta.name == name)


# --- degenerate metrics ---------------------------------------------------------------------
def test_metrics_raise_not_scorable_with_the_reason():
    d = DiscoveryMetric()
    d.update(torch.randn(6), torch.ones(6), [f"c{i}" for i in range(6)])
    with pytest.raises(NotScorableError, match="all 6 samples are positive") as err:
        d.compute()
    assert set(err.value.metrics) == {"roc_auc", "pr_auc"}
    d = DiscoveryMetric()
    d.update(torch.randn(4), torch.zeros(4), [f"c{i}" for i in range(4)])
    with pytest.raises(NotScorableError, match="negative"):
        d.compute()
    d = DiscoveryMetric()  # two classes: scored as before
    d.update(torch.tensor([0.1, 0.9, 0.2, 0.8]), torch.tensor([0, 1, 0, 1]), list("abcd"))
    assert float(d.compute()["roc_auc"]) == 1.0

    r = CrossModalRetrieval(ks=(1,))
    r.update(torch.randn(1, 4), torch.randn(1, 4), torch.tensor([0]), ["only"])
    with pytest.raises(NotScorableError, match="1 item"):
        r.compute()
    r = CrossModalRetrieval(ks=(1,))  # one class: every item relevant to every query
    r.update(torch.randn(5, 4), torch.randn(5, 4), torch.zeros(5, dtype=torch.long), list("abcde"))
    with pytest.raises(NotScorableError, match="same class"):
        r.compute()

    loc = LocalizationMetric(empty_gt="exclude")
    loc.update(torch.randn(2, 4, 4), torch.zeros(2, 8, 8), ["a", "b"])
    with pytest.raises(NotScorableError, match="all 2 GT maps are empty"):
        loc.compute()


def _write_ego4d(root: Path, n_test: int = 5) -> Path:
    """Ego4D-Sounds layout: both tables (TAB-separated, the 16 columns) and the clip files;
    every test row has positive = 1.0, as in the public test table."""
    rng = np.random.default_rng(0)

    def rows(uid: str, n: int, positive) -> list[dict[str, str]]:
        out = []
        for ind in range(n):
            t = 2.0 + 3 * ind
            out.append({
                "video_uid": uid, "video_dur": "-1", "narration_source": "narration_pass_2",
                "narration_ind": str(ind), "narration_time": repr(t),
                "clip_start": repr(t - 0.5), "clip_end": repr(t + 1.0),
                "clip_text": f"#C C {['cuts', 'taps', 'opens'][ind % 3]} the thing",
                "tag_verb": "[]", "tag_noun": "[]", "positive": repr(positive(ind)),
                "clip_file": f"{uid}/{uid}_narration_pass_2_{ind}.mp4",
                "speech": "0.0", "background_music": "0.0", "traffic_noise": "0.0",
                "wind_noise": "0.0",
            })
            frames = rng.integers(0, 255, (int(2 * FPS), SIZE, SIZE, 3), dtype=np.uint8)
            audio = (0.1 * rng.standard_normal(2 * SR)).astype(np.float32)
            write_mp4(root / "ego4dsounds_224p" / uid / f"{uid}_narration_pass_2_{ind}.mp4",
                      frames, FPS, audio, SR)
        return out

    for name, table in (("train_clips_1.2m.csv", rows("trn-1", 3, lambda i: float(i % 2))
                         + rows("trn-2", 2, lambda i: 1.0)),
                        ("test_clips_11k.csv", rows("tst-9", n_test, lambda i: 1.0))):
        with open(root / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(COLUMNS), delimiter="\t", lineterminator="\n")
            w.writeheader()
            w.writerows(table)
    return root


@pytest.fixture(scope="module")
def ego4d_all_positive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ego4d") / "ego4d"
    root.mkdir()
    return _write_ego4d(root)


def _ego4d_dm_cfg(root: Path) -> dict:
    return {"class_path": "avbench.data.Ego4DClipsDataModule",
            "init_args": {"root": str(root), "batch_size": 2, "num_workers": 0, "fps": 2.0,
                          "clip_seconds": 1.0, "image_size": 16, "sample_rate": 160}}


def test_ego4d_all_positive_is_not_scorable_through_evaluate(ego4d_all_positive):
    from avbench.data import Ego4DClipsDataModule

    dm = Ego4DClipsDataModule(**_ego4d_dm_cfg(ego4d_all_positive)["init_args"])
    res = evaluate(_baseline("random-embedding"), "ego4d-discovery", dm, progress=False)
    assert res.status == "not-scorable", res
    assert "all 5 samples are positive" in res.reason and "sounding" in res.reason
    assert res.main_value is None and "roc_auc" not in res.metrics and "pr_auc" not in res.metrics
    (task,) = res.tasks
    assert task.status == "not-scorable" and "one class only" in task.reason


def test_ego4d_all_positive_through_runner_and_leaderboard(ego4d_all_positive, tmp_path, data_root):
    suite = Suite.model_validate(suite_dict(
        data_root, models=[{"name": "tiny", "class_path": f"{CORE}.TinyAV"}], seeds=(0,),
        benchmarks={"ego4d-discovery": _ego4d_dm_cfg(ego4d_all_positive)},
        baselines=["random-embedding"]))
    results = tmp_path / "results"
    summary = run_suite(suite, results, progress=False)
    assert summary.exit_code == 0 and not summary.failed and not summary.ok
    labels = {"ego4d-discovery/baseline.random-embedding", "ego4d-discovery/tiny.toy.seed0"}
    assert {label for label, _ in summary.not_scorable} == labels
    assert all("all 5 samples are positive" in why for _, why in summary.not_scorable)
    assert "NOT SCORABLE ego4d-discovery/baseline.random-embedding" in summary.text()
    store = ResultStore(results)
    for jid in ("baseline.random-embedding", "tiny.toy.seed0"):
        rec = read_result(store.path("mock", "ego4d-discovery", jid))
        assert rec.status == "not-scorable" and rec.error is None and "one class" in rec.reason
        assert rec.main_value is None and rec.metrics.get("pr_auc") is None
    # a valid outcome: only-missing keeps it (same fingerprint), always recomputes it
    path = store.path("mock", "ego4d-discovery", "tiny.toy.seed0")
    mtime = path.stat().st_mtime_ns
    again = run_suite(suite, results, progress=False)
    assert set(again.cached) == labels and not again.not_scorable
    assert path.stat().st_mtime_ns == mtime
    assert len(run_suite(suite, results, overwrite="always", progress=False).not_scorable) == 2

    out = tmp_path / "lb"
    write_leaderboard(results, out, plots=False, wandb_mode="disabled")
    page = (out / "ego4d-discovery.md").read_text()
    for name in ("random-embedding", "| tiny "):
        row = next(line for line in page.splitlines() if name in line)
        assert "not scorable" in row and "nan" not in row.lower() and "1.000" not in row
    assert "not scorable: " in page and "positive" in page  # the reason in the notes
    overview = (out / "overview.md").read_text()
    row = next(line for line in overview.splitlines() if "random-embedding" in line)
    assert "not scorable" in row and "**" not in row


# --- identity ---------------------------------------------------------------------------------
class _DupIdData:
    """A test loader where two different clips share one id (AVE: one video, two categories)."""

    def __init__(self) -> None:
        items = toy_clips("test", 6)
        items[3]["id"] = items[2]["id"]  # different image, audio and label; same id
        self.loader = DataLoader(ListDataset(items), batch_size=4, collate_fn=collate)

    def setup(self, stage=None) -> None:
        pass

    def test_dataloader(self):
        return self.loader


def test_two_samples_with_one_id_fail_the_evaluation():
    res = evaluate(_baseline("full-image"), "vggss", _DupIdData(), progress=False)
    assert res.status == "failed"
    assert "vggss" in res.reason and "1 sample id(s) occur more than once" in res.reason
    assert "'test2' x2" in res.reason and "0 expected" in res.reason
    with pytest.raises(ValueError, match="share an id"):
        evaluate(_baseline("full-image"), "vggss", _DupIdData(), progress=False, raise_errors=True)


# --- fit checks --------------------------------------------------------------------------------
def test_check_fit_rules():
    ok = FitObservations(optimizer_steps=10, epochs=3, val_epochs=3, largest_val_batch=8,
                         val_samples=8, monitor_min=0.5, monitor_max=0.9)
    assert check_fit(ok, monitor="val/loss", selected_epoch=2) == []
    (f,) = check_fit(FitObservations(epochs=2), monitor=None)
    assert f.code == "no-optimizer-step" and f.fatal and "untrained" in f.message
    small = FitObservations(optimizer_steps=5, epochs=1, val_epochs=1, largest_val_batch=1,
                            val_samples=1, monitor_min=0.0, monitor_max=0.0)
    assert [f.code for f in check_fit(small, monitor="val/loss")] == ["val-too-small"]
    const = FitObservations(optimizer_steps=5, epochs=12, val_epochs=12, largest_val_batch=4,
                            val_samples=4, monitor_min=0.7, monitor_max=0.7)
    codes = [f.code for f in check_fit(const, monitor="val/loss", selected_epoch=0)]
    assert codes == ["val-monitor-constant", "selection-first-epoch"]
    # selection after a warm-up: the first selectable epoch is the warm-up's end
    assert [f.code for f in check_fit(ok, monitor="val/loss", selected_epoch=1,
                                      first_selectable_epoch=1)] == ["selection-first-epoch"]
    assert check_fit(ok, monitor="val/loss", selected_epoch=2, first_selectable_epoch=2) == []
    assert [f.code for f in check_fit(FitObservations(optimizer_steps=3, epochs=1),
                                      monitor="val/loss")] == ["val-missing"]


def test_fit_checks_callback_publishes_and_raises():
    import lightning as L

    dm = TinyDataModule("unused", n_train=4, n_val=1, batch_size=8)
    checks = FitChecks("val/loss")
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, callbacks=[checks])
    trainer.fit(TinyAV(), datamodule=dm)
    obs = checks.observations(trainer)
    assert obs.optimizer_steps == 2 and obs.epochs == 2 and obs.val_epochs == 2
    assert obs.largest_val_batch == 1 and obs.monitor_min == obs.monitor_max == 0.0
    codes = [f.code for f in checks.findings(trainer, selected_epoch=0)]
    assert codes == ["val-too-small", "val-monitor-constant", "selection-first-epoch"]

    from avbench.runner.fit_checks import FitCheckError

    none = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False,
                     limit_train_batches=0, callbacks=[FitChecks("val/loss")])
    with pytest.raises(FitCheckError, match="no-optimizer-step"):
        none.fit(TinyAV(), datamodule=dm)


class ConstantValAV(TinyAV):
    """Trains normally; its val loss is the same number every epoch."""

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", torch.tensor(0.25), batch_size=len(batch["id"]))


def _mock(data_root: Path, models: list[dict], **kw) -> Suite:
    return Suite.model_validate(suite_dict(data_root, models=models, seeds=(0,), baselines=[],
                                           benchmarks={"vggss": {"dataset": "toy"}}, **kw))


@pytest.fixture
def data_root(tmp_path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


def test_runner_fails_a_fit_without_an_optimizer_step(tmp_path, data_root):
    suite = _mock(data_root, [{"name": "tiny", "class_path": f"{CORE}.TinyAV"}],
                  trainer_overrides={"limit_train_batches": 0})
    summary = run_suite(suite, tmp_path / "results", progress=False)
    assert summary.failed == ["vggss/tiny.toy.seed0"] and summary.exit_code == 1
    rec = read_result(ResultStore(tmp_path / "results").path("mock", "vggss", "tiny.toy.seed0"))
    assert rec.status == "error" and rec.error.stage == "fit"
    assert rec.error.type == "FitCheckError" and "no optimizer step" in rec.error.message


def test_runner_marks_doubtful_selections_and_the_leaderboard_shows_them(tmp_path, data_root):
    models = [{"name": "one-val", "class_path": f"{CORE}.TinyAV"},
              {"name": "const", "class_path": f"{MOD}.ConstantValAV"}]
    suite = Suite.model_validate(suite_dict(
        data_root, models=models, seeds=(0,), baselines=[],
        benchmarks={"vggss": {"dataset": "toy"}},
        datasets=[{"name": "toy", "class_path": f"{CORE}.TinyDataModule",
                   "init_args": {"root": str(data_root), "n_val": 1}}],
        trainer_overrides={"max_epochs": 3, "limit_train_batches": 1}))
    summary = run_suite(suite, tmp_path / "results", progress=False)
    assert summary.exit_code == 0 and len(summary.ok) == 2
    store = ResultStore(tmp_path / "results")
    one = read_result(store.path("mock", "vggss", "one-val.toy.seed0"))
    assert one.ok and any(w.startswith("val-too-small") for w in one.selection.warnings)
    assert one.warnings == one.selection.warnings
    const = read_result(store.path("mock", "vggss", "const.toy.seed0"))
    codes = {w.split(":")[0] for w in const.warnings}
    assert {"val-monitor-constant", "selection-first-epoch"} <= codes
    assert const.selection.best_epoch == 0
    write_leaderboard(tmp_path / "results", tmp_path / "lb", plots=False, wandb_mode="disabled")
    page = (tmp_path / "lb" / "vggss.md").read_text()
    assert "fit warning: val-too-small" in page and "fit warning: val-monitor-constant" in page
    # every table marks the rows (benchmark page and overview) with a legend line
    overview = (tmp_path / "lb" / "overview.md").read_text()
    for text in (page, overview):
        rows = [line for line in text.splitlines() if line.startswith("| ") and "(trivial)" not in line
                and "Model" not in line]
        assert rows and all(" †" in line.split("|")[1] for line in rows), text
        assert "†: " in text


def test_a_bare_nan_main_score_is_never_ok(ego4d_all_positive, monkeypatch):
    """A metric that returns NaN instead of raising NotScorableError fails the evaluation."""
    from avbench.benchmarks.tasks.discovery import DiscoveryRunner
    from avbench.data import Ego4DClipsDataModule

    monkeypatch.setattr(DiscoveryRunner, "compute",
                        lambda self: {"roc_auc": float("nan"), "pr_auc": 1.0})
    dm = Ego4DClipsDataModule(**_ego4d_dm_cfg(ego4d_all_positive)["init_args"])
    res = evaluate(_baseline("random-embedding"), "ego4d-discovery", dm, progress=False)
    assert res.status == "failed" and res.main_value is None
    assert "main score roc_auc is nan without a reason" in res.reason


def test_ego4d_retrieval_recall_at_k_beyond_the_gallery_is_left_out(ego4d_all_positive):
    """5 items: R@5 and R@10 are 1.0 for any ranking, so they are not computed (reasons in
    the task info); R@1, the main score, is."""
    from avbench.data import Ego4DClipsDataModule

    dm = Ego4DClipsDataModule(**_ego4d_dm_cfg(ego4d_all_positive)["init_args"])
    res = evaluate(_baseline("random-embedding"), "ego4d-retrieval", dm, progress=False)
    assert res.status == "ok", res
    assert set(res.metrics) == {"a2v_r1", "v2a_r1"} and res.main_value == res.metrics["a2v_r1"]
    (task,) = res.tasks
    assert task.info["n"] == 5
    assert set(task.info["undefined"]) == {"a2v_r5", "a2v_r10", "v2a_r5", "v2a_r10"}
    assert "gallery of 5 items" in task.info["undefined"]["a2v_r5"]


def test_retrieval_main_score_beyond_the_gallery_is_not_scorable(ego4d_all_positive):
    from avbench.benchmarks.meta import BenchmarkMeta
    from avbench.benchmarks.registry import BENCHMARKS, register
    from avbench.data import Ego4DClipsDataModule

    meta = register(BenchmarkMeta(
        name="ego4d-retrieval-r5", dataset="ego4d", split="test",
        tasks=[{"task": "retrieval", "ks": [1, 5], "relevance": "instance"}],
        metrics=["a2v_r1", "a2v_r5", "v2a_r1", "v2a_r5"], main_score="a2v_r5"), overwrite=True)
    try:
        dm = Ego4DClipsDataModule(**_ego4d_dm_cfg(ego4d_all_positive)["init_args"])
        res = evaluate(_baseline("random-embedding"), meta.name, dm, progress=False)
    finally:
        BENCHMARKS.pop(meta.name, None)
    assert res.status == "not-scorable", res
    assert "main score a2v_r5" in res.reason and "k >= gallery size" in res.reason
    assert res.main_value is None
