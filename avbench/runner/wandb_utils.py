"""Weights & Biases for the runner: offline by default, ``WANDB_MODE=disabled`` respected.

One W&B run per job (project ``avbench``, group = suite, tags = model,
training dataset, ``seed<k>``), the full resolved config as the run config,
Lightning's training curves through ``WandbLogger``, and the final metrics of
every benchmark (``<benchmark>/<metric>``) in the run summary. The
leaderboard writer logs its tables as ``wandb.Table`` in a run of its own
(``job_type="leaderboard"``). Offline runs need no account: sync them later
with ``wandb sync <results>/wandb/offline-run-*``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from avbench.runner.results import WandbInfo


def wandb_mode(suite: Any = None, mode: str | None = None) -> str:
    """Effective mode: explicit > ``WANDB_MODE`` > suite setting > offline."""
    if mode:
        return mode
    env = os.environ.get("WANDB_MODE")
    if env:
        return env
    settings = getattr(suite, "wandb", None)
    if settings is not None and not settings.enabled:
        return "disabled"
    return getattr(settings, "mode", None) or "offline"


def make_logger(suite: Any, *, name: str, tags: list[str], config: dict[str, Any],
                save_dir: str | Path, mode: str | None = None, job_type: str = "train") -> Any:
    """A started ``WandbLogger``, or None when W&B is disabled."""
    mode = wandb_mode(suite, mode)
    if mode == "disabled":
        return None
    from lightning.pytorch.loggers import WandbLogger

    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    project = getattr(getattr(suite, "wandb", None), "project", None) or "avbench"
    logger = WandbLogger(
        project=project, group=suite.name, name=name, tags=tags, save_dir=str(save_dir),
        mode=mode, job_type=job_type, config=config, reinit="create_new",
    )
    _ = logger.experiment  # start the run now so its id is known before fitting
    return logger


def run_info(logger: Any, suite: Any) -> WandbInfo:
    run = logger.experiment
    return WandbInfo(
        run_id=getattr(run, "id", None),
        project=getattr(run, "project", None),
        group=getattr(suite, "name", None),
        mode=getattr(getattr(run, "settings", None), "mode", None),
        dir=str(getattr(run, "dir", "") or "") or None,
    )


def finish(logger: Any, final: dict[str, float], failed: bool = False,
           status: str | None = None) -> None:
    """Final metrics into the run summary, plus ``files/avbench-final.json`` in the run
    directory (resolved config + final metrics; readable offline, uploaded by ``wandb sync``).

    ``status`` (summary ``status``): default ``"error"`` when ``failed`` else ``"ok"``; the
    runner passes ``"interrupted"`` for a job a signal stopped (the run exits with code 1).
    """
    import json

    run = logger.experiment
    status = status or ("error" if failed else "ok")
    for k, v in final.items():
        run.summary[k] = v
    run.summary["status"] = status
    run_dir = getattr(run, "dir", None)
    if run_dir:
        try:
            config = {k: v for k, v in run.config.items() if not k.startswith("_")}
        except Exception:  # noqa: BLE001 - never fail a job on W&B bookkeeping
            config = {}
        payload = {"run_id": run.id, "status": status, "config": config, "metrics": final}
        (Path(run_dir) / "avbench-final.json").write_text(
            json.dumps(payload, indent=1, default=str) + "\n")
    run.finish(exit_code=1 if failed else 0)


def typed_table(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as W&B tables take it: numeric and boolean columns unchanged (missing values
    stay NaN, so W&B can sort and plot them), every other column as text."""
    text = [c for c in df.columns
            if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))]
    return df.astype(dict.fromkeys(text, str))


def log_tables(tables: dict[str, pd.DataFrame], *, suite: str, save_dir: str | Path,
               mode: str | None = None, project: str = "avbench") -> str | None:
    """Log pandas DataFrames as ``wandb.Table`` (numeric columns kept numeric, see
    :func:`typed_table`) in a leaderboard run (files under ``<save_dir>/wandb``, like the
    job runs); returns the run id, None when W&B is disabled or there is nothing to log."""
    mode = mode or os.environ.get("WANDB_MODE") or "offline"
    if mode == "disabled" or not tables:
        return None
    import wandb

    Path(save_dir).mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=project, group=suite, job_type="leaderboard", name=f"{suite}-leaderboard",
                     dir=str(save_dir), mode=mode, reinit="create_new")
    try:
        for name, df in tables.items():
            run.log({f"leaderboard/{name}": wandb.Table(dataframe=typed_table(df))})
        return run.id
    finally:
        run.finish()
