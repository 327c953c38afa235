"""``avbench fit|validate|test|predict``: Lightning's ``LightningCLI`` with avbench's fit rules.

:class:`AVBenchCLI` differs from ``LightningCLI`` in two ways:

- every Trainer it builds takes the model's
  :attr:`~avbench.models.base.AVModel.trainer_arguments` over the trainer
  config (command-line ``--trainer.*`` included); keys the runner owns
  (``logger``, ``callbacks``, ``default_root_dir``, ``enable_checkpointing``)
  are refused there as in the runner. Callbacks come from the trainer config
  (LightningCLI) and from the model's ``configure_callbacks`` (Lightning).
- ``fit`` runs the model's fit stages in order
  (:func:`~avbench.runner.fit_stages.run_fit_stages`). With a single stage
  that sets no length and no trainable parameters (the default), it is
  LightningCLI's own ``trainer.fit`` (``--ckpt_path`` included). Otherwise
  each stage gets a Trainer of the same config with the stage's length; the
  callbacks of the config are copied afresh for every stage (as the runner
  builds them), the checkpoint callbacks (or Lightning's default one) are attached
  to the final stage only, so a checkpoint is always chosen within the final
  stage. Finished stages are recorded under
  ``<trainer.default_root_dir>/fit_stages/``, keyed by the full fit config
  (seed included: resuming needs a fixed ``--seed_everything``) and the code
  version: rerunning the same command after a crash resumes at the next
  stage. ``--ckpt_path`` is refused for multi-stage fits.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from avbench.models.base import AVModel, FitStage
from avbench.runner.fit_stages import FitStageProgress, fit_stages_of, run_fit_stages
from avbench.runner.results import code_version, sha256_of
from avbench.runner.trainers import RUNNER_OWNED


def _is_plain(stages: tuple[FitStage, ...]) -> bool:
    """One stage that only names itself (and maybe a warm-up): today's single ``trainer.fit``."""
    return len(stages) == 1 and stages[0] == FitStage(
        name=stages[0].name, select_after_epochs=stages[0].select_after_epochs)


class AVBenchCLI(LightningCLI):
    """LightningCLI honouring fit stages and model trainer arguments (module docstring)."""

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        """LightningCLI's Trainer with the model's ``trainer_arguments`` over the config.

        Raises:
            ValueError: the model's ``trainer_arguments`` name a runner-owned key.
        """
        own = dict(self.model.trainer_arguments) if isinstance(self.model, AVModel) else {}
        clash = sorted(set(own) & RUNNER_OWNED)
        if clash:
            raise ValueError(f"{type(self.model).__name__}.trainer_arguments sets {clash}; "
                             "callbacks belong in configure_callbacks")
        return super().instantiate_trainer(**(own | kwargs))

    def fit(self, model: L.LightningModule, datamodule: L.LightningDataModule | None = None,
            ckpt_path: str | None = None, **kwargs: Any) -> None:
        """Fit the model's stages in order; see the module docstring.

        Raises:
            ValueError: ``ckpt_path`` with a multi-stage fit; invalid stage declarations.
        """
        if not isinstance(model, AVModel) or _is_plain(fit_stages_of(model)):
            if isinstance(model, AVModel):
                model.fit_stage = fit_stages_of(model)[0]
            try:
                self.trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, **kwargs)
            finally:
                if isinstance(model, AVModel):
                    model.fit_stage = None
            return
        if ckpt_path is not None:
            raise ValueError("--ckpt_path resumes a single Trainer; a multi-stage fit resumes "
                             "by itself from <default_root_dir>/fit_stages")
        config = self.config[self.subcommand] if self.subcommand else self.config
        key = sha256_of([config.clone().as_dict(), code_version()])
        progress = FitStageProgress(Path(self.trainer.default_root_dir) / "fit_stages", key)
        seed = config.get("seed_everything")
        callbacks = [c for c in self.trainer.callbacks if not isinstance(c, SaveConfigCallback)]

        def make_trainer(stage: FitStage, final: bool, extra: list[L.Callback]) -> L.Trainer:
            # a fresh copy per stage, as the runner builds them: no state crosses stages
            cbs = [copy.deepcopy(c) for c in callbacks if final or not isinstance(c, Checkpoint)]
            more: dict[str, Any] = {} if final else {"enable_checkpointing": False}
            clash = sorted(set(stage.trainer_arguments) & RUNNER_OWNED)
            if clash:
                raise ValueError(f"fit stage {stage.name!r} trainer_arguments sets {clash}")
            return self.instantiate_trainer(**stage.trainer_kwargs(), **more,
                                            callbacks=cbs + extra)

        staged = run_fit_stages(model, datamodule, make_trainer, progress=progress,
                                seed=seed if type(seed) is int else None)
        self.trainer = staged.trainer


__all__ = ["AVBenchCLI"]
