"""VGG-Sound Source (VGG-SS): the box-annotated VGGSound test clips and their heard/unheard subsets.

Layout: the VGGSound tree (:mod:`avbench.data.datasets.vggsound`), of which
VGG-SS reads ``metadata/vggss.json`` (boxes, parsed and sanitised by
:mod:`avbench.data.datasets.vggss_annotations`), the media of its clips and,
for the subsets, ``metadata/vggss_heard_test.csv`` /
``vggss_unheard_test.csv``.

Sources:

* Heard/unheard test lists: ``stoneMo/EZ-VSL/metadata/vggss_{heard,unheard}_test.csv``
  hold one id per line; ACL-SSL's copies (``VGGSS/metadata/``) are
  ``id,class`` with quoted class names. Both are read by their first column
  (:mod:`avbench.data.id_lists`); the class of a test clip always comes from
  ``vggss.json``. A listed id missing from ``vggss.json`` raises
  :class:`~avbench.data.errors.AnnotationError`.
* Ground truth: the reference loaders rasterise the clipped boxes at 224 px
  and take their union (EZ-VSL, SLAVC ``bbox2gtmap``):
  :func:`avbench.data.datasets.ssl_layout.boxes_to_gt_map` with ``"union"``.
* Item ids: the ``file`` of ``vggss.json`` (the VGGSound clip id; a repeated
  ``file`` raises). A subset list matching none or fewer than 50% of the json's
  clips raises :class:`~avbench.data.id_lists.IdListMismatchError`; above that
  any unknown id raises naming its row.
* Classes: the sorted labels of ``vggsound.csv`` when present (the index space
  of :class:`~avbench.data.datasets.vggsound.VGGSound`), else the sorted
  classes of ``vggss.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from avbench.data.datasets.base import MissingPolicy
from avbench.data.datasets.ssl_layout import boxes_to_gt_map, find_metadata, optional_metadata
from avbench.data.datasets.vggsound import ClipRecord, Source, VGGSoundMedia, parse_vggsound_csv
from avbench.data.datasets.vggss_annotations import VGGSS_JSON, parse_vggss_json
from avbench.data.errors import AnnotationError
from avbench.data.id_lists import match_ids, read_ids

VGGSSSubset = Literal["all", "heard", "unheard"]

#: the id list of each subset (first column; classes come from ``vggss.json``)
VGGSS_SUBSET_LISTS = {
    "heard": "vggss_heard_test.csv",
    "unheard": "vggss_unheard_test.csv",
}


class VGGSS(VGGSoundMedia):
    """VGG-Sound Source test clips with box ground truth (subsets all / heard / unheard).

    Args:
        root: the VGGSound root (``metadata/vggss.json`` + media folders).
        subset: ``"all"`` (every clip of ``vggss.json``), ``"heard"`` /
            ``"unheard"`` (ids of ``vggss_heard_test.csv`` /
            ``vggss_unheard_test.csv``, first column; classes from the json).
        classes: class list defining ``label`` indices; default the sorted
            labels of ``vggsound.csv`` if present (same indices as
            :class:`VGGSound`), else the sorted classes of ``vggss.json``.
        source, video_dir, frames_dir, audio_dir, sample_rate, clip_seconds,
        image_size, missing: as in :class:`VGGSound`.

    Samples: ``id``, ``image``, ``audio``, ``label``, ``class_name``,
    ``gt_map`` [H,W] (binary union of the boxes at ``image_size``) and
    ``boxes`` (list of the clip's normalised, clipped boxes).
    :attr:`box_report` says what was repaired in the box file.
    """

    name = "vggss"

    def __init__(
        self,
        root: str | Path,
        subset: VGGSSSubset = "all",
        *,
        classes: Sequence[str] | None = None,
        source: Source = "frames",
        video_dir: str = "video",
        frames_dir: str = "frames",
        audio_dir: str = "audio",
        sample_rate: int = 16000,
        clip_seconds: float = 3.0,
        image_size: int = 224,
        missing: MissingPolicy = "error",
        json_name: str = VGGSS_JSON,
    ) -> None:
        super().__init__(
            root, source=source, frames_dir=frames_dir, audio_dir=audio_dir,
            video_dir=video_dir, sample_rate=sample_rate, clip_seconds=clip_seconds,
            image_size=image_size, missing=missing,
        )
        if subset not in ("all", "heard", "unheard"):
            raise ValueError(f"subset must be 'all', 'heard' or 'unheard', got {subset!r}")
        if image_size is None or image_size <= 0:
            raise ValueError("VGGSS needs an integer image_size (gt_map resolution)")
        self.subset = subset
        self.json_path = find_metadata(self.root, json_name)
        self.annotation_file = self.json_path
        entries, order, self.box_report = parse_vggss_json(self.json_path)
        if subset == "all":
            ids = order
        else:
            list_path = find_metadata(self.root, VGGSS_SUBSET_LISTS[subset])
            self.annotation_file = list_path
            listed = read_ids(list_path)
            # a list in another id form raises naming both sides; then every id must be known
            match_ids(list_path, listed, entries, what=f"clips of {self.json_path.name}")
            ids = []
            for lineno, ident in enumerate(listed, start=1):
                if ident not in entries:
                    raise AnnotationError(
                        list_path, f"row {lineno}: clip {ident!r} is not in {self.json_path.name}"
                    )
                ids.append(ident)
            ids = list(dict.fromkeys(ids))
        if classes is None:
            csv_path = optional_metadata(self.root, "vggsound.csv")
            if csv_path is not None:
                classes = sorted({r.label for r in parse_vggsound_csv(csv_path)})
            else:
                classes = sorted({e.class_name for e in entries.values()})
        self.classes = list(classes)
        index = self._class_index()
        unknown = sorted({entries[i].class_name for i in ids} - set(index))
        if unknown:
            raise AnnotationError(
                self.json_path, f"classes not in the class list: {unknown[:5]}"
            )
        self.records = [
            ClipRecord(i, index[entries[i].class_name], entries[i].class_name, entries[i].boxes)
            for i in ids
        ]
        #: ids of this subset whose boxes were all dropped (empty gt_map)
        self.without_boxes = [i for i in ids if not entries[i].boxes]
        self._finalize_records()

    def describe(self) -> str:
        return f"VGGSS({self.root}, subset={getattr(self, 'subset', '?')})"

    def skip_report(self) -> str:
        base = super().skip_report()
        if self.box_report.changed:
            return f"{base}; {self.box_report.summary()}"
        return base

    def load(self, record: ClipRecord) -> dict[str, Any]:
        sample: dict[str, Any] = {"id": record.id}
        sample.update(self._load_media(record.id))
        boxes = record.boxes or ()
        sample["label"] = record.label
        sample["class_name"] = record.class_name
        assert self.image_size is not None
        sample["gt_map"] = boxes_to_gt_map(boxes, self.image_size, "union")
        sample["boxes"] = [list(b) for b in boxes]
        return sample


__all__ = ["VGGSS", "VGGSSSubset", "VGGSS_SUBSET_LISTS"]
