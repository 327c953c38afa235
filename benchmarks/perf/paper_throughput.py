"""Training throughput and peak memory of every PAPER config, and DDP scaling.

For each model of ``avbench/configs/suites/paper.yaml`` (model config plus the
suite entry's overrides, e.g. JSA's ``precision: 16-mixed``) this trains with
``lightning.Trainer.fit`` on in-memory random batches shaped like the paper data
(``configs/data/vggsound.yaml``: 224-px frames, a 10-s window at 16 kHz that
each model's front-end crops) at the model's GLOBAL batch, and reports:

- ``samples_per_s``: global training samples per second (forward, backward,
  optimiser step, DDP all-reduce), timed on rank 0 from the end of the warm-up
  steps, with the accelerator synchronised;
- ``peak_mem_mb``: peak accelerator memory of rank 0
  (``torch.cuda.max_memory_allocated``) on GPU; on CPU the peak resident set
  size of rank 0's process (each measurement runs in its own process);
- with ``--world 1 N ...``: ``efficiency = samples_per_s(N) / (N x
  samples_per_s(1))`` at the same GLOBAL batch (strong scaling: the per-device
  batch is ``global / N``, as a paper run on N devices).

Data loading is out of the picture (batches are pre-made in memory); the
paper's loaders must keep up separately (``benchmarks/perf/loader.py``).

Run (repo root)::

    # a GPU node: every paper config on 1 GPU, then DDP scaling to 2, 4, 8 GPUs
    .venv/bin/python benchmarks/perf/paper_throughput.py --accelerator gpu --world 1 2 4 8

    # CPU at tiny sizes (narrow ResNets, small frames and batch): checks the path
    .venv/bin/python benchmarks/perf/paper_throughput.py --accelerator cpu --tiny --world 1 2

Prints one JSON line per (model, world size) and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MODELS = ("ezvsl", "fnac", "slavc", "lvs", "jsa")
#: --tiny: narrow one-block ResNets and small projections (CPU smoke runs)
TINY_MODEL = {"image_width": 8, "image_layers": [1, 1, 1, 1], "audio_width": 8,
              "audio_layers": [1, 1, 1, 1]}
TINY_DIM = {"ezvsl": {"dim": 16}, "fnac": {"dim": 16}, "slavc": {"dim": 16}, "lvs": {},
            "jsa": {"dim": 16, "mlp_hidden": 32, "image_grid": [1, 1], "reciprocal_k": 1}}


def paper_job(name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(model config, trainer kwargs, data init_args) of ``name`` in the paper suite."""
    from avbench.runner.suite import component_config, load_suite, trainer_config

    suite = load_suite("paper")
    entry = next(m for m in suite.models if m.name == name)
    model_cfg = component_config(entry, "model", suite.source)
    data_cfg = component_config(suite.datasets[0], "data", suite.source)
    return model_cfg, trainer_config(suite, entry), data_cfg["init_args"]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """One (model, world size) measurement in this process (rank 0 reports)."""
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, Dataset

    from avbench.data.sample import collate
    from avbench.runner.instantiation import instantiate, model_and_data_bases

    torch.set_num_threads(max(1, args.threads))
    model_cfg, trainer_cfg, data = paper_job(args.one)
    if args.tiny:
        model_cfg["init_args"].update(TINY_MODEL | TINY_DIM[args.one])
    model = instantiate(model_cfg, model_and_data_bases()[0])
    global_batch = args.global_batch or model.global_batch_size
    if global_batch % args.world:
        raise SystemExit(f"global batch {global_batch} not divisible by world {args.world}")
    per_device = global_batch // args.world
    size = args.image_size or data["image_size"]
    n_audio = int(data["clip_seconds"] * data["sample_rate"])

    class Random(Dataset):
        def __len__(self) -> int:
            return per_device * (args.warmup + args.steps) * args.world

        def __getitem__(self, i: int) -> dict[str, Any]:
            g = torch.Generator().manual_seed(i)
            return {"image": torch.rand(3, size, size, generator=g),
                    "audio": 0.1 * torch.randn(1, n_audio, generator=g), "id": str(i)}

    class Timer(L.Callback):
        def __init__(self) -> None:
            self.start: float | None = None
            self.end = 0.0

        def _sync(self) -> None:
            if torch.cuda.is_available() and args.accelerator == "gpu":
                torch.cuda.synchronize()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if batch_idx == args.warmup:
                self._sync()
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self._sync()
            self.end = time.perf_counter()

    # a LightningDataModule-free loader; pre-load so the loader costs nothing
    items = [Random()[i] for i in range(per_device * (args.warmup + args.steps))]
    loader = DataLoader(items, batch_size=per_device, collate_fn=collate, drop_last=True)
    timer = Timer()
    kwargs = {k: v for k, v in trainer_cfg.items()
              if k in ("precision", "sync_batchnorm", "gradient_clip_val")}
    if args.accelerator == "cpu" and kwargs.get("precision") == "16-mixed":
        kwargs["precision"] = "bf16-mixed"  # fp16 AMP is GPU-only
    trainer = L.Trainer(
        accelerator=args.accelerator, devices=args.world,
        strategy="ddp" if args.world > 1 else "auto", max_steps=args.warmup + args.steps,
        limit_val_batches=0, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
        use_distributed_sampler=False, **model.trainer_arguments, **kwargs,
    )
    if args.accelerator == "gpu":
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(model, train_dataloaders=loader)
    if trainer.global_rank != 0:
        sys.exit(0)
    assert timer.start is not None, "no timed step: raise --steps"
    seconds = timer.end - timer.start
    if args.accelerator == "gpu":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:  # ru_maxrss is in KiB on Linux
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "model": args.one, "world": args.world, "accelerator": args.accelerator,
        "precision": str(trainer.precision), "global_batch": global_batch,
        "per_device_batch": per_device, "image_size": size, "audio_samples": n_audio,
        "tiny": args.tiny, "steps": args.steps,
        "samples_per_s": global_batch * args.steps / seconds, "peak_mem_mb": peak,
    }


def run_one(name: str, world: int, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`measure` in a fresh process (its own peak memory)."""
    cmd = [sys.executable, __file__, "--one", name, "--world", str(world),
           "--accelerator", args.accelerator, "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--threads", str(args.threads)]
    for flag in ("global_batch", "image_size"):
        if getattr(args, flag):
            cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.tiny:
        cmd.append("--tiny")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{name} world {world} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table with the DDP scaling efficiency against world size 1."""
    base = {r["model"]: r["samples_per_s"] for r in rows if r["world"] == 1}
    out = ["| model | devices | precision | global / per-device batch | samples/s | "
           "peak memory (MB) | scaling efficiency |", "| --- | ---: | --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        eff = (f"{r['samples_per_s'] / (r['world'] * base[r['model']]):.2f}"
               if r["model"] in base and r["world"] > 1 else "")
        out.append(f"| {r['model']} | {r['world']} | {r['precision']} | {r['global_batch']} / "
                   f"{r['per_device_batch']} | {r['samples_per_s']:.1f} | "
                   f"{r['peak_mem_mb']:.0f} | {eff} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--world", nargs="+", type=int, default=[1],
                   help="device counts (one value with --one)")
    p.add_argument("--accelerator", choices=["gpu", "cpu"], default="gpu")
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="torch intra-op threads per process")
    p.add_argument("--global-batch", type=int, default=None,
                   help="override the models' global batch (default: the paper's)")
    p.add_argument("--image-size", type=int, default=None, help="default: the data config's")
    p.add_argument("--tiny", action="store_true", help="narrow ResNets for CPU smoke runs")
    p.add_argument("--one", choices=MODELS, help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = p.parse_args(argv)
    if args.one:
        args.world = args.world[0]
        print(json.dumps(measure(args)), flush=True)
        return 0
    rows = []
    for name in args.models:
        for world in args.world:
            row = run_one(name, world, args)
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(f"\nmachine: {platform.machine()} {platform.processor() or ''}, "
          f"{os.cpu_count()} CPUs, python {platform.python_version()}")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
