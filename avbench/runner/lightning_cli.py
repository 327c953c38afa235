"""``avbench fit|validate|test|predict``: Lightning's ``LightningCLI`` with avbench's fit rules.

:class:`AVBenchCLI` differs from ``LightningCLI`` in these ways:

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
- every ``fit`` Trainer (each stage's) carries a
  :class:`~avbench.runner.fit_checks.FitChecks`: a fit without a single
  optimizer step fails (:class:`~avbench.runner.fit_checks.FitCheckError`,
  naming the batch size and the number of training clips); the VAL warnings
  (a val batch of one clip, a constant ``val/loss``) are logged.
- ``logger: true`` (``configs/trainer/cpu.yaml``) is a
  :class:`~lightning.pytorch.loggers.CSVLogger` under ``default_root_dir``
  (``lightning_logs/version_N/metrics.csv``) whether or not TensorBoard is
  installed: no account, no network, readable with pandas. W&B (offline) is
  one option away: ``--trainer.logger WandbLogger --trainer.logger.init_args.offline true``.
- ``test`` scores the weights (``--ckpt_path``, else the model as configured) on
  every registered benchmark of the datamodule's test split through
  :func:`avbench.benchmarks.evaluate` (:mod:`avbench.runner.checkpoint_eval`),
  logs ``<benchmark>/<metric>`` to the Trainer's loggers, prints a table
  (benchmarks not run listed with the reason) and sets :attr:`AVBenchCLI.exit_code`
  to 1 when a benchmark failed (a failure caused by a data error, such as a
  missing frame, is logged in one line without a traceback). No ``test_step`` is needed.
- ``predict`` writes every capability output of the model over the predict
  (= test) split to ``<default_root_dir>/predictions/<model>.<family>.npz``
  (:mod:`avbench.runner.predictions`). No ``predict_step`` is needed.

``test`` and ``predict`` run in this process on the Trainer's root device
(one device; no DDP launch).
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger

from avbench.models.base import AVModel, FitStage
from avbench.runner.checkpointing import (
    LIGHTNING_CKPT_NAMES,
    CheckpointFileError,
    check_checkpoint_file,
)
from avbench.runner.fit_checks import FitCheckError, FitChecks, FitFinding
from avbench.runner.fit_stages import FitStageProgress, fit_stages_of, run_fit_stages
from avbench.runner.results import code_version, sha256_of
from avbench.runner.trainers import RUNNER_OWNED

log = logging.getLogger(__name__)

#: the VAL metric the fit checks watch (every AVModel logs it)
VAL_MONITOR = "val/loss"
#: the largest seed numpy (hence ``seed_everything``) accepts
MAX_SEED = 2**32 - 1


class UsageError(ValueError):
    """A command-line value the command cannot use (``avbench`` prints it in one line, exit code 2)."""


def _is_plain(stages: tuple[FitStage, ...]) -> bool:
    """One stage that only names itself (and maybe a warm-up): today's single ``trainer.fit``."""
    return len(stages) == 1 and stages[0] == FitStage(
        name=stages[0].name, select_after_epochs=stages[0].select_after_epochs)


def _training_clips(datamodule: Any) -> tuple[int | None, str]:
    """The datamodule's number of training clips and ``"N training clips"`` (or why they
    could not be counted: then None)."""
    try:
        n = len(datamodule.dataset("train"))
    except Exception as err:  # a message helper must not hide the real error
        return None, f"an unknown number of training clips ({type(err).__name__}: {err})"
    return n, f"{n} training clips"


def nothing_trained(err: FitCheckError, datamodule: Any) -> FitCheckError:
    """``err`` with the datamodule's batch size, ``drop_last_train`` and clip count in its message."""
    bs = getattr(datamodule, "batch_size", None)
    drop = getattr(datamodule, "drop_last_train", None)
    n, clips = _training_clips(datamodule)
    if n:  # the largest power of two that gives a full batch
        fix = f"--data.batch_size {2 ** (n.bit_length() - 1)} (at most the {n} training clips)"
    else:
        fix = "a smaller --data.batch_size (the tiny preset has few clips per split)"
    hint = (f"{type(datamodule).__name__}(root={getattr(datamodule, 'root', '?')}) has "
            f"{clips}, batch_size {bs}, drop_last_train {drop}: pass "
            f"{fix} or --data.drop_last_train false")
    findings = [FitFinding(f.code, f"{f.message}. {hint}", f.fatal)
                if f.code == "no-optimizer-step" else f for f in err.findings]
    return FitCheckError(findings)


class AVBenchCLI(LightningCLI):
    """LightningCLI honouring fit stages and model trainer arguments (module docstring).

    Attributes:
        exit_code: 0, or 1 when ``test`` had a failed benchmark.
        scores: the :class:`~avbench.runner.checkpoint_eval.CheckpointScores` of ``test``.
        predictions: the :class:`~avbench.runner.predictions.PredictionSummary` of ``predict``.
    """

    exit_code: int = 0
    argv: list[str] = []  # the command line as given (to tell given options from config defaults)
    scores: Any = None
    predictions: Any = None
    _csv_logger: CSVLogger | None = None  # one for every Trainer (each fit stage's) of a command

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.argv = [str(a) for a in (kwargs.get("args") or [])]
        super().__init__(*args, **kwargs)

    def _warn_overridden_lengths(self, model: AVModel, stages: tuple[FitStage, ...]) -> None:
        """Warn when ``--trainer.max_epochs``/``max_steps`` was given but stages set their own."""
        for key in ("max_epochs", "max_steps"):
            given = any(a == f"--trainer.{key}" or a.startswith(f"--trainer.{key}=")
                        for a in self.argv)
            own = [f"{st.name} {getattr(st, key)}" for st in stages if getattr(st, key) is not None]
            if given and own:
                log.warning("avbench fit: --trainer.%s does not change %s's stage lengths (%s), "
                            "which come from the model's arguments (README: multi-stage models); it "
                            "applies to stages without a length only", key, type(model).__name__,
                            ", ".join(own))

    def _set_seed(self) -> None:
        """LightningCLI's seeding, with an out-of-range ``--seed_everything`` as a usage error.

        Raises:
            UsageError: an integer seed outside numpy's ``[0, 2**32 - 1]``.
        """
        seed = self._get(self.config, "seed_everything")
        if type(seed) is int and not 0 <= seed <= MAX_SEED:
            raise UsageError(f"--seed_everything {seed} is out of range: give an integer in "
                            f"[0, {MAX_SEED}] (or true for a random seed)")
        super()._set_seed()

    def _parse_ckpt_path(self) -> None:
        """LightningCLI reads the hyperparameters of ``--ckpt_path``; check the file first.

        Raises:
            CheckpointFileError: the file is truncated or not a checkpoint (one line
                naming it, instead of ``torch.load``'s traceback).
        """
        sub = self.config.get("subcommand")
        ckpt_path = self.config[sub].get("ckpt_path") if sub else None
        if ckpt_path and Path(ckpt_path).is_file():
            check_checkpoint_file(ckpt_path)
            self._check_checkpoint_model(ckpt_path, self.config[sub].get("model"))
        super()._parse_ckpt_path()

    @staticmethod
    def _check_checkpoint_model(ckpt_path: str, model_cfg: Any) -> None:
        """Refuse a checkpoint whose recorded model class is not the configured one
        (LightningCLI would otherwise swap the model silently for the checkpoint's).

        Raises:
            CheckpointFileError: the checkpoint names another model class.
        """
        import torch

        want = model_cfg.get("class_path") if hasattr(model_cfg, "get") else None
        if not want:
            return
        try:
            hp = torch.load(ckpt_path, weights_only=True, map_location="cpu").get(
                "hyper_parameters", {})
        except Exception:  # unreadable hyperparameters: restore_weights reports the file
            return
        have = hp.get("_class_path") if isinstance(hp, dict) else None
        if have and have.rsplit(".", 1)[-1] != str(want).rsplit(".", 1)[-1]:
            raise CheckpointFileError(f"checkpoint {ckpt_path!r} holds a {have.rsplit('.', 1)[-1]}, "
                                      f"the config names {str(want).rsplit('.', 1)[-1]}: give that "
                                      "model's config or its own checkpoint")

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        """LightningCLI's Trainer with the model's ``trainer_arguments`` over the config.

        ``logger: true`` becomes a CSVLogger under ``default_root_dir``; a ``fit``
        Trainer gets a :class:`FitChecks` (module docstring).

        Raises:
            ValueError: the model's ``trainer_arguments`` name a runner-owned key.
        """
        own = dict(self.model.trainer_arguments) if isinstance(self.model, AVModel) else {}
        clash = sorted(set(own) & RUNNER_OWNED)
        if clash:
            raise ValueError(f"{type(self.model).__name__}.trainer_arguments sets {clash}; "
                             "callbacks belong in configure_callbacks")
        config = self._get(self.config_init, "trainer", default={})
        kwargs = own | kwargs
        if kwargs.get("logger", config.get("logger")) is True:
            if self._csv_logger is None:
                root = kwargs.get("default_root_dir", config.get("default_root_dir"))
                self._csv_logger = CSVLogger(save_dir=root or os.getcwd())
            kwargs["logger"] = self._csv_logger
        if self.subcommand == "fit" and "callbacks" not in kwargs:
            # a staged fit passes copies of these callbacks, this one included
            kwargs["callbacks"] = [*(config.get("callbacks") or []), FitChecks(VAL_MONITOR)]
        return super().instantiate_trainer(**kwargs)

    def _report_fit_checks(self) -> None:
        """Log the non-fatal findings of the fit's last Trainer."""
        for cb in self.trainer.callbacks:
            if isinstance(cb, FitChecks):
                for finding in cb.findings(self.trainer):
                    log.warning("avbench fit: %s", finding)

    def fit(self, model: L.LightningModule, datamodule: L.LightningDataModule | None = None,
            ckpt_path: str | None = None, **kwargs: Any) -> None:
        """Fit the model's stages in order; see the module docstring.

        Raises:
            UsageError: ``ckpt_path`` with a multi-stage fit.
            CheckpointFileError: ``ckpt_path`` is missing or truncated.
            ValueError: invalid stage declarations.
            FitCheckError: a stage made no optimizer step (the message names the batch
                size and the number of training clips).
        """
        try:
            self._fit(model, datamodule, ckpt_path, **kwargs)
        except FitCheckError as err:
            raise nothing_trained(err, datamodule) from None
        self._report_fit_checks()

    def _fit(self, model: L.LightningModule, datamodule: L.LightningDataModule | None,
             ckpt_path: str | None, **kwargs: Any) -> None:
        if not isinstance(model, AVModel) or _is_plain(fit_stages_of(model)):
            if ckpt_path is not None and str(ckpt_path) not in LIGHTNING_CKPT_NAMES:
                check_checkpoint_file(ckpt_path)  # one line, not Lightning's traceback
            if isinstance(model, AVModel):
                model.fit_stage = fit_stages_of(model)[0]
            try:
                self.trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, **kwargs)
            finally:
                if isinstance(model, AVModel):
                    model.fit_stage = None
            return
        if ckpt_path is not None:
            raise UsageError(f"--ckpt_path resumes a single Trainer; {type(model).__name__} fits "
                             f"in {len(fit_stages_of(model))} stages and resumes by itself from "
                             "<default_root_dir>/fit_stages (rerun the same command)")
        self._warn_overridden_lengths(model, fit_stages_of(model))
        config = self.config[self.subcommand] if self.subcommand else self.config
        key = sha256_of([config.clone().as_dict(), code_version()])
        progress = FitStageProgress(Path(self.trainer.default_root_dir) / "fit_stages", key)
        seed = config.get("seed_everything")
        callbacks = [c for c in self.trainer.callbacks if not isinstance(c, SaveConfigCallback)]

        def make_trainer(stage: FitStage, final: bool, extra: list[L.Callback]) -> L.Trainer:
            # a fresh copy per stage, as the runner builds them: no state crosses stages
            cbs = [copy.deepcopy(c) for c in callbacks if final or not isinstance(c, Checkpoint)]
            for c in cbs:
                if isinstance(c, FitChecks):
                    c.stage = stage.name
            more: dict[str, Any] = {} if final else {"enable_checkpointing": False}
            clash = sorted(set(stage.trainer_arguments) & RUNNER_OWNED)
            if clash:
                raise ValueError(f"fit stage {stage.name!r} trainer_arguments sets {clash}")
            return self.instantiate_trainer(**stage.trainer_kwargs(), **more,
                                            callbacks=cbs + extra)

        staged = run_fit_stages(model, datamodule, make_trainer, progress=progress,
                                seed=seed if type(seed) is int else None)
        self.trainer = staged.trainer

    # --- test / predict: no test_step or predict_step on the models -------------------
    def _load(self, model: L.LightningModule, ckpt_path: str | None, command: str) -> None:
        """Restore ``ckpt_path`` into ``model`` (as the runner does) and move it to the root device.

        Raises:
            CheckpointFileError: ``ckpt_path`` is missing, truncated or for another model
                (``best``/``last`` exist only inside a fit).
        """
        from avbench.runner.checkpointing import restore_weights

        if ckpt_path is None:
            log.warning("avbench %s: no --ckpt_path; using the model as configured "
                        "(untrained unless its config loads weights)", command)
        else:
            restore_weights(model, ckpt_path)
        model.to(self.trainer.strategy.root_device)

    def test(self, model: L.LightningModule, datamodule: L.LightningDataModule | None = None,
             ckpt_path: str | None = None, verbose: bool = True, **kwargs: Any) -> None:
        """Score the weights on every benchmark of ``datamodule``'s family; see the module docstring.

        Raises:
            ValueError: no datamodule.
        """
        from avbench.runner.checkpoint_eval import score_datamodule

        if datamodule is None:
            raise ValueError("avbench test needs a datamodule (--data or a data --config)")
        self._load(model, ckpt_path, "test")
        scores = score_datamodule(model, datamodule,
                                  progress=bool(self.trainer.progress_bar_callback))
        self.scores = scores
        metrics = scores.metrics
        for logger in self.trainer.loggers:
            logger.log_metrics(metrics, step=self.trainer.global_step)
            logger.save()
            logger.finalize("success")
        family = "/".join(x for x in scores.plan.family if x)
        if verbose:
            print(f"avbench test: {type(model).__name__} on {family} "
                  f"({ckpt_path or 'weights as configured'})")
            print(scores.text())
        self.exit_code = 1 if scores.failed else 0

    def predict(self, model: L.LightningModule, datamodule: L.LightningDataModule | None = None,
                ckpt_path: str | None = None, **kwargs: Any) -> None:
        """Write the model's capability outputs over the predict split; see the module docstring.

        Raises:
            ValueError: no datamodule, or its predict loader gave no batch.
        """
        from avbench.benchmarks.registry import model_name
        from avbench.runner.checkpoint_eval import test_split_family
        from avbench.runner.predictions import write_predictions

        if datamodule is None:
            raise ValueError("avbench predict needs a datamodule (--data or a data --config)")
        self._load(model, ckpt_path, "predict")
        datamodule.setup("predict")
        family = "-".join(x for x in test_split_family(datamodule) if x)
        out = (Path(self.trainer.default_root_dir) / "predictions"
               / f"{model_name(model)}.{family}.npz")
        summary = write_predictions(model, datamodule.predict_dataloader(), out)
        self.predictions = summary
        shapes = ", ".join(f"{k} {list(v)}" for k, v in summary.arrays.items())
        print(f"avbench predict: wrote {summary.n_items} items to {summary.path} ({shapes})")
        for cap, reason in summary.not_written.items():
            print(f"  not written: {cap}: {reason}")


__all__ = ["MAX_SEED", "VAL_MONITOR", "AVBenchCLI", "UsageError", "nothing_trained"]
