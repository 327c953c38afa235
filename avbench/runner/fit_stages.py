"""Running a model's fit stages in order, with Lightning: one ``Trainer.fit`` per stage.

Shared by the runner (:mod:`avbench.runner.fitting`) and ``avbench fit``
(:mod:`avbench.cli`). The stages are the model's
:meth:`~avbench.models.base.AVModel.configure_fit_stages`; for each one
:func:`run_fit_stages`

1. sets the trainable parameters (``FitStage.trainable``) and
   ``model.fit_stage`` (read by ``configure_optimizers``);
2. asks the caller for the stage's Trainer (``make_trainer(stage, final,
   callbacks)``; the caller decides lengths, loggers and, for the final stage
   only, the checkpoint callbacks) and fits;
3. runs the stage's ``end_hook(datamodule)``;
4. with a :class:`FitStageProgress`, saves the end-of-stage checkpoint
   (:func:`save_stage_checkpoint`) and records the stage as finished in
   ``<dir>/fit_stages.json`` (global rank 0 only). A later call with the same key
   restores the last finished stage's checkpoint (``on_load_checkpoint`` +
   ``load_state_dict``) and starts at the next stage, so a job killed between
   stages does not redo the finished ones.

Every checkpoint written during a fit carries ``checkpoint["fit_stages"] =
{"stage": <running stage>, "finished": [<earlier stages>]}``
(:class:`FitStageMarker`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L

from avbench.atomic_io import atomic_path, atomic_write_text
from avbench.models.base import AVModel, FitStage, check_fit_stages
from avbench.runner.checkpointing import restore_weights

log = logging.getLogger(__name__)

PROGRESS_FILE = "fit_stages.json"

#: ``make_trainer(stage, final, callbacks) -> Trainer``: ``callbacks`` must be added to the Trainer's
MakeTrainer = Callable[[FitStage, bool, list[L.Callback]], L.Trainer]


class FitStageMarker(L.Callback):
    """Writes the running and the finished stages into every checkpoint (``checkpoint["fit_stages"]``)."""

    def __init__(self, stage: str, finished: list[str]) -> None:
        self.stage = stage
        self.finished = list(finished)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint["fit_stages"] = {"stage": self.stage, "finished": list(self.finished)}


@dataclass
class FinishedStage:
    """A stage that ran to its end: its end-of-stage checkpoint and its cost."""

    index: int
    name: str
    stage: dict[str, Any]
    checkpoint: str
    seconds: float
    reused: bool = False


@dataclass
class StagedFit:
    """What :func:`run_fit_stages` did.

    Attributes:
        stages: the model's validated stages.
        finished: the non-final stages, in order (``reused`` for those restored
            from a previous run's progress).
        trainer: the final stage's Trainer (its checkpoint callback holds the selection).
        seconds: wall time of the stages run in this call (``Trainer.fit`` and hooks).
    """

    stages: tuple[FitStage, ...]
    finished: list[FinishedStage] = field(default_factory=list)
    trainer: L.Trainer | None = None
    seconds: float = 0.0

    @property
    def final(self) -> FitStage:
        """The final stage (where VAL selection happens)."""
        return self.stages[-1]

    @property
    def reused_seconds(self) -> float:
        """Wall time of the finished stages restored from a previous run."""
        return sum(s.seconds for s in self.finished if s.reused)


class FitStageProgress:
    """``<dir>/fit_stages.json`` and ``<dir>/stages/<i>-<name>.ckpt``: finished stages of one fit.

    Args:
        directory: the fit's work directory.
        key: identity of the fit (a job fingerprint); progress saved under
            another key is ignored and overwritten.
    """

    def __init__(self, directory: str | Path, key: str) -> None:
        self.dir = Path(directory)
        self.key = key

    @property
    def path(self) -> Path:
        return self.dir / PROGRESS_FILE

    def checkpoint_path(self, index: int, stage: FitStage) -> Path:
        return self.dir / "stages" / f"{index}-{stage.name}.ckpt"

    def load(self, stages: tuple[FitStage, ...]) -> list[FinishedStage]:
        """The finished non-final stages recorded for ``key`` that match ``stages``' prefix."""
        if not self.path.exists():
            return []
        try:
            state = json.loads(self.path.read_text())
            if state.get("key") != self.key:
                return []
            done = [FinishedStage(**s) for s in state["finished"]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("ignoring unusable fit-stage progress %s (%s)", self.path, err)
            return []
        good: list[FinishedStage] = []
        for i, s in enumerate(done[: len(stages) - 1]):
            if (s.index != i or s.stage != stages[i].model_dump(mode="json")
                    or not Path(s.checkpoint).exists()):
                break
            good.append(s)
        return good

    def save(self, finished: list[FinishedStage]) -> None:
        """Record ``finished`` (atomically)."""
        atomic_write_text(self.path, json.dumps({
            "key": self.key,
            "finished": [{k: v for k, v in vars(s).items() if k != "reused"} for s in finished],
        }, indent=1))


def save_stage_checkpoint(trainer: L.Trainer, path: Path) -> None:
    """Save ``trainer``'s full checkpoint (callbacks' state too) to ``path``, atomically.

    Every rank must call it (``Trainer.save_checkpoint`` writes on global rank 0
    and then waits for all ranks). Only rank 0 creates and publishes the file:
    under a script-launched DDP (``avbench fit`` with ``strategy=ddp``) every
    rank runs the stage loop, and a per-rank temporary file, left empty by
    Lightning on ranks > 0, would otherwise be moved onto ``path`` after rank
    0's complete one.
    """
    if not trainer.is_global_zero:
        trainer.save_checkpoint(path)  # Lightning writes nothing here; joins rank 0's barrier
        return
    with atomic_path(path) as tmp:
        trainer.save_checkpoint(tmp)


def fit_stages_of(model: AVModel) -> tuple[FitStage, ...]:
    """``model``'s declared stages, validated against the model (see :func:`check_fit_stages`)."""
    return check_fit_stages(model.configure_fit_stages(), model)


def set_trainable(model: AVModel, stage: FitStage, own_flags: dict[str, bool]) -> None:
    """``requires_grad`` per ``stage.trainable``, or ``own_flags`` (the model's) when None."""
    for name, p in model.named_parameters():
        p.requires_grad_(own_flags[name] if stage.trainable is None else stage.trains(name))


def run_fit_stages(
    model: AVModel,
    datamodule: L.LightningDataModule | None,
    make_trainer: MakeTrainer,
    *,
    progress: FitStageProgress | None = None,
    seed: int | None = None,
) -> StagedFit:
    """Fit ``model``'s stages in order (see the module docstring).

    Args:
        model: the model; trained in place (its ``requires_grad`` flags are restored at the end).
        datamodule: passed to every ``Trainer.fit`` and end hook.
        make_trainer: builds each stage's Trainer.
        progress: where finished stages are recorded and resumed from (None: no resume).
        seed: when given, stage ``i > 0`` starts from ``seed_everything(seed + i)``,
            so a resumed fit draws the same random numbers as an uninterrupted one.

    Returns:
        The :class:`StagedFit`; its ``trainer`` is the final stage's.

    Raises:
        ValueError: invalid stage declarations; whatever a stage's fit or hook raises.
    """
    stages = fit_stages_of(model)
    result = StagedFit(stages=stages)
    own_flags = {n: p.requires_grad for n, p in model.named_parameters()}
    if progress is not None:
        result.finished = progress.load(stages)
        if result.finished:
            last = result.finished[-1]
            restore_weights(model, last.checkpoint)
            for s in result.finished:
                s.reused = True
            log.info("resuming after the finished stage(s) %s (%s)",
                     [s.name for s in result.finished], last.checkpoint)
    try:
        for i in range(len(result.finished), len(stages)):
            stage, final = stages[i], i == len(stages) - 1
            if seed is not None and i > 0:
                L.seed_everything(seed + i, workers=True, verbose=False)
            set_trainable(model, stage, own_flags)
            model.fit_stage = stage
            marker = FitStageMarker(stage.name, [s.name for s in stages[:i]])
            trainer = make_trainer(stage, final, [marker])
            log.info("fit stage %d/%d %r: %s", i + 1, len(stages), stage.name,
                     stage.model_dump(exclude_defaults=True))
            start = time.perf_counter()
            trainer.fit(model, datamodule=datamodule)
            if stage.end_hook is not None:
                getattr(model, stage.end_hook)(datamodule)
            seconds = time.perf_counter() - start
            result.seconds += seconds
            result.trainer = trainer
            if final:
                break
            ckpt = progress.checkpoint_path(i, stage) if progress is not None else None
            done = FinishedStage(index=i, name=stage.name, stage=stage.model_dump(mode="json"),
                                 checkpoint=str(ckpt), seconds=seconds)
            result.finished.append(done)
            if progress is not None and ckpt is not None:
                save_stage_checkpoint(trainer, ckpt)
                if trainer.is_global_zero:
                    progress.save(result.finished)
    finally:
        model.fit_stage = None
        for name, p in model.named_parameters():
            p.requires_grad_(own_flags[name])
    return result


__all__ = [
    "FinishedStage",
    "FitStageMarker",
    "FitStageProgress",
    "StagedFit",
    "fit_stages_of",
    "run_fit_stages",
    "save_stage_checkpoint",
    "set_trainable",
]
