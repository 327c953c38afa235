"""Decoded-sample cache: time to first batch, epoch time and memory per process.

Scenarios, each in fresh processes on the synthetic default VGGSound (the
``avbench/configs/data/vggsound_synthetic.yaml`` settings: 3,000 training clips
from JPEG frames + WAV, 128 px, 3 s at 16 kHz, batch 64, ``resize_crop_flip``):

* ``none``: no cache, 2 loader workers decode in every epoch;
* ``memory``: today's in-memory cache (decoded once per process with the 2
  workers, then served from RAM with no workers);
* ``disk-build``: the shared disk cache into an empty cache directory (the one
  decoding pass writes the memory-mapped entry);
* ``disk-warm``: the disk cache with the entry already published (a later job,
  run, runner worker or DDP rank);
* ``2x disk-warm`` / ``2x memory`` / ``2x none``: two processes at once, 1
  thread each (the runner's ``parallel_jobs: 2``);
* ``interleaved-1`` / ``interleaved-2``: the two read paths alone in ONE process
  with 1 / 2 threads, epochs alternated (memory, disk, memory, ...) so that
  load from other users of a shared machine hits both alike.

Per process: time to first training batch (from building the datamodule),
epoch 1 (includes that) and epoch 2, data only (the training loader with its
augmentation, no model); optionally ``--train``: one EZ-VSL CPU training epoch
(``Trainer.fit``, no validation) after the data epochs. Memory at the end, with
every process of a scenario still alive (a barrier): RSS, PSS and USS
(``/proc/<pid>/smaps_rollup``; USS = private clean + dirty) of the process plus
its loader workers, and the peak RSS. The disk cache's pages are the OS page
cache, counted in RSS and split in PSS between the processes that map them.

Run (repo root; about 6 minutes, 10 with ``--train``, on 2 cores)::

    .venv/bin/python benchmarks/perf/cache.py --root /work/data/vggsound [--train]

Prints one JSON line per scenario and a Markdown table (``--out`` writes the
JSON list); ``benchmarks/perf/README.md`` ("Decoded-sample cache") records them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DATA_CONFIG = REPO / "avbench/configs/data/vggsound_synthetic.yaml"
MODEL_CONFIG = REPO / "avbench/configs/model/ezvsl_cpu.yaml"


def smaps(pid: int) -> dict[str, int]:
    """``Rss``, ``Pss`` and ``Uss`` (private clean + dirty) of ``pid`` in bytes."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return {"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0),
            "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)}


def memory_figures() -> dict[str, Any]:
    """This process and its children (loader workers): smaps figures, summed."""
    import psutil

    me = psutil.Process()
    pids = [me.pid] + [c.pid for c in me.children(recursive=True)]
    total = {"rss": 0, "pss": 0, "uss": 0}
    for pid in pids:
        try:
            for k, v in smaps(pid).items():
                total[k] += v
        except OSError:  # a worker that just ended
            pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {f"{k}_mb": round(v / 1e6) for k, v in total.items()} | {
        "processes": len(pids), "peak_rss_mb": round(peak / 1e6)}


def barrier(folder: Path | None, parties: int, name: str) -> None:
    """Wait until ``parties`` processes reached ``name`` (files in ``folder``)."""
    if folder is None or parties <= 1:
        return
    (folder / f"{name}.{os.getpid()}").touch()
    deadline = time.time() + 1800
    while len(list(folder.glob(f"{name}.*"))) < parties and time.time() < deadline:
        time.sleep(0.05)


def datamodule(root: Path, cache: Any, cache_dir: Path) -> Any:
    import yaml

    from avbench.data import VGGSoundDataModule

    args = yaml.safe_load(DATA_CONFIG.read_text())["data"]["init_args"]
    return VGGSoundDataModule(**(args | {"root": root, "cache": cache, "cache_dir": cache_dir}))


def one(args: argparse.Namespace) -> dict[str, Any]:
    """One process of a scenario (run as a subprocess by :func:`main`)."""
    import torch

    import avbench.data  # noqa: F401 - imports are not part of the time to first batch

    torch.set_num_threads(args.threads)
    if args.mode == "interleaved":
        return interleaved(args)
    cache = {"none": False, "memory": "memory", "disk": "disk"}[args.mode]
    start = time.perf_counter()
    dm = datamodule(args.root, cache, args.cache_dir)
    dm.setup("fit")
    loader = dm.train_dataloader()
    out: dict[str, Any] = {"mode": args.mode, "threads": args.threads}
    epochs = []
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        n = 0
        for i, batch in enumerate(loader):
            if epoch == 0 and i == 0:
                out["first_batch_s"] = round(time.perf_counter() - start, 2)
            n += len(batch["id"])
        epochs.append(round(time.perf_counter() - (start if epoch == 0 else t0), 2))
    out |= {"epochs_s": epochs, "samples": n}
    out["built_here"] = bool(getattr(loader.dataset, "built_here", False)) or bool(
        getattr(getattr(loader.dataset, "source", None), "built_here", False))
    if args.train:
        import lightning as L
        import yaml

        cfg = yaml.safe_load(MODEL_CONFIG.read_text())["model"]
        module, cls = cfg["class_path"].rsplit(".", 1)
        import importlib

        L.seed_everything(0, workers=True)
        model = getattr(importlib.import_module(module), cls)(**cfg["init_args"])
        trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, limit_val_batches=0,
                            num_sanity_val_steps=0)
        t0 = time.perf_counter()
        trainer.fit(model, datamodule=dm)
        out["train_epoch_s"] = round(time.perf_counter() - t0, 1)
    barrier(args.barrier, args.parties, "measure")
    out["memory"] = memory_figures()
    barrier(args.barrier, args.parties, "exit")
    return out


def interleaved(args: argparse.Namespace, repeats: int = 3) -> dict[str, Any]:
    """The read paths alone, in ONE process under the same load: a training epoch
    (shuffled, ``resize_crop_flip``, collate; no workers) from the published disk entry
    and from the same samples held in RAM (what ``"memory"`` serves), alternated
    ``repeats`` times. Needs a built entry (run after ``disk-build``)."""
    import torch

    from avbench.data.augment import AugmentedDataset
    from avbench.data.cache import InMemoryDataset, cache_on_disk
    from avbench.data.sample import collate

    dm = datamodule(args.root, "disk", args.cache_dir)
    dm.setup("fit")
    disk = cache_on_disk(dm.dataset("train"), dm._settings() | {"split": "train"},
                         args.cache_dir, progress=False)
    if disk.built_here:
        raise RuntimeError("interleaved needs a published entry: run disk-build first")
    memory = InMemoryDataset(disk, [
        {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in disk[i].items()}
        for i in range(len(disk))])

    def epoch(dataset: Any) -> float:
        t0 = time.perf_counter()
        for _ in torch.utils.data.DataLoader(AugmentedDataset(dataset), batch_size=64,
                                             shuffle=True, collate_fn=collate):
            pass
        return round(time.perf_counter() - t0, 2)

    times: dict[str, list[float]] = {"memory": [], "disk": []}
    for _ in range(repeats):
        for name, dataset in (("memory", memory), ("disk", disk)):
            times[name].append(epoch(dataset))
    return {"mode": "interleaved", "threads": args.threads, "samples": len(disk),
            "epochs_s": times, "memory": memory_figures()}


def run(mode: str, root: Path, cache_dir: Path, *, parties: int, epochs: int, train: bool,
        threads: int) -> list[dict[str, Any]]:
    """``parties`` processes of ``mode`` at once; their JSON results."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--one", mode, "--root", str(root), "--cache-dir",
               str(cache_dir), "--epochs", str(epochs), "--threads", str(threads),
               "--barrier", tmp, "--parties", str(parties)] + (["--train"] if train else [])
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                 for _ in range(parties)]
        results = []
        for p in procs:
            stdout, _ = p.communicate()
            if p.returncode:
                raise RuntimeError(f"{mode}: process failed ({p.returncode})")
            results.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    return results


def machine() -> dict[str, Any]:
    import torch

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())
    mem = next(int(ln.split()[1]) for ln in open("/proc/meminfo") if ln.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": round(mem / 1e6, 1),
            "python": platform.python_version(), "torch": torch.__version__,
            "loadavg_at_start": os.getloadavg()[0]}


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one row per process of a scenario, then the interleaved A/B."""
    ab = [r for r in rows if r["mode"] == "interleaved"]
    rows = [r for r in rows if r["mode"] != "interleaved"]
    head = ("| scenario | process | first batch (s) | epoch 1 (s) | epoch 2 (s) | "
            "train epoch (s) | RSS (MB) | PSS (MB) | USS (MB) | peak RSS (MB) |")
    lines = [head, "|" + " --- |" * 10]
    for r in rows:
        m = r["memory"]
        e = r["epochs_s"] + [None]
        lines.append(
            f"| {r['scenario']} | {r['index']} | {r.get('first_batch_s', '-')} | {e[0]} | {e[1] or '-'} | "
            f"{r.get('train_epoch_s', '-')} | {m['rss_mb']} | {m['pss_mb']} | {m['uss_mb']} | "
            f"{m['peak_rss_mb']} |")
    for r in ab:
        lines.append(f"\ninterleaved A/B, {r['threads']} thread(s), {r['samples']} samples, "
                     f"epoch s: memory {r['epochs_s']['memory']}, disk {r['epochs_s']['disk']}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, default=REPO / "data/vggsound")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="disk cache root (default: a fresh temp dir, removed at the end)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train", action="store_true", help="add one EZ-VSL CPU training epoch")
    p.add_argument("--scenarios", nargs="+",
                   default=["none", "memory", "disk-build", "disk-warm", "2x disk-warm",
                            "2x memory", "2x none", "interleaved-1", "interleaved-2"])
    p.add_argument("--out", type=Path)
    # internal: one process of a scenario
    p.add_argument("--one", choices=["none", "memory", "disk", "interleaved"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--barrier", type=Path)
    p.add_argument("--parties", type=int, default=1)
    args = p.parse_args()
    if args.one:
        args.mode = args.one
        print(json.dumps(one(args)), flush=True)
        return
    from avbench.data.cache import disk_cache_entries

    tmp = tempfile.TemporaryDirectory(prefix="avbench-cache-perf-")
    cache_dir = args.cache_dir or Path(tmp.name)
    info = machine()
    print(json.dumps({"machine": info}), flush=True)
    rows = []
    for scenario in args.scenarios:
        parties = 2 if scenario.startswith("2x ") else 1
        mode = scenario.removeprefix("2x ").split("-")[0]
        threads = 2 // parties
        if mode == "interleaved":  # "interleaved-1": the A/B with 1 thread
            threads = int(scenario.split("-")[1]) if "-" in scenario else 2
        if scenario == "disk-build":
            from avbench.data.cache import clear_disk_cache

            clear_disk_cache(cache_dir)
        results = run(mode, args.root, cache_dir, parties=parties, epochs=args.epochs,
                      train=args.train, threads=threads)
        for i, r in enumerate(results):
            r |= {"scenario": scenario, "index": i}
            print(json.dumps(r), flush=True)
            rows.append(r)
    entries = disk_cache_entries(cache_dir)
    print(json.dumps({"disk_entries": entries}), flush=True)
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps({"machine": info, "rows": rows, "entries": entries},
                                       indent=1))
    tmp.cleanup()


if __name__ == "__main__":
    main()
