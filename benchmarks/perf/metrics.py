"""Speed of the localization metric: vectorised torch vs a per-image numpy loop.

Feeds N heat maps of SxS (default 5,000 x 224 x 224) with Flickr-style
consensus GT maps (3 random annotator boxes, values 0/0.5/1) through

* ``avbench.metrics.LocalizationMetric`` (update in batches + compute), and
* a per-image numpy loop in the style of the reference test scripts
  (EZ-VSL / FNAC / JSA: ``normalize_img``, ``np.sort(...)[int(H*W*0.5)]``,
  ``cal_CIOU`` with a float64 ``infer_map``, then AP50 / AUC / mean),

checks that both give the same per-image cIoU (bitwise), and prints the
timings (best of ``--repeats``) and the ratio. A second row times the realistic
input: 7x7 maps upsampled inside the metric.

    python benchmarks/perf/metrics.py            # full size, ~1 min incl. data
    python benchmarks/perf/metrics.py --n 500    # quick
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F

from avbench.metrics import LocalizationMetric, stable_key


def make_data(
    n: int, size: int, seed: int = 0, chunk: int = 250
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Low-res maps [n,7,7], their bilinear upsampling [n,S,S] and consensus GT maps [n,S,S]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(n, 7, 7, generator=g)
    maps = torch.empty(n, size, size)
    for lo in range(0, n, chunk):
        maps[lo : lo + chunk] = F.interpolate(
            low[lo : lo + chunk, None], size=(size, size), mode="bilinear", align_corners=True
        )[:, 0]
    gts = torch.zeros(n, size, size)
    for i in range(n):
        for _ in range(3):  # 3 annotators
            x0, y0 = torch.randint(0, size // 3, (2,), generator=g).tolist()
            w, h = torch.randint(size // 3, 2 * size // 3, (2,), generator=g).tolist()
            gts[i, y0 : y0 + h, x0 : x0 + w] += 1
    gts.div_(2).clamp_(max=1)
    return low, maps, gts


def reference_loop(maps: np.ndarray, gts: np.ndarray) -> tuple[list[float], dict[str, float]]:
    """Per-image loop as in the reference test scripts (numpy; float32 maps, float64 GT)."""

    def normalize_img(value: np.ndarray) -> np.ndarray:
        vmin, vmax = value.min(), value.max()
        if not (vmax - vmin) == 0:
            value = (value - vmin) / (vmax - vmin)
        return value

    cious = []
    for pred, gtmap in zip(maps, gts):
        pred = normalize_img(pred)
        thr = np.sort(pred.flatten())[int(pred.shape[0] * pred.shape[1] * 0.5)]
        infer_map = np.zeros(gtmap.shape)
        infer_map[pred >= thr] = 1
        ciou = np.sum(infer_map * gtmap) / (np.sum(gtmap) + np.sum(infer_map * (gtmap == 0)))
        cious.append(float(ciou))
    arr = np.array(cious)
    y = [np.sum(arr >= 0.05 * i) / len(arr) for i in range(21)]
    summary = {
        "ap50": float(np.mean(arr >= 0.5)),
        "auc": float(np.trapezoid(y, [0.05 * i for i in range(21)])),
        "mean_ciou": float(arr.mean()),
    }
    return cious, summary


def run_metric(
    maps: torch.Tensor, gts: torch.Tensor, ids: list[str], batch: int
) -> LocalizationMetric:
    m = LocalizationMetric()
    for lo in range(0, maps.shape[0], batch):
        m.update(maps[lo : lo + batch], gts[lo : lo + batch], ids[lo : lo + batch])
    m.compute()
    return m


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=250, help="maps per metric update")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loop-repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, numpy {np.__version__}"
    )
    if hasattr(os, "getloadavg"):
        print(f"load average before: {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    low, maps, gts = make_data(args.n, args.size)
    ids = [str(i) for i in range(args.n)]
    print(
        f"data: {args.n} maps {args.size}x{args.size} + consensus GT in {time.perf_counter() - t0:.1f} s"
    )

    run_metric(maps[: args.batch], gts[: args.batch], ids[: args.batch], args.batch)  # warm-up
    t_vec = best_time(lambda: run_metric(maps, gts, ids, args.batch), args.repeats)
    t_low = best_time(lambda: run_metric(low, gts, ids, args.batch), args.repeats)

    maps_np = maps.numpy()
    gts_np = gts.numpy().astype(np.float64)  # the reference builds GT maps with np.zeros (float64)
    ref: tuple[list[float], dict[str, float]] = ([], {})

    def loop() -> None:
        nonlocal ref
        ref = reference_loop(maps_np, gts_np)

    def loop_low() -> None:
        # the reference pipeline on 7x7 maps: batched F.interpolate, then the per-image loop
        for lo in range(0, args.n, args.batch):
            up = F.interpolate(
                low[lo : lo + args.batch, None],
                size=(args.size, args.size),
                mode="bilinear",
                align_corners=True,
            )[:, 0].numpy()
            reference_loop(up, gts_np[lo : lo + args.batch])

    t_loop = best_time(loop, args.loop_repeats)
    t_loop_low = best_time(loop_low, args.loop_repeats)

    m = run_metric(maps, gts, ids, args.batch)
    keys, ciou = m.per_sample()
    order = np.argsort(np.array([stable_key(i) for i in ids]), kind="stable")
    diff = float(np.abs(np.array(ref[0])[order] - ciou.numpy()).max())
    ours = {k: float(v) for k, v in m.compute().items()}

    print()
    print(
        f"| input ({args.n} maps, GT {args.size}x{args.size}) | reference-style numpy loop (s) "
        f"| LocalizationMetric (s) | maps/s (metric) | speed-up |"
    )
    print("|---|---:|---:|---:|---:|")
    print(
        f"| {args.size}x{args.size} maps | {t_loop:.2f} | {t_vec:.2f} | {args.n / t_vec:,.0f} | "
        f"{t_loop / t_vec:.1f}x |"
    )
    print(
        f"| 7x7 maps, bilinear upsampling included | {t_loop_low:.2f} | {t_low:.2f} | "
        f"{args.n / t_low:,.0f} | {t_loop_low / t_low:.1f}x |"
    )
    print()
    print(f"max |cIoU metric - cIoU loop| = {diff:g}")
    print(
        f"metric: ap50={ours['ap50']:.4f} auc={ours['auc']:.4f} mean_ciou={ours['mean_ciou']:.4f}"
    )
    print(
        f"loop:   ap50={ref[1]['ap50']:.4f} auc={ref[1]['auc']:.4f} mean_ciou={ref[1]['mean_ciou']:.4f}"
    )
    if hasattr(os, "getloadavg"):
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
