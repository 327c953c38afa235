"""The leaderboard figures of localization benchmarks: success curves and the heat-map gallery.

* ``success``: the success curve y(t) = fraction of test images with cIoU >= t
  at the 21 AUC thresholds, one line per leaderboard row (mean over seeds,
  min-max band), trivial baselines dashed, the AUC in the legend. Read from
  the results (``tasks[*].info["success_curve"]``); rows without one (older
  results) are left out.
* ``gallery``: rows = models and the centre-prior baseline, columns = the
  first test samples, the min-max map (jet) over the image and the GT contour,
  from the galleries stored beside the results. Laid out by hand for
  :data:`DPI` dots per inch: save it at that dpi without ``bbox_inches="tight"``.

matplotlib is imported inside the functions (evaluation never imports it)
and figures are built without pyplot (no global figure state to close).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from avbench.benchmarks.tasks.base import PlotRow

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

#: baselines shown in the gallery (the full-image map is constant: nothing to see)
GALLERY_BASELINES = ("center-prior",)
GALLERY_COLUMNS = 6
#: line styles of the trivial baselines (dashed family), in row order
BASELINE_STYLES: tuple[Any, ...] = ("--", "-.", ":", (0, (5, 2, 1, 2)))
#: dots per inch the gallery mosaic is laid out for (one mosaic pixel per PNG pixel)
DPI = 100


def figures(kind: str, benchmark: str, rows: Sequence[PlotRow]) -> list[tuple[str, Figure]]:
    """``[("success", fig), ("gallery", fig)]``, each left out when there is nothing to draw.

    Args:
        kind: the task kind whose outcomes hold the success curve.
        benchmark: the benchmark name (figure titles).
        rows: the leaderboard rows, in table order.
    """
    makers: list[tuple[str, Callable[[], Figure | None]]] = [
        ("success", lambda: plot_success(kind, benchmark, rows)),
        ("gallery", lambda: plot_gallery(benchmark, rows)),
    ]
    out: list[tuple[str, Figure]] = []
    for slug, make in makers:
        try:
            fig = make()
        except Exception as err:  # noqa: BLE001 - a figure is never worth a failed leaderboard
            log.warning("%s %s figure failed: %s", benchmark, slug, err)
            continue
        if fig is not None:
            out.append((slug, fig))
    return out


def success_curve(record: Any, kind: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(thresholds, success) of a result's ``kind`` task; None for older results.

    ``record``: a ResultRecord (``record.tasks``: list of dicts with ``task`` and ``info``).
    """
    for task in record.tasks:
        if task.get("task") != kind:
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


# --- success curves -----------------------------------------------------------------------------
def plot_success(kind: str, benchmark: str, rows: Sequence[PlotRow]) -> Figure | None:
    """Success curve per row (mean over seeds, min-max band), None when no result has one."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.6))
    ax = fig.subplots()
    drawn = n_base = 0
    for row in rows:
        curves = [c for c in (success_curve(r, kind) for r in row.records) if c is not None]
        curves = [c for c in curves if np.array_equal(c[0], curves[0][0])] if curves else []
        if not curves:
            continue
        t = curves[0][0]
        ys = np.stack([c[1] for c in curves])
        mean = ys.mean(axis=0)
        # = the mean stored AUC of the seeds drawn (the trapezoid is linear in the curve)
        auc = float(np.trapezoid(mean, t))
        color = "0.35" if row.baseline else row.color
        style = BASELINE_STYLES[n_base % len(BASELINE_STYLES)] if row.baseline else "-"
        n_base += row.baseline
        seeds = f", {len(curves)} seeds" if len(curves) > 1 else ""
        ax.plot(t, mean, linestyle=style, color=color, linewidth=1.6,
                marker=None if row.baseline else "o", markersize=2.5,
                label=f"{row.label} (AUC {auc:.3f}{seeds})")
        if len(curves) > 1:
            ax.fill_between(t, ys.min(axis=0), ys.max(axis=0), color=color, alpha=0.18, linewidth=0)
        drawn += 1
    if not drawn:
        return None
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("cIoU threshold t")
    ax.set_ylabel("fraction of test images with cIoU ≥ t")
    ax.set_title(f"{benchmark}: localization success curve (band: min–max over seeds)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right", framealpha=0.85)
    return fig


# --- heat-map gallery ---------------------------------------------------------------------------
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


#: the arrays a localization gallery holds (LocalizationGallery.result)
GALLERY_KEYS = ("ids", "image", "map", "gt")


def _shown_in_gallery(row: PlotRow) -> bool:
    g = row.gallery
    if g is None or any(k not in g for k in GALLERY_KEYS) or g["image"].ndim != 4:
        return False  # none, or another task's gallery
    return not row.baseline or any(r.model in GALLERY_BASELINES for r in row.records)


def plot_gallery(benchmark: str, rows: Sequence[PlotRow],
                 columns: int = GALLERY_COLUMNS) -> Figure | None:
    """Grid of maps: rows = models (+ centre prior), columns = the same first test samples.

    Drawn as one mosaic image (blending and GT outlines in numpy): one axes
    instead of rows x columns keeps a 10-model gallery well under a second.
    None when no row has a gallery.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    shown = [(row.label, row.gallery) for row in rows if _shown_in_gallery(row)]
    if not shown:
        return None
    # the columns: the first samples of the first row; other rows are looked up by id
    ids = [str(i) for i in shown[0][1]["ids"][:columns]]
    size = tuple(int(x) for x in shown[0][1]["image"].shape[1:3])
    h, w = size
    gap = max(2, h // 32)
    mosaic = np.ones((len(shown) * (h + gap) - gap, len(ids) * (w + gap) - gap, 3), np.float32)
    jet = colormaps["jet"]
    missing: list[tuple[int, int]] = []
    for r, (_, g) in enumerate(shown):
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
    # the row labels' width: ~0.075 in per character at fontsize 8, at least 1.5 in
    left = max(1.5, 0.2 + 0.075 * max(len(label) for label, _ in shown))
    top, right, bottom = 0.55, 0.1, 0.1  # inches
    fig_w = mosaic.shape[1] / DPI + left + right
    fig_h = mosaic.shape[0] / DPI + top + bottom
    fig = Figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((left / fig_w, bottom / fig_h, mosaic.shape[1] / DPI / fig_w,
                       mosaic.shape[0] / DPI / fig_h))
    ax.imshow(mosaic, interpolation="nearest", extent=(0, mosaic.shape[1] / zoom,
                                                       mosaic.shape[0] / zoom, 0))
    ax.set_xticks([c * (w + gap) + w / 2 for c in range(len(ids))],
                  [sid if len(sid) <= 18 else sid[:17] + "…" for sid in ids], fontsize=7)
    ax.xaxis.tick_top()
    ax.set_yticks([r * (h + gap) + h / 2 for r in range(len(shown))],
                  [label for label, _ in shown], fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for r, c in missing:
        ax.text(c * (w + gap) + w / 2, r * (h + gap) + h / 2, "n/a", ha="center", va="center",
                fontsize=9, color="0.4")
    ax.set_title(f"{benchmark}: min-max maps (jet) over the image, GT outline (white); "
                 "lowest seed", fontsize=9, pad=14)
    return fig


__all__ = ["DPI", "GALLERY_BASELINES", "figures", "plot_gallery", "plot_success",
           "success_curve"]
