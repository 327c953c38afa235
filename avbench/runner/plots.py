"""Leaderboard figures: success curves, heat-map galleries and seed bars (PNG, matplotlib Agg).

Why: a table of means hides how a method wins (at which cIoU thresholds),
what its maps look like and how much the seeds disagree. Per suite folder,
``plots/`` holds

* ``<benchmark>_success.png`` (localization benchmarks): the success curve
  y(t) = fraction of test images with cIoU >= t at the 21 AUC thresholds,
  one line per (model, training data) row (mean over seeds, min-max band),
  trivial baselines dashed, the AUC in the legend. The curves are read from
  the results (``tasks[*].info["success_curve"]``); rows without one (older
  results) are left out;
* ``<benchmark>_gallery.png`` (localization benchmarks): rows = models (lowest
  seed) and the centre-prior baseline, columns = the first test samples, the
  min-max map (jet) over the image and the GT contour, read from the
  ``<result>.gallery.npz`` files the runner stores next to each result;
* ``<benchmark>_bars.png``: the main score per model row (mean, std error
  bar, one dot per seed), baselines as dashed horizontal lines;
* ``overview_bars.png``: the main score of every benchmark, grouped bars.

Rows and their seeds come from :func:`avbench.runner.leaderboard.benchmark_table`,
so the figures show exactly what the tables show.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from avbench.runner.results import atomic_write_bytes  # noqa: E402

if TYPE_CHECKING:
    from avbench.runner.leaderboard import BenchmarkTable, Row
    from avbench.runner.results import ResultRecord, ResultStore

log = logging.getLogger(__name__)

GALLERY_SUFFIX = ".gallery.npz"
#: baselines shown in the gallery (the full-image map is constant: nothing to see)
GALLERY_BASELINES = ("center-prior",)
GALLERY_COLUMNS = 6
#: line styles of the trivial baselines (dashed family), in row order
BASELINE_STYLES: tuple[Any, ...] = ("--", "-.", ":", (0, (5, 2, 1, 2)))
DPI = 100


# --- gallery files ------------------------------------------------------------------------------
def gallery_path(result_path: str | Path) -> Path:
    """``<dir>/<job>.gallery.npz`` next to ``<dir>/<job>.json`` (never read as a result)."""
    p = Path(result_path)
    return p.with_name(p.name.removesuffix(".json") + GALLERY_SUFFIX)


def save_gallery(path: str | Path, gallery: dict[str, Any]) -> Path:
    """Write a gallery (``ids``, ``image``, ``map``, ``gt`` arrays) atomically, compressed."""
    path = Path(path)
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in gallery.items()})
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_gallery(path: str | Path) -> dict[str, np.ndarray] | None:
    """The stored gallery, None when absent or unreadable (a figure is never worth a crash)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            g = {k: z[k] for k in ("ids", "image", "map", "gt")}
    except Exception as err:  # noqa: BLE001 - corrupt/old files are skipped, not fatal
        log.warning("ignoring unreadable gallery %s: %s", path, err)
        return None
    n = len(g["ids"])
    if not (g["image"].ndim == 4 and len(g["image"]) == len(g["map"]) == len(g["gt"]) == n):
        log.warning("ignoring malformed gallery %s", path)
        return None
    return g


# --- helpers ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlotFile:
    """One written figure: its kind, the benchmark (None for the overview) and path."""

    kind: str  # "success" | "gallery" | "bars" | "overview"
    benchmark: str | None
    path: Path

    @property
    def caption(self) -> str:
        if self.benchmark is None:
            return "main scores of all benchmarks"
        return f"{self.benchmark} {self.kind}"


def _save(fig: Figure, path: Path, tight: bool = True) -> Path:
    """Save ``fig`` as PNG atomically and close it (Agg figures are not garbage collected).

    ``tight=False`` for figures laid out by hand (the gallery): saves a second draw.
    """
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight" if tight else None)
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _colors(tables: Sequence[BenchmarkTable]) -> dict[Any, Any]:
    """One colour per row key across every figure of a suite (same model, same colour)."""
    keys = sorted({k for t in tables for k in t.rows})
    cmap = plt.get_cmap("tab10" if len(keys) <= 10 else "tab20")
    return {k: cmap(i % cmap.N) for i, k in enumerate(keys)}


def _is_localization(records: Sequence[ResultRecord]) -> bool:
    from avbench.benchmarks import BENCHMARKS
    from avbench.benchmarks.meta import LocalizationTask

    bench = BENCHMARKS.get(records[0].benchmark) if records else None
    if bench is not None:
        return any(isinstance(t, LocalizationTask) for t in bench.tasks)
    return any(t.get("task") == "localization" for r in records for t in r.tasks)


def success_curve(record: ResultRecord) -> tuple[np.ndarray, np.ndarray] | None:
    """(thresholds, success) of a result's localization task; None for older results."""
    for task in record.tasks:
        if task.get("task") != "localization":
            continue
        curve = (task.get("info") or {}).get("success_curve")
        if not isinstance(curve, dict):
            continue
        try:
            t = np.asarray(curve["thresholds"], dtype=np.float64)
            y = np.asarray([math.nan if v is None else v for v in curve["success"]],
                           dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            return None
        if t.shape == y.shape and t.ndim == 1 and len(t) > 1 and np.isfinite(y).all():
            return t, y
    return None


def _label(row: Row) -> str:
    ds = row.key.train_dataset
    if row.key.kind == "baseline" or ds in ("—", ""):
        return row.key.label()
    return f"{row.key.model} ({ds})"


# --- (a) success curves ---------------------------------------------------------------------
def plot_success(table: BenchmarkTable, colors: dict[Any, Any]) -> Figure | None:
    """Success curve per row (mean over seeds, min-max band), None when no result has one."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    drawn = n_base = 0
    for row in table.rows.values():
        curves = [c for c in (success_curve(r) for r in row.records) if c is not None]
        curves = [c for c in curves if np.array_equal(c[0], curves[0][0])] if curves else []
        if not curves:
            continue
        t = curves[0][0]
        ys = np.stack([c[1] for c in curves])
        mean = ys.mean(axis=0)
        # = the mean stored AUC of the seeds drawn (the trapezoid is linear in the curve)
        auc = float(np.trapezoid(mean, t))
        baseline = row.key.kind == "baseline"
        color = "0.35" if baseline else colors.get(row.key)
        style = BASELINE_STYLES[n_base % len(BASELINE_STYLES)] if baseline else "-"
        n_base += baseline
        seeds = f", {len(curves)} seeds" if len(curves) > 1 else ""
        ax.plot(t, mean, linestyle=style, color=color, linewidth=1.6,
                marker=None if baseline else "o", markersize=2.5,
                label=f"{_label(row)} (AUC {auc:.3f}{seeds})")
        if len(curves) > 1:
            ax.fill_between(t, ys.min(axis=0), ys.max(axis=0), color=color, alpha=0.18, linewidth=0)
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("cIoU threshold t")
    ax.set_ylabel("fraction of test images with cIoU ≥ t")
    ax.set_title(f"{table.benchmark}: localization success curve (band: min–max over seeds)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right", framealpha=0.85)
    return fig


# --- (b) heat-map gallery -------------------------------------------------------------------------
def _row_gallery(row: Row, store: ResultStore) -> dict[str, np.ndarray] | None:
    """The gallery of the row's lowest seed that has one."""
    for rec in sorted(row.records, key=lambda r: r.seed if r.seed is not None else -1):
        g = load_gallery(gallery_path(store.path(rec.suite, rec.benchmark, rec.job_id)))
        if g is not None:
            return g
    return None


def _normalise(m: np.ndarray) -> np.ndarray:
    m = np.nan_to_num(m.astype(np.float32))
    lo, hi = float(m.min()), float(m.max())
    return np.ones_like(m) if hi - lo <= 1e-6 else (m - lo) / (hi - lo)


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of the first two axes (galleries of other image sizes)."""
    if a.shape[:2] == size:
        return a
    ys = (np.arange(size[0]) * a.shape[0] / size[0]).astype(int)
    xs = (np.arange(size[1]) * a.shape[1] / size[1]).astype(int)
    return a[ys][:, xs]


def _cell(image: np.ndarray, heat: np.ndarray, gt: np.ndarray, size: tuple[int, int],
          jet: Any) -> np.ndarray:
    """RGB float [h, w, 3]: the image blended with the jet map (alpha 0.5), GT outline in white."""
    img = _resize(image, size).astype(np.float32) / 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    rgb = 0.5 * img[..., :3] + 0.5 * jet(_normalise(_resize(heat, size)))[..., :3]
    inside = _resize(gt, size).astype(np.float32) >= 0.5
    if inside.any() and not inside.all():
        pad = np.pad(inside, 1, mode="edge")
        interior = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
        rgb[inside & ~interior] = 1.0
    return rgb


def plot_gallery(table: BenchmarkTable, store: ResultStore,
                 columns: int = GALLERY_COLUMNS) -> Figure | None:
    """Grid of maps: rows = models (+ centre prior), columns = the same first test samples.

    Drawn as one mosaic image (blending and GT outlines in numpy): one axes
    instead of rows x columns keeps a 10-model gallery well under a second.
    """
    rows: list[tuple[str, dict[str, np.ndarray]]] = []
    for row in table.rows.values():
        if row.key.kind == "baseline" and row.key.model not in GALLERY_BASELINES:
            continue
        g = _row_gallery(row, store)
        if g is not None:
            rows.append((_label(row), g))
    if not rows:
        return None
    # the columns: the first samples of the first row; other rows are looked up by id
    ids = [str(i) for i in rows[0][1]["ids"][:columns]]
    size = tuple(int(x) for x in rows[0][1]["image"].shape[1:3])
    h, w = size
    gap = max(2, h // 32)
    mosaic = np.ones((len(rows) * (h + gap) - gap, len(ids) * (w + gap) - gap, 3), np.float32)
    jet = plt.get_cmap("jet")
    missing: list[tuple[int, int]] = []
    for r, (_, g) in enumerate(rows):
        where = {str(i): k for k, i in enumerate(g["ids"])}
        for c, sid in enumerate(ids):
            k = where.get(sid)
            if k is None:
                missing.append((r, c))
                continue
            y, x = r * (h + gap), c * (w + gap)
            mosaic[y:y + h, x:x + w] = _cell(g["image"][k], g["map"][k], g["gt"][k], size, jet)
    # one mosaic pixel per figure pixel (cells at least 96 px tall): crisp and fast to encode
    zoom = max(1, math.ceil(96 / h))
    if zoom > 1:
        mosaic = mosaic.repeat(zoom, axis=0).repeat(zoom, axis=1)
    left, top, right, bottom = 1.5, 0.55, 0.1, 0.1  # inches
    fig_w = mosaic.shape[1] / DPI + left + right
    fig_h = mosaic.shape[0] / DPI + top + bottom
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((left / fig_w, bottom / fig_h, mosaic.shape[1] / DPI / fig_w,
                       mosaic.shape[0] / DPI / fig_h))
    ax.imshow(mosaic, interpolation="nearest", extent=(0, mosaic.shape[1] / zoom,
                                                       mosaic.shape[0] / zoom, 0))
    ax.set_xticks([c * (w + gap) + w / 2 for c in range(len(ids))],
                  [sid if len(sid) <= 18 else sid[:17] + "…" for sid in ids], fontsize=7)
    ax.xaxis.tick_top()
    ax.set_yticks([r * (h + gap) + h / 2 for r in range(len(rows))],
                  [label for label, _ in rows], fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for r, c in missing:
        ax.text(c * (w + gap) + w / 2, r * (h + gap) + h / 2, "n/a", ha="center", va="center",
                fontsize=9, color="0.4")
    ax.set_title(f"{table.benchmark}: min-max maps (jet) over the image, GT outline (white); "
                 "lowest seed", fontsize=9, pad=14)
    return fig


# --- (c) bars ---------------------------------------------------------------------------------
def plot_bars(table: BenchmarkTable, colors: dict[Any, Any]) -> Figure | None:
    """Main score per model row: mean bar, std error bar, seeds as dots; baselines dashed."""
    metric = table.main_score
    models = [row for row in table.rows.values()
              if row.key.kind == "model" and row.cells.get(metric) and row.cells[metric].n]
    baselines = [row for row in table.rows.values()
                 if row.key.kind == "baseline" and row.cells.get(metric) and row.cells[metric].n]
    if not models and not baselines:
        return None
    fig, ax = plt.subplots(figsize=(max(4.0, 0.75 * len(models) + 2.5), 4.2))
    x = np.arange(len(models))
    for i, row in enumerate(models):
        cell = row.cells[metric]
        ax.bar(i, cell.mean, width=0.65, color=colors.get(row.key), alpha=0.85,
               yerr=cell.std if cell.std is not None else None, capsize=4,
               error_kw={"elinewidth": 1.2})
        jitter = np.linspace(-0.12, 0.12, cell.n) if cell.n > 1 else np.zeros(1)
        ax.scatter(i + jitter, cell.values, s=14, color="black", zorder=3)
    for j, row in enumerate(baselines):
        ax.axhline(row.cells[metric].mean, color="0.3",
                   linestyle=BASELINE_STYLES[j % len(BASELINE_STYLES)],
                   linewidth=1.2, label=f"{row.key.model} (trivial): {row.cells[metric].mean:.3f}")
    ax.set_xticks(x, [_label(r) for r in models], rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.6, max(len(models), 1) - 0.4)
    ax.set_ylabel(metric + (" (lower is better)" if not _higher_better(table) else ""))
    ax.set_title(f"{table.benchmark}: {metric}, mean ± std over seeds (dots: seeds)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    if baselines:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _higher_better(table: BenchmarkTable) -> bool:
    from avbench.runner.leaderboard import _lower_better

    return not _lower_better(table.main_score)


def plot_overview(tables: Sequence[BenchmarkTable], colors: dict[Any, Any]) -> Figure | None:
    """Grouped bars: benchmarks on x, one bar per model row (mean ± std), baselines as ticks."""
    if not tables:
        return None
    keys = sorted({k for t in tables for k, row in t.rows.items()
                   if k.kind == "model" and row.cells.get(t.main_score)
                   and row.cells[t.main_score].n})
    base_keys = sorted({k for t in tables for k, row in t.rows.items()
                        if k.kind == "baseline" and row.cells.get(t.main_score)
                        and row.cells[t.main_score].n})
    if not keys and not base_keys:
        return None
    n = max(len(keys), 1)
    width = 0.8 / n
    # ~0.2 in per bar, at most 16 in wide (the legend adds ~2 in on the right)
    fig_w = min(16.0, max(5.0, len(tables) * (0.2 * n + 0.4) + 2.5))
    fig, ax = plt.subplots(figsize=(fig_w, 4.4))
    labelled: set[Any] = set()
    for b, t in enumerate(tables):
        for i, k in enumerate(keys):
            row = t.rows.get(k)
            cell = row.cells.get(t.main_score) if row is not None else None
            if cell is None or not cell.n:
                continue
            ax.bar(b - 0.4 + width * (i + 0.5), cell.mean, width=width * 0.92,
                   color=colors.get(k), yerr=cell.std, capsize=2,
                   label=None if k in labelled else _label(row))
            labelled.add(k)
        for j, k in enumerate(base_keys):
            row = t.rows.get(k)
            cell = row.cells.get(t.main_score) if row is not None else None
            if cell is None or not cell.n:
                continue
            ax.hlines(cell.mean, b - 0.45, b + 0.45, colors="0.25",
                      linestyles=BASELINE_STYLES[j % len(BASELINE_STYLES)], linewidth=1.2,
                      label=None if k in labelled else row.key.label())
            labelled.add(k)
    ax.set_xticks(np.arange(len(tables)),
                  [f"{t.benchmark}\n({t.main_score}{'' if _higher_better(t) else ' ↓'})"
                   for t in tables], fontsize=8)
    ax.set_ylabel("main score")
    ax.set_title("Main score per benchmark (mean ± std over seeds; dashed: trivial baselines)",
                 fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


# --- all figures of one suite ------------------------------------------------------------------
def write_plots(
    dest: str | Path, tables: Sequence[BenchmarkTable], store: ResultStore
) -> list[PlotFile]:
    """Write every figure of one suite into ``<dest>/plots/``; returns what was written.

    A figure that fails is logged and skipped: the tables are the product, the
    figures an aid.
    """
    plots = Path(dest) / "plots"
    colors = _colors(tables)
    out: list[PlotFile] = []

    def emit(kind: str, bench: str | None, make: Any) -> None:
        name = f"{bench or 'overview'}_{kind if bench else 'bars'}.png"
        try:
            fig = make()
        except Exception as err:  # noqa: BLE001
            log.warning("plot %s failed: %s", name, err)
            plt.close("all")
            return
        if fig is not None:
            out.append(PlotFile(kind, bench, _save(fig, plots / name, tight=kind != "gallery")))

    for t in tables:
        records = [r for row in t.rows.values() for r in row.records]
        if records and _is_localization(records):
            emit("success", t.benchmark, lambda t=t: plot_success(t, colors))
            emit("gallery", t.benchmark, lambda t=t: plot_gallery(t, store))
        emit("bars", t.benchmark, lambda t=t: plot_bars(t, colors))
    emit("overview", None, lambda: plot_overview(tables, colors))
    return out


__all__ = ["GALLERY_SUFFIX", "PlotFile", "gallery_path", "load_gallery", "plot_bars",
           "plot_gallery", "plot_overview", "plot_success", "save_gallery", "success_curve",
           "write_plots"]
