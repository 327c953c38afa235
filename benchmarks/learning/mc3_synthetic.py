"""Evidence for MC3 on the synthetic Ego4D world (issue 16, must-have 5).

For every seed, trains SoundingActions / MC3 at its CPU config
(``avbench/configs/model/mc3_cpu.yaml``) on the synthetic Ego4D training split
(``avbench/configs/data/ego4d_synthetic.yaml``: one frame, 3 s at 16 kHz, batch 32)
in two variants with the same total number of epochs:

* ``refine``: the paper's recipe, ``align_epochs`` of symmetric InfoNCE, then
  ``refine_epochs`` of InfoNCE + consensus (the config's 5 + 5);
* ``align``: align only, the refine stage switched off with the model's own knobs
  (``align_epochs = align + refine``, ``refine_epochs = 0``).

No model selection (no validation pass): each model is evaluated after its fixed
budget. Every model is scored with :func:`avbench.benchmarks.evaluate` on
``ego4d-discovery`` (ROC-AUC / PR-AUC of the model's ``sounding_score``: for MC3
the consensus score), ``ego4d-action-retrieval`` (verb groups; MAP and R@1 per
modality pair) and ``epic-sounds-probe`` (linear probe on frozen audio
embeddings: top-1 and mean per-class accuracy), plus the discovery ROC-AUC of
each pairwise cosine of ``embed`` on the same test clips (``auc_av``,
``auc_at``, ``auc_vt``; the paper's "audio-visual" number is ``auc_av``).

Next to them: the ``audio-energy`` and ``random-embedding`` trivial baselines,
and the SSL-family checkpoints given with ``--ssl-checkpoints`` (e.g. the default
suite's ``results/_work/synthetic/<model>.vggsound.seed<k>/checkpoints/best.ckpt``,
trained on synthetic VGGSound), evaluated on the same benchmarks.

Spread: mean and half the range over seeds (with 2 seeds: mean +- |s0 - s1| / 2),
and the per-seed values.

Run (from the repo root, 1 thread)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learning/mc3_synthetic.py \\
        --ego4d-root /work/data7/ego4d --epic-root /work/data6/epic_sounds \\
        --text-encoder /work/ev6/standins/text-encoder --seeds 0 1 \\
        --ssl-checkpoints '/tmp/lb7/results/_work/synthetic/*.vggsound.*/checkpoints/best.ckpt' \\
        --out benchmarks/learning/results/session7/mc3_default.json
"""

from __future__ import annotations

import argparse
import glob
import importlib
import json
import platform
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from evidence import fit_stages_on_cpu

from avbench.atomic_io import atomic_write_text
from avbench.benchmarks import evaluate
from avbench.benchmarks.baselines import AudioEnergyBaseline, RandomEmbeddingBaseline
from avbench.configs import resolve_config
from avbench.metrics.discovery import discovery_scores
from avbench.runner.assignments import parse_assignments

VARIANTS = ("refine", "align")
#: metrics kept per benchmark
METRICS: dict[str, tuple[str, ...]] = {
    "ego4d-discovery": ("roc_auc", "pr_auc"),
    "ego4d-action-retrieval": ("map", "a2v_map", "v2a_map", "a2t_map", "t2a_map", "v2t_map",
                               "t2v_map", "a2v_r1", "v2a_r1"),
    "epic-sounds-probe": ("top1", "mean_class_acc"),
}
PAIRS = {"auc_av": ("audio", "visual"), "auc_at": ("audio", "text"), "auc_vt": ("visual", "text")}


def _instantiate(cfg: dict[str, Any], **override: Any) -> Any:
    module, cls = cfg["class_path"].rsplit(".", 1)
    return getattr(importlib.import_module(module), cls)(**{**cfg.get("init_args", {}), **override})


def _yaml(name: str, key: str) -> dict[str, Any]:
    return yaml.safe_load(resolve_config(name).read_text())[key]


def datamodules(args: argparse.Namespace) -> dict[str, Any]:
    """The suite's Ego4D and EPIC-Sounds DataModules on the given roots (no workers)."""
    ego = _instantiate(_yaml("data/ego4d_synthetic.yaml", "data"), root=str(args.ego4d_root),
                       num_workers=args.num_workers)
    epic = _instantiate(_yaml("data/epic_sounds_synthetic.yaml", "data"),
                        root=str(args.epic_root), num_workers=args.num_workers)
    return {"ego4d": ego, "epic_sounds": epic}


def train_mc3(dm: Any, seed: int, variant: str, args: argparse.Namespace) -> tuple[Any, float]:
    """MC3 at the CPU config, ``variant`` "refine" (align + refine) or "align" (the same
    total epochs of align only), seeded. Returns ``(model, fit seconds)``."""
    L.seed_everything(seed, workers=True, verbose=False)
    align, refine = args.align_epochs, args.refine_epochs
    epochs = {"align_epochs": align, "refine_epochs": refine} if variant == "refine" else \
        {"align_epochs": align + refine, "refine_epochs": 0}
    cfg = _yaml("model/mc3_cpu.yaml", "model")
    over = {"text_encoder": str(args.text_encoder), **epochs,
            **parse_assignments(args.set, "--set")}
    model = _instantiate(cfg, **over)

    seconds = fit_stages_on_cpu(model, dm, seed)
    return model.eval(), seconds


@torch.no_grad()
def pair_aucs(model: Any, dm: Any) -> dict[str, float]:
    """Discovery ROC-AUC of each pairwise cosine of ``model.embed`` on the Ego4D test split
    (pairs whose modalities the model embeds)."""
    dm.setup("test")
    emb: dict[str, list[torch.Tensor]] = {}
    labels = []
    for batch in dm.test_dataloader():
        for k, v in model.embed(batch).items():
            emb.setdefault(k, []).append(F.normalize(v.double(), dim=1))
        labels.append(batch["sounding"].long())
    e = {k: torch.cat(v) for k, v in emb.items()}
    y = torch.cat(labels)
    return {name: float(discovery_scores((e[a] * e[b]).sum(1), y)["roc_auc"])
            for name, (a, b) in PAIRS.items() if a in e and b in e}


def score(model: Any, dms: dict[str, Any], with_pairs: bool = True) -> dict[str, Any]:
    """Every benchmark's kept metrics (a benchmark the model cannot be scored on is left
    out, with its reason under ``skipped``)."""
    out: dict[str, Any] = {"skipped": {}}
    for bench, keys in METRICS.items():
        dm = dms["epic_sounds" if bench.startswith("epic") else "ego4d"]
        res = evaluate(model, bench, dm, progress=False)
        if res.status != "ok":
            out["skipped"][bench] = str(res.reason)
            continue
        out[bench] = {k: float(res.metrics[k]) for k in keys if k in res.metrics}
    if with_pairs and hasattr(model, "embed"):
        out["ego4d-discovery-pairs"] = pair_aucs(model, dms["ego4d"])
    return out


def ssl_models(patterns: list[str]) -> list[tuple[str, Any]]:
    """``(job name, loader)`` of every checkpoint matched (job = ``<model>.<data>.seed<k>``)."""
    from avbench.models import REGISTRY

    paths = sorted(p for pat in patterns for p in glob.glob(pat))
    return [(Path(p).parents[1].name,
             lambda p=p: REGISTRY[Path(p).parents[1].name.split(".")[0]].load_from_checkpoint(
                 p, map_location="cpu").eval()) for p in paths]


def _flat(scores: dict[str, Any]) -> dict[str, float]:
    return {f"{b}/{k}": v for b, m in scores.items() if b != "skipped" for k, v in m.items()}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per name (MC3 variant, SSL model, baseline): per-seed values and mean +- half range
    of every metric; refine - align paired by seed."""
    groups: dict[str, dict[int, dict[str, float]]] = {}
    for r in rows:
        groups.setdefault(r["name"], {})[r["seed"]] = _flat(r["scores"])
    out: dict[str, Any] = {}
    for name, by_seed in groups.items():
        keys = sorted(set().union(*by_seed.values()))
        out[name] = {k: {"per_seed": {s: v[k] for s, v in sorted(by_seed.items()) if k in v}}
                     for k in keys}
        for d in out[name].values():
            vals = np.array(list(d["per_seed"].values()))
            d["mean"], d["half_range"] = float(vals.mean()), float(np.ptp(vals) / 2)
    if "mc3-refine" in groups and "mc3-align" in groups:
        ref, ali = groups["mc3-refine"], groups["mc3-align"]
        seeds = sorted(set(ref) & set(ali))
        out["refine_minus_align"] = {
            k: {s: ref[s][k] - ali[s][k] for s in seeds}
            for k in sorted(set(ref[seeds[0]]) & set(ali[seeds[0]]))} if seeds else {}
    return out


def markdown(summary: dict[str, Any]) -> str:
    cols = [("ego4d-discovery/roc_auc", "disc (score)"),
            ("ego4d-discovery-pairs/auc_av", "AUC a.v"),
            ("ego4d-discovery-pairs/auc_at", "AUC a.t"),
            ("ego4d-discovery-pairs/auc_vt", "AUC v.t"),
            ("ego4d-action-retrieval/map", "action MAP (a<->v)"),
            ("ego4d-action-retrieval/a2t_map", "a2t MAP"),
            ("ego4d-action-retrieval/v2t_map", "v2t MAP"),
            ("epic-sounds-probe/top1", "EPIC top-1"),
            ("epic-sounds-probe/mean_class_acc", "EPIC mean-class")]
    lines = ["| model | " + " | ".join(c for _, c in cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for name, m in summary.items():
        if name == "refine_minus_align":
            continue
        cells = []
        for k, _ in cols:
            d = m.get(k)
            cells.append("—" if d is None else
                         f"{d['mean']:.3f} ± {d['half_range']:.3f} ("
                         + " / ".join(f"{v:.3f}" for v in d["per_seed"].values()) + ")")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ego4d-root", type=Path, default=Path("data/ego4d"))
    p.add_argument("--epic-root", type=Path, default=Path("data/epic_sounds"))
    p.add_argument("--text-encoder", type=Path, default=Path("standins/text-encoder"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--align-epochs", type=int, default=5)
    p.add_argument("--refine-epochs", type=int, default=5)
    p.add_argument("--set", nargs="*", default=[], help="MC3 init overrides, NAME=VALUE")
    p.add_argument("--ssl-checkpoints", nargs="*", default=[],
                   help="glob(s) of <model>.<data>.seed<k>/checkpoints/best.ckpt files")
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--out", type=Path,
                   default=Path("benchmarks/learning/results/session7/mc3_default.json"))
    args = p.parse_args()
    torch.set_num_threads(1)
    dms = datamodules(args)
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()},
                              "machine": platform.platform(), "torch": torch.__version__,
                              "rows": rows}

    def write() -> None:
        report["summary"] = summarise(rows)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(report, indent=1))

    if not args.no_baselines:
        for name, model in (("audio-energy", AudioEnergyBaseline()),
                            ("random-embedding", RandomEmbeddingBaseline())):
            rows.append({"name": name, "seed": 0, "scores": score(model, dms, with_pairs=False)})
            print(name, _flat(rows[-1]["scores"]), flush=True)
        write()
    for job, build in ssl_models(args.ssl_checkpoints):
        name, seed = job.split(".")[0], int(job.rsplit("seed", 1)[1])
        rows.append({"name": name, "seed": seed, "job": job, "scores": score(build(), dms)})
        print(job, _flat(rows[-1]["scores"]), flush=True)
        write()
    for seed in args.seeds:
        for variant in args.variants:
            model, secs = train_mc3(dms["ego4d"], seed, variant, args)
            rows.append({"name": f"mc3-{variant}", "seed": seed, "fit_seconds": secs,
                         "scores": score(model, dms)})
            print(f"mc3-{variant} seed {seed} ({secs:.0f} s)", _flat(rows[-1]["scores"]), flush=True)
            write()
    write()
    print(markdown(report["summary"]))


if __name__ == "__main__":
    main()
