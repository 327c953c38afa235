"""Flickr-SoundNet sound-source localization (Senocak et al. CVPR 2018), published layout.

Real layout (what the loader reads)
-----------------------------------
::

    <root>/
      metadata/                    (or directly in <root>; both are searched)
        flickr_10k.txt             training subsets: one Flickr id per line
        flickr_144k.txt            (EZ-VSL ships this one as flickr_144k.csv)
        flickr_test.csv            test ids, first column (249/250 rows)
      frames/<id>.jpg              training frames
      audio/<id>.wav               training audio (mono 16 kHz; audio_ext=".mp3" also works)
      test/                        the annotated test set (``test_dir``)
        frames/<id>.jpg
        audio/<id>.wav
        Annotations/<id>.xml       boxes of 3 annotators, 256 x 256 pixel coordinates

Sources of each fact:

* ``frames/<id>.jpg`` + ``audio/<id>.wav`` per data directory, the training
  lists ``metadata/flickr_10k.txt`` (one numeric Flickr id per line) and
  ``metadata/flickr_144k.csv``, test ids = first column of
  ``metadata/flickr_test.csv``, annotations ``Annotations/<id>.xml`` in a
  separate test directory: ``stoneMo/EZ-VSL`` (``datasets.py``, ``metadata/``,
  ``scripts/train_flickr10k.sh``: ``--test_data_path .../Flickr-SoundNet/
  --test_gt_path .../Flickr-SoundNet/Annotations/``) and ``stoneMo/SLAVC``.
  ACL-SSL (``swimmiing/ACL-SSL/Flickr/README.md``) documents the tree used
  here: ``Flickr/{audio,frames}`` for training and
  ``Flickr/test/{Annotations,audio,frames}`` for the test set, 16 kHz wavs.
* ``flickr_test.csv``: the LVS copy (``hche11/Localizing-Visual-Sounds-the-
  Hard-Way/metadata/flickr_test.csv``) has 249 rows ``id,<integer>``; the
  ACL-SSL copy has 250 rows ``id,<VGGSound-style class>``. Every reference
  loader reads only the first column.
* Annotation XML: every loader (EZ-VSL/SLAVC ``load_all_bboxes``, LVS
  ``testset_gt``) walks ``root -> child -> <bbox>`` and reads the ``<bbox>``
  element's children *after the first* as ``xmin, ymin, xmax, ymax`` integers
  in 256 x 256 coordinates, scaled ``int(224 * v / 256)``; the map adds 1 per
  box, divides by 2 and caps at 1 (consensus of 3 annotators; values 0, 0.5,
  1). The dataset README (``ardasnck/learning_to_localize_sound_source``): 5k
  image-sound pairs, "each XML file has annotations of 3 annotators".

Item ids: the Flickr id of the list (first column; repeated ids are one item, the
first row kept). A list whose ids match none or fewer than 50% of the
``frames/<id>.jpg`` present raises :class:`~avbench.data.id_lists.IdListMismatchError`
naming the list, the counts and example ids of both sides.

What the loader tolerates
-------------------------
* list files as ``.txt`` or ``.csv`` (a missing ``X.txt`` falls back to
  ``X.csv``), extra csv columns, blank lines, duplicate ids (first kept), and
  the text normalisation of :mod:`avbench.data.id_lists` (byte-order marks,
  line endings, quoting, ``<id>.jpg`` -> ``<id>``).
* test csv labels: when *every* row's second column is a non-numeric class
  name (the ACL-SSL copy) the test samples get ``label``/``class_name``
  (``dataset.classes`` = sorted names); otherwise there are no labels
  (Flickr-SoundNet publishes none), ``classes == []``.
* XML: ``<bbox>`` elements at any depth below the root; inside a ``<bbox>``,
  children named ``xmin/ymin/xmax/ymax`` are used by name, otherwise
  positionally after the first child (the reference rule); coordinates
  written as ``12`` or ``12.0``; coordinates outside [0, 256] are clipped.
  A file that is not well-formed XML, has no ``<bbox>``, or has a box that is
  not 4 numbers raises :class:`~avbench.data.errors.AnnotationError` naming
  the file (at load time: with ``missing="skip"`` the clip is skipped and
  counted like unreadable media).
* missing media or annotation files: ``missing="error"|"skip"`` (DESIGN 4.2).

avbench policies
----------------
* ``split="val"``: Flickr-SoundNet has no val split, so it is a deterministic
  hash hold-out of ``val_fraction`` of the training list
  (:func:`avbench.data.splits.holdout_split`, at least one clip);
  checkpoints are never selected on the 250 test clips.
* Audio: the ``clip_seconds`` window centred on the track, tiled when shorter.
* ``boxes`` (normalised, each annotator's boxes) is returned for plots;
  ``gt_map`` is the consensus map at ``image_size`` (boxes scaled by
  ``image_size / 256``, the reference ``224 / 256`` at 224 px).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import Tensor

from avbench.data.datasets.base import AVDataset, MissingPolicy
from avbench.data.datasets.ssl_layout import boxes_to_gt_map, find_metadata, load_audio_window
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.id_lists import read_id_rows, read_ids
from avbench.data.io import read_image
from avbench.data.splits import holdout_split

log = logging.getLogger(__name__)

#: side of the coordinate frame of the Flickr-SoundNet annotations
ANNOTATION_FRAME = 256

_NAMED = ("xmin", "ymin", "xmax", "ymax")


def _number(text: str | None, path: Path, where: str) -> float:
    try:
        return float((text or "").strip())
    except ValueError as err:
        raise AnnotationError(path, f"{where}: coordinate {text!r} is not a number") from err


def parse_flickr_xml(path: Path) -> list[tuple[float, float, float, float]]:
    """Boxes of one ``Annotations/<id>.xml`` in 256-px coordinates ``(xmin, ymin, xmax, ymax)``.

    Raises :class:`AnnotationError` naming ``path`` for malformed XML, no
    ``<bbox>`` element, or a ``<bbox>`` without 4 numeric coordinates.
    """
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError as err:
        raise MissingFileError(path) from err
    except ET.ParseError as err:
        raise AnnotationError(path, f"malformed XML ({err})") from err
    boxes = []
    for k, bbox in enumerate(root.iter("bbox")):
        where = f"<bbox> #{k}"
        children = list(bbox)
        named = {c.tag.lower(): c.text for c in children}
        if all(n in named for n in _NAMED):
            values = [_number(named[n], path, where) for n in _NAMED]
        else:
            coords = children[1:]
            if len(coords) != 4:
                raise AnnotationError(
                    path, f"{where}: expected a first child then xmin, ymin, xmax, ymax; "
                    f"got {len(children)} children"
                )
            values = [_number(c.text, path, where) for c in coords]
        x0, y0, x1, y1 = (min(max(v, 0.0), float(ANNOTATION_FRAME)) for v in values)
        boxes.append((x0, y0, x1, y1))
    if not boxes:
        raise AnnotationError(path, "no <bbox> element")
    return boxes


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class FlickrRecord:
    id: str
    class_name: str | None = None
    label: int | None = None


class FlickrSoundNet(AVDataset):
    """Flickr-SoundNet image-audio pairs; the test split has the 3-annotator consensus map.

    Args:
        root: directory in the layout above.
        split: ``"train"`` / ``"val"`` (hash hold-out of the training list) /
            ``"test"`` (``flickr_test.csv`` ids under ``test_dir``).
        train_list: training id list (``flickr_10k.txt``, ``flickr_144k.txt``).
        test_list: test id csv (first column).
        test_dir: folder of the test set under ``root`` (``""`` = ``root``).
        frames_dir, audio_dir, annotations_dir: folder names (same in train and test).
        audio_ext: extension of the audio files (``.wav``; ``.mp3`` for copies
            that keep SoundNet's original mp3s).
        sample_rate, clip_seconds: audio rate and centred window length.
        image_size: side of the square output frame and ``gt_map``.
        missing: ``"error"`` or ``"skip"``.
        val_fraction: share of the training list held out as val.

    Samples: ``id``, ``image``, ``audio``; test adds ``gt_map`` (values 0,
    0.5, 1) and ``boxes`` (normalised); ``label``/``class_name`` only where
    the test csv carries class names.
    """

    name = "flickr"

    def __init__(
        self,
        root: str | Path,
        split: Literal["train", "val", "test"] = "train",
        *,
        train_list: str = "flickr_10k.txt",
        test_list: str = "flickr_test.csv",
        test_dir: str = "test",
        frames_dir: str = "frames",
        audio_dir: str = "audio",
        annotations_dir: str = "Annotations",
        audio_ext: str = ".wav",
        sample_rate: int = 16000,
        clip_seconds: float = 3.0,
        image_size: int = 224,
        missing: MissingPolicy = "error",
        val_fraction: float = 0.05,
    ) -> None:
        super().__init__(root, missing=missing)
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if image_size is None or image_size <= 0:
            raise ValueError("FlickrSoundNet needs an integer image_size (gt_map resolution)")
        self.split = split
        self.sample_rate = int(sample_rate)
        self.clip_seconds = float(clip_seconds)
        self.image_size = int(image_size)
        self.audio_ext = audio_ext if audio_ext.startswith(".") else f".{audio_ext}"
        data_dir = self.root / test_dir if split == "test" else self.root
        self.frames_dir = data_dir / frames_dir
        self.audio_dir = data_dir / audio_dir
        self.annotations_dir = data_dir / annotations_dir
        self.classes: list[str] = []

        if split == "test":
            self.list_path = find_metadata(self.root, test_list)
            rows = read_id_rows(self.list_path)
            first: dict[str, list[str]] = {}
            for i, rest in rows:
                first.setdefault(i, rest)  # duplicate ids: the first row is kept
            rows = list(first.items())
            self._match_list_to_files(self.list_path, [i for i, _ in rows], self.frames_dir, ".jpg")
            labelled = bool(rows) and all(
                rest and rest[0] and not _is_number(rest[0]) for _, rest in rows
            )
            if labelled:
                self.classes = sorted({rest[0] for _, rest in rows})
                index = {c: i for i, c in enumerate(self.classes)}
                self.records = [FlickrRecord(i, rest[0], index[rest[0]]) for i, rest in rows]
            else:
                self.records = [FlickrRecord(i) for i, _ in rows]
        else:
            self.list_path = find_metadata(self.root, train_list)
            ids = list(dict.fromkeys(read_ids(self.list_path)))
            self._match_list_to_files(self.list_path, ids, self.frames_dir, ".jpg")
            train_ids, val_ids = holdout_split(ids, val_fraction)
            self.records = [FlickrRecord(i) for i in (train_ids if split == "train" else val_ids)]
        self.annotation_file = self.list_path
        self._finalize_records()

    def describe(self) -> str:
        return f"FlickrSoundNet({self.root}, split={getattr(self, 'split', '?')})"

    def paths(self, ident: str) -> dict[str, Path]:
        out = {
            "image": self.frames_dir / f"{ident}.jpg",
            "audio": self.audio_dir / f"{ident}{self.audio_ext}",
        }
        if self.split == "test":
            out["annotation"] = self.annotations_dir / f"{ident}.xml"
        return out

    def required_files(self, record: FlickrRecord) -> Sequence[Path]:
        return list(self.paths(record.id).values())

    def gt(self, ident: str) -> tuple[Tensor, list[list[float]]]:
        """(consensus ``gt_map`` at ``image_size``, normalised boxes) of a test clip."""
        boxes_px = parse_flickr_xml(self.paths(ident)["annotation"])
        boxes = [[v / ANNOTATION_FRAME for v in b] for b in boxes_px]
        return boxes_to_gt_map(boxes, self.image_size, "consensus"), boxes

    def load(self, record: FlickrRecord) -> dict[str, Any]:
        paths = self.paths(record.id)
        sample: dict[str, Any] = {
            "id": record.id,
            "image": read_image(paths["image"], self.image_size,
                                interpolation=self.frame_interpolation),
            "audio": load_audio_window(paths["audio"], self.sample_rate, self.clip_seconds),
        }
        if self.split == "test":
            sample["gt_map"], sample["boxes"] = self.gt(record.id)
        if record.label is not None:
            sample["label"] = record.label
            sample["class_name"] = record.class_name
        return sample


__all__ = ["FlickrSoundNet", "parse_flickr_xml", "ANNOTATION_FRAME"]
