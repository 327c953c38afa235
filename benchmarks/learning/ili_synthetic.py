"""Evidence for ILI on the synthetic world (issue 15, must-have 5; baselines of must-have 4).

For every world setting (a directory holding ``ave/`` and ``vegas/`` written by
``avbench synth ave|vegas --preset default [--world KEY=VALUE]``), dataset
(AVE-15 and VEGAS feature files) and seed, the script trains the ILI model at
its CPU config (``avbench/configs/model/ili_cpu.yaml``, teacher 10 + student 20
epochs, batch 64) once per ``graph_source``:

* ``inferred`` (ILI: GRaSP on the teacher's training soft labels),
* ``none`` (the student without LIR),
* ``random`` (LIR on a random graph of the inferred graph's density),
* ``oracle`` (LIR on the planted graph mapped onto the dataset's classes),

(``--sources inferred-cross same-class``: two ablations of the inferred graph,
:class:`AblatedILI`), and fits the CCA baseline (:class:`avbench.benchmarks.baselines.CCABaseline`,
training split only; deterministic, so one fit per world and dataset). All are
scored with :func:`avbench.benchmarks.evaluate` on ``ave-retrieval`` /
``vegas-retrieval`` (test split: A->V, V->A and mean MAP, class relevance).
No model selection: each model is evaluated after its fixed epoch budget.

Graph recovery of the inferred graph: directed-edge precision / recall / F1,
skeleton F1 and SHD (:func:`avbench.metrics.graph.graph_recovery_scores`,
undirected CPDAG edges counted in both orientations) against the planted graph
mapped onto the dataset's classes
(:func:`avbench.nn.class_graph.planted_class_graph`), once over all entries
and once without the same-class ``audio_c <-> visual_c`` pairs (never planted:
the planted graph links different categories, while a clip's own audio and
visual are dependent by construction); "lenient recall" = the fraction of planted edges ``(m, A) -> (m', B)`` whose
destination is linked to either of A's nodes in any direction (the data cannot
tell which of A's two nodes, both present whenever A is annotated, an edge was
drawn from); edge stability = mean pairwise Jaccard
of the inferred graphs over seeds.

Spread: mean and 95% **t-interval** over seeds (``mean +- t_{0.975, n-1} sd /
sqrt(n)``); MAP gains (``inferred - none`` etc.) are paired by seed (same
teacher, same data, same seed) and get the t-interval of the per-seed
differences.

Run (from the repo root, 1 thread)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learning/ili_synthetic.py \\
        --world default=/work/ev6/ili_world/default --seeds 0 1 2 \\
        --out benchmarks/learning/results/session6/ili_default.json

``--set lir_weight=10`` overrides an ILI init argument of the CPU config.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from evidence import fit_stages_on_cpu, json_safe
from scipy import stats

from avbench.atomic_io import atomic_write_text
from avbench.benchmarks import evaluate
from avbench.benchmarks.baselines import CCABaseline
from avbench.configs import resolve_config
from avbench.data import AVEDataModule, VEGASDataModule
from avbench.metrics.graph import edge_stability, graph_recovery_scores
from avbench.models.ili import ILIEmbedding
from avbench.nn.class_graph import planted_class_graph
from avbench.runner.assignments import parse_assignments

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("inferred", "none", "random", "oracle")
#: ablations of the inferred graph (this script only; see ``AblatedILI``)
ABLATIONS = ("inferred-cross", "same-class")
DATASETS = {"ave": ("ave-retrieval", "AVE-15"), "vegas": ("vegas-retrieval", "VEGAS")}
MAPS = ("a2v_map", "v2a_map", "map")
RECOVERY = ("edge_precision", "edge_recall", "edge_f1", "skeleton_f1", "shd")
BATCH_SIZE = 64  # the paper config's batch (avbench/configs/model/ili.yaml docstring)


def datamodule(root: Path, dataset: str) -> Any:
    """The feature-file DataModule of ``dataset`` under ``root`` (AVE: the ILI 15-class subset)."""
    if dataset == "ave":
        return AVEDataModule(root, source="features", classes="ave15", batch_size=BATCH_SIZE,
                             num_workers=0)
    return VEGASDataModule(root, source="features", batch_size=BATCH_SIZE, num_workers=0)


def world_settings(root: Path) -> dict[str, Any]:
    """The world's recorded overrides and the planted graph's edge probabilities."""
    meta = json.loads((root / "avbench_synthetic.json").read_text())
    graph = json.loads((root / "cooccurrence_graph.json").read_text())
    probs = [float(e["prob"]) for e in graph["edges"]]
    return {"world_config": meta.get("world_config", {}), "seed": meta.get("seed"),
            "preset": meta.get("preset"), "counts": meta.get("counts"),
            "planted_edges": len(probs), "planted_prob_mean": float(np.mean(probs)) if probs else 0.0}


def ili_config() -> dict[str, Any]:
    cfg = yaml.safe_load(resolve_config("model/ili_cpu.yaml").read_text())["model"]
    return dict(cfg["init_args"])


class AblatedILI(ILIEmbedding):
    """ILI whose inferred graph is edited after the graph step (an ablation, not a method).

    ``ablation="inferred-cross"``: the inferred graph without its same-class
    ``audio_c <-> visual_c`` entries; ``"same-class"``: only the 2C entries
    ``audio_c <-> visual_c`` (every class, equal weights). Weights are then
    normalised to sum 1 again, like every ILI graph.
    """

    ablation: str = "inferred-cross"

    def fit_graph(self, datamodule: Any) -> None:
        super().fit_graph(datamodule)
        c = self.num_classes
        same = torch.zeros_like(self.graph, dtype=torch.bool)
        idx = torch.arange(c)
        same[idx, idx + c] = same[idx + c, idx] = True
        g = self.graph * ~same if self.ablation == "inferred-cross" else same.to(self.graph.dtype)
        total = g.sum()
        self.graph.copy_(g / total if total > 0 else g)
        self.graph_info = dict(self.graph_info) | {"ablation": self.ablation,
                                                   "n_entries": int((g > 0).sum())}


def train_ili(dm: Any, source: str, seed: int, num_classes: int,
              overrides: dict[str, Any] | None = None) -> tuple[ILIEmbedding, float]:
    """ILI at the CPU config (plus ``overrides``) with ``graph_source=source``, seeded.

    Returns:
        ``(model, fit seconds)``.
    """
    L.seed_everything(seed, workers=True, verbose=False)
    ablation = source in ABLATIONS
    args = ili_config() | (overrides or {}) | {
        "num_classes": num_classes, "graph_source": "inferred" if ablation else source,
        "graph_seed": seed}
    model = AblatedILI(**args) if ablation else ILIEmbedding(**args)
    if ablation:
        model.ablation = source

    return model, fit_stages_on_cpu(model, dm, seed)


def retrieval(model: Any, bench: str, dm: Any) -> dict[str, float]:
    res = evaluate(model, bench, dm, progress=False, raise_errors=True)
    return {k: float(res.metrics[k]) for k in MAPS}


def recovery(graph: dict[str, Any], planted: Any) -> dict[str, Any]:
    """Recovery scores of an ILI ``class_graph()`` against the planted class graph."""
    true = {"adjacency": (planted.adjacency > 0).astype(np.int64), "nodes": planted.nodes}
    pred = np.asarray(graph["adjacency"], dtype=np.int64)
    w = np.asarray(graph["weights"], dtype=np.float64)
    c = len(graph["nodes"]) // 2
    same = np.zeros_like(pred, dtype=bool)
    same[np.arange(c), np.arange(c) + c] = same[np.arange(c) + c, np.arange(c)] = True
    cross = np.where(same, 0, pred)
    # lenient: a planted edge (m, A) -> (m', B) counts as found when the inferred graph links
    # either of A's nodes with (m', B) in either direction (the data cannot tell which of A's
    # two nodes, both present whenever A is annotated, the edge was drawn from)
    und = (pred + pred.T) > 0
    src, dst = np.nonzero(true["adjacency"])
    found = [bool(und[s % c, d] or und[s % c + c, d]) for s, d in zip(src, dst)]
    return {
        "all": graph_recovery_scores({"adjacency": pred, "nodes": graph["nodes"]}, true),
        "cross_class": graph_recovery_scores({"adjacency": cross, "nodes": graph["nodes"]}, true),
        "n_entries": int(pred.sum()),
        "n_same_class_entries": int((pred.astype(bool) & same).sum()),
        "same_class_weight": float(w[same].sum() / w.sum()) if w.sum() > 0 else 0.0,
        "n_planted_entries": int(true["adjacency"].sum()),
        "lenient_recall": float(np.mean(found)) if found else float("nan"),
    }


def t_interval(values: list[float]) -> dict[str, Any]:
    """Mean, sd and 95% t-interval over seeds (interval None with one value)."""
    x = np.asarray(values, dtype=np.float64)
    n, mean = len(x), float(x.mean())
    if n < 2:
        return {"mean": mean, "sd": None, "ci95": None, "n": n}
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n))
    return {"mean": mean, "sd": sd, "ci95": [mean - half, mean + half], "n": n}


def summarise(runs: list[dict[str, Any]], cca: dict[str, Any]) -> dict[str, Any]:
    """Per (world, dataset): MAP per source, paired gains, recovery, stability."""
    out: dict[str, Any] = {}
    keys = sorted({(r["world"], r["dataset"]) for r in runs})
    for world, ds in keys:
        rows = [r for r in runs if r["world"] == world and r["dataset"] == ds]
        by = {s: {r["seed"]: r for r in rows if r["source"] == s} for s in SOURCES + ABLATIONS}
        summ: dict[str, Any] = {"map": {}, "gain_vs_none": {}, "recovery": {}}
        for s in SOURCES + ABLATIONS:
            if by[s]:
                summ["map"][s] = {k: t_interval([r["metrics"][k] for r in by[s].values()]) for k in MAPS}
        for s in ("inferred", "random", "oracle", *ABLATIONS):
            seeds = sorted(set(by[s]) & set(by["none"]))
            if seeds:
                summ["gain_vs_none"][s] = t_interval(
                    [by[s][i]["metrics"]["map"] - by["none"][i]["metrics"]["map"] for i in seeds])
        seeds = sorted(set(by["inferred"]) & set(by["oracle"]))
        if seeds:
            summ["inferred_minus_oracle"] = t_interval(
                [by["inferred"][i]["metrics"]["map"] - by["oracle"][i]["metrics"]["map"] for i in seeds])
        inf = list(by["inferred"].values())
        if inf:
            for part in ("all", "cross_class"):
                summ["recovery"][part] = {k: t_interval([r["recovery"][part][k] for r in inf])
                                          for k in RECOVERY}
            summ["recovery"]["n_entries"] = t_interval([r["recovery"]["n_entries"] for r in inf])
            summ["recovery"]["lenient_recall"] = t_interval(
                [r["recovery"]["lenient_recall"] for r in inf])
            summ["recovery"]["same_class_weight"] = t_interval(
                [r["recovery"]["same_class_weight"] for r in inf])
            summ["recovery"]["n_planted_entries"] = inf[0]["recovery"]["n_planted_entries"]
            if len(inf) > 1:
                summ["recovery"]["edge_stability_over_seeds"] = edge_stability(
                    [{"adjacency": r["graph_adjacency"], "nodes": r["graph_nodes"]} for r in inf])["jaccard"]
        summ["cca"] = cca.get(f"{world}/{ds}")
        out[f"{world}/{ds}"] = summ
    return out


def _ci(s: dict[str, Any] | None, scale: float = 100.0, digits: int = 1) -> str:
    if s is None or s["mean"] is None or not np.isfinite(s["mean"]):
        return "—"
    if s["ci95"] is None or not np.all(np.isfinite(s["ci95"])):
        return f"{scale * s['mean']:.{digits}f}"
    half = scale * (s["ci95"][1] - s["ci95"][0]) / 2
    return f"{scale * s['mean']:.{digits}f} ± {half:.{digits}f}"


def markdown(summary: dict[str, Any]) -> str:
    """MAP table (x100, mean ± 95% t half-width), gains and recovery, one row per world/dataset."""
    lines = ["| world / dataset | inferred | none | random | oracle | CCA | gain inferred−none | "
             "gain oracle−none | edge F1 (all) | edge F1 (cross-class) | SHD (all) |",
             "|" + "---|" * 11]
    for key, s in summary.items():
        cells = [key] + [_ci(s["map"].get(src, {}).get("map")) for src in SOURCES]
        cells.append(f"{100 * s['cca']['map']:.1f}" if s.get("cca") else "—")
        cells += [_ci(s["gain_vs_none"].get("inferred")), _ci(s["gain_vs_none"].get("oracle"))]
        rec = s["recovery"]
        cells += [_ci(rec.get("all", {}).get("edge_f1"), 1, 2),
                  _ci(rec.get("cross_class", {}).get("edge_f1"), 1, 2),
                  _ci(rec.get("all", {}).get("shd"), 1, 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--world", action="append", default=[], metavar="NAME=DIR",
                   help="a world setting: DIR holds ave/ and vegas/ (repeatable; default: default=data)")
    p.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--sources", nargs="*", default=list(SOURCES), choices=SOURCES + ABLATIONS)
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--set", nargs="*", default=[], metavar="ARG=VALUE",
                   help="ILI init-argument overrides of the CPU config, e.g. lir_weight=10")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True, help="JSON results file (rewritten after every run)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    overrides = parse_assignments(args.set, "--set")
    worlds = dict(w.split("=", 1) for w in (args.world or ["default=data"]))
    runs: list[dict[str, Any]] = []
    cca: dict[str, Any] = {}
    meta = {"argv": vars(args) | {"out": str(args.out)}, "machine": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "ili_config": ili_config() | overrides, "overrides": overrides, "batch_size": BATCH_SIZE, "interval": "95% t-interval over seeds",
            "worlds": {}}

    def write() -> None:
        summary = summarise(runs, cca)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        doc = json_safe({"meta": meta, "summary": summary, "runs": runs})
        atomic_write_text(args.out, json.dumps(doc, indent=1, default=float, allow_nan=False))
        print(markdown(summary), flush=True)

    for world, wdir in worlds.items():
        for ds in args.datasets:
            root = Path(wdir) / ds
            bench, label = DATASETS[ds]
            meta["worlds"][f"{world}/{ds}"] = world_settings(root) | {"root": str(root)}
            dm = datamodule(root, ds)
            classes = list(dm.classes)
            planted = planted_class_graph(root, classes)
            start = time.perf_counter()
            base = CCABaseline().fit(dm)
            test_ids = {r.id for r in dm.dataset("test").records}
            cca[f"{world}/{ds}"] = retrieval(base, bench, dm) | {
                "fit_info": {k: v for k, v in base.fit_info.items() if k != "warnings"},
                "train_test_id_overlap": len(set(base.train_ids) & test_ids),
                "seconds": time.perf_counter() - start}
            for seed in args.seeds:
                for source in args.sources:
                    model, secs = train_ili(dm, source, seed, len(classes), overrides)
                    row: dict[str, Any] = {"world": world, "dataset": ds, "seed": seed, "source": source,
                                           "metrics": retrieval(model, bench, dm), "fit_seconds": secs,
                                           "graph_entries": int((model.graph > 0).sum()),
                                           "grasp_seconds": model.graph_info.get("seconds")}
                    if source == "inferred":
                        g = model.class_graph()
                        row["recovery"] = recovery(g, planted)
                        row["graph_adjacency"] = g["adjacency"].tolist()
                        row["graph_nodes"] = g["nodes"]
                        row["graph_info"] = {k: v for k, v in g["info"].items()
                                             if k not in ("train_positives",)}
                    runs.append(row)
                    print(json.dumps({k: v for k, v in row.items()
                                      if k not in ("graph_adjacency", "graph_nodes", "graph_info")},
                                     default=float), flush=True)
                write()
    write()


if __name__ == "__main__":
    main()
