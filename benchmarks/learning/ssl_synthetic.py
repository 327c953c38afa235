"""Evidence that the SSL localization models learn (issue 4, must-have 6).

Trains each model (``ezvsl``, ``fnac``, ``slavc``, ``lvs``, ``jsa``) at its CPU
config (``avbench/configs/model/<name>_cpu.yaml``) on synthetic VGGSound
(``avbench/configs/data/vggsound_synthetic.yaml``) for a fixed small
budget, selects the checkpoint on VAL only (lowest ``val/loss``), then
evaluates it with :func:`avbench.benchmarks.evaluate` on ``vggss`` (AP50, AUC,
mean cIoU, audio->visual and visual->audio R@1) and ``flickr-test``, and
prints one table next to the trivial baselines (full image, centre prior,
random embeddings) computed through the same ``evaluate()``.

Needs the synthetic data first::

    .venv/bin/avbench synth vggsound --root data/vggsound --preset default
    .venv/bin/avbench synth flickr --root data/flickr --preset default

Run (from the repo root)::

    .venv/bin/python benchmarks/learning/ssl_synthetic.py --out data/learning/ssl.json

``--set jsa.lr=1e-3`` overrides a model init argument; ``--epochs jsa=8``
overrides one model's epoch budget. Results are written as JSON (``--out``)
and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml

from avbench.benchmarks import evaluate, get_benchmark
from avbench.benchmarks.baselines import (
    CenterPriorBaseline,
    FullImageBaseline,
    RandomEmbeddingBaseline,
)
from avbench.cli import parse_assignments
from avbench.metrics.retrieval import retrieval_scores
from avbench.runner.checkpointing import AfterWarmupCheckpoint

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "avbench" / "configs"
MODELS = ("ezvsl", "fnac", "slavc", "lvs", "jsa")
#: epochs per model: each trains in ~2-4.5 minutes on 2 CPU cores.
EPOCHS = {"ezvsl": 10, "fnac": 10, "slavc": 5, "lvs": 5, "jsa": 5}
BENCHMARKS = ("vggss", "flickr-test")
COLUMNS = (
    ("vggss", "ap50"), ("vggss", "auc"), ("vggss", "mean_ciou"),
    ("vggss", "a2v_r1"), ("vggss", "v2a_r1"),
    ("flickr-test", "ap50"), ("flickr-test", "auc"), ("flickr-test", "mean_ciou"),
)


def _instantiate(cfg: dict[str, Any], **override: Any) -> Any:
    module, cls = cfg["class_path"].rsplit(".", 1)
    args = {**cfg.get("init_args", {}), **override}
    return getattr(importlib.import_module(module), cls)(**args)


def _yaml(path: Path, key: str) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())[key]


def build_datamodules(args: argparse.Namespace) -> dict[str, Any]:
    vgg = _yaml(CONFIGS / "data" / "vggsound_synthetic.yaml", "data")
    fl = _yaml(CONFIGS / "data" / "flickr_synthetic.yaml", "data")
    over = {} if args.num_workers is None else {"num_workers": args.num_workers}
    train_over = over | parse_assignments(args.data, "--data")
    vgg_dm = _instantiate(vgg, root=str(args.vggsound_root), **train_over)
    fl_dm = _instantiate(fl, root=str(args.flickr_root), **over)
    return {"vggss": vgg_dm, "flickr-test": fl_dm}


def _retrieval_only(name: str) -> Any:
    """``name`` with its retrieval task only, for embed-only models (random embeddings).

    ``vggss``'s primary task is localization, so a model without ``localize``
    is skipped as a whole; this view scores its retrieval with the very same
    task object, data and split.
    """
    bench = get_benchmark(name)
    tasks = tuple(t for t in bench.tasks if t.task == "retrieval")
    metrics = tuple(m for t in tasks for m in t.metric_names())
    return bench.model_copy(update={
        "name": f"{name}-retrieval-only", "tasks": tasks, "metrics": metrics,
        "main_score": metrics[0],
    })


def evaluate_all(model: Any, dms: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {}
    for bench in BENCHMARKS:
        target: Any = bench
        if "localize" not in model.meta.capabilities:
            if not any(t.task == "retrieval" for t in get_benchmark(bench).tasks):
                out[bench] = {}
                continue
            target = _retrieval_only(bench)
        res = evaluate(model, target, dms[bench], progress=False, raise_errors=True)
        out[bench] = dict(res.metrics) if res.status == "ok" else {}
    return out


def mean_pairwise_cosine(x: torch.Tensor) -> float:
    """Mean off-diagonal cosine similarity of the rows of ``x`` (near 1 = collapsed)."""
    x = torch.nn.functional.normalize(x, dim=-1)
    n = x.shape[0]
    cos = x @ x.t()
    return float((cos.sum() - cos.diagonal().sum()) / (n * (n - 1)))


def instance_r1(audio: torch.Tensor, visual: torch.Tensor) -> float:
    """Audio->visual R@1 where row i's match is visual i (tie-aware; chance 1/n)."""
    return float(retrieval_scores(audio, visual, ks=(1,), relevance="instance")["r1"])


class EpochDiagnostics(L.Callback):
    """Per-epoch collapse diagnostics on the first ``n`` VAL samples.

    After each validation epoch: the logged ``val/*`` losses, the mean pairwise
    cosine of the audio embeddings (near 1 = collapsed, as FNAC with large L1
    weights) and audio->visual R@1 among those ``n`` clips (chance ``1/n``).
    Kept in the JSON row as ``history``.
    """

    def __init__(self, n: int = 256) -> None:
        self.n = n
        self.history: list[dict[str, float]] = []

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if trainer.sanity_checking or "embed" not in pl_module.meta.capabilities:
            return
        audio, visual, seen = [], [], 0
        for batch in trainer.datamodule.val_dataloader():
            batch = {k: v.to(pl_module.device) if torch.is_tensor(v) else v
                     for k, v in batch.items()}
            emb = pl_module.embed(batch)
            audio.append(emb["audio"])
            visual.append(emb["visual"])
            seen += emb["audio"].shape[0]
            if seen >= self.n:
                break
        a, v = torch.cat(audio)[: self.n].cpu(), torch.cat(visual)[: self.n].cpu()
        row = {"epoch": trainer.current_epoch, "audio_cos": mean_pairwise_cosine(a),
               "val_a2v_r1": instance_r1(a, v)}
        row |= {k: float(v) for k, v in trainer.callback_metrics.items()
                if k.startswith("val/")}
        self.history.append(row)
        print("epoch", json.dumps(row), flush=True)


def train_one(
    name: str, args: argparse.Namespace, dms: dict[str, Any], overrides: dict[str, Any]
) -> dict[str, Any]:
    L.seed_everything(args.seed, workers=True)
    model = _instantiate(_yaml(CONFIGS / "model" / f"{name}_cpu.yaml", "model"), **overrides)
    epochs = args.epochs.get(name, EPOCHS[name])
    ckpt_dir = tempfile.mkdtemp(prefix=f"ssl_{name}_", dir=args.workdir)
    ckpt = AfterWarmupCheckpoint(dirpath=ckpt_dir, monitor="val/loss", mode="min", save_top_k=1)
    diag = EpochDiagnostics()
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=epochs, logger=False,
        enable_progress_bar=args.progress, enable_model_summary=False,
        callbacks=[ckpt, diag], num_sanity_val_steps=0, log_every_n_steps=10,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=dms["vggss"])
    fit_s = time.perf_counter() - start
    best = ckpt.best_model_path
    model = type(model).load_from_checkpoint(best, map_location="cpu")
    model.eval()
    start = time.perf_counter()
    metrics = evaluate_all(model, dms)
    eval_s = time.perf_counter() - start
    return {
        "model": name, "epochs": epochs, "overrides": overrides,
        "best_val_loss": float(ckpt.best_model_score) if ckpt.best_model_score is not None
        else None,
        "best_checkpoint": Path(best).name, "fit_seconds": fit_s, "eval_seconds": eval_s,
        "steps": trainer.global_step, "metrics": metrics, "history": diag.history,
    }


def fmt(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


def table(rows: list[dict[str, Any]]) -> str:
    head = ["model", "epochs", "fit s"] + [f"{b} {m}" for b, m in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], str(r.get("epochs", "—")),
                 f"{r['fit_seconds']:.0f}" if "fit_seconds" in r else "—"]
        cells += [fmt(r["metrics"].get(b, {}).get(m)) for b, m in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    p.add_argument("--epochs", nargs="*", default=[], help="NAME=EPOCHS overrides")
    p.add_argument("--set", nargs="*", default=[], help="NAME.ARG=VALUE model overrides")
    p.add_argument("--data", nargs="*", default=[],
                   help="ARG=VALUE overrides of the training DataModule "
                        "(e.g. train_augment=resize_crop_flip)")
    p.add_argument("--vggsound-root", type=Path, default=REPO / "data" / "vggsound")
    p.add_argument("--flickr-root", type=Path, default=REPO / "data" / "flickr")
    p.add_argument("--num-workers", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--workdir", default=None, help="where checkpoints go (default /tmp)")
    p.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = p.parse_args()
    args.epochs = {k: int(v) for k, v in (e.split("=", 1) for e in args.epochs)}
    overrides: dict[str, dict[str, Any]] = parse_assignments(args.set, "--set")
    torch.set_num_threads(args.threads)
    dms = build_datamodules(args)

    rows: list[dict[str, Any]] = []
    if not args.no_baselines:
        for base in (FullImageBaseline(), CenterPriorBaseline(), RandomEmbeddingBaseline()):
            rows.append({"model": f"({base.meta.name})", "metrics": evaluate_all(base, dms)})
            print(table(rows[-1:]), flush=True)
    for name in args.models:
        row = train_one(name, args, dms, overrides.get(name, {}))
        rows.append(row)
        print(json.dumps(row), flush=True)
        print(table(rows), flush=True)
        if args.out is not None:
            _write(args, rows)
    print(f"\nmachine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(table(rows))
    if args.out is not None:
        _write(args, rows)


def _write(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"rows": rows, "argv": vars(args) | {"out": str(args.out)}},
                              indent=1, default=str))
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
