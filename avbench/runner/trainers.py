"""The runner's Lightning Trainer for one fit stage: keyword precedence and callbacks.

Trainer keyword arguments, lowest to highest precedence:

1. the suite's trainer config (file or inline), then the suite's
   ``trainer_overrides``, then the model entry's ``trainer_overrides``;
2. the model's :attr:`~avbench.models.base.AVModel.trainer_arguments`;
3. the stage's own ``FitStage.trainer_arguments``, then its length
   (``FitStage.max_epochs``/``max_steps``);
4. what the runner owns: ``logger`` (W&B or none), ``default_root_dir`` (the
   job's work dir), ``enable_checkpointing`` (on in the final stage only),
   ``strategy: ddp`` launched as ``ddp_spawn`` (the runner stays one program);
   ``enable_progress_bar`` and ``enable_model_summary`` default to off.

Callbacks: the trainer config's ``callbacks`` (``class_path``/``init_args``,
instantiated afresh for every stage), then the runner's
(:class:`FiniteLossGuard`, in the final stage the VAL selection checkpoint),
then the model's ``configure_callbacks`` (added by Lightning at ``fit``; they
replace trainer callbacks of the same type). A checkpoint callback from the
config or the model is refused (:class:`RunnerCallbacksCheck`): selection is
the runner's.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint

from avbench.models.base import AVModel, FitStage

log = logging.getLogger(__name__)

#: Trainer arguments set by the runner only
RUNNER_OWNED = frozenset({"logger", "callbacks", "default_root_dir", "enable_checkpointing"})


class FiniteLossGuard(L.Callback):
    """Fail the job on a non-finite training loss or VAL monitor; count training samples.

    Module-level (picklable) so that ``ddp_spawn`` can ship it to the workers.

    Raises:
        FloatingPointError: at the first non-finite loss or monitor value.
    """

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.samples = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        import torch

        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not torch.isfinite(loss).all():
            raise FloatingPointError(
                f"non-finite training loss ({loss.detach().float().item()}) at step "
                f"{trainer.global_step}, batch {batch_idx}"
            )
        if isinstance(batch, dict) and "id" in batch:
            self.samples += len(batch["id"]) * max(trainer.world_size, 1)

    def on_validation_end(self, trainer, pl_module) -> None:
        import torch

        if trainer.sanity_checking:
            return
        v = trainer.callback_metrics.get(self.monitor)
        if isinstance(v, torch.Tensor) and not torch.isfinite(v).all():
            raise FloatingPointError(
                f"non-finite {self.monitor} ({v.item()}) at epoch {trainer.current_epoch}"
            )


class RunnerCallbacksCheck(L.Callback):
    """At ``setup`` (after Lightning added the model's callbacks): the runner's callbacks are
    all there and no other checkpoint callback is.

    Raises:
        ValueError: a model callback replaced a runner callback or brought a checkpoint.
    """

    def __init__(self, owned: list[L.Callback]) -> None:
        # types, not objects: ddp_spawn ships copies of the callbacks to the workers
        self.owned = [type(c) for c in owned]

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        present = [type(c) for c in trainer.callbacks]
        lost = [t.__name__ for t in self.owned if t not in present]
        n_ckpt = sum(isinstance(c, Checkpoint) for c in trainer.callbacks)
        n_own = sum(issubclass(t, Checkpoint) for t in self.owned)
        if lost or n_ckpt != n_own:
            raise ValueError(
                f"{type(pl_module).__name__}.configure_callbacks must not bring checkpoint "
                f"callbacks or replace the runner's ({lost or 'extra checkpoint'}): VAL "
                "selection is the runner's"
            )


def config_callbacks(trainer_cfg: dict[str, Any]) -> list[L.Callback]:
    """Fresh instances of the trainer config's ``callbacks`` (one mapping or a list of them).

    Raises:
        ValueError: a checkpoint callback (selection is the suite's ``select:``).
        jsonargparse errors: an unknown class or argument.
    """
    from avbench.runner.instantiation import instantiate

    specs = trainer_cfg.get("callbacks") or []
    specs = [specs] if isinstance(specs, dict) else list(specs)
    out = [instantiate(spec, L.Callback) for spec in specs]
    for cb in out:
        if isinstance(cb, Checkpoint):
            raise ValueError(f"trainer config callback {type(cb).__name__}: the runner selects "
                             "the checkpoint itself (configure it with the suite's 'select:')")
    return out


def single_device(trainer_cfg: dict[str, Any]) -> bool:
    """Whether a trainer config runs on one device (``devices`` 1 or unset)."""
    return trainer_cfg.get("devices", 1) in (1, "1", None)


def stage_trainer_kwargs(trainer_cfg: dict[str, Any], model: AVModel,
                         stage: FitStage) -> dict[str, Any]:
    """Trainer keyword arguments of ``stage`` without the runner-owned ones (module docstring).

    Raises:
        ValueError: the model's ``trainer_arguments`` name a runner-owned key.
    """
    kwargs = {k: v for k, v in trainer_cfg.items() if k not in RUNNER_OWNED}
    own = dict(model.trainer_arguments)
    for where, args in ((f"{type(model).__name__}.trainer_arguments", own),
                        (f"fit stage {stage.name!r} trainer_arguments", stage.trainer_arguments)):
        clash = sorted(set(args) & RUNNER_OWNED)
        if clash:
            raise ValueError(f"{where} sets {clash}, which the runner owns "
                             "(callbacks: use configure_callbacks)")
    for k, v in own.items():
        if k in kwargs and kwargs[k] != v:
            log.info("%s.trainer_arguments: %s=%r replaces the config's %r",
                     type(model).__name__, k, v, kwargs[k])
    kwargs |= own | stage.trainer_kwargs()
    if kwargs.get("strategy") == "ddp" and not single_device(kwargs):
        kwargs["strategy"] = "ddp_spawn"  # in-process launch: the runner stays one program
    kwargs.setdefault("enable_progress_bar", False)
    kwargs.setdefault("enable_model_summary", False)
    return kwargs


__all__ = [
    "RUNNER_OWNED",
    "FiniteLossGuard",
    "RunnerCallbacksCheck",
    "config_callbacks",
    "single_device",
    "stage_trainer_kwargs",
]
