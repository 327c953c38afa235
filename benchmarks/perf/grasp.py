"""GRaSP and ILI pipeline timing (issue 15, must-have 6).

1. ``grasp``: :func:`avbench.nn.class_graph.infer_class_graph` (causal-learn GRaSP,
   ``lambda_value`` 2, depth 3, the ILI defaults) against the number of nodes
   (2C nodes ``audio_<c>``/``visual_<c>``; default 20, 30, 56, 112) on
   soft-label-like data: ``n`` clips, each with one annotated class ``y`` and a
   planted sparse co-occurrence graph (each class has up to 2 co-occurring
   classes, present in one modality with probability 0.3-0.8); per node the
   soft label is ``sigmoid(logit)`` with logit ~ 4 when the class is present
   in that modality, ~ -4 otherwise, plus Gaussian noise (sd 1.5) and a
   modality-shared per-clip noise, so columns are correlated like a teacher's
   sigmoid heads. Each size is timed ``--repeats`` times (different seeds);
   best and median are reported.
2. ``pipeline``: the whole ILI fit (teacher, GRaSP, student) at the CPU config
   (``avbench/configs/model/ili_cpu.yaml``, batch 64) on the AVE-15 and VEGAS
   feature files under ``--ave-root`` / ``--vegas-root``, with per-stage wall
   times (the GRaSP step's own time from ``graph_info["seconds"]``).

Run (from the repo root)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/perf/grasp.py \\
        --ave-root /work/ev6/ili_world/default/ave --vegas-root /work/ev6/ili_world/default/vegas \\
        --out benchmarks/learning/results/session6/ili_perf.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml

from avbench.atomic_io import atomic_write_text
from avbench.configs import resolve_config
from avbench.data import AVEDataModule, VEGASDataModule
from avbench.models.ili import ILIEmbedding
from avbench.nn.class_graph import class_graph_nodes, infer_class_graph
from avbench.runner.fit_stages import run_fit_stages


def soft_label_data(n_nodes: int, n: int, seed: int = 0) -> np.ndarray:
    """Sigmoid soft labels [n, n_nodes] of ``n_nodes // 2`` classes with planted co-occurrence."""
    c = n_nodes // 2
    rng = np.random.default_rng(seed)
    order = rng.permutation(c)
    children = {int(order[i]): [int(x) for x in rng.choice(order[i + 1:], size=min(2, c - i - 1),
                                                             replace=False)] for i in range(c)}
    y = rng.integers(0, c, n)
    present = np.zeros((n, 2 * c), dtype=bool)
    present[np.arange(n), y] = present[np.arange(n), y + c] = True
    prob = rng.uniform(0.3, 0.8, (c, c))
    mod = rng.integers(0, 2, (c, c))  # the modality a co-occurring class appears in
    for a, kids in children.items():
        rows = np.flatnonzero(y == a)
        for b in kids:
            hit = rows[rng.random(len(rows)) < prob[a, b]]
            present[hit, b + c * mod[a, b]] = True
    shared = rng.normal(0, 1.0, (n, c))  # clip-level noise shared by a class's two heads
    logit = np.where(present, 4.0, -4.0) + rng.normal(0, 1.5, (n, 2 * c)) + np.tile(shared, 2)
    return 1.0 / (1.0 + np.exp(-logit))


def time_grasp(sizes: list[int], n: int, repeats: int, budget: float) -> list[dict[str, Any]]:
    """Seconds of :func:`infer_class_graph` per node count; stops growing past ``budget`` s."""
    rows = []
    for nodes in sizes:
        secs, entries = [], []
        for r in range(repeats):
            x = soft_label_data(nodes, n, seed=r)
            g = infer_class_graph(x, class_graph_nodes([str(i) for i in range(nodes // 2)]), seed=r)
            secs.append(float(g.info["seconds"]))
            entries.append(g.n_entries)
            if secs[-1] > budget:
                break
        row = {"nodes": nodes, "n_samples": n, "runs": len(secs), "best_s": min(secs),
               "median_s": statistics.median(secs), "all_s": secs, "n_entries": entries}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


class _StageClock(L.Callback):
    """Wall time of each Trainer.fit (one per fit stage)."""

    def __init__(self, name: str, out: dict[str, float]) -> None:
        self.name, self.out = name, out

    def on_fit_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.start = time.perf_counter()

    def on_fit_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.out[self.name] = time.perf_counter() - self.start


def time_pipeline(root: Path, dataset: str, seed: int = 0) -> dict[str, Any]:
    """Whole ILI fit (teacher, GRaSP, student) on ``root``'s feature file, per-stage seconds."""
    dm = (AVEDataModule(root, source="features", classes="ave15", batch_size=64, num_workers=0)
          if dataset == "ave" else VEGASDataModule(root, source="features", batch_size=64, num_workers=0))
    args = yaml.safe_load(resolve_config("model/ili_cpu.yaml").read_text())["model"]["init_args"]
    L.seed_everything(seed, verbose=False)
    model = ILIEmbedding(**(args | {"num_classes": len(dm.classes)}))
    stages: dict[str, float] = {}

    def make(stage: Any, final: bool, callbacks: list) -> L.Trainer:
        return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[*callbacks, _StageClock(stage.name, stages)],
                         **stage.trainer_kwargs())

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_fit_stages(model, dm, make, seed=seed)
    total = time.perf_counter() - start
    row = {"dataset": dataset, "root": str(root), "n_train": len(dm.dataset("train")),
           "classes": len(dm.classes), "total_s": total, "teacher_s": stages.get("teacher"),
           "student_s": stages.get("student"), "grasp_s": model.graph_info.get("seconds"),
           "graph_entries": model.graph_info.get("n_entries"),
           "epochs": {"teacher": args["teacher_epochs"], "student": args["student_epochs"]}}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="*", type=int, default=[20, 30, 56, 112])
    p.add_argument("--n", type=int, default=1000, help="clips (rows) of the soft-label data")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--budget", type=float, default=120.0, help="stop repeating a size past this many s")
    p.add_argument("--ave-root", type=Path, default=None)
    p.add_argument("--vegas-root", type=Path, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out: dict[str, Any] = {
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "threads": torch.get_num_threads(), "load_avg_start": os.getloadavg()},
        "grasp": time_grasp(args.sizes, args.n, args.repeats, args.budget), "pipeline": []}
    for ds, root in (("ave", args.ave_root), ("vegas", args.vegas_root)):
        if root is not None:
            out["pipeline"].append(time_pipeline(root, ds))
    out["machine"]["load_avg_end"] = os.getloadavg()
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
