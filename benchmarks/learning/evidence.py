"""What the learning-evidence scripts share: strict JSON of results and a quiet CPU fit.

The scripts run as files (``python benchmarks/learning/<script>.py``), so this module
is imported as a sibling (the script's folder is first on ``sys.path``).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import lightning as L
import numpy as np

from avbench.runner.fit_stages import run_fit_stages


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf floats as None (strict JSON; an undefined recall is None)."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def fit_stages_on_cpu(model: L.LightningModule, datamodule: L.LightningDataModule,
                      seed: int) -> float:
    """Run the model's fit stages on one CPU device without logging, checkpoints or
    validation (no model selection: the evidence scores the final weights); returns the
    wall time in seconds."""

    def make(stage: Any, final: bool, callbacks: list) -> L.Trainer:
        return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=0, callbacks=callbacks,
                         **stage.trainer_kwargs())

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_fit_stages(model, datamodule, make, seed=seed)
    return time.perf_counter() - start


__all__ = ["fit_stages_on_cpu", "json_safe"]
