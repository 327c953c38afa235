"""Leaderboard figures: seed bars, the overview, and the figures each task kind draws (PNG, Agg).

Why: a table of means hides how much the seeds disagree and, per task, how a
method wins. Per suite folder, ``plots/`` holds

* ``<benchmark>_<slug>.png``: the figures of the benchmark's tasks, from each
  task spec's ``leaderboard_figures(benchmark, rows)`` hook (e.g. success
  curves and heat-map galleries of localization); this module hands them the
  rows as :class:`~avbench.benchmarks.tasks.PlotRow` (label, colour, ok
  results, stored gallery) and knows no task by name;
* ``<benchmark>_bars.png``: the main score per model row (mean, std error
  bar, one dot per seed), baselines as dashed horizontal lines;
* ``overview_bars.png``: the main score of every benchmark, grouped bars.

Input: :func:`avbench.runner.leaderboard.plot_frame`, one row per result, so the
figures show exactly what the tables show (same rows, same pandas aggregates).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from avbench.atomic_io import atomic_write_bytes  # noqa: E402
from avbench.runner.galleries import gallery_path, load_gallery  # noqa: E402

if TYPE_CHECKING:
    from avbench.benchmarks.tasks import PlotRow, TaskSpec
    from avbench.runner.results import ResultRecord, ResultStore

log = logging.getLogger(__name__)

#: the key of a leaderboard row (columns of the input frame)
ROW_KEY = ["kind", "model", "train_dataset"]
#: models sort before baselines
KIND = pd.CategoricalDtype(["model", "baseline"], ordered=True)
#: line styles of the trivial baselines (dashed family), in row order
BASELINE_STYLES: tuple[Any, ...] = ("--", "-.", ":", (0, (5, 2, 1, 2)))
DPI = 100


@dataclass(frozen=True)
class PlotFile:
    """One written figure: its kind (a task's slug, "bars" or "overview"), the benchmark
    (None for the overview) and path."""

    kind: str
    benchmark: str | None
    path: Path

    @property
    def caption(self) -> str:
        if self.benchmark is None:
            return "main scores of all benchmarks"
        return f"{self.benchmark} {self.kind}"


def _save(fig: Figure, path: Path) -> Path:
    """Save ``fig`` as PNG atomically and close it (Agg figures are not garbage collected).

    Figures whose axes were all placed by hand (``add_axes``, e.g. a gallery laid
    out for :data:`DPI`) are saved as drawn; the others with ``bbox_inches="tight"``.
    """
    hand_made = bool(fig.axes) and all(ax.get_subplotspec() is None for ax in fig.axes)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches=None if hand_made else "tight")
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _label(kind: str, model: str, train_dataset: str) -> str:
    """``model (training data)``; baselines ``model (trivial)`` (fitted ones ``(baseline)``)."""
    if kind == "baseline":
        from avbench.benchmarks.baselines import baseline_tag

        return f"{model} ({baseline_tag(model)})"
    return model if train_dataset in ("—", "") else f"{model} ({train_dataset})"


def _ordered(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows in table order (benchmark, models first, model, training data, seed)."""
    return (runs.astype({"kind": KIND})
            .sort_values(["benchmark", *ROW_KEY, "seed"], na_position="first", kind="stable"))


def _colors(runs: pd.DataFrame) -> dict[tuple[str, str, str], Any]:
    """One colour per row key across every figure of a suite (same model, same colour)."""
    keys = list(runs[ROW_KEY].drop_duplicates().sort_values(ROW_KEY).itertuples(index=False,
                                                                                   name=None))
    cmap = plt.get_cmap("tab10" if len(keys) <= 10 else "tab20")
    return {k: cmap(i % cmap.N) for i, k in enumerate(keys)}


def main_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """Main score per (benchmark, row) over the ok seeds: ``mean``, ``std`` (ddof=1), ``n``
    and the finite ``values`` in seed order; rows in table order, ``label`` added."""
    ok = _ordered(runs[runs["status"] == "ok"])
    groups = ok.groupby(["benchmark", *ROW_KEY], observed=True, sort=False)["value"]
    stats = groups.agg(mean="mean", std="std", n="count")
    stats["values"] = groups.apply(lambda v: v.dropna().tolist())
    stats = stats.reset_index()
    stats["label"] = [_label(*k) for k in stats[ROW_KEY].itertuples(index=False, name=None)]
    return stats


# --- per benchmark: bars ---------------------------------------------------------------------
def plot_bars(benchmark: str, metric: str, lower: bool, scores: pd.DataFrame,
              colors: dict[Any, Any]) -> Figure | None:
    """Main score per model row: mean bar, std error bar, seeds as dots; baselines dashed.

    ``scores``: the benchmark's rows of :func:`main_scores`.
    """
    scores = scores[scores["n"] > 0]
    models = scores[scores["kind"] == "model"]
    baselines = scores[scores["kind"] == "baseline"]
    if models.empty and baselines.empty:
        return None
    fig, ax = plt.subplots(figsize=(max(4.0, 0.75 * len(models) + 2.5), 4.2))
    for i, row in enumerate(models.itertuples()):
        ax.bar(i, row.mean, width=0.65, color=colors.get((row.kind, row.model, row.train_dataset)),
               alpha=0.85, yerr=None if pd.isna(row.std) else row.std, capsize=4,
               error_kw={"elinewidth": 1.2})
        jitter = np.linspace(-0.12, 0.12, row.n) if row.n > 1 else np.zeros(1)
        ax.scatter(i + jitter, row.values, s=14, color="black", zorder=3)
    for j, row in enumerate(baselines.itertuples()):
        ax.axhline(row.mean, color="0.3", linestyle=BASELINE_STYLES[j % len(BASELINE_STYLES)],
                   linewidth=1.2, label=f"{_label('baseline', row.model, '')}: {row.mean:.3f}")
    ax.set_xticks(np.arange(len(models)), list(models["label"]), rotation=30, ha="right",
                  fontsize=8)
    ax.set_xlim(-0.6, max(len(models), 1) - 0.4)
    ax.set_ylabel(metric + (" (lower is better)" if lower else ""))
    ax.set_title(f"{benchmark}: {metric}, mean ± std over seeds (dots: seeds)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    if not baselines.empty:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


# --- all benchmarks: grouped bars ------------------------------------------------------------
def plot_overview(benchmarks: pd.DataFrame, scores: pd.DataFrame,
                  colors: dict[Any, Any]) -> Figure | None:
    """Grouped bars: benchmarks on x, one bar per model row (mean ± std), baselines as ticks.

    ``benchmarks``: index = benchmark names in order, columns ``main_score``,
    ``main_lower``; ``scores``: :func:`main_scores`.
    """
    if benchmarks.empty:
        return None
    scores = scores[scores["n"] > 0]
    keys = scores[ROW_KEY].drop_duplicates().sort_values(ROW_KEY)
    models = list(keys[keys["kind"] == "model"].itertuples(index=False, name=None))
    bases = list(keys[keys["kind"] == "baseline"].itertuples(index=False, name=None))
    if not models and not bases:
        return None
    cells = scores.set_index(["benchmark", *ROW_KEY])
    n = max(len(models), 1)
    width = 0.8 / n
    # ~0.2 in per bar, at most 16 in wide (the legend adds ~2 in on the right)
    fig_w = min(16.0, max(5.0, len(benchmarks) * (0.2 * n + 0.4) + 2.5))
    fig, ax = plt.subplots(figsize=(fig_w, 4.4))
    labelled: set[Any] = set()
    for b, bench in enumerate(benchmarks.index):
        for i, k in enumerate(models):
            if (bench, *k) not in cells.index:
                continue
            cell = cells.loc[(bench, *k)]
            ax.bar(b - 0.4 + width * (i + 0.5), cell["mean"], width=width * 0.92,
                   color=colors.get(k), yerr=None if pd.isna(cell["std"]) else cell["std"],
                   capsize=2, label=None if k in labelled else cell["label"])
            labelled.add(k)
        for j, k in enumerate(bases):
            if (bench, *k) not in cells.index:
                continue
            cell = cells.loc[(bench, *k)]
            ax.hlines(cell["mean"], b - 0.45, b + 0.45, colors="0.25",
                      linestyles=BASELINE_STYLES[j % len(BASELINE_STYLES)], linewidth=1.2,
                      label=None if k in labelled else cell["label"])
            labelled.add(k)
    ax.set_xticks(np.arange(len(benchmarks)),
                  [f"{b}\n({m}{' ↓' if low else ''})" for b, m, low in
                   zip(benchmarks.index, benchmarks["main_score"], benchmarks["main_lower"],
                       strict=True)], fontsize=8)
    ax.set_ylabel("main score")
    ax.set_title("Main score per benchmark (mean ± std over seeds; dashed: trivial baselines)",
                 fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


# --- the tasks' own figures --------------------------------------------------------------------
def task_specs(benchmark: str, records: Sequence[ResultRecord]) -> list[TaskSpec]:
    """The task specs of ``benchmark``: the registered benchmark's, else rebuilt from the
    first result's ``protocol`` ({kind: spec dump}); kinds not registered here are skipped."""
    from avbench.benchmarks import get_benchmark
    from avbench.benchmarks.tasks import task_kind

    try:
        return list(get_benchmark(benchmark).tasks)
    except KeyError:
        pass
    protocol = next((r.protocol for r in records if r.protocol), {})
    specs = []
    for kind, dump in protocol.items():
        try:
            specs.append(task_kind(kind).model_validate(dump))
        except (KeyError, ValueError) as err:  # unknown kind or an old dump: no figures
            log.warning("%s: no figures for task %r: %s", benchmark, kind, err)
    return specs


def plot_rows(ok: pd.DataFrame, colors: dict[Any, Any], store: ResultStore) -> list[PlotRow]:
    """The rows handed to the task hooks: one per leaderboard row with ok results, in table
    order, its gallery = the stored gallery of its lowest seed that has one."""
    from avbench.benchmarks.tasks import PlotRow

    rows = []
    for key, g in _ordered(ok).groupby(ROW_KEY, observed=True, sort=False):
        records: list[ResultRecord] = g["record"].tolist()
        gallery = next((gal for r in records if (gal := load_gallery(
            gallery_path(store.path(r.suite, r.benchmark, r.job_id)))) is not None), None)
        rows.append(PlotRow(label=_label(*key), baseline=key[0] == "baseline",
                            color=colors.get(key), records=records, gallery=gallery))
    return rows


def _task_figures(benchmark: str, ok: pd.DataFrame, colors: dict[Any, Any],
                  store: ResultStore) -> list[tuple[str, Figure]]:
    """``(slug, figure)`` of every task of the benchmark (a hook that fails is logged)."""
    rows = plot_rows(ok, colors, store)
    out: list[tuple[str, Figure]] = []
    for spec in task_specs(benchmark, [r for row in rows for r in row.records]):
        try:
            out += spec.leaderboard_figures(benchmark, rows)
        except Exception as err:  # noqa: BLE001 - the tables are the product, figures an aid
            log.warning("%s: %s figures failed: %s", benchmark, spec.task, err)
            plt.close("all")
    return out


def _task_files(benchmark: str, ok: pd.DataFrame, colors: dict[Any, Any], store: ResultStore,
                out_dir: Path) -> list[Path]:
    """Files (not figures) of every task of the benchmark, e.g. generated wavs (a failing
    hook is logged)."""
    rows = plot_rows(ok, colors, store)
    out: list[Path] = []
    for spec in task_specs(benchmark, [r for row in rows for r in row.records]):
        try:
            out += spec.leaderboard_files(benchmark, rows, out_dir)
        except Exception as err:  # noqa: BLE001 - the tables are the product
            log.warning("%s: %s files failed: %s", benchmark, spec.task, err)
    return out


# --- all figures of one suite ------------------------------------------------------------------
def write_plots(dest: str | Path, runs: pd.DataFrame, store: ResultStore) -> list[PlotFile]:
    """Write every figure of one suite into ``<dest>/plots/``; returns what was written.

    Args:
        dest: the suite's leaderboard folder.
        runs: one row per result of the suite (:func:`avbench.runner.leaderboard.plot_frame`):
            ``benchmark``, ``kind`` ("model"/"baseline"), ``model``, ``train_dataset``,
            ``seed``, ``status``, ``main_score``, ``main_lower`` (bool), ``value`` (the
            main score, NaN when missing) and ``record`` (the ResultRecord).
        store: the result store (galleries are read beside the results).

    A figure that fails is logged and skipped: the tables are the product, the
    figures an aid.
    """
    plots = Path(dest) / "plots"
    benchmarks = runs.groupby("benchmark", sort=True)[["main_score", "main_lower"]].first()
    runs = _ordered(runs)
    colors = _colors(runs)
    scores = main_scores(runs)
    out: list[PlotFile] = []

    def emit(kind: str, bench: str | None, make: Callable[[], Figure | None]) -> None:
        name = f"{bench}_{kind}.png" if bench else "overview_bars.png"
        try:
            fig = make()
        except Exception as err:  # noqa: BLE001
            log.warning("plot %s failed: %s", name, err)
            plt.close("all")
            return
        if fig is None:
            return
        if any(f.path.name == name for f in out):
            log.warning("plot %s: a second figure with that name is dropped", name)
            plt.close(fig)
            return
        out.append(PlotFile(kind, bench, _save(fig, plots / name)))

    for bench, info in benchmarks.iterrows():
        ok = runs[(runs["benchmark"] == bench) & (runs["status"] == "ok")]
        if not ok.empty:
            for slug, fig in _task_figures(bench, ok, colors, store):
                emit(slug, bench, lambda fig=fig: fig)
            _task_files(bench, ok, colors, store, plots)
        emit("bars", bench, lambda b=bench, i=info: plot_bars(
            b, i["main_score"], bool(i["main_lower"]), scores[scores["benchmark"] == b], colors))
    emit("overview", None, lambda: plot_overview(benchmarks, scores, colors))
    return out


__all__ = ["PlotFile", "main_scores", "plot_bars", "plot_overview", "plot_rows", "task_specs",
           "write_plots"]
