"""Checkpoint selection on VAL that ignores a model's warm-up epochs.

FNAC (and JSA when configured so) train with the contrastive term alone for
``warmup_epochs`` and then add loss terms weighted 100, so ``val/loss`` jumps
up at the switch and a warm-up epoch would always look "best" although it is
not the method. Selection therefore compares only epochs whose ``val/loss``
has the same terms; it is still on VAL only (DESIGN 1.2).
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


def warmup_epochs(pl_module: L.LightningModule) -> int:
    """The module's ``warmup_epochs`` attribute (0 when it has none)."""
    return int(getattr(pl_module, "warmup_epochs", 0) or 0)


class AfterWarmupCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that neither saves nor scores during the model's warm-up.

    When the whole run is warm-up (``max_epochs <= warmup_epochs``) the last
    epoch is still considered, so a run always has a checkpoint.
    """

    @staticmethod
    def _in_warmup(trainer: L.Trainer, pl_module: L.LightningModule) -> bool:
        last = (trainer.max_epochs or 1) - 1
        return trainer.current_epoch < min(warmup_epochs(pl_module), last)

    # Lightning saves at the train-epoch end or at the validation end depending
    # on the val schedule: guard both.
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._in_warmup(trainer, pl_module):
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._in_warmup(trainer, pl_module):
            super().on_validation_end(trainer, pl_module)


__all__ = ["AfterWarmupCheckpoint", "warmup_epochs"]
