"""docs/architecture.md, "Add a model", as a test.

A method is one :class:`AVModel` subclass: ``meta`` (paper, capabilities),
the loss terms as a dict logged by name (:meth:`AVModel.log_losses`), the
capability methods, and optionally its fit stages. Nothing else in the
package changes: ``avbench fit`` trains it from a class path, the runner fits,
selects on val and evaluates it on every benchmark its capabilities serve,
and the leaderboard shows it. The test also checks that the guide's model
learns: its val loss falls and its retrieval beats random embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from test_runner_core import suite_dict
from torch import nn

from avbench.models.base import AVModel, FitStage, ModelMeta
from avbench.nn.frontends import LogMelSpectrogram
from avbench.nn.losses import info_nce

MOD = __name__


class GuideAV(AVModel):
    """Guide example: global audio/visual embeddings with a symmetric InfoNCE.

    Paper: none (a test model). Loss (eq. 1 of the guide): ``InfoNCE(a, v) + InfoNCE(v, a)``
    at temperature ``tau``; weights are config knobs.
    """

    meta = ModelMeta(name="guide-av", paper="avbench guide", year=2026,
                     capabilities=frozenset({"embed", "localize"}))

    def __init__(self, dim: int = 16, tau: float = 0.1, warmup_epochs: int = 0,
                 lr: float = 1e-2) -> None:
        super().__init__(lr=lr)
        self.save_hyperparameters()
        self.visual = nn.Conv2d(3, dim, 3, padding=1)
        self.frontend = LogMelSpectrogram(n_mels=32)  # the model owns its audio front-end
        self.audio = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, dim))
        self.tau = tau
        self.warmup_epochs = warmup_epochs

    # --- how it trains ---------------------------------------------------------------
    def configure_fit_stages(self) -> list[FitStage]:
        """One stage; selection skips the warm-up epochs (none by default)."""
        return [FitStage(select_after_epochs=self.warmup_epochs)]

    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        e = self.embed(batch)
        a2v = info_nce(e["audio"], e["visual"], self.tau, gather=True)
        v2a = info_nce(e["visual"], e["audio"], self.tau, gather=True)
        return {"total": a2v + v2a, "a2v": a2v, "v2a": v2a}

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.compute_losses(batch)
        self.log_losses(losses, "train", len(batch["id"]))
        return losses["total"]

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self.log_losses(self.compute_losses(batch), "val", len(batch["id"]))

    # --- what it can do (meta.capabilities) ------------------------------------------
    def _maps(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        v = F.normalize(self.visual(batch["image"]), dim=1)  # [B,D,H,W]
        mel = self.frontend(batch["audio"]).mean(-1)[:, 0]  # [B,32] time-averaged log-mel
        a = F.normalize(self.audio(mel), dim=1)  # [B,D]
        return v, a

    def embed(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        v, a = self._maps(batch)
        return {"audio": a, "visual": F.normalize(v.mean((2, 3)), dim=1)}

    def localize(self, batch: Mapping[str, Any]) -> torch.Tensor:
        v, a = self._maps(batch)
        return torch.einsum("bdhw,bd->bhw", v, a)  # [B,h,w] cosine map


@pytest.fixture(autouse=True)
def _no_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr("sys.argv", ["avbench"])


def test_avbench_fit_trains_the_new_model_from_its_class_path(tmp_path):
    from test_guide_add_dataset import write_toyclips

    from avbench.cli import main

    write_toyclips(tmp_path / "toyclips", 48)  # the layout of the dataset guide
    args = ["fit", "--model", f"{MOD}.GuideAV", "--data", "test_guide_add_dataset.ToyClipsDataModule",
            "--data.root", str(tmp_path / "toyclips"), "--data.image_size", "32",
            "--data.batch_size", "8", "--data.num_workers", "0", "--trainer.max_epochs", "4",
            "--trainer.accelerator", "cpu",
            "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
            "--trainer.logger.save_dir", str(tmp_path / "logs"), "--trainer.logger.version", "0",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_checkpointing", "false",
            "--trainer.default_root_dir", str(tmp_path / "fit"), "--seed_everything", "0"]
    assert main(args) == 0
    import pandas as pd

    log = pd.read_csv(tmp_path / "logs" / "lightning_logs" / "version_0" / "metrics.csv")
    val = log.dropna(subset=["val/loss"]).sort_values("epoch")["val/loss"].tolist()
    assert len(val) == 4 and val[-1] < val[0] - 0.1  # every term logged by name; it learns
    assert {"train/loss_a2v_epoch", "val/loss_v2a"} <= set(log.columns)


def test_the_runner_fits_selects_and_scores_the_new_model(tmp_path):
    from avbench.runner.results import ResultStore, read_result
    from avbench.runner.runner import run_suite
    from avbench.runner.suite import Suite

    root = tmp_path / "data"
    root.mkdir()
    d = suite_dict(root, models=[{"name": "guide-av", "class_path": f"{MOD}.GuideAV"}],
                   seeds=(0,), baselines=["random-embedding"],
                   benchmarks={"vegas-retrieval": {"class_path": "test_runner_core.TinyDataModule",
                                                   "init_args": {"root": str(root)}}})
    d["trainer"] |= {"max_epochs": 6, "limit_train_batches": None, "limit_val_batches": None}
    d["datasets"][0]["init_args"] |= {"leak": 0, "n_train": 32}
    summary = run_suite(Suite.model_validate(d), tmp_path / "results", progress=False)
    assert summary.exit_code == 0, summary.text()

    store = ResultStore(tmp_path / "results")
    rec = read_result(store.path("mock", "vegas-retrieval", "guide-av.toy.seed0"))
    chance = read_result(store.path("mock", "vegas-retrieval", "baseline.random-embedding"))
    assert rec.ok and rec.selection is not None and rec.selection.stage == "fit"
    # it learns: retrieval by class (4 classes, audio pitch <-> object colour) beats chance
    assert rec.main_value > chance.main_value + 0.2
