"""Throughput of the VGGSound DataModule (mp4 source) against raw PyAV decoding.

What is compared, on the same mp4 files (synthetic VGGSound, real layout):

* ``raw``: a plain single-process loop - open the mp4 with PyAV, decode the
  frame nearest the middle to RGB, decode the centred ``clip_seconds`` audio
  window to float - with no resizing, resampling, tensors or batching. This is
  the floor cost of the work any loader must do.
* ``loader_w0``: ``VGGSoundDataModule(source="video")`` train loader with
  ``num_workers=0`` (same process; measures the per-clip overhead of the real
  loading path: two container opens, decode, resize to ``--image-size``,
  resample, collate). Its CPU ms per clip against raw's is the overhead
  figure least disturbed by other load on the machine.
* ``loader_wN``: the same loader with ``--workers`` processes (default 2, the
  machine's cores), after one warm-up epoch so worker start-up is excluded.

Each rate is the best of ``--repeats`` epochs, the three measurements
interleaved so that load from other processes on a shared machine hits them
alike.

Target (DESIGN): the loader with its workers reaches >= 0.8x the raw decode
rate. Results go to stdout as JSON (and ``--out``); the README's "Loader"
section records them with the machine.

Usage::

    python benchmarks/perf/loader.py                 # generates the small preset in a temp dir
    python benchmarks/perf/loader.py --root data/vggsound --limit 400
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def raw_decode(path: Path, clip_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Middle frame (RGB uint8) + centred audio window (float32), PyAV only."""
    with av.open(str(path)) as container:
        vs = container.streams.video[0]
        duration = float(vs.duration * vs.time_base) if vs.duration else float(
            container.duration / av.time_base)
        target = duration / 2
        container.seek(int(target / vs.time_base), stream=vs, backward=True, any_frame=False)
        frame = None
        for f in container.decode(vs):
            frame = f
            if f.time is not None and f.time >= target - 1e-6:
                break
        image = frame.to_ndarray(format="rgb24")

        au = container.streams.audio[0]
        sr = au.codec_context.sample_rate
        a_dur = float(au.duration * au.time_base) if au.duration else duration
        start = max(a_dur / 2 - clip_seconds / 2, 0.0)
        container.seek(int(start / Fraction(au.time_base)), stream=au, backward=True)
        chunks, first, got = [], None, 0
        for f in container.decode(au):
            if first is None:
                first = f.time or 0.0
            arr = f.to_ndarray()
            chunks.append(arr)
            got += arr.shape[-1]
            if first + got / sr >= start + clip_seconds:
                break
        audio = np.concatenate(chunks, axis=-1).mean(0)
        lo = max(round((start - first) * sr), 0)
        audio = audio[lo: lo + round(clip_seconds * sr)]
    return image, audio


def raw_epoch(paths: list[Path], clip_seconds: float) -> tuple[float, float]:
    """(clips per second, CPU ms per clip) of one plain PyAV pass over ``paths``."""
    t0, c0 = time.perf_counter(), time.process_time()
    for p in paths:
        raw_decode(p, clip_seconds)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return len(paths) / wall, 1000 * cpu / len(paths)


def make_loader(root: Path, args: argparse.Namespace, workers: int, n_items: int):
    """The VGGSound train loader (mp4 source) over the first ``n_items`` clips."""
    from avbench.data.datamodules.vggsound import VGGSoundDataModule

    dm = VGGSoundDataModule(
        root, source="video", batch_size=args.batch_size, num_workers=workers,
        clip_seconds=args.clip_seconds, image_size=args.image_size, drop_last_train=False,
        val_fraction=0.0,
    )
    ds = dm.dataset("train")
    ds.records = ds.records[:n_items]
    return dm.train_dataloader()


def loader_epoch(loader) -> tuple[float, float]:
    """(clips per second, CPU ms per clip of this process) of one pass of ``loader``.

    The CPU figure is meaningful for ``num_workers=0`` only (workers are other
    processes).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    count = sum(len(b["id"]) for b in loader)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return count / wall, 1000 * cpu / count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=None,
                    help="existing synthetic/real VGGSound root with video/<id>.mp4")
    ap.add_argument("--preset", default="small", help="preset to generate when --root is absent")
    ap.add_argument("--limit", type=int, default=300, help="clips per epoch")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--clip-seconds", type=float, default=3.0)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=3, help="best of N interleaved epochs")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    tmp = None
    root = args.root
    gen_seconds = None
    if root is None:
        from avbench.data.synthetic import generate

        tmp = tempfile.TemporaryDirectory(prefix="avbench_loader_bench_")
        root = Path(tmp.name) / "vggsound"
        gen_seconds = generate("vggsound", root, args.preset, seed=0, progress=False)["seconds"]

    from avbench.data.datasets.vggsound import VGGSound

    ids = [r.id for r in VGGSound(root, "train", source="video", val_fraction=0.0).records]
    ids = ids[: args.limit]
    paths = [root / "video" / f"{i}.mp4" for i in ids]
    probe = av.open(str(paths[0]))
    vs = probe.streams.video[0]
    clip_info = {"width": vs.codec_context.width, "height": vs.codec_context.height,
                 "fps": float(vs.average_rate or 0), "seconds": float(probe.duration / av.time_base)}
    probe.close()

    loader_w0 = make_loader(root, args, 0, len(ids))
    loader_wn = make_loader(root, args, args.workers, len(ids))
    # warm-up: file cache, resampler kernels, worker start-up (persistent workers)
    raw_epoch(paths[:16], args.clip_seconds)
    loader_epoch(loader_wn)
    # interleave the three measurements so load from other processes hits all alike
    raw = w0 = wn = 0.0
    raw_cpu = w0_cpu = float("inf")
    for _ in range(args.repeats):
        rate, cpu = raw_epoch(paths, args.clip_seconds)
        raw, raw_cpu = max(raw, rate), min(raw_cpu, cpu)
        rate, cpu = loader_epoch(loader_w0)
        w0, w0_cpu = max(w0, rate), min(w0_cpu, cpu)
        wn = max(wn, loader_epoch(loader_wn)[0])
    result = {
        "machine": f"{os.cpu_count()} cores {platform.machine()} ({platform.processor() or 'cpu'})",
        "clips": len(ids), "clip": clip_info, "image_size": args.image_size,
        "clip_seconds": args.clip_seconds, "batch_size": args.batch_size,
        "raw_pyav_clips_per_s": round(raw, 1),
        "loader_w0_clips_per_s": round(w0, 1),
        f"loader_w{args.workers}_clips_per_s": round(wn, 1),
        "raw_cpu_ms_per_clip": round(raw_cpu, 2),
        "loader_w0_cpu_ms_per_clip": round(w0_cpu, 2),
        "ratio_w0_vs_raw": round(w0 / raw, 2),
        f"ratio_w{args.workers}_vs_raw": round(wn / raw, 2),
        "target_ratio": 0.8,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "generated_preset_seconds": gen_seconds,
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
