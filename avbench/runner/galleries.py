"""Heat-map gallery files: ``<job>.gallery.npz`` beside ``<job>.json`` in the result store.

The runner writes the first samples an evaluation kept (``evaluate(gallery=N)``:
``ids``, ``image``, ``map``, ``gt`` arrays); the leaderboard's plots read them.
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
