"""Fit stages, model trainer arguments and callbacks, through the runner and `avbench fit`.

A toy two-stage model (test code only): stage "encoder" trains the encoders, its end
hook fills a prototype bank (a persistent buffer) from the training data; stage
"refine" trains only the head with a loss that needs the bank and fails loudly
without it. Its val loss carries +100 in "refine", so a selection made outside the
final stage would show a score below 100.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from test_runner_core import TinyAV
from torch import nn
from toy_clips import N_CLASSES, ListDataset, toy_clips
from toy_clips import SIZE as S

from avbench.data.datamodules import AVDataModule
from avbench.models.base import FitStage, ModelMeta, check_fit_stages
from avbench.runner.results import ResultStore, read_result
from avbench.runner.runner import run_suite
from avbench.runner.suite import Suite

MOD = __name__
D = 8

#: what the toy models did, in order (module-level: the runner runs jobs in this process)
EVENTS: list[tuple[str, Any]] = []
#: make the "refine" stage raise once (a kill between the stages)
FAIL_REFINE_ONCE = {"armed": False}


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr("sys.argv", ["avbench"])
    EVENTS.clear()
    FAIL_REFINE_ONCE["armed"] = False


# --- data ------------------------------------------------------------------------------
class ToyAVDataModule(AVDataModule):
    """Clips with a square sounding object whose quadrant and tone follow the label."""

    def __init__(self, root: str, batch_size: int = 8, num_workers: int = 0,
                 n_train: int = 16) -> None:
        super().__init__(root=root, batch_size=batch_size, num_workers=num_workers,
                         image_size=S)
        self.n = {"train": n_train, "val": 8, "test": 8}

    def build_dataset(self, split: str) -> ListDataset:
        return ListDataset(toy_clips(split, self.n[split]))


# --- models ----------------------------------------------------------------------------
class ToyAV(TinyAV):
    """Contrastive encoders with embed + localize (one default stage): the runner tests' model."""

    meta = ModelMeta(name="toy-av", paper="test", year=2026,
                     capabilities=frozenset({"embed", "localize"}))

    def __init__(self, lr: float = 1e-2) -> None:
        super().__init__(dim=D, lr=lr)

    def _contrastive(self, batch):
        return TinyAV._loss(self, batch)


class TwoStageToy(ToyAV):
    """Stage "encoder" (2 epochs, encoders, lr 1e-2) -> bank hook -> stage "refine"
    (3 epochs, head only, lr 5e-3) whose loss needs the bank."""

    def __init__(self, lr: float = 1e-2) -> None:
        super().__init__(lr=lr)
        self.head = nn.Linear(D, D)
        self.register_buffer("prototypes", torch.zeros(N_CLASSES, D))
        self.register_buffer("bank_ready", torch.tensor(False))

    def configure_fit_stages(self):
        return [
            FitStage(name="encoder", max_epochs=2, trainable=("visual", "audio"),
                     end_hook="fit_bank"),
            FitStage(name="refine", max_epochs=3, trainable=("head",), lr=5e-3,
                     trainer_arguments={"gradient_clip_val": 0.5}),
        ]

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        return {"log_every_n_steps": 3}

    @torch.no_grad()
    def fit_bank(self, datamodule) -> None:
        """Mean audio embedding per class over the training set (not gradient descent)."""
        sums, counts = torch.zeros(N_CLASSES, D), torch.zeros(N_CLASSES)
        for batch in datamodule.train_dataloader():
            a = self.embed(batch)["audio"]
            sums.index_add_(0, batch["label"], a)
            counts.index_add_(0, batch["label"], torch.ones(len(a)))
        self.prototypes.copy_(F.normalize(sums / counts.clamp(min=1)[:, None], dim=1))
        self.bank_ready.fill_(True)
        EVENTS.append(("hook", self.prototypes.clone()))

    def _loss(self, batch):
        stage = self.fit_stage.name if self.fit_stage is not None else "refine"
        if stage == "encoder":
            return self._contrastive(batch)
        if not bool(self.bank_ready):
            raise RuntimeError("refine needs the prototype bank of the encoder stage")
        a = self.head(self.embed(batch)["audio"])
        logits = F.normalize(a, dim=1) @ self.prototypes.T / 0.1
        return F.cross_entropy(logits, batch["label"]) + 100.0

    def on_train_start(self) -> None:
        if self.fit_stage.name == "refine" and FAIL_REFINE_ONCE["armed"]:
            FAIL_REFINE_ONCE["armed"] = False
            raise RuntimeError("simulated kill at the start of the refine stage")
        opt = self.trainer.optimizers[0]
        EVENTS.append(("start", {
            "stage": self.fit_stage.name,
            "max_epochs": self.trainer.max_epochs,
            "trainable": sorted(n for n, p in self.named_parameters() if p.requires_grad),
            "optimised": sum(len(g["params"]) for g in opt.param_groups),
            "lr": opt.param_groups[0]["lr"],
            "log_every_n_steps": self.trainer.log_every_n_steps,
            "gradient_clip_val": self.trainer.gradient_clip_val,
            "bank_ready": bool(self.bank_ready),
            "visual": self.visual.weight.detach().clone(),
        }))

    def on_train_epoch_end(self) -> None:
        EVENTS.append(("epoch", (self.fit_stage.name, self.current_epoch)))


class ConfigCallback(L.Callback):
    """A callback given in a trainer config (class_path/init_args)."""

    def __init__(self, tag: str = "config") -> None:
        self.tag = tag

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        EVENTS.append((self.tag, trainer.current_epoch))


class WeightEMA(L.Callback):
    """An exponential moving average of the weights, from the model's configure_callbacks."""

    def __init__(self, decay: float = 0.5) -> None:
        self.decay = decay
        self.shadow: dict[str, torch.Tensor] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        for n, p in pl_module.named_parameters():
            old = self.shadow.get(n, p.detach().clone())
            self.shadow[n] = self.decay * old + (1 - self.decay) * p.detach()

    def on_train_end(self, trainer, pl_module) -> None:
        EVENTS.append(("ema", {n: t.clone() for n, t in self.shadow.items()}))


class ToyWithCallbacks(ToyAV):
    def configure_callbacks(self):
        return [WeightEMA()]

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        return {"limit_train_batches": 1}  # over the suite's 2


class ToyWithCheckpoint(ToyAV):
    def configure_callbacks(self):
        from lightning.pytorch.callbacks import ModelCheckpoint

        return [ModelCheckpoint(monitor="val/loss")]


class ToyWarmupAttributeOnly(ToyAV):
    """An undeclared ``warmup_epochs`` attribute: selection must ignore it (no getattr)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.warmup_epochs = 5


# --- helpers ---------------------------------------------------------------------------
def _suite(root: Path, model: str, trainer_extra: dict | None = None) -> Suite:
    return Suite.model_validate({
        "name": "stages",
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": 1,
                    "limit_train_batches": 2, "limit_val_batches": 1,
                    "num_sanity_val_steps": 0, "enable_progress_bar": False,
                    **(trainer_extra or {})},
        "seeds": [0],
        "models": [{"name": "toy", "class_path": f"{MOD}.{model}"}],
        "datasets": [{"name": "toy", "class_path": f"{MOD}.ToyAVDataModule",
                      "init_args": {"root": str(root)}}],
        "benchmarks": {"vggss": {"dataset": "toy"}},
    })


def _starts() -> list[dict[str, Any]]:
    return [e[1] for e in EVENTS if e[0] == "start"]


def _epochs() -> list[tuple[str, int]]:
    return [e[1] for e in EVENTS if e[0] == "epoch"]


def _assert_two_stages_ran(starts: list[dict[str, Any]]) -> None:
    enc, ref = starts
    assert (enc["stage"], enc["max_epochs"], ref["stage"], ref["max_epochs"]) == (
        "encoder", 2, "refine", 3)
    assert enc["trainable"] == ["audio.bias", "audio.weight", "visual.bias", "visual.weight"]
    assert ref["trainable"] == ["head.bias", "head.weight"]
    assert (enc["optimised"], ref["optimised"]) == (4, 2)  # the optimiser sees the trainable set
    assert enc["lr"] == pytest.approx(1e-2) and ref["lr"] == pytest.approx(5e-3)
    assert not enc["bank_ready"] and ref["bank_ready"]
    assert enc["log_every_n_steps"] == ref["log_every_n_steps"] == 3  # trainer_arguments
    assert (enc["gradient_clip_val"], ref["gradient_clip_val"]) == (None, 0.5)  # the stage's own


# --- declarations ------------------------------------------------------------------------
def test_stage_declarations_are_validated():
    model = TwoStageToy()
    assert [s.name for s in check_fit_stages(model.configure_fit_stages(), model)] == [
        "encoder", "refine"]
    assert check_fit_stages(ToyAV().configure_fit_stages()) == (FitStage(),)
    with pytest.raises(ValueError, match="duplicate"):
        check_fit_stages([FitStage(name="a"), FitStage(name="a")])
    with pytest.raises(ValueError, match="final stage cannot have an end_hook"):
        check_fit_stages([FitStage(end_hook="fit_bank")])
    with pytest.raises(ValueError, match="select_after_epochs applies to the final"):
        check_fit_stages([FitStage(name="a", select_after_epochs=1), FitStage(name="b")])
    with pytest.raises(ValueError, match="matches no parameter"):
        check_fit_stages([FitStage(trainable=("decoder",))], model)
    with pytest.raises(ValueError, match="not a method"):
        check_fit_stages([FitStage(name="a", end_hook="nope"), FitStage(name="b")], model)
    assert FitStage(max_steps=5).length() == {"max_epochs": -1, "max_steps": 5}
    assert FitStage().length() == {}
    assert FitStage(max_epochs=2, trainer_arguments={"precision": "bf16-mixed"}).trainer_kwargs() \
        == {"precision": "bf16-mixed", "max_epochs": 2, "max_steps": -1}
    with pytest.raises(ValueError, match="stage length"):
        FitStage(trainer_arguments={"max_epochs": 3})


# --- the runner --------------------------------------------------------------------------
def test_runner_runs_stages_in_order_selects_in_final_stage_and_stores_state(tmp_path):
    results = tmp_path / "results"
    summary = run_suite(_suite(tmp_path / "data", "TwoStageToy"), results, progress=False)
    assert summary.exit_code == 0, summary.text()
    _assert_two_stages_ran(_starts())
    assert _epochs() == [("encoder", 0), ("encoder", 1), ("refine", 0), ("refine", 1),
                         ("refine", 2)]
    # the encoders are frozen during "refine": their weights are those stage 1 ended with
    bank = next(e[1] for e in EVENTS if e[0] == "hook")
    rec = read_result(ResultStore(results).path("stages", "vggss", "toy.toy.seed0"))
    sel = rec.selection
    assert sel.stage == "refine" and "within the final stage 'refine'" in sel.rule
    assert sel.best_score > 100 and sel.best_epoch in (0, 1, 2)  # a refine epoch
    ckpt = torch.load(sel.checkpoint, map_location="cpu", weights_only=False)
    assert ckpt["fit_stages"] == {"stage": "refine", "finished": ["encoder"]}
    assert bool(ckpt["state_dict"]["bank_ready"])
    assert torch.equal(ckpt["state_dict"]["prototypes"], bank)
    assert torch.equal(ckpt["state_dict"]["visual.weight"], _starts()[1]["visual"])
    assert len(list(Path(sel.checkpoint).parent.glob("*.ckpt"))) == 1
    assert rec.timings.train_samples == (2 + 3) * 2 * 8  # 5 epochs x 2 batches x 8

    # a rerun of another benchmark reuses the fit: the bank comes back from the checkpoint
    EVENTS.clear()
    again = run_suite(_suite(tmp_path / "data", "TwoStageToy"), results, overwrite="always",
                      progress=False)
    assert again.exit_code == 0 and not _starts()
    rec2 = read_result(ResultStore(results).path("stages", "vggss", "toy.toy.seed0"))
    assert rec2.timings.fit_reused and rec2.metrics == pytest.approx(rec.metrics)


def test_runner_resumes_after_a_kill_between_stages(tmp_path):
    results = tmp_path / "results"
    suite = _suite(tmp_path / "data", "TwoStageToy")
    FAIL_REFINE_ONCE["armed"] = True
    first = run_suite(suite, results, progress=False)
    assert first.exit_code == 1
    failed = read_result(ResultStore(results).path("stages", "vggss", "toy.toy.seed0"))
    assert failed.error.stage == "fit" and "simulated kill" in failed.error.message
    work = ResultStore(results).work_dir("stages", "toy.toy.seed0")
    progress = json.loads((work / "fit_stages.json").read_text())
    assert [s["name"] for s in progress["finished"]] == ["encoder"]
    stage_ckpt = torch.load(progress["finished"][0]["checkpoint"], weights_only=False)
    assert stage_ckpt["fit_stages"] == {"stage": "encoder", "finished": []}
    bank = next(e[1] for e in EVENTS if e[0] == "hook")
    assert torch.equal(stage_ckpt["state_dict"]["prototypes"], bank)

    EVENTS.clear()
    second = run_suite(suite, results, progress=False)
    assert second.exit_code == 0, second.text()
    # stage 1 and its hook did not run again; stage 2 started from their state
    assert [s["stage"] for s in _starts()] == ["refine"] and not any(
        e[0] == "hook" for e in EVENTS)
    refine = _starts()[0]
    assert refine["bank_ready"] and refine["max_epochs"] == 3
    assert torch.equal(refine["visual"], stage_ckpt["state_dict"]["visual.weight"])
    rec = read_result(ResultStore(results).path("stages", "vggss", "toy.toy.seed0"))
    assert rec.ok and rec.selection.stage == "refine"
    ckpt = torch.load(rec.selection.checkpoint, weights_only=False)
    assert torch.equal(ckpt["state_dict"]["prototypes"], bank)


def test_runner_uses_config_callbacks_model_callbacks_and_trainer_arguments(tmp_path):
    cb = {"class_path": f"{MOD}.ConfigCallback", "init_args": {"tag": "from-config"}}
    suite = _suite(tmp_path / "data", "ToyWithCallbacks", {"callbacks": [cb], "max_epochs": 2})
    summary = run_suite(suite, tmp_path / "results", progress=False)
    assert summary.exit_code == 0, summary.text()
    assert [e for e in EVENTS if e[0] == "from-config"] == [("from-config", 0),
                                                          ("from-config", 1)]
    ema = next(e[1] for e in EVENTS if e[0] == "ema")
    assert set(ema) == {"visual.weight", "visual.bias", "audio.weight", "audio.bias"}
    rec = read_result(ResultStore(tmp_path / "results").path("stages", "vggss", "toy.toy.seed0"))
    assert rec.timings.train_samples == 2 * 1 * 8  # trainer_arguments: 1 batch per epoch
    assert rec.config["trainer"]["callbacks"] == [cb]  # part of the resolved config


def test_runner_refuses_foreign_checkpoint_callbacks(tmp_path):
    mc = {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint"}
    bad_cfg = run_suite(_suite(tmp_path / "d", "ToyAV", {"callbacks": mc}), tmp_path / "r1",
                        progress=False)
    assert bad_cfg.exit_code == 1
    rec = read_result(ResultStore(tmp_path / "r1").path("stages", "vggss", "toy.toy.seed0"))
    assert "selects the checkpoint itself" in rec.error.message
    bad_model = run_suite(_suite(tmp_path / "d", "ToyWithCheckpoint"), tmp_path / "r2",
                          progress=False)
    rec = read_result(ResultStore(tmp_path / "r2").path("stages", "vggss", "toy.toy.seed0"))
    assert bad_model.exit_code == 1 and "VAL selection is the runner's" in rec.error.message


def test_undeclared_warmup_attribute_does_not_change_selection(tmp_path):
    suite = _suite(tmp_path / "data", "ToyWarmupAttributeOnly", {"max_epochs": 2})
    assert run_suite(suite, tmp_path / "results", progress=False).exit_code == 0
    rec = read_result(ResultStore(tmp_path / "results").path("stages", "vggss", "toy.toy.seed0"))
    assert "warm-up" not in rec.selection.rule and rec.selection.stage == "fit"


# --- avbench fit -----------------------------------------------------------------------------
def _fit_argv(root: Path, out: Path, model: str = "TwoStageToy") -> list[str]:
    return ["fit", "--model.class_path", f"{MOD}.{model}",
            "--data.class_path", f"{MOD}.ToyAVDataModule", "--data.init_args.root", str(root),
            "--trainer.default_root_dir", str(out), "--trainer.accelerator", "cpu",
            "--trainer.devices", "1", "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.limit_train_batches", "2",
            "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0",
            "--trainer.max_epochs", "1", "--seed_everything", "0"]


def test_avbench_fit_runs_the_stages_and_resumes_after_a_kill(tmp_path):
    from avbench.cli import main

    argv = _fit_argv(tmp_path / "data", tmp_path / "out")
    FAIL_REFINE_ONCE["armed"] = True
    with pytest.raises(RuntimeError, match="simulated kill"):
        main(argv)
    assert [s["stage"] for s in _starts()] == ["encoder"]
    bank = next(e[1] for e in EVENTS if e[0] == "hook")
    assert not list((tmp_path / "out").rglob("checkpoints/*.ckpt"))  # none in stage 1

    EVENTS.clear()
    assert main(argv) == 0
    assert [s["stage"] for s in _starts()] == ["refine"] and not any(
        e[0] == "hook" for e in EVENTS)
    assert _starts()[0]["bank_ready"] and _starts()[0]["log_every_n_steps"] == 3
    # Lightning's default checkpoint, attached to the final stage only
    ckpts = list((tmp_path / "out").rglob("checkpoints/*.ckpt"))
    assert len(ckpts) == 1
    ckpt = torch.load(ckpts[0], weights_only=False)
    assert ckpt["fit_stages"] == {"stage": "refine", "finished": ["encoder"]}
    assert torch.equal(ckpt["state_dict"]["prototypes"], bank) and ckpt["epoch"] == 2

    # a fresh directory runs both stages in order, as the runner does
    EVENTS.clear()
    assert main(_fit_argv(tmp_path / "data", tmp_path / "fresh")) == 0
    _assert_two_stages_ran(_starts())


def test_avbench_fit_says_when_trainer_max_epochs_does_not_set_stage_lengths(tmp_path, caplog,
                                                                            capsys):
    from avbench.cli import main

    assert main(_fit_argv(tmp_path / "data", tmp_path / "out")) == 0
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("--trainer.max_epochs does not change TwoStageToy's stage lengths "
               "(encoder 2, refine 3)" in m for m in said), said
    # --ckpt_path cannot resume a multi-stage fit: a usage error, no traceback
    code = main([*_fit_argv(tmp_path / "data", tmp_path / "out2"), "--ckpt_path", "last"])
    err = capsys.readouterr().err
    assert code == 2 and "TwoStageToy fits in 2 stages" in err and "Traceback" not in err


def test_avbench_fit_single_stage_is_a_plain_fit_with_model_callbacks(tmp_path):
    from avbench.cli import main

    assert main(_fit_argv(tmp_path / "data", tmp_path / "out", "ToyWithCallbacks")) == 0
    assert any(e[0] == "ema" for e in EVENTS)  # configure_callbacks honoured
    ckpts = list((tmp_path / "out").rglob("checkpoints/*.ckpt"))
    assert len(ckpts) == 1 and "fit_stages" not in torch.load(ckpts[0], weights_only=False)


# --- end-of-stage checkpoints under DDP ------------------------------------------------------
class _RankTrainer:
    """What save_stage_checkpoint uses of a Trainer on one rank: Lightning writes on rank 0 only."""

    def __init__(self, rank: int) -> None:
        self.is_global_zero = rank == 0
        self.saved: list[Path] = []

    def save_checkpoint(self, path) -> None:
        self.saved.append(Path(path))
        if self.is_global_zero:
            torch.save({"state_dict": {"w": torch.ones(2)}}, path)


def test_stage_checkpoint_is_published_by_rank_zero_only(tmp_path):
    """A rank > 0 (script-launched DDP runs the stage loop on every rank) joins the save but
    must not move its own empty temporary file onto rank 0's complete checkpoint."""
    from avbench.runner.fit_stages import save_stage_checkpoint

    ckpt = tmp_path / "stages" / "0-encoder.ckpt"
    rank0, rank1 = _RankTrainer(0), _RankTrainer(1)
    save_stage_checkpoint(rank0, ckpt)
    save_stage_checkpoint(rank1, ckpt)  # after rank 0, as after Lightning's barrier
    assert rank1.saved  # every rank takes part in Trainer.save_checkpoint
    assert torch.equal(torch.load(ckpt)["state_dict"]["w"], torch.ones(2))
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["0-encoder.ckpt"]  # no leftovers
