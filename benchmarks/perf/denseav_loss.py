"""Peak memory and time of DenseAV's contrastive loss: chunked volume vs plain einsum.

The loss (forward + backward) is the symmetric InfoNCE on the "max image, mean
audio" score of every audio against every image
(avbench/nn/dense_similarity.py), from head-split features that require grad.
Three ways of computing it:

- ``einsum``: the reference's way: the whole volume ``[N, N, K, h, w, T]`` in one
  einsum, then the reductions (``aggregate_volume(similarity_volume(...))``), on
  the full gathered batch ``N`` (what every rank of the reference computes);
- ``chunked``: :func:`avbench.nn.dense_similarity.aggregate_similarity` on the same
  ``N x N`` (slices of ``chunk`` images);
- ``chunked-local``: what :class:`avbench.models.denseav.DenseAV` computes on one rank
  under DDP: its ``B`` local audios against the ``N`` gathered images and the ``N``
  gathered audios against its ``B`` local images (two ``B x N`` blocks).

The regularisers are not included (they use the paired volume ``[B, K, h, w, T]``,
linear in the batch). Each (size, method) runs in a fresh subprocess with
``MALLOC_MMAP_THRESHOLD_=131072`` (large blocks go back to the OS when freed): peak
memory = growth of the process's peak RSS (``ru_maxrss``) over one loss call, after a
warm-up call on tiny inputs and after the inputs exist; time = median of
``--repeats`` further calls.

Sizes: ``cpu`` = the CPU config on one device (64 clips, dim 96, K 2, 128 px -> 16x16
tokens pooled to 8x8, 3 s -> 16 audio tokens); ``paper`` = 10 clips per device x 4
devices = 40 gathered, 14x14 image tokens (224 px, patch 8, pooled 2x), 33 audio
tokens, K 2, dim 384.

Run (repo root)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/perf/denseav_loss.py --sizes cpu paper
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

SIZES = {
    # name: (local batch B, gathered N, dim, heads K, h, w, T)
    "cpu": (64, 64, 96, 2, 8, 8, 16),
    "cpu-small": (16, 16, 96, 2, 8, 8, 16),
    "paper": (10, 40, 384, 2, 14, 14, 33),
}
METHODS = ("einsum", "chunked", "chunked-local")


def _loss(method: str, audio: torch.Tensor, image: torch.Tensor, local: int,
          chunk: int) -> torch.Tensor:
    from avbench.nn.dense_similarity import (
        aggregate_similarity,
        aggregate_volume,
        similarity_volume,
    )

    n = audio.shape[0]
    mask = torch.ones(n, audio.shape[-1], dtype=torch.bool)
    target = torch.arange(n)
    if method == "einsum":
        s = aggregate_volume(similarity_volume(audio, image), mask)
        return 0.5 * (F.cross_entropy(s, target) + F.cross_entropy(s.t(), target))
    if method == "chunked":
        s = aggregate_similarity(audio, image, mask, chunk_size=chunk)
        return 0.5 * (F.cross_entropy(s, target) + F.cross_entropy(s.t(), target))
    a2v = aggregate_similarity(audio[:local], image, mask[:local], chunk_size=chunk)
    v2a = aggregate_similarity(audio, image[:local], mask, chunk_size=chunk).t()
    t = torch.arange(local)
    return 0.5 * (F.cross_entropy(a2v, t) + F.cross_entropy(v2a, t))


def run_case(size: str, method: str, repeats: int, chunk: int) -> dict:
    """One (size, method) in this process: peak RSS growth (MiB) and median seconds."""
    b, n, dim, k, h, w, t = SIZES[size]
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(n, k, dim // k, t, generator=g, requires_grad=True)
    image = torch.randn(n, k, dim // k, h, w, generator=g, requires_grad=True)
    # warm-up on tiny inputs: the first call loads kernels and allocator pools (~250 MiB)
    tiny_a = torch.randn(2, k, 4, 3, requires_grad=True)
    _loss(method, tiny_a, torch.randn(2, k, 4, 2, 2, requires_grad=True), 1, chunk).backward()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _loss(method, audio, image, b, chunk).backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    times = []
    for _ in range(repeats):
        audio.grad = image.grad = None
        start = time.perf_counter()
        _loss(method, audio, image, b, chunk).backward()
        times.append(time.perf_counter() - start)
    volume = n * n * k * h * w * t * 4 / 2**20
    return {"size": size, "method": method, "B": b, "N": n, "dim": dim, "K": k, "h": h, "w": w,
            "T": t, "chunk": chunk, "peak_rss_growth_mib": round(peak / 1024, 1),
            "full_volume_mib": round(volume, 1), "median_s": round(statistics.median(times), 4),
            "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["cpu"], choices=sorted(SIZES))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=8)
    ap.add_argument("--case", nargs=2, metavar=("SIZE", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(*args.case, args.repeats, args.chunk)))
        return 0
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"os.cpu_count()={os.cpu_count()}")
    print("| size | method | B local / N gathered | full volume (MiB) | peak RSS growth (MiB) "
          "| fwd+bwd (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    # a fixed mmap threshold: every large tensor is mmapped and returned to the OS when freed,
    # so the peak RSS follows the live tensors (glibc's dynamic threshold keeps freed blocks)
    env = os.environ | {"MALLOC_MMAP_THRESHOLD_": "131072"}
    for size in args.sizes:
        for method in args.methods:
            if method == "chunked-local" and SIZES[size][0] == SIZES[size][1]:
                continue  # one device: the model computes the N x N matrix once (= chunked)
            out = subprocess.run([sys.executable, __file__, "--case", size, method,
                                  "--repeats", str(args.repeats), "--chunk", str(args.chunk)],
                                 capture_output=True, text=True, check=True, env=env)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {size} | {method} | {r['B']} / {r['N']} | {r['full_volume_mib']} | "
                  f"{r['peak_rss_growth_mib']} | {r['median_s']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
