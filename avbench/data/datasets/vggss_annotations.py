"""VGG-SS box annotations: parsing ``vggss.json`` and sanitising its boxes.

Source: ``vggss.json`` is a list of ``{"file": id, "class": name, "bbox":
[[xmin, ymin, xmax, ymax], ...]}`` with coordinates normalised to [0, 1]
(some given as the integers 0/1): ``hche11/Localizing-Visual-Sounds-the-
Hard-Way/metadata/vggss.json``. The reference loaders clip every box to
[0, 1] and rasterise ``int(coord * 224)`` (EZ-VSL, SLAVC: ``load_all_bboxes``);
the public file has boxes with a garbage coordinate of about -2.88e16 and
zero-area boxes such as ``[0.26875, 1.0, 0.753125, 1.0]`` (REFERENCE.md B).

What the parser tolerates: coordinates are clipped to [0, 1] (the reference
rule), boxes with non-finite coordinates or zero area after clipping are
dropped; all of it is counted in a :class:`BoxReport` and logged. A clip left
without any box is kept (its ``gt_map`` is all zero, as in the reference code,
where it can never score) and listed in the report. Structural problems raise
:class:`~avbench.data.errors.AnnotationError` (see :func:`parse_vggss_json`).
The dataset reading these boxes is :class:`avbench.data.datasets.vggss.VGGSS`;
:class:`avbench.data.datasets.vggsound.VGGSound` reads the clip ids to keep
VGG-SS test clips out of training.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avbench.data.errors import AnnotationError
from avbench.data.id_lists import normalize_id, read_text

log = logging.getLogger(__name__)

#: the box file's name (under ``metadata/`` or the VGGSound root)
VGGSS_JSON = "vggss.json"


@dataclass
class BoxReport:
    """What sanitising the VGG-SS boxes changed (the public file needs it)."""

    path: Path
    entries: int = 0
    boxes: int = 0
    kept: int = 0
    clipped: int = 0  #: boxes with a coordinate outside [0, 1], clipped
    non_finite: int = 0  #: boxes with a NaN/inf coordinate, dropped
    zero_area: int = 0  #: boxes of zero area after clipping, dropped
    without_boxes: list[str] = field(default_factory=list)  #: ids left with no box

    def summary(self) -> str:
        return (
            f"{self.path.name}: {self.entries} clips, {self.boxes} boxes; {self.clipped} clipped "
            f"to [0,1], {self.zero_area} zero-area and {self.non_finite} non-finite dropped; "
            f"{len(self.without_boxes)} clips left without a box"
        )

    @property
    def changed(self) -> bool:
        return bool(self.clipped or self.zero_area or self.non_finite or self.without_boxes)


@dataclass(frozen=True)
class VGGSSEntry:
    id: str
    class_name: str
    boxes: tuple[tuple[float, float, float, float], ...]  #: clipped, non-degenerate


def _as_box(raw: Any) -> list[float] | None:
    if not isinstance(raw, (list, tuple)) or len(raw) != 4:
        return None
    out = []
    for v in raw:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        out.append(float(v))
    return out


def sanitize_box(
    raw: Sequence[float], report: BoxReport
) -> tuple[float, float, float, float] | None:
    """Clip a normalised box to [0, 1]; ``None`` (counted) if non-finite or zero-area."""
    report.boxes += 1
    if not all(math.isfinite(v) for v in raw):
        report.non_finite += 1
        return None
    clipped = [min(max(v, 0.0), 1.0) for v in raw]
    if clipped != list(raw):
        report.clipped += 1
    x0, y0, x1, y1 = clipped
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        report.zero_area += 1
        return None
    report.kept += 1
    return (x0, y0, x1, y1)


def parse_vggss_json(
    path: Path, *, warn: bool = True
) -> tuple[dict[str, VGGSSEntry], list[str], BoxReport]:
    """Parse ``vggss.json`` -> ({id: entry}, ids in file order, box report).

    Structural problems (not a list, an entry without ``file``/``class``/
    ``bbox``, a box that is not 4 numbers) raise :class:`AnnotationError`
    naming the file and the entry; bad coordinate *values* are repaired and
    counted (see :class:`BoxReport`).
    """
    text = read_text(path)  # BOMs, UTF-16 (id_lists); MissingFileError if absent
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise AnnotationError(path, f"invalid JSON at line {err.lineno}: {err.msg}") from err
    if not isinstance(data, list):
        raise AnnotationError(path, "expected a JSON list of {file, class, bbox} objects")
    report = BoxReport(Path(path))
    entries: dict[str, VGGSSEntry] = {}
    order: list[str] = []
    for k, item in enumerate(data):
        where = f"entry {k}"
        if not isinstance(item, dict) or not all(key in item for key in ("file", "class", "bbox")):
            raise AnnotationError(path, f"{where}: expected keys 'file', 'class', 'bbox'")
        ident, cls, raw_boxes = item["file"], item["class"], item["bbox"]
        if isinstance(ident, str):
            ident = normalize_id(ident)  # "<id>.mp4" -> "<id>", the one id rule (id_lists)
        if not isinstance(ident, str) or not ident or not isinstance(cls, str) or not cls:
            raise AnnotationError(path, f"{where}: 'file' and 'class' must be non-empty strings")
        where = f"entry {k} ({ident})"
        if not isinstance(raw_boxes, list):
            raise AnnotationError(path, f"{where}: 'bbox' must be a list of [xmin,ymin,xmax,ymax]")
        boxes = []
        for j, raw in enumerate(raw_boxes):
            box = _as_box(raw)
            if box is None:
                raise AnnotationError(path, f"{where}: box {j} is not 4 numbers: {raw!r}"[:200])
            clean = sanitize_box(box, report)
            if clean is not None:
                boxes.append(clean)
        if ident in entries:
            raise AnnotationError(path, f"{where}: duplicate clip id")
        if not boxes:
            report.without_boxes.append(ident)
        entries[ident] = VGGSSEntry(ident, cls, tuple(boxes))
        order.append(ident)
    report.entries = len(order)
    if report.changed and warn:
        log.warning("VGG-SS boxes repaired: %s", report.summary())
    return entries, order, report


__all__ = ["VGGSS_JSON", "BoxReport", "VGGSSEntry", "parse_vggss_json", "sanitize_box"]
