"""The benchmark runner on a mock suite: tiny in-test model and datamodule, real Lightning
Trainer, real evaluator. Expansion and skips, stored results, resume, overwrite modes,
failure isolation (raise / NaN), corrupt files, the CLI."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from toy_clips import ListDataset, toy_clips

from avbench.data.sample import collate
from avbench.models.base import AVModel, FitStage, ModelMeta
from avbench.runner.results import CorruptResult, ResultStore, read_result
from avbench.runner.runner import Runner, run_suite
from avbench.runner.suite import Suite, expand

MOD = __name__  # class paths of the in-test classes


@pytest.fixture(autouse=True)
def _no_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr("sys.argv", ["avbench"])


# --- tiny in-test model and data --------------------------------------------------------
class TinyDataModule(L.LightningDataModule):
    """Random clips with a square sounding object; ``leak`` test ids reuse training ids."""

    def __init__(self, root: str, n_train: int = 16, n_val: int = 8, n_test: int = 8,
                 batch_size: int = 8, leak: int = 0) -> None:
        super().__init__()
        self.root = Path(root)
        self.n = {"train": n_train, "val": n_val, "test": n_test}
        self.batch_size = batch_size
        self.leak = leak

    def dataset(self, split: str) -> ListDataset:
        return ListDataset(toy_clips(split, self.n[split], self.leak))

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(self.dataset(split), batch_size=self.batch_size, shuffle=shuffle,
                          collate_fn=collate)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


class TinyAV(AVModel):
    """A 2-layer audio-visual contrastive model with embed + localize."""

    meta = ModelMeta(name="tiny-av", paper="test", year=2026,
                     capabilities=frozenset({"embed", "localize"}))

    def __init__(self, dim: int = 8, nan_loss: bool = False, fail: bool = False,
                 lr: float = 1e-2) -> None:
        super().__init__(lr=lr)
        self.save_hyperparameters()
        self.visual = nn.Conv2d(3, dim, 3, padding=1)
        self.audio = nn.Linear(160, dim)
        self.nan_loss, self.fail = nan_loss, fail

    def _feats(self, batch):
        v = F.normalize(self.visual(batch["image"]), dim=1)  # B,D,H,W
        a = F.normalize(self.audio(batch["audio"][:, 0]), dim=1)  # B,D
        return v, a

    def embed(self, batch):
        v, a = self._feats(batch)
        return {"audio": a, "visual": F.normalize(v.mean((2, 3)), dim=1)}

    def localize(self, batch):
        v, a = self._feats(batch)
        return torch.einsum("bdhw,bd->bhw", v, a)

    def _loss(self, batch):
        e = self.embed(batch)
        logits = e["audio"] @ e["visual"].T / 0.1
        target = torch.arange(len(logits))
        loss = F.cross_entropy(logits, target)
        return loss * float("nan") if self.nan_loss else loss

    def training_step(self, batch, batch_idx):
        if self.fail:
            raise RuntimeError("boom: the model's training step is broken")
        loss = self._loss(batch)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self._loss(batch), batch_size=len(batch["id"]))


class TinyEmbedOnly(TinyAV):
    """Embeddings only: localization benchmarks are skipped."""

    meta = ModelMeta(name="tiny-embed", paper="test", year=2026, capabilities=frozenset({"embed"}))


def suite_dict(root: Path, models: list[dict] | None = None, seeds=(0, 1), **kw) -> dict:
    d = {
        "name": "mock",
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": 1,
                    "limit_train_batches": 2, "limit_val_batches": 1,
                    "num_sanity_val_steps": 0, "enable_progress_bar": False},
        "seeds": list(seeds),
        "models": models or [
            {"name": "tiny-a", "class_path": f"{MOD}.TinyAV"},
            {"name": "tiny-b", "class_path": f"{MOD}.TinyEmbedOnly"},
        ],
        "datasets": [{"name": "toy", "class_path": f"{MOD}.TinyDataModule",
                      "init_args": {"root": str(root), "leak": 2}}],
        "benchmarks": {"vggss": {"dataset": "toy"},
                       "vegas-retrieval": {"class_path": f"{MOD}.TinyDataModule",
                                           "init_args": {"root": str(root)}}},
        "baselines": ["full-image", "center-prior", "random-embedding"],
    }
    d.update(kw)
    return d


@pytest.fixture
def data_root(tmp_path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    (root / "list.txt").write_text("train0\ntrain1\n")
    return root


def _mtimes(store: ResultStore) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in store.files()}


# --- tests ------------------------------------------------------------------------------------
def test_mock_suite_expected_results_and_schema(tmp_path, data_root):
    suite = Suite.model_validate(suite_dict(data_root))
    assert [j.id for j in expand(suite)] == [
        "tiny-a.toy.seed0", "tiny-a.toy.seed1", "tiny-b.toy.seed0", "tiny-b.toy.seed1"]
    summary = run_suite(suite, tmp_path / "results", progress=False)
    store = ResultStore(tmp_path / "results")
    files = list(store.files())
    # tiny-a: 2 benchmarks x 2 seeds; tiny-b: vegas-retrieval x 2 (vggss needs localize);
    # baselines: full-image + center-prior on vggss, random-embedding on vegas-retrieval
    assert len(files) == 4 + 2 + 3 and summary.exit_code == 0
    assert len(summary.ok) == 9 and not summary.failed
    skipped = dict(summary.skipped)
    assert len(skipped) == 2 + 3
    assert "localize" in skipped["vggss/tiny-b.toy.seed0"]
    assert "embed" in skipped["vggss/baseline.random-embedding"]

    rec = read_result(store.path("mock", "vggss", "tiny-a.toy.seed1"))
    assert rec.status == "ok" and rec.kind == "model" and rec.seed == 1
    assert rec.config["model"]["class_path"] == f"{MOD}.TinyAV"
    assert rec.config["model"]["init_args"]["dim"] == 8  # resolved: defaults filled in
    assert rec.config["trainer"]["max_epochs"] == 1 and rec.config["seed"] == 1
    assert set(rec.fingerprint_parts) == {"config", "data", "code"}
    assert {"ap50", "auc", "mean_ciou", "a2v_r1", "v2a_r5"} <= set(rec.metrics)
    assert "v2a_r10" not in rec.metrics  # 8 test items: R@10 would be a trivial 1.0
    assert rec.main_score == "ap50" and rec.main_value == rec.metrics["ap50"]
    assert rec.selection.split == "val" and rec.selection.monitor == "val/loss"
    assert rec.selection.best_score is not None and Path(rec.selection.checkpoint).exists()
    assert rec.timings.fit_seconds > 0 and rec.timings.eval_samples == 8
    assert rec.timings.train_samples == 16 and rec.timings.train_samples_per_second > 0
    assert "torch" in rec.environment.packages and rec.environment.python
    assert rec.leak["n_overlap"] == 2  # two test ids are training ids
    assert rec.wandb is None  # WANDB_MODE=disabled
    base = read_result(store.path("mock", "vggss", "baseline.full-image"))
    assert base.kind == "baseline" and base.seed is None and base.ok
    # the two seeds train differently
    rec0 = read_result(store.path("mock", "vggss", "tiny-a.toy.seed0"))
    assert rec0.fingerprint != rec.fingerprint


def test_rerun_skips_same_fingerprint_and_overwrite_modes(tmp_path, data_root):
    suite = Suite.model_validate(suite_dict(data_root, seeds=(0,)))
    results = tmp_path / "results"
    first = run_suite(suite, results, progress=False)
    store = ResultStore(results)
    before = _mtimes(store)
    again = run_suite(suite, results, progress=False)
    assert not again.ok and len(again.cached) == len(first.ok) and _mtimes(store) == before

    # a changed model config makes that model's results stale: only they are recomputed
    changed = suite_dict(data_root, seeds=(0,))
    changed["models"][0]["init_args"] = {"dim": 4}
    stale = run_suite(Suite.model_validate(changed), results, progress=False)
    assert sorted(stale.ok) == ["vegas-retrieval/tiny-a.toy.seed0", "vggss/tiny-a.toy.seed0"]
    # never: stale results are kept (and reported)
    kept = run_suite(suite, results, overwrite="never", progress=False)
    assert not kept.ok and len(kept.stale_kept) == 2
    # always: everything is recomputed
    forced = run_suite(suite, results, overwrite="always", progress=False)
    assert len(forced.ok) == len(first.ok)


def test_resume_after_crash_completes_only_missing(tmp_path, data_root, monkeypatch):
    suite = Suite.model_validate(suite_dict(data_root))
    results = tmp_path / "results"
    import avbench.benchmarks as B

    real = B.evaluate
    calls = {"n": 0}

    def crashing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:  # baselines take 3 calls; crash in the 2nd eval of job 1
            raise KeyboardInterrupt("simulated kill")
        return real(*a, **k)

    monkeypatch.setattr(B, "evaluate", crashing)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, results, progress=False)
    store = ResultStore(results)
    done = {p.relative_to(results).as_posix() for p in store.files()}
    assert len(done) == 4  # 3 baselines + the first eval of the first job
    for p in store.files():
        read_result(p)  # everything on disk is complete and valid
    monkeypatch.setattr(B, "evaluate", real)

    resumed = run_suite(suite, results, progress=False)
    assert len(resumed.cached) == 4 and len(resumed.ok) == 5 and resumed.exit_code == 0
    # the crashed job's fit had finished: it is reused, not refitted
    rec = read_result(store.path("mock", "vegas-retrieval", "tiny-a.toy.seed0"))
    assert rec.timings.fit_reused
    assert not read_result(store.path("mock", "vggss", "tiny-a.toy.seed1")).timings.fit_reused


def test_corrupt_result_is_reported_and_recomputed(tmp_path, data_root):
    suite = Suite.model_validate(suite_dict(data_root, seeds=(0,), baselines=[]))
    results = tmp_path / "results"
    run_suite(suite, results, progress=False)
    store = ResultStore(results)
    truncated = store.path("mock", "vggss", "tiny-a.toy.seed0")
    text = truncated.read_text()
    truncated.write_text(text[: len(text) // 2])
    bad_schema = store.path("mock", "vegas-retrieval", "tiny-b.toy.seed0")
    raw = json.loads(bad_schema.read_text())
    raw["metrics"] = "not a mapping"
    bad_schema.write_text(json.dumps(raw))
    with pytest.raises(CorruptResult, match="invalid JSON"):
        read_result(truncated)
    with pytest.raises(CorruptResult, match="schema"):
        read_result(bad_schema)
    good, bad = store.load_all()
    assert len(bad) == 2 and len(good) == 1

    again = run_suite(suite, results, progress=False)
    assert len(again.corrupt) == 2 and sorted(again.ok) == [
        "vegas-retrieval/tiny-b.toy.seed0", "vggss/tiny-a.toy.seed0"]
    assert read_result(truncated).ok and read_result(bad_schema).ok
    assert len(list(truncated.parent.glob("*.corrupt-*"))) == 1  # kept aside, never read


def test_failing_and_nan_jobs_are_recorded_and_the_run_goes_on(tmp_path, data_root):
    models = [
        {"name": "broken", "class_path": f"{MOD}.TinyAV", "init_args": {"fail": True}},
        {"name": "nan", "class_path": f"{MOD}.TinyAV", "init_args": {"nan_loss": True}},
        {"name": "good", "class_path": f"{MOD}.TinyAV"},
        {"name": "typo", "class_path": f"{MOD}.TinyAV", "init_args": {"dimm": 3}},
    ]
    suite = Suite.model_validate(suite_dict(data_root, models=models, seeds=(0,), baselines=[],
                                            benchmarks={"vggss": {"dataset": "toy"}}))
    summary = run_suite(suite, tmp_path / "results", progress=False)
    assert summary.exit_code == 1
    assert sorted(summary.failed) == ["vggss/broken.toy.seed0", "vggss/nan.toy.seed0",
                                      "vggss/typo.toy.seed0"]
    assert summary.ok == ["vggss/good.toy.seed0"]
    store = ResultStore(tmp_path / "results")
    broken = read_result(store.path("mock", "vggss", "broken.toy.seed0"))
    assert broken.status == "error" and broken.error.stage == "fit"
    assert "boom" in broken.error.message and "training_step" in broken.error.traceback
    assert "boom" in broken.error.log  # the job's log tail
    nan = read_result(store.path("mock", "vggss", "nan.toy.seed0"))
    assert nan.error.type == "FloatingPointError" and "non-finite" in nan.error.message
    typo = read_result(store.path("mock", "vggss", "typo.toy.seed0"))
    assert typo.error.stage == "config" and "dimm" in typo.error.message
    # errors are retried on the next run (only-missing), successes are kept
    again = run_suite(suite, tmp_path / "results", progress=False)
    assert len(again.failed) == 3 and again.cached == ["vggss/good.toy.seed0"]


def test_cli_benchmark_then_leaderboard(tmp_path, data_root, capsys):
    import yaml

    from avbench.cli import main

    suite_file = tmp_path / "mock.yaml"
    suite_file.write_text(yaml.safe_dump(suite_dict(data_root)))
    results, out = tmp_path / "results", tmp_path / "leaderboards"
    code = main(["benchmark", "--suite", str(suite_file), "--results", str(results),
                 "--set", "seeds=[0]", "--set", "trainer_overrides.max_epochs=1", "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0 and "ok: 6  failed: 0  skipped: 4" in text
    assert main(["leaderboard", "--results", str(results), "--out", str(out)]) == 0
    overview = (out / "overview.md").read_text()
    assert "tiny-a" in overview and "full-image (trivial)" in overview
    assert {p.name for p in out.iterdir()} >= {"overview.md", "overview.csv", "vggss.md",
                                              "vggss.csv", "vegas-retrieval.md"}
    assert "train/test leak" in (out / "vggss.md").read_text()


def test_unknown_benchmark_or_dataset_in_suite_is_rejected(data_root):
    with pytest.raises(ValueError, match="unknown benchmarks"):
        Suite.model_validate(suite_dict(data_root, benchmarks={"imagenet": {"dataset": "toy"}}))
    with pytest.raises(ValueError, match="not a suite dataset"):
        Suite.model_validate(suite_dict(data_root, benchmarks={"vggss": {"dataset": "nope"}}))


def test_runner_rejects_unknown_overwrite_mode(tmp_path, data_root):
    with pytest.raises(ValueError, match="overwrite"):
        Runner(Suite.model_validate(suite_dict(data_root)), tmp_path, overwrite="sometimes")


@pytest.mark.skipif(os.environ.get("AVBENCH_SKIP_WANDB") == "1", reason="wandb test disabled")
def test_wandb_offline_run_holds_config_and_metrics(tmp_path, data_root, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    models = [{"name": "tiny-a", "class_path": f"{MOD}.TinyAV"}]
    suite = Suite.model_validate(suite_dict(data_root, models=models, seeds=(0,), baselines=[],
                                            benchmarks={"vggss": {"dataset": "toy"}}))
    summary = run_suite(suite, tmp_path / "results", progress=False)
    assert summary.exit_code == 0
    rec = read_result(ResultStore(tmp_path / "results").path("mock", "vggss", "tiny-a.toy.seed0"))
    assert rec.wandb and rec.wandb.run_id and rec.wandb.group == "mock"
    run_dirs = list((tmp_path / "results" / "wandb").glob(f"offline-run-*-{rec.wandb.run_id}"))
    assert len(run_dirs) == 1
    assert ResultStore(tmp_path / "results").load_all()[1] == []  # W&B files are not results
    # the offline run directory holds the config and the final metrics: in the run's
    # transaction log (run-<id>.wandb, uploaded by `wandb sync`) and in files/avbench-final.json
    wanted = f'"class_path":"{MOD}.TinyAV"'.encode()  # resolved config
    for _ in range(60):  # the W&B service flushes the log asynchronously after finish()
        log = (run_dirs[0] / f"run-{rec.wandb.run_id}.wandb").read_bytes()
        if wanted in log and b"seed0" in log:
            break
        time.sleep(0.25)
    assert wanted in log
    assert b"seed0" in log and b"tiny-a" in log and b"toy" in log  # tags
    final = json.loads((run_dirs[0] / "files" / "avbench-final.json").read_text())
    assert final["run_id"] == rec.wandb.run_id and final["status"] == "ok"
    assert final["config"]["model"]["class_path"] == f"{MOD}.TinyAV"
    assert final["config"]["select"] == {"monitor": "val/loss", "mode": "min"}
    assert final["metrics"]["vggss/ap50"] == pytest.approx(rec.metrics["ap50"])
    assert final["metrics"]["vggss/a2v_r1"] == pytest.approx(rec.metrics["a2v_r1"])

@pytest.mark.ddp
@pytest.mark.slow  # ~30 s: two spawned processes import torch
def test_two_process_cpu_ddp_job(tmp_path, data_root):
    """devices: 2 + strategy: ddp fits in two gloo processes (ddp_spawn); eval in the main one."""
    models = [{"name": "tiny-a", "class_path": f"{MOD}.TinyAV"}]
    d = suite_dict(data_root, models=models, seeds=(0,), baselines=[],
                   benchmarks={"vggss": {"dataset": "toy"}})
    d["trainer"] |= {"devices": 2, "strategy": "ddp"}
    summary = run_suite(Suite.model_validate(d), tmp_path / "results", progress=False)
    assert summary.exit_code == 0, summary.text()
    rec = read_result(ResultStore(tmp_path / "results").path("mock", "vggss", "tiny-a.toy.seed0"))
    assert rec.environment.devices == 2 and rec.config["trainer"]["strategy"] == "ddp"
    assert rec.selection.best_score is not None and Path(rec.selection.checkpoint).exists()
    assert rec.metrics["ap50"] is not None and rec.timings.eval_samples == 8


class TinyWarmup(TinyAV):
    """Warm-up then a much larger loss: a plain val/loss monitor would pick a warm-up epoch.

    The warm-up is declared through the fit-stage API (``select_after_epochs``)."""

    def __init__(self, warmup_epochs: int = 2, **kw: Any) -> None:
        super().__init__(**kw)
        self.warmup_epochs = warmup_epochs

    def configure_fit_stages(self):
        return [FitStage(select_after_epochs=self.warmup_epochs)]

    def _loss(self, batch):
        loss = super()._loss(batch)
        return loss if self.current_epoch < self.warmup_epochs else loss + 100.0


def test_per_model_trainer_overrides_and_selection_after_warmup(tmp_path, data_root):
    models = [
        {"name": "tiny-a", "class_path": f"{MOD}.TinyAV"},
        {"name": "tiny-warm", "class_path": f"{MOD}.TinyWarmup",
         "trainer_overrides": {"max_epochs": 4}},
    ]
    suite = Suite.model_validate(suite_dict(data_root, models=models, seeds=(0,),
                                            baselines=[]))
    summary = run_suite(suite, tmp_path / "results", progress=False)
    assert summary.exit_code == 0
    store = ResultStore(tmp_path / "results")
    plain = read_result(store.path("mock", "vggss", "tiny-a.toy.seed0"))
    warm = read_result(store.path("mock", "vggss", "tiny-warm.toy.seed0"))
    assert plain.config["trainer"]["max_epochs"] == 1
    assert warm.config["trainer"]["max_epochs"] == 4
    # epochs 0-1 are warm-up (val/loss ~1.4), epochs 2-3 have the +100 term: the
    # selected checkpoint is a post-warm-up epoch although its val/loss is larger
    assert warm.selection.best_epoch in (2, 3) and warm.selection.best_score > 100
    assert "after 2 warm-up epochs" in warm.selection.rule and warm.selection.stage == "fit"
    assert plain.selection.best_epoch == 0 and "warm-up" not in plain.selection.rule


def test_parallel_jobs_match_a_sequential_run(tmp_path, data_root):
    """parallel_jobs=2 fits in 2 spawned workers: same results, same summary, as one by one."""
    seq_suite = Suite.model_validate(suite_dict(data_root, baselines=["center-prior"]))
    par_suite = Suite.model_validate(suite_dict(data_root, baselines=["center-prior"],
                                                parallel_jobs=2))
    seq = run_suite(seq_suite, tmp_path / "seq", progress=False)
    par = run_suite(par_suite, tmp_path / "par", progress=False)
    assert par.exit_code == 0 and not par.failed
    assert sorted(par.ok) == sorted(seq.ok) and len(par.ok) == 4 + 2 + 1
    assert sorted(par.skipped) == sorted(seq.skipped)
    s_store, p_store = ResultStore(tmp_path / "seq"), ResultStore(tmp_path / "par")
    for bench, jid in (("vggss", "tiny-a.toy.seed1"), ("vegas-retrieval", "tiny-b.toy.seed0")):
        a = read_result(s_store.path("mock", bench, jid))
        b = read_result(p_store.path("mock", bench, jid))
        assert b.fingerprint == a.fingerprint  # parallelism is not part of the result's identity
        assert b.metrics == pytest.approx(a.metrics, abs=1e-4)
    # a rerun finds everything up to date, in parallel too
    again = run_suite(par_suite, tmp_path / "par", progress=False)
    assert sorted(again.cached) == sorted(par.ok) and not again.ok


def test_parallel_jobs_refuse_multi_device_trainers(tmp_path, data_root):
    d = suite_dict(data_root, baselines=[], parallel_jobs=2)
    d["trainer"] = {**d["trainer"], "devices": 2, "strategy": "ddp"}
    with pytest.raises(ValueError, match="parallel_jobs=2 needs single-device jobs"):
        run_suite(Suite.model_validate(d), tmp_path / "r", progress=False)


def test_suite_defined_benchmark_is_registered_run_and_stored(tmp_path, data_root, request):
    """``define_benchmarks:`` declares a benchmark as data; load_suite registers it."""
    import yaml

    from avbench.benchmarks import BENCHMARKS
    from avbench.runner.suite import load_suite

    # the registry is global: leave it as the builtin-dump tests expect it
    request.addfinalizer(lambda: BENCHMARKS.pop("toy-suite-retrieval", None))

    defined = {"name": "toy-suite-retrieval", "dataset": "toy", "split": "test",
               "tasks": [{"task": "retrieval"}], "metrics": ["a2v_r1", "v2a_r1"],
               "main_score": "v2a_r1", "description": "declared in a suite file"}
    d = suite_dict(data_root, models=[{"name": "tiny-a", "class_path": f"{MOD}.TinyAV"}],
                   seeds=(0,), baselines=["random-embedding"],
                   benchmarks={"toy-suite-retrieval": {"dataset": "toy"}},
                   define_benchmarks=[defined])
    suite_file = tmp_path / "defined.yaml"
    suite_file.write_text(yaml.safe_dump(d))
    suite = load_suite(suite_file)
    assert BENCHMARKS["toy-suite-retrieval"].main_score == "v2a_r1"
    summary = run_suite(suite, tmp_path / "results", progress=False)
    assert summary.exit_code == 0 and sorted(summary.ok) == [
        "toy-suite-retrieval/baseline.random-embedding", "toy-suite-retrieval/tiny-a.toy.seed0"]
    rec = read_result(ResultStore(tmp_path / "results").path(
        "mock", "toy-suite-retrieval", "tiny-a.toy.seed0"))
    assert rec.main_score == "v2a_r1" and rec.main_value == rec.metrics["v2a_r1"]
    assert rec.lower_is_better == [] and rec.higher_is_better
    # loading the same suite again is fine (equal benchmark); a different one under that name is not
    assert load_suite(suite_file).benchmarks.keys() == {"toy-suite-retrieval"}
    with pytest.raises(KeyError, match="toy-suite-retrieval"):
        load_suite(suite_file, {"define_benchmarks": [defined | {"main_score": "a2v_r1"}]})
    # without the definition the name would be unknown
    with pytest.raises(ValueError, match="unknown benchmarks"):
        Suite.model_validate(suite_dict(data_root, benchmarks={"toy-undeclared": {"dataset": "toy"}}))


def test_the_training_batch_plan_is_stored_with_the_result(data_root, tmp_path):
    """Issue 13: the global batch, the per-device batch derived from it and the world size
    are in every model result (timings.train_batch)."""
    d = suite_dict(data_root, models=[{"name": "tiny-a", "class_path": f"{MOD}.TinyAV"}],
                   seeds=(0,), baselines=[])
    d["datasets"] = [{"name": "toy", "class_path": "test_fit_stages.ToyAVDataModule",  # AVDataModule
                      "init_args": {"root": str(data_root)}}]
    d["benchmarks"] = {"vggss": {"dataset": "toy"}}
    summary = run_suite(Suite.model_validate(d), tmp_path / "results", progress=False)
    assert summary.exit_code == 0, summary.text()
    rec = read_result(ResultStore(tmp_path / "results").path("mock", "vggss", "tiny-a.toy.seed0"))
    assert rec.timings.train_batch == {"global_batch_size": 8, "per_device_batch_size": 8,
                                       "world_size": 1, "batch_size_source": "per_device"}
