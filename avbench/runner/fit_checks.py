"""Honest fit status: a fit that trained nothing, a VAL set too small to select on, a selection
that never moved past the first epoch.

Shared by the runner (:mod:`avbench.runner.fitting`) and ``avbench fit``. One
:class:`FitChecks` callback per ``Trainer.fit`` (one per fit stage) watches the fit;
:func:`check_fit` turns what it saw into :class:`FitFinding` s:

========================  =====  ==========================================================
code                      fatal  when
========================  =====  ==========================================================
``no-optimizer-step``     yes    the fit ended with ``trainer.global_step == 0`` (no training
                                 batch: e.g. ``drop_last`` with a batch larger than the split)
``val-missing``           no     the VAL monitor was never logged (selection keeps the last
                                 weights)
``val-too-small``         no     the largest VAL batch held fewer than ``min_val_batch`` (2)
                                 samples in one process: a contrastive loss over one clip has
                                 no negatives (it is 0.000 whatever the weights)
``val-monitor-constant``  no     the monitor had the same value on every one of >= 2 VAL epochs
``selection-first-epoch`` no     the selected checkpoint is the first selectable epoch of the
                                 final stage although later epochs ran
========================  =====  ==========================================================

A fatal finding raises :class:`FitCheckError` at ``on_fit_end`` (in the worker under
``ddp_spawn``; the exception reaches the caller). The others are warnings: the runner
stores them in ``SelectedCheckpoint.warnings`` and the result's ``warnings`` (shown in
the leaderboard notes); ``avbench fit`` logs them.

Under ``ddp_spawn`` the callback object in the main process never sees the fit, so at
``on_fit_end`` it publishes its observations into ``trainer.callback_metrics`` (keys
``fit_checks/<field>``), which Lightning copies back to the main process;
:meth:`FitChecks.observations` reads them from there.

Usage (``avbench fit``)::

    checks = FitChecks("val/loss")
    trainer = L.Trainer(..., callbacks=[checks])
    trainer.fit(model, datamodule=dm)            # raises FitCheckError without a step
    for finding in checks.findings(trainer, selected_epoch=best_epoch):
        log.warning("%s", finding)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

import lightning as L
import torch

#: prefix of the observations published into ``trainer.callback_metrics``
METRIC_PREFIX = "fit_checks/"
#: fewest samples a VAL batch needs for a batch-contrastive loss to mean anything
MIN_VAL_BATCH = 2

FindingCode = Literal["no-optimizer-step", "val-missing", "val-too-small",
                      "val-monitor-constant", "selection-first-epoch"]


@dataclass(frozen=True)
class FitFinding:
    """One problem of a fit: ``code`` (see the module table), a message, fatal or a warning."""

    code: FindingCode
    message: str
    fatal: bool = False

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class FitCheckError(RuntimeError):
    """A fit that must not be scored (e.g. no optimizer step); ``findings`` holds the reasons."""

    def __init__(self, findings: list[FitFinding]) -> None:
        super().__init__("; ".join(str(f) for f in findings))
        self.findings = findings


@dataclass
class FitObservations:
    """What one ``Trainer.fit`` did, as far as the checks need it.

    Attributes:
        optimizer_steps: ``trainer.global_step`` at the end of the fit.
        epochs: training epochs run (``trainer.current_epoch`` at the end).
        val_epochs: VAL epochs (sanity check excluded) that logged the monitor.
        largest_val_batch: samples in the largest VAL batch of one process (-1: no VAL batch).
        val_samples: VAL samples of one process in its largest VAL epoch (-1: no VAL batch).
        monitor_min: smallest monitor value over the VAL epochs (nan: never logged).
        monitor_max: largest monitor value over the VAL epochs (nan: never logged).
    """

    optimizer_steps: int = 0
    epochs: int = 0
    val_epochs: int = 0
    largest_val_batch: int = -1
    val_samples: int = -1
    monitor_min: float = math.nan
    monitor_max: float = math.nan


def _batch_size(batch: Any) -> int | None:
    """Samples in a batch: ``len(batch["id"])``, else the first tensor's first dimension."""
    if isinstance(batch, dict):
        if "id" in batch:
            return len(batch["id"])
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for x in batch:
            n = _batch_size(x)
            if n is not None:
                return n
        return None
    if isinstance(batch, torch.Tensor) and batch.ndim > 0:
        return int(batch.shape[0])
    return None


def check_fit(obs: FitObservations, *, monitor: str | None, stage: str | None = None,
              selected_epoch: int | None = None, first_selectable_epoch: int = 0,
              min_val_batch: int = MIN_VAL_BATCH) -> list[FitFinding]:
    """The findings of one fit (module table), fatal ones first.

    Args:
        obs: what the fit did.
        monitor: the VAL metric selection uses (None: no VAL checks).
        stage: the fit stage's name, for the messages.
        selected_epoch: the epoch of the selected checkpoint (None: no selection check).
        first_selectable_epoch: the first epoch selection considers (the final stage's
            ``select_after_epochs``, capped at its last epoch).
        min_val_batch: see :data:`MIN_VAL_BATCH`.
    """
    where = f" in fit stage {stage!r}" if stage else ""
    out: list[FitFinding] = []
    if obs.optimizer_steps <= 0:
        out.append(FitFinding("no-optimizer-step", (
            f"no optimizer step{where} after {obs.epochs} epoch(s): no training batch reached "
            "the optimizer (a batch larger than the training split with drop_last, an empty "
            "split, or limit_train_batches=0); the model is untrained"), fatal=True))
    if monitor is None:
        return out
    if obs.val_epochs == 0:
        out.append(FitFinding("val-missing", f"{monitor} was never logged on val{where}; "
                              "selection kept the last weights"))
        return out
    if 0 <= obs.largest_val_batch < min_val_batch:
        out.append(FitFinding("val-too-small", (
            f"val batches{where} hold at most {obs.largest_val_batch} sample(s) "
            f"({obs.val_samples} val sample(s) per process): {monitor} over fewer than "
            f"{min_val_batch} samples has no negatives, so selection on it is meaningless")))
    lo, hi = obs.monitor_min, obs.monitor_max
    if obs.val_epochs >= 2 and math.isfinite(lo) and math.isfinite(hi) and (
            hi - lo <= 1e-9 * max(1.0, abs(hi))):
        out.append(FitFinding("val-monitor-constant", (
            f"{monitor} was {hi:.6g} on all {obs.val_epochs} val epochs{where}: selection "
            "had nothing to choose between")))
    last = obs.epochs - 1
    if selected_epoch is not None and selected_epoch <= first_selectable_epoch < last:
        out.append(FitFinding("selection-first-epoch", (
            f"the selected checkpoint is epoch {selected_epoch}, the first selectable one of "
            f"{obs.epochs} epochs{where}: {monitor} never improved after it")))
    return out


class FitChecks(L.Callback):
    """Watches one ``Trainer.fit`` for :func:`check_fit` (module docstring).

    Args:
        monitor: the VAL metric selection uses (None: skip the VAL checks).
        stage: the fit stage's name, for messages.
        min_val_batch: see :data:`MIN_VAL_BATCH`.
        raise_on_fatal: raise :class:`FitCheckError` at ``on_fit_end`` on a fatal finding.

    Module-level and picklable: ``ddp_spawn`` ships copies to the workers.
    """

    def __init__(self, monitor: str | None = "val/loss", *, stage: str | None = None,
                 min_val_batch: int = MIN_VAL_BATCH, raise_on_fatal: bool = True) -> None:
        self.monitor = monitor
        self.stage = stage
        self.min_val_batch = min_val_batch
        self.raise_on_fatal = raise_on_fatal
        self._obs = FitObservations()
        self._epoch_samples = 0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._obs = FitObservations()

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_samples = 0

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                                outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        if trainer.sanity_checking:
            return
        n = _batch_size(batch)
        if n is not None:
            self._epoch_samples += n
            self._obs.largest_val_batch = max(self._obs.largest_val_batch, n)
            self._obs.val_samples = max(self._obs.val_samples, self._epoch_samples)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor is None:
            return
        v = trainer.callback_metrics.get(self.monitor)
        if v is None:
            return
        v = float(v)
        o = self._obs
        o.val_epochs += 1
        o.monitor_min = v if math.isnan(o.monitor_min) else min(o.monitor_min, v)
        o.monitor_max = v if math.isnan(o.monitor_max) else max(o.monitor_max, v)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._obs.optimizer_steps = int(trainer.global_step)
        self._obs.epochs = int(trainer.current_epoch)
        for f in fields(FitObservations):
            trainer.callback_metrics[METRIC_PREFIX + f.name] = torch.tensor(
                float(getattr(self._obs, f.name)), dtype=torch.float64)
        fatal = [f for f in check_fit(self._obs, monitor=None, stage=self.stage) if f.fatal]
        if fatal and self.raise_on_fatal:
            raise FitCheckError(fatal)

    def observations(self, trainer: L.Trainer | None = None) -> FitObservations:
        """What the fit did: from ``trainer.callback_metrics`` when published there (also
        under ``ddp_spawn``), else this callback's own record."""
        metrics = trainer.callback_metrics if trainer is not None else {}
        if METRIC_PREFIX + "optimizer_steps" not in metrics:
            return FitObservations(**vars(self._obs))
        kw: dict[str, Any] = {}
        for f in fields(FitObservations):
            v = float(metrics[METRIC_PREFIX + f.name])
            kw[f.name] = v if f.type in (float, "float") else int(v)
        return FitObservations(**kw)

    def findings(self, trainer: L.Trainer | None = None, *, selected_epoch: int | None = None,
                 first_selectable_epoch: int = 0) -> list[FitFinding]:
        """:func:`check_fit` on :meth:`observations` (arguments as there)."""
        return check_fit(self.observations(trainer), monitor=self.monitor, stage=self.stage,
                         selected_epoch=selected_epoch,
                         first_selectable_epoch=first_selectable_epoch,
                         min_val_batch=self.min_val_batch)


__all__ = [
    "METRIC_PREFIX",
    "MIN_VAL_BATCH",
    "FitCheckError",
    "FitChecks",
    "FitFinding",
    "FitObservations",
    "check_fit",
]
