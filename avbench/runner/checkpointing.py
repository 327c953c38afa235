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
import zipfile
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


class CheckpointFileError(ValueError):
    """A ``--ckpt_path`` that is missing, not a checkpoint, truncated or for another model."""


#: the names Lightning resolves itself inside a fit (``trainer.fit(ckpt_path="last")``)
LIGHTNING_CKPT_NAMES = frozenset({"last", "best", "hpc", "registry"})


def check_checkpoint_file(path: str | Path) -> Path:
    """``path`` if it is a readable ``torch.save`` checkpoint, else a one-line error.

    The check is cheap (no unpickling): the file exists and is a complete zip
    archive, the format of ``torch.save`` since PyTorch 1.6; a truncated file
    has lost its central directory and fails here instead of deep inside
    ``torch.load``.

    Raises:
        CheckpointFileError: ``path`` does not exist, is a directory, or is not a
            complete checkpoint (truncated, or another kind of file).
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointFileError(f"checkpoint {str(p)!r} does not exist")
    if not p.is_file():
        raise CheckpointFileError(f"checkpoint {str(p)!r} is not a file")
    if not zipfile.is_zipfile(p):
        raise CheckpointFileError(
            f"checkpoint {str(p)!r} ({p.stat().st_size} bytes) is not a complete torch.save "
            "file: truncated (an interrupted copy or write?) or another kind of file")
    return p


def restore_weights(model: L.LightningModule, path: str | Path) -> dict[str, Any]:
    """Load the checkpoint at ``path`` into ``model`` as Lightning does when restoring a module.

    ``model.on_load_checkpoint(checkpoint)`` runs first (a model may resize a
    buffer that a fit stage made), then ``load_state_dict`` (strict).

    Returns:
        The loaded checkpoint dict (``epoch``, ``global_step``, ``callbacks``...).

    Raises:
        CheckpointFileError: a missing, truncated or unreadable file, a file without a
            ``state_dict``, or a state that does not fit the model (the message names
            the file and the missing/unexpected keys or the mismatched shapes).
    """
    p = check_checkpoint_file(path)
    try:
        checkpoint = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises RuntimeError/EOFError/UnpicklingError alike
        raise CheckpointFileError(f"checkpoint {str(p)!r} cannot be read: "
                                  f"{type(err).__name__}: {err}") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointFileError(f"checkpoint {str(p)!r} has no 'state_dict': not a Lightning "
                                  "checkpoint (a bare weights file belongs in the model's config)")
    model.on_load_checkpoint(checkpoint)
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        raise CheckpointFileError(
            f"checkpoint {str(p)!r} does not fit {type(model).__name__} (another model or "
            f"other model arguments?): {detail[:600]}") from err
    return checkpoint


__all__ = ["LIGHTNING_CKPT_NAMES", "AfterWarmupCheckpoint", "CheckpointFileError", "check_checkpoint_file",
           "declared_select_after", "restore_weights"]
