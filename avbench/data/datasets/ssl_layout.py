"""Helpers shared by the SSL layouts (VGGSound / VGG-SS and Flickr-SoundNet).

The EZ-VSL / SLAVC / LVS repositories read both datasets the same way: list and
annotation files under ``metadata/`` (or the dataset root), the middle frame
and a centred audio window per clip, and box annotations rasterised into a
ground-truth map at the image size. The layouts themselves are documented in
:mod:`avbench.data.datasets.vggsound`, :mod:`avbench.data.datasets.vggss` and
:mod:`avbench.data.datasets.flickr`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from avbench.data.errors import MissingFileError
from avbench.data.io import SOUNDFILE_EXTENSIONS, fit_length, probe, read_audio

#: where list/annotation files are looked up, relative to the dataset root
METADATA_DIRS = ("metadata", ".")


def find_metadata(root: Path, name: str, metadata_dir: str | None = None) -> Path:
    """Locate a list/annotation file under ``root`` (``metadata/`` first, then ``root``).

    A missing ``X.txt`` falls back to ``X.csv`` and vice versa (EZ-VSL ships
    ``flickr_144k.csv`` but reads ``<trainset>.txt``). An absolute ``name`` is
    used as is. Raises :class:`MissingFileError` naming the first place looked.
    """
    candidates: list[Path] = []
    p = Path(name)
    if p.is_absolute():
        candidates.append(p)
    else:
        dirs = (metadata_dir,) if metadata_dir is not None else METADATA_DIRS
        candidates.extend(root / d / name for d in dirs)
    alt_ext = {".txt": ".csv", ".csv": ".txt"}.get(p.suffix.lower())
    alts = [c.with_suffix(alt_ext) for c in candidates] if alt_ext else []
    for c in [*candidates, *alts]:
        if c.is_file():
            return c
    raise MissingFileError(candidates[0], f"list/annotation file {name!r} not found")


def optional_metadata(root: Path, name: str) -> Path | None:
    """:func:`find_metadata`, or ``None`` when the file is absent."""
    try:
        return find_metadata(root, name)
    except MissingFileError:
        return None


def boxes_to_gt_map(
    boxes: Sequence[Sequence[float]], size: int, mode: Literal["union", "consensus"]
) -> Tensor:
    """Rasterise normalised ``[xmin, ymin, xmax, ymax]`` boxes into a ``[size, size]`` map.

    Pixels ``[int(ymin*size):int(ymax*size), int(xmin*size):int(xmax*size)]``
    of each box add 1 (the reference ``bbox2gtmap`` at 224 px). ``"union"``
    (VGG-SS) binarises the sum; ``"consensus"`` (Flickr, 3 annotators) divides
    by 2 and caps at 1, giving values 0, 0.5, 1. Any other ``mode`` raises
    ``ValueError``.
    """
    gt = torch.zeros(size, size, dtype=torch.float32)
    for x0, y0, x1, y1 in boxes:
        c0, r0 = int(x0 * size), int(y0 * size)
        c1, r1 = int(x1 * size), int(y1 * size)
        gt[r0:r1, c0:c1] += 1.0
    if mode == "union":
        return (gt > 0).to(torch.float32)
    if mode == "consensus":
        return (gt / 2.0).clamp_(max=1.0)
    raise ValueError(f"mode must be 'union' or 'consensus', got {mode!r}")


def load_audio_window(path: Path, sample_rate: int, clip_seconds: float) -> Tensor:
    """The ``clip_seconds`` window at the middle of ``path``'s audio, ``[1, L]``.

    Start ``max(duration/2 - clip/2, 0)`` as in the EZ-VSL loader; tiled when
    the track is shorter (:func:`avbench.data.io.fit_length`).

    wav/flac (soundfile) are probed and only the window is read. Containers
    decoded by PyAV (mp4, mp3, ...) are read whole and centre-cropped instead:
    probing one costs a full container open (stream-info analysis, about as
    much as decoding a 10-s AAC track), the perf benchmark's main overhead
    over raw decoding; the window is the same up to one sample of rounding.
    """
    num = max(1, round(sample_rate * clip_seconds))
    if path.suffix.lower() in SOUNDFILE_EXTENSIONS:
        info = probe(path)
        duration = info.audio_duration or info.duration
        if duration:
            start = max(duration / 2.0 - clip_seconds / 2.0, 0.0)
            wave = read_audio(path, sample_rate, start=start, duration=clip_seconds)
            return fit_length(wave, num, "center")
    return fit_length(read_audio(path, sample_rate), num, "center")


__all__ = [
    "METADATA_DIRS",
    "boxes_to_gt_map",
    "find_metadata",
    "load_audio_window",
    "optional_metadata",
]
