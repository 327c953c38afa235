"""Training throughput of each model at its CPU config, and Lightning's overhead.

For every model (``avbench/configs/model/<name>_cpu.yaml``) this measures
training samples/s (forward + backward + optimiser step, batch 64, 128 px
image, 3 s audio at 16 kHz) twice over the SAME module initialisation and the
SAME in-memory batches (so data loading is out of the picture):

- ``plain``: a hand-written PyTorch loop calling ``training_step`` /
  ``backward`` / ``optimizer.step`` (``self.log`` a no-op);
- ``fit``: ``lightning.Trainer.fit`` (no logger, checkpointing, progress bar or
  validation), timed by a callback from the end of the warm-up steps.

``overhead = plain_samples_per_s / fit_samples_per_s - 1`` (target <= 10%).

``--processes N`` runs N copies at once, each with ``threads / N`` threads,
and reports the summed samples/s: what the runner's ``parallel_jobs: N`` buys
over one job with all the threads.

Run (repo root)::

    .venv/bin/python benchmarks/perf/train_step.py [--models ezvsl jsa] [--steps 8]
    .venv/bin/python benchmarks/perf/train_step.py --processes 2   # 2 x 1 thread
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from torch.utils.data import DataLoader, Dataset

REPO = Path(__file__).resolve().parents[2]
MODELS = ("ezvsl", "fnac", "slavc", "lvs", "jsa")


def build(name: str) -> L.LightningModule:
    cfg = yaml.safe_load((REPO / "avbench/configs/model" / f"{name}_cpu.yaml").read_text())
    module, cls = cfg["model"]["class_path"].rsplit(".", 1)
    return getattr(importlib.import_module(module), cls)(**cfg["model"]["init_args"])


class Batches(Dataset):
    """``n`` pre-made batches (a DataLoader with ``batch_size=None`` yields them)."""

    def __init__(self, n: int, batch: int, image: int, seconds: float, sr: int = 16000) -> None:
        g = torch.Generator().manual_seed(0)
        self.items = [
            {
                "image": torch.rand(batch, 3, image, image, generator=g),
                "audio": 0.1 * torch.randn(batch, 1, int(seconds * sr), generator=g),
                "label": torch.randint(0, 16, (batch,), generator=g),
                "id": [f"c{i}_{j}" for j in range(batch)],
            }
            for i in range(n)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def _optimizer(model: L.LightningModule) -> torch.optim.Optimizer:
    opt: Any = model.configure_optimizers()
    if isinstance(opt, dict):
        opt = opt["optimizer"]
    if isinstance(opt, (list, tuple)):
        opt = opt[0][0] if isinstance(opt[0], (list, tuple)) else opt[0]
    return opt


def plain_loop(model: L.LightningModule, data: Batches, warmup: int) -> float:
    """Samples/s of a plain PyTorch loop over ``data`` (after ``warmup`` steps)."""
    model.train()
    # No Trainer, no logger: ``self.log`` becomes a no-op. (Left alone it warns
    # on every call, and that path made the loop ~3x slower in a test here.)
    model.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    opt = _optimizer(model)
    n = 0
    start = 0.0
    for i, batch in enumerate(DataLoader(data, batch_size=None, shuffle=False)):
        if i == warmup:
            start = time.perf_counter()
        out = model.training_step(batch, i)
        loss = out["loss"] if isinstance(out, dict) else out
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if hasattr(model, "on_train_batch_end"):
            model.on_train_batch_end(out, batch, i)  # as Lightning does (no-op here)
        if i >= warmup:
            n += batch["image"].shape[0]
    return n / (time.perf_counter() - start)


class _Timer(L.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = 0.0
        self.end = 0.0
        self.samples = 0

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, idx: int) -> None:
        if idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, out: Any, batch: Any,
                           idx: int) -> None:
        if idx >= self.warmup:
            self.samples += batch["image"].shape[0]
            self.end = time.perf_counter()


def lightning_fit(model: L.LightningModule, data: Batches, warmup: int) -> float:
    """Samples/s of ``Trainer.fit`` over ``data`` (after ``warmup`` steps)."""
    timer = _Timer(warmup)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
        num_sanity_val_steps=0, callbacks=[timer], log_every_n_steps=10,
    )
    trainer.fit(model, train_dataloaders=DataLoader(data, batch_size=None, shuffle=False))
    return timer.samples / (timer.end - timer.start)


def measure(name: str, data: Batches, args: argparse.Namespace) -> tuple[float, float, float]:
    """Best-of-``repeats`` plain and fit samples/s of ``name``, and its parameters (M)."""
    plain, fit = [], []
    for r in range(args.repeats):  # alternate so drifts in machine load hit both
        L.seed_everything(r, verbose=False)
        plain.append(plain_loop(build(name), data, args.warmup))
        L.seed_everything(r, verbose=False)
        fit.append(lightning_fit(build(name), data, args.warmup))
    params = sum(q.numel() for q in build(name).parameters()) / 1e6
    return max(plain), max(fit), params


def concurrent(args: argparse.Namespace) -> None:
    """``args.processes`` copies of this script at once; summed samples/s per model."""
    threads = max(1, args.threads // args.processes)
    cmd = [sys.executable, __file__, "--models", *args.models, "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--batch", str(args.batch),
           "--image-size", str(args.image_size), "--seconds", str(args.seconds),
           "--threads", str(threads), "--repeats", str(args.repeats), "--json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
             for _ in range(args.processes)]
    rows: dict[str, list[dict[str, float]]] = {}
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a measuring process failed (exit {proc.returncode})")
        for line in out.splitlines():
            if line.startswith("{"):
                row = json.loads(line)
                rows.setdefault(row["model"], []).append(row)
    print(f"{args.processes} processes x {threads} thread(s), at the same time; "
          f"batch {args.batch}, {args.image_size} px, {args.steps} timed steps")
    print("| model | plain loop samples/s (sum) | Lightning fit samples/s (sum) | per process (fit) |")
    print("|---|---|---|---|")
    for name, rs in rows.items():
        per = " / ".join(f"{r['fit']:.1f}" for r in rs)
        print(f"| {name} | {sum(r['plain'] for r in rs):.1f} | {sum(r['fit'] for r in rs):.1f} "
              f"| {per} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    p.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="alternate plain/fit this many times")
    p.add_argument("--processes", type=int, default=1,
                   help="run this many copies at once, threads/N threads each; sum their rates")
    p.add_argument("--json", action="store_true", help="one JSON line per model (for --processes)")
    args = p.parse_args()
    if args.processes > 1:
        concurrent(args)
        return
    torch.set_num_threads(args.threads)
    data = Batches(args.warmup + args.steps, args.batch, args.image_size, args.seconds)
    if not args.json:
        print(f"machine: {platform.machine()} {platform.processor()}, {torch.get_num_threads()} "
              f"threads, torch {torch.__version__}, lightning {L.__version__}; batch "
              f"{args.batch}, {args.image_size} px, {args.seconds:g} s audio; "
              f"{args.steps} timed steps")
        print("| model | params (M) | plain loop samples/s | Lightning fit samples/s | overhead |")
        print("|---|---|---|---|---|")
    for name in args.models:
        bp, bf, params = measure(name, data, args)
        if args.json:
            print(json.dumps({"model": name, "plain": bp, "fit": bf, "params": params}),
                  flush=True)
        else:
            print(f"| {name} | {params:.2f} | {bp:.1f} | {bf:.1f} | {100 * (bp / bf - 1):+.1f}% |",
                  flush=True)


if __name__ == "__main__":
    main()
