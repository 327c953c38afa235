"""Heat-map gallery files: ``<job>.gallery.npz`` beside ``<job>.json`` in the result store.

The runner writes the first samples an evaluation kept (``evaluate(gallery=N)``):
an ``ids`` array plus whatever per-sample arrays the task's gallery collector
keeps (localization: ``image``, ``map``, ``gt``); the task's leaderboard figure
hook reads them. The store knows no task's format: it checks only that every
array has one entry per id.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from avbench.atomic_io import atomic_write_bytes

log = logging.getLogger(__name__)

GALLERY_SUFFIX = ".gallery.npz"


def gallery_path(result_path: str | Path) -> Path:
    """``<dir>/<job>.gallery.npz`` next to ``<dir>/<job>.json`` (never read as a result)."""
    p = Path(result_path)
    return p.with_name(p.name.removesuffix(".json") + GALLERY_SUFFIX)


def save_gallery(path: str | Path, gallery: dict[str, Any]) -> Path:
    """Write a gallery (``ids`` and per-sample arrays) atomically, compressed."""
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
            g = {k: z[k] for k in z.files}
    except Exception as err:  # noqa: BLE001 - corrupt/old files are skipped, not fatal
        log.warning("ignoring unreadable gallery %s: %s", path, err)
        return None
    ids = g.get("ids")
    if ids is None or any(v.ndim == 0 or len(v) != len(ids) for v in g.values()):
        log.warning("ignoring malformed gallery %s (needs 'ids' and one entry per id)", path)
        return None
    return g


def write_gallery(result_path: Path, gallery: dict[str, Any] | None) -> None:
    """Store ``gallery`` beside the result at ``result_path``; None removes a stale one.

    A gallery that cannot be written only costs a figure: it is logged, never fatal.
    """
    path = gallery_path(result_path)
    try:
        if gallery is None:
            path.unlink(missing_ok=True)
        else:
            save_gallery(path, gallery)
    except OSError as err:
        log.warning("could not write the gallery %s: %s", path, err)


__all__ = ["GALLERY_SUFFIX", "gallery_path", "load_gallery", "save_gallery", "write_gallery"]
