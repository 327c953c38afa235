"""VAL checkpoint selection that skips a warm-up, and restoring a model from a checkpoint.

FNAC (and JSA when configured so) train with the contrastive term alone for a
few epochs and then add loss terms weighted 100, so ``val/loss`` jumps up at
the switch and a warm-up epoch would always look "best" although it is not
the method. Such a model declares it in its final fit stage
(:attr:`~avbench.models.base.FitStage.select_after_epochs`); selection then
compares only epochs whose ``val/loss`` has the same terms. It is still on
VAL only (DESIGN 1.2).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint


def declared_select_after(pl_module: L.LightningModule) -> int:
    """Epochs VAL selection skips: the final declared fit stage's ``select_after_epochs``.

    0 for a LightningModule that is not an :class:`~avbench.models.base.AVModel`.
    """
    from avbench.models.base import AVModel, check_fit_stages

    if not isinstance(pl_module, AVModel):
        return 0
    return check_fit_stages(pl_module.configure_fit_stages())[-1].select_after_epochs


class AfterWarmupCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that neither saves nor scores during the first epochs of a fit.

    Args:
        select_after_epochs: epochs to skip; None: the model's declared
            :func:`declared_select_after`.
        **kwargs: :class:`~lightning.pytorch.callbacks.ModelCheckpoint` arguments.

    When the whole fit is shorter (``max_epochs <= select_after_epochs``) its
    last epoch is still considered, so a fit always has a checkpoint.
    """

    def __init__(self, *args: Any, select_after_epochs: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.select_after_epochs = select_after_epochs

    def skipped_epochs(self, pl_module: L.LightningModule) -> int:
        """The number of leading epochs this callback ignores for ``pl_module``."""
        if self.select_after_epochs is not None:
            return self.select_after_epochs
        return declared_select_after(pl_module)

    def _in_warmup(self, trainer: L.Trainer, pl_module: L.LightningModule) -> bool:
        last = trainer.max_epochs - 1 if trainer.max_epochs and trainer.max_epochs > 0 else math.inf
        return trainer.current_epoch < min(self.skipped_epochs(pl_module), last)

    # Lightning saves at the train-epoch end or at the validation end depending
    # on the val schedule: guard both.
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._in_warmup(trainer, pl_module):
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._in_warmup(trainer, pl_module):
            super().on_validation_end(trainer, pl_module)


def restore_weights(model: L.LightningModule, path: str | Path) -> dict[str, Any]:
    """Load the checkpoint at ``path`` into ``model`` as Lightning does when restoring a module.

    ``model.on_load_checkpoint(checkpoint)`` runs first (a model may resize a
    buffer that a fit stage made), then ``load_state_dict`` (strict).

    Returns:
        The loaded checkpoint dict (``epoch``, ``global_step``, ``callbacks``...).

    Raises:
        OSError/RuntimeError: unreadable file or a state that does not fit the model.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    model.on_load_checkpoint(checkpoint)
    model.load_state_dict(checkpoint["state_dict"])
    return checkpoint


__all__ = ["AfterWarmupCheckpoint", "declared_select_after", "restore_weights"]
