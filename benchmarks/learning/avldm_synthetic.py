"""AV-LDM evidence on synthetic Ego4D (issue 17, must-have 3): audio conditions compared.

Per seed: fit AV-LDM at ``avbench/configs/model/avldm_cpu.yaml`` (``avbench fit`` with
``ego4d_avldm_synthetic.yaml`` and the CPU trainer, unless ``--fit-dir`` already holds that
seed's checkpoint), then run the ``generation`` task (avbench/benchmarks/tasks/generation.py)
on the test split with the conditions same_video, zero, other_video, low_ambient and, when
an AV model is given, retrieved. Writes one JSON per run (metrics per condition and seed,
fit and evaluation seconds, the data/writer state) to ``--out``.

    OMP_NUM_THREADS=1 AVBENCH_STANDINS=/work/data7gen/standins .venv/bin/python \
        benchmarks/learning/avldm_synthetic.py --root /work/data7gen/ego4d --seeds 0 1 \
        --epochs 2 --fit-dir /work/data7gen --max-clips 32 --steps 10 \
        --av-model mc3 --av-checkpoint /work/data7gen/mc3_seed0.ckpt \
        --out benchmarks/learning/results/session7/avldm_default.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]


def fit(root: str, seed: int, epochs: int, out_dir: Path) -> tuple[Path, float | None]:
    """The seed's checkpoint (last in ``<out_dir>/fit_s<seed>``), fitting it first when absent."""
    run = out_dir / f"fit_s{seed}"
    ckpts = sorted(run.glob("lightning_logs/version_*/checkpoints/*.ckpt"), key=os.path.getmtime)
    if ckpts:
        return ckpts[-1], None
    cmd = [sys.executable, "-m", "avbench.cli", "fit",
           "--config", "avbench/configs/model/avldm_cpu.yaml",
           "--config", "avbench/configs/data/ego4d_avldm_synthetic.yaml",
           "--config", "avbench/configs/trainer/cpu.yaml", "--data.init_args.root", root,
           "--model.init_args.max_epochs", str(epochs), "--trainer.enable_progress_bar", "false",
           "--trainer.default_root_dir", str(run), "--seed_everything", str(seed)]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True)
    ckpts = sorted(run.glob("lightning_logs/version_*/checkpoints/*.ckpt"), key=os.path.getmtime)
    return ckpts[-1], time.perf_counter() - t0


def benchmark(args: argparse.Namespace) -> Any:
    """The ``ego4d-generation`` benchmark of the generation suite with this run's options."""
    import yaml

    from avbench.benchmarks import BenchmarkMeta
    from avbench.benchmarks.tasks import generation  # noqa: F401 - registers the kind

    suite = yaml.safe_load((REPO / "avbench/configs/suites/generation.yaml").read_text())
    entry = next(b for b in suite["define_benchmarks"] if b["name"] == "ego4d-generation")
    task = dict(entry["tasks"][0], max_clips=args.max_clips, sampling_steps=args.steps,
                av_model_name=args.av_model if args.av_checkpoint else None,
                av_model_checkpoint=args.av_checkpoint)
    return BenchmarkMeta.model_validate(dict(entry, name=f"{entry['name']}-evidence",
                                             tasks=[task]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", required=True, help="synthetic Ego4D root (avbench synth ego4d)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=3, help="AV-LDM epochs (config: 3)")
    p.add_argument("--fit-dir", type=Path, required=True, help="fit_s<seed>/ runs live here")
    p.add_argument("--max-clips", type=int, default=32, help="test clips generated per condition")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (None: the config's 25)")
    p.add_argument("--av-model", default="mc3", help="registry name of the AV model")
    p.add_argument("--av-checkpoint", default=None, help="its checkpoint (AV-sim, retrieved)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    from avbench.benchmarks import evaluate
    from avbench.data import Ego4DClipsDataModule
    from avbench.models.avldm import AVLDM

    bench = benchmark(args)
    state = subprocess.run(["git", "diff", "--stat", "--", "avbench/data/synthetic",
                            "avbench/data/datasets"], cwd=REPO, capture_output=True, text=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    out: dict[str, Any] = {"root": args.root, "commit": head.stdout.strip(),
                           "writer_diff_stat": state.stdout.strip().splitlines(),
                           "args": {k: str(v) for k, v in vars(args).items()},
                           "protocol": json.loads(bench.model_dump_json())["tasks"], "runs": []}
    for seed in args.seeds:
        ckpt, fit_s = fit(args.root, seed, args.epochs, args.fit_dir)
        model = AVLDM.load_from_checkpoint(str(ckpt), map_location="cpu").eval()
        dm = Ego4DClipsDataModule(root=args.root, num_frames=model.video_frames,
                                  with_cond_audio=True, batch_size=8, num_workers=0,
                                  sample_rate=16000, clip_seconds=3.0, image_size=128)
        torch.manual_seed(seed)
        res = evaluate(model, bench, dm, progress=False, raise_errors=True)
        info = res.tasks[0].info
        out["runs"].append({"seed": seed, "checkpoint": str(ckpt), "fit_seconds": fit_s,
                            "eval_seconds": res.seconds, "status": res.status,
                            "metrics": res.metrics, "info": info})
        print(json.dumps({"seed": seed, "eval_seconds": round(res.seconds, 1),
                          **{k: round(v, 3) for k, v in res.metrics.items()}}), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        from avbench.atomic_io import atomic_write_text

        atomic_write_text(args.out, json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
