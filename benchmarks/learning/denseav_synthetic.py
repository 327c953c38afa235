"""Evidence for DenseAV on the synthetic world (issue 14, must-have 5).

DenseAV is trained at its CPU config (``avbench/configs/model/denseav_cpu.yaml``: stand-in
towers, stage ``aligners`` then ``full``) on DenseAV's ``mixed-full`` data, 50/50 synthetic
spoken captions + synthetic VGGSound clips (``configs/data/mixed_speech_sound_synthetic.yaml``),
once per variant and seed:

* ``two-head`` (the paper's mixed speech + sound model: K = 2, "max image, mean audio");
* ``one-head`` (K = 1; disentanglement is not scorable with one head);
* ``mean-mean`` / ``max-max`` (K = 2, the aggregation ablations: ``image_agg`` /
  ``time_agg`` = mean/mean, the reference's ``sisa``, and max/max, ``mima``).

Each trained model is scored with :func:`avbench.benchmarks.evaluate` (the leaderboard's
path) on ``mixed-disentanglement`` (mixed test split), ``ade20k-speech-prompted`` and
``ade20k-sound-prompted``, ``vggss`` (VGGSound test = synthetic VGG-SS, localization and
retrieval), ``spoken-captions-retrieval`` (DenseAV's own dense score, ``score: model``)
and, with ``--flickr-root``, ``flickr-test``. No model selection: the weights after the
fixed budget.

Comparison rows on the same prompted / VGG-SS benchmarks: the trivial baselines
(``full-image``, ``center-prior``) and the SSL family (``--ssl ezvsl lvs ...``). The SSL
models come either from a leaderboard run's checkpoints (``--ssl-from
RESULTS/_work/synthetic``: ``<model>.vggsound.seed<k>/fit.json`` -> its selected
checkpoint, the suite's training on synthetic VGGSound) or, without it, are trained here
on VGGSound at their CPU configs for ``--ssl-epochs`` (3, the suite's budget).

Spread: mean and sample sd over seeds, and the 95% t-interval (``mean +- t sd / sqrt(n)``).

Run (from the repo root, 1 thread)::

    OMP_NUM_THREADS=1 AVBENCH_STANDINS=/work/data7dav/standins \\
      .venv/bin/python benchmarks/learning/denseav_synthetic.py \\
        --speech-root /work/data7dav/spoken_captions --sound-root /work/data6/vggsound \\
        --ade-root /work/data7dav/ade20k_prompted --variants two-head --seeds 0 1 \\
        --ssl ezvsl lvs --ssl-from /tmp/lb7/results/_work/synthetic \\
        --out benchmarks/learning/results/session7/denseav_two_head.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from evidence import json_safe
from scipy import stats

from avbench.atomic_io import atomic_write_text
from avbench.benchmarks import evaluate
from avbench.benchmarks.baselines import BASELINES
from avbench.configs import resolve_config
from avbench.runner.assignments import parse_assignments
from avbench.runner.checkpointing import restore_weights
from avbench.runner.fit_stages import run_fit_stages
from avbench.runner.instantiation import import_object

#: DenseAV variants: init-argument overrides of the CPU config
VARIANTS: dict[str, dict[str, Any]] = {
    "two-head": {"heads": 2},
    "one-head": {"heads": 1},
    "mean-mean": {"heads": 2, "image_agg": "mean", "time_agg": "mean"},
    "max-max": {"heads": 2, "image_agg": "max", "time_agg": "max"},
}
#: benchmark -> the metrics kept
METRICS = {
    "mixed-disentanglement": ("ap_dis", "ap_speech", "ap_sound"),
    "ade20k-speech-prompted": ("map", "miou_oracle"),
    "ade20k-sound-prompted": ("map", "miou_oracle"),
    "vggss": ("ap50", "auc", "a2v_r1", "v2a_r1"),
    "flickr-test": ("ap50", "auc"),
    "spoken-captions-retrieval": ("a2v_r1", "a2v_r5", "a2v_r10", "v2a_r1", "v2a_r5", "v2a_r10"),
}
#: benchmarks every localizing model is scored on (SSL rows, trivial baselines)
SHARED = ("ade20k-speech-prompted", "ade20k-sound-prompted", "vggss", "flickr-test")


def data_config(name: str) -> dict[str, Any]:
    """``class_path`` and ``init_args`` of a shipped data config."""
    return yaml.safe_load(resolve_config(f"data/{name}.yaml").read_text())["data"]


def model_config(name: str) -> dict[str, Any]:
    return yaml.safe_load(resolve_config(f"model/{name}.yaml").read_text())["model"]


def make_datamodule(name: str, **overrides: Any) -> Any:
    """The datamodule of ``configs/data/<name>.yaml`` with ``overrides`` (roots, sizes)."""
    cfg = data_config(name)
    dm = import_object(cfg["class_path"])(**(cfg["init_args"] | {"num_workers": 0} | overrides))
    return dm


def datamodules(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark -> datamodule serving its split."""
    mixed = make_datamodule("mixed_speech_sound_synthetic", speech_root=args.speech_root,
                            sound_root=args.sound_root, epoch_size=args.epoch_size)
    dms = {
        "mixed-disentanglement": mixed,
        "ade20k-speech-prompted": make_datamodule("ade20k_prompted_synthetic",
                                                  root=args.ade_root, kind="speech"),
        "ade20k-sound-prompted": make_datamodule("ade20k_prompted_synthetic",
                                                 root=args.ade_root, kind="sound"),
        "vggss": make_datamodule("vggsound_synthetic", root=args.sound_root),
        "spoken-captions-retrieval": make_datamodule("spoken_captions_synthetic",
                                                     root=args.speech_root),
    }
    if args.flickr_root:
        dms["flickr-test"] = make_datamodule("flickr_synthetic", root=args.flickr_root)
    return dms


def make_trainer_factory(max_epochs: int) -> Any:
    def make(stage: Any, final: bool, callbacks: list) -> L.Trainer:
        length = stage.trainer_kwargs()
        if "max_steps" not in length and "max_epochs" not in length:
            length["max_epochs"] = max_epochs
        return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=0, callbacks=callbacks,
                         **length)
    return make


def train_denseav(dm: Any, variant: str, seed: int, epochs: int,
                  overrides: dict[str, Any]) -> tuple[Any, float]:
    """DenseAV at the CPU config + the variant's and the user's overrides, seeded."""
    from avbench.models.denseav import DenseAV

    L.seed_everything(seed, workers=True, verbose=False)
    model = DenseAV(**(model_config("denseav_cpu")["init_args"] | VARIANTS[variant] | overrides))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_fit_stages(model, dm, make_trainer_factory(epochs), seed=seed)
    return model.eval(), time.perf_counter() - start


def ssl_model(name: str, seed: int, args: argparse.Namespace, vgg_dm: Any) -> tuple[Any, dict]:
    """An SSL model (``configs/model/<name>_cpu.yaml``): a leaderboard run's selected checkpoint
    (``--ssl-from``) or trained here on VGGSound for ``--ssl-epochs``."""
    cfg = model_config(f"{name}_cpu")
    L.seed_everything(seed, workers=True, verbose=False)
    model = import_object(cfg["class_path"])(**cfg.get("init_args", {}))
    if args.ssl_from:
        fit = json.loads((Path(args.ssl_from) / f"{name}.vggsound.seed{seed}" / "fit.json").read_text())
        restore_weights(model, fit["weights"])
        return model.eval(), {"source": "checkpoint", "weights": fit["weights"],
                              "selection": fit.get("selection", {}).get("rule")}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_fit_stages(model, vgg_dm, make_trainer_factory(args.ssl_epochs), seed=seed)
    return model.eval(), {"source": "trained here", "epochs": args.ssl_epochs,
                          "fit_seconds": time.perf_counter() - start}


def score(model: Any, benchmarks: list[str], dms: dict[str, Any]) -> dict[str, Any]:
    """Metrics (and status / reason) per benchmark, through the leaderboard's evaluator."""
    out: dict[str, Any] = {}
    for bench in benchmarks:
        if bench not in dms:
            continue
        start = time.perf_counter()
        res = evaluate(model, bench, dms[bench], progress=False)
        row: dict[str, Any] = {"status": res.status, "seconds": time.perf_counter() - start,
                               "metrics": {k: float(res.metrics[k]) for k in METRICS[bench]
                                           if k in res.metrics and res.metrics[k] is not None}}
        if res.status != "ok":
            row["reason"] = res.reason or next((t.reason for t in res.tasks if t.reason), None)
        out[bench] = row
    return out


def summary_stats(values: list[float]) -> dict[str, Any]:
    """Mean, sample sd and 95% t-interval over seeds (sd/interval None with one value)."""
    x = np.asarray(values, dtype=np.float64)
    n, mean = len(x), float(x.mean())
    if n < 2:
        return {"mean": mean, "sd": None, "ci95": None, "n": n, "values": x.tolist()}
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n))
    return {"mean": mean, "sd": sd, "ci95": [mean - half, mean + half], "n": n,
            "values": x.tolist()}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per row (DenseAV variant, SSL model, baseline) and benchmark metric: stats over seeds."""
    out: dict[str, Any] = {}
    for row in sorted({r["row"] for r in runs}):
        mine = [r for r in runs if r["row"] == row]
        cells: dict[str, Any] = {}
        for bench, keys in METRICS.items():
            for k in keys:
                vals = [r["scores"][bench]["metrics"][k] for r in mine
                        if bench in r["scores"] and k in r["scores"][bench]["metrics"]]
                if vals:
                    cells[f"{bench}/{k}"] = summary_stats(vals)
        fits = [r["fit_seconds"] for r in mine if r.get("fit_seconds") is not None]
        if fits:
            cells["fit_seconds"] = summary_stats(fits)
        out[row] = cells
    return out


def _cell(s: dict[str, Any] | None) -> str:
    if s is None:
        return "—"
    if s["sd"] is None:
        return f"{s['mean']:.3f}"
    return f"{s['mean']:.3f} ± {s['sd']:.3f}"


def markdown(summary: dict[str, Any]) -> str:
    """One row per model / baseline: mean ± sd over seeds of the main numbers."""
    cols = ["mixed-disentanglement/ap_dis", "mixed-disentanglement/ap_speech",
            "mixed-disentanglement/ap_sound", "ade20k-speech-prompted/map",
            "ade20k-speech-prompted/miou_oracle", "ade20k-sound-prompted/map",
            "ade20k-sound-prompted/miou_oracle", "vggss/ap50", "vggss/auc", "flickr-test/ap50",
            "spoken-captions-retrieval/a2v_r1", "spoken-captions-retrieval/v2a_r1"]
    lines = ["| row | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for row, cells in summary.items():
        lines.append(f"| {row} | " + " | ".join(_cell(cells.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--speech-root", type=Path, required=True, help="synthetic spoken_captions root")
    p.add_argument("--sound-root", type=Path, required=True, help="synthetic vggsound root")
    p.add_argument("--ade-root", type=Path, required=True, help="synthetic ade20k_prompted root")
    p.add_argument("--flickr-root", type=Path, default=None, help="synthetic flickr root (optional)")
    p.add_argument("--variants", nargs="*", default=["two-head"], choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    p.add_argument("--epochs", type=int, default=2, help="epochs of DenseAV's full stage")
    p.add_argument("--epoch-size", type=int, default=None,
                   help="mixed training items per epoch (default: the datamodule's)")
    p.add_argument("--set", nargs="*", default=[], metavar="ARG=VALUE",
                   help="DenseAV init-argument overrides of the CPU config (all variants)")
    p.add_argument("--ssl", nargs="*", default=[], help="SSL models scored beside DenseAV")
    p.add_argument("--ssl-from", type=Path, default=None,
                   help="a results _work/<suite> folder with <model>.vggsound.seed<k>/fit.json")
    p.add_argument("--ssl-epochs", type=int, default=3)
    p.add_argument("--baselines", nargs="*", default=["full-image", "center-prior"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True, help="JSON file, rewritten after every run")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    overrides = parse_assignments(args.set, "--set")
    dms = datamodules(args)
    runs: list[dict[str, Any]] = []
    meta = {"argv": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "machine": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "denseav_config": model_config("denseav_cpu")["init_args"] | overrides,
            "variants": {v: VARIANTS[v] for v in args.variants},
            "spread": "sd = sample sd over seeds; ci95 = 95% t-interval"}

    def write() -> None:
        summary = summarise(runs)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        doc = json_safe({"meta": meta, "summary": summary, "runs": runs})
        atomic_write_text(args.out, json.dumps(doc, indent=1, default=float, allow_nan=False))
        print(markdown(summary), flush=True)

    for name in args.baselines:
        base = BASELINES[name]()
        runs.append({"row": f"baseline {name}", "seed": None,
                     "scores": score(base, list(SHARED), dms)})
    for name in args.ssl:
        for seed in args.seeds:
            model, how = ssl_model(name, seed, args, dms["vggss"])
            runs.append({"row": name, "seed": seed, "ssl": how,
                         "scores": score(model, list(SHARED), dms)})
            print(json.dumps(runs[-1], default=float), flush=True)
    write()
    for seed in args.seeds:
        for variant in args.variants:
            model, secs = train_denseav(dms["mixed-disentanglement"], variant, seed, args.epochs,
                                        overrides)
            start = time.perf_counter()
            scores = score(model, list(METRICS), dms)
            runs.append({"row": f"denseav {variant}", "seed": seed, "fit_seconds": secs,
                         "eval_seconds": time.perf_counter() - start,
                         "inv_temperature": float(model.inverse_temperature()),
                         "scores": scores})
            print(json.dumps(runs[-1], default=float), flush=True)
            write()
    write()


if __name__ == "__main__":
    main()
