"""Fitting one job: its fit stages, VAL selection in the final stage, reuse of a finished fit.

:func:`fit_job` builds the model and the training datamodule from their
resolved configs (after ``seed_everything(job seed)``), then either restores
a finished fit of the same job fingerprint (``<work>/fit.json``: a rerun after
a crash in evaluation does not refit) or runs the model's stages
(:mod:`avbench.runner.fit_stages`, resuming after the last finished stage),
with a :class:`~avbench.runner.checkpointing.AfterWarmupCheckpoint` on the
suite's VAL monitor in the final stage only. The best VAL checkpoint (or,
when the monitor was never logged, the last weights) is loaded into the model
and described by a :class:`~avbench.runner.results.SelectedCheckpoint`.

Every stage's Trainer carries a :class:`~avbench.runner.fit_checks.FitChecks`:
a stage without an optimizer step fails the job (``FitCheckError``); a VAL set
too small to select on, a constant monitor or a selection stuck at the first
selectable epoch of the final stage are stored as ``SelectedCheckpoint.warnings``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L

from avbench.atomic_io import atomic_write_text
from avbench.models.base import AVModel, FitStage
from avbench.runner.checkpointing import AfterWarmupCheckpoint, restore_weights
from avbench.runner.fit_checks import FitChecks
from avbench.runner.fit_stages import FitStageProgress, StagedFit, run_fit_stages
from avbench.runner.instantiation import instantiate, model_and_data_bases
from avbench.runner.results import SelectedCheckpoint, Timings
from avbench.runner.suite import Job, SelectionConfig
from avbench.runner.trainers import (
    FiniteLossGuard,
    RunnerCallbacksCheck,
    config_callbacks,
    stage_trainer_kwargs,
)

log = logging.getLogger(__name__)

FIT_STATE = "fit.json"


@dataclass
class FitOutcome:
    """A fitted (or restored) model in eval mode, how its weights were chosen, and the cost."""

    model: AVModel
    selection: SelectedCheckpoint
    timings: Timings
    train_ids: list[str] | None


def _train_batch(dm: Any, trainer: L.Trainer | None, model: Any) -> dict[str, int | str] | None:
    """The datamodule's batch plan (global and per-device batch, world size), recomputed in
    this process when the fit ran in spawned workers (the plan is a pure function of them)."""
    resolve = getattr(dm, "resolve_batch_size", None)
    if resolve is None:
        return None
    plan = getattr(dm, "batch_plan", None) or resolve(
        trainer.world_size if trainer is not None else 1, model)
    return dict(plan)


def fit_job(job: Job, model_cfg: dict[str, Any], train_cfg: dict[str, Any],
            trainer_cfg: dict[str, Any], select: SelectionConfig, job_fp: str, work: Path,
            logger: Any = None) -> FitOutcome:
    """Fit ``job`` (see the module docstring); ``logger`` is the W&B logger or None.

    Raises:
        Exception: whatever instantiation or fitting raises; an exception while
            selecting the checkpoint carries ``avbench_stage = "select"``.
    """
    AVModel_, DM = model_and_data_bases()
    L.seed_everything(job.seed, workers=True, verbose=False)
    model = instantiate(model_cfg, AVModel_)
    dm = instantiate(train_cfg, DM)
    train_ids = _train_ids(dm)
    reused = _reuse(work / FIT_STATE, job_fp, model, job.id)
    if reused is not None:
        return FitOutcome(model, reused[0], reused[1], train_ids)

    ckpt_dir = work / "checkpoints"
    for old in ckpt_dir.glob("*.ckpt") if ckpt_dir.exists() else ():
        old.unlink()
    ckpt = AfterWarmupCheckpoint(dirpath=ckpt_dir, filename="best", monitor=select.monitor,
                                 mode=select.mode, save_top_k=1, save_last=False)
    guards: list[FiniteLossGuard] = []
    checks: list[FitChecks] = []

    def make_trainer(stage: FitStage, final: bool, extra: list[L.Callback]) -> L.Trainer:
        guard = FiniteLossGuard(select.monitor)
        guards.append(guard)
        checks.append(FitChecks(select.monitor, stage=stage.name))
        owned = [guard, checks[-1], *([ckpt] if final else [])]
        callbacks = [*config_callbacks(trainer_cfg), *owned, *extra, RunnerCallbacksCheck(owned)]
        return L.Trainer(**stage_trainer_kwargs(trainer_cfg, model, stage),
                         logger=logger if logger is not None else False, callbacks=callbacks,
                         default_root_dir=str(work), enable_checkpointing=final)

    staged = run_fit_stages(model, dm, make_trainer,
                            progress=FitStageProgress(work, job_fp), seed=job.seed)
    try:
        selection = _select(staged, ckpt, model, select, work, job.id)
        selection = _with_fit_warnings(selection, checks[-1], staged, job.id,
                                       selection.best_epoch if ckpt.best_model_path else None)
    except Exception as err:
        err.avbench_stage = "select"  # type: ignore[attr-defined]
        raise
    model.eval()
    # fit time includes stages finished by an earlier, interrupted run; the rate is this run's
    n = sum(g.samples for g in guards) or None
    timings = Timings(fit_seconds=staged.seconds + staged.reused_seconds, train_samples=n,
                      train_samples_per_second=rate(n, staged.seconds),
                      train_batch=_train_batch(dm, staged.trainer, model))
    atomic_write_text(work / FIT_STATE, json.dumps({
        "job_fingerprint": job_fp, "weights": selection.checkpoint,
        "selection": selection.model_dump(mode="json"),
        "timings": timings.model_dump(mode="json"),
    }, indent=1))
    return FitOutcome(model, selection, timings, train_ids)


def discard_unfinished_fit(work: Path, job_fp: str) -> None:
    """Remove the selection checkpoints of a fit that did not finish (a signal stopped it).

    Nothing refers to them (``fit.json`` is written, atomically, only after selection) and
    one may be half-written; finished stages (``stages/``, atomic) are kept for the rerun.
    A fit whose ``fit.json`` of fingerprint ``job_fp`` exists is finished: nothing is removed.
    """
    try:
        if json.loads((work / FIT_STATE).read_text()).get("job_fingerprint") == job_fp:
            return
    except (OSError, ValueError, AttributeError):
        pass
    for old in (work / "checkpoints").glob("*.ckpt"):
        old.unlink(missing_ok=True)
    (work / "last.ckpt").unlink(missing_ok=True)


def _reuse(state_file: Path, job_fp: str, model: AVModel,
           jid: str) -> tuple[SelectedCheckpoint, Timings] | None:
    """Restore a finished fit of the same fingerprint into ``model``; None when there is none."""
    if not state_file.exists():
        return None
    try:
        state = json.loads(state_file.read_text())
        if state.get("job_fingerprint") != job_fp or not Path(state["weights"]).exists():
            return None
        restore_weights(model, state["weights"])
        log.info("%s: reusing the finished fit in %s", jid, state_file.parent)
        timings = Timings.model_validate(state["timings"] | {"fit_reused": True})
        model.eval()
        return SelectedCheckpoint.model_validate(state["selection"]), timings
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        log.warning("%s: ignoring unusable fit state %s (%s)", jid, state_file, err)
        return None


def _select(staged: StagedFit, ckpt: AfterWarmupCheckpoint, model: AVModel,
            select: SelectionConfig, work: Path, jid: str) -> SelectedCheckpoint:
    """Load the best VAL checkpoint of the final stage (or the last weights) into ``model``."""
    trainer = staged.trainer
    assert trainer is not None
    final = staged.final
    multi = len(staged.stages) > 1
    best = ckpt.best_model_path
    if best and Path(best).exists():
        sd = restore_weights(model, best)
        score = ckpt.best_model_score
        if score is None:  # ddp_spawn: the score lives in the workers' callback state
            score = ((sd.get("callbacks") or {}).get(ckpt.state_key) or {}).get(
                "best_model_score")
        rule = f"best {select.monitor} ({select.mode}) on val"
        if final.select_after_epochs:
            rule += f", after {final.select_after_epochs} warm-up epochs"
        if multi:
            rule += f", within the final stage {final.name!r}"
        return SelectedCheckpoint(
            monitor=select.monitor, mode=select.mode,
            best_score=float(score) if score is not None else None,
            best_epoch=sd.get("epoch"), best_step=sd.get("global_step"),
            checkpoint=str(best), stage=final.name, rule=rule,
        )
    weights = str(work / "last.ckpt")
    trainer.save_checkpoint(weights, weights_only=True)
    log.warning("%s: no val checkpoint; evaluating the last weights", jid)
    return SelectedCheckpoint(monitor=select.monitor, mode=select.mode, checkpoint=weights,
                              best_epoch=trainer.current_epoch, best_step=trainer.global_step,
                              stage=final.name,
                              rule=f"last weights ({select.monitor} was never logged on val)")


def _with_fit_warnings(selection: SelectedCheckpoint, checks: FitChecks, staged: StagedFit,
                       jid: str, selected: int | None) -> SelectedCheckpoint:
    """``selection`` with the final stage's fit-check warnings (``selection.warnings``);
    ``selected`` is the epoch of the VAL-selected checkpoint (None: last weights)."""
    trainer = staged.trainer
    obs = checks.observations(trainer)
    first = min(staged.final.select_after_epochs, max(obs.epochs - 1, 0))
    found = [str(f) for f in checks.findings(trainer, selected_epoch=selected,
                                             first_selectable_epoch=first)]
    for w in found:
        log.warning("%s: %s", jid, w)
    return selection.model_copy(update={"warnings": [*selection.warnings, *found]})


def rate(n: int | None, seconds: float | None) -> float | None:
    """``n / seconds``, None when either is missing or zero."""
    if not n or not seconds or seconds <= 0:
        return None
    return n / seconds


def _train_ids(dm: Any) -> list[str] | None:
    """Training clip ids of a datamodule (for the leak check), None when unknown."""
    getter = getattr(dm, "dataset", None)
    if getter is None:
        return None
    try:
        ds = getter("train")
    except Exception:  # noqa: BLE001 - datamodules without a train split
        return None
    recs = getattr(ds, "records", None)
    if recs is None:
        return None
    ids = [getattr(r, "id", None) for r in recs]
    return [str(i) for i in ids if i]


__all__ = ["FIT_STATE", "FitOutcome", "discard_unfinished_fit", "fit_job", "rate"]
