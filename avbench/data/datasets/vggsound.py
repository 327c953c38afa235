"""VGGSound, VGG-Sound Source (VGG-SS) and its heard/unheard splits, in the published layout.

Real layout (what the loaders read)
-----------------------------------
::

    <root>/
      vggsound.csv                 no header: youtube_id,start_seconds,label,split
      metadata/                    (or directly in <root>; both are searched)
        vggsound_10k.txt           training subsets: one clip id per line
        vggsound_144k.txt
        vggss.json                 VGG-SS boxes (see below)
        vggss_test.csv             VGG-SS ids, first column (LVS/EZ-VSL test list)
        vggss_heard.txt            training ids of the 110 "heard" classes
        vggss_heard_test.csv       test ids of heard classes: ``id`` or ``id,class``
        vggss_unheard_test.csv     test ids of the 110 unseen classes, same format
      frames/<id>.jpg              middle frame, pre-extracted   (source="frames")
      audio/<id>.wav               mono 16 kHz, pre-extracted    (source="frames")
      video/<id>.mp4               the 10-s clip with audio      (source="video")

Sources of each fact:

* ``vggsound.csv`` (no header, ``youtube_id,start_seconds,label,split`` with
  split ``train``/``test``; labels containing commas are quoted, e.g.
  ``"male speech, man speaking"``) and the clip id
  ``<youtube_id>_<start:06d>``: the VGGSound release (Chen et al. 2020,
  ``hche11/VGGSound/data/vggsound.csv``), as read by every SSL repo.
* ``frames/<id>.jpg`` + ``audio/<id>.wav`` under one data directory, the
  ``metadata/<trainset>.txt`` id lists (``vggss_10k``/``vggss_144k``/
  ``vggss_heard`` in the EZ-VSL repo, ``vggsound_10k``/``_144k`` in avbench's
  spec) intersected with the files present, the ``metadata/vggss.json`` box
  file and the ``vggss_*_test.csv`` lists read by their first column:
  ``stoneMo/EZ-VSL/datasets.py`` and ``stoneMo/SLAVC/datasets.py``
  (``get_train_dataset`` / ``get_test_dataset`` / ``load_all_bboxes``).
  ACL-SSL (``swimmiing/ACL-SSL/VGGSS/README.md``) documents the same
  ``VGGSound/{audio,frames}`` tree with 16 kHz wavs.
* ``vggss.json`` is a list of ``{"file": id, "class": name, "bbox":
  [[xmin, ymin, xmax, ymax], ...]}`` with coordinates normalised to [0, 1]
  (some given as the integers 0/1): ``hche11/Localizing-Visual-Sounds-the-
  Hard-Way/metadata/vggss.json``. The reference loaders clip every box to
  [0, 1] and rasterise ``int(coord * 224)`` (EZ-VSL, SLAVC); the public file
  has boxes with a garbage coordinate of about -2.88e16 and zero-area boxes
  such as ``[0.26875, 1.0, 0.753125, 1.0]`` (REFERENCE.md B).
* Heard/unheard test lists: ``stoneMo/EZ-VSL/metadata/vggss_{heard,unheard}_test.csv``
  hold one id per line; ACL-SSL's copies (``VGGSS/metadata/``) are
  ``id,class`` with quoted class names. The class of a test clip always comes
  from ``vggss.json``.
* The mp4 folder: VGGSound downloads name clips ``<id>.mp4`` (the release
  archives unpack to ``.../VGGSound_final/video/<id>.mp4``); the folder is the
  ``video_dir`` argument (default ``video``). The boxes were drawn on the
  125th frame of the 25-fps clip, i.e. the middle of the 10 s (ACL-SSL
  README), which is the frame :func:`avbench.data.io.read_video_frame` picks.

What the loaders tolerate
-------------------------
* a ``# ...`` or ``youtube_id,start...`` header line in ``vggsound.csv``
  (some mirrors add one), blank lines, surrounding whitespace, a
  ``start_seconds`` written as ``30.0``; duplicate csv rows (first kept,
  counted). A row with the wrong number of fields, a non-integer start or an
  unknown split raises :class:`~avbench.data.errors.AnnotationError` naming
  the file and line.
* id lists as ``.txt`` or ``.csv`` (first column; ``flickr_144k`` ships as
  ``.csv`` in EZ-VSL, so a missing ``X.txt`` falls back to ``X.csv`` and vice
  versa).
* VGG-SS boxes: coordinates are clipped to [0, 1] (the reference rule),
  boxes with non-finite coordinates or zero area after clipping are dropped;
  all of it is counted in :attr:`VGGSS.box_report` and logged. A clip left
  without any box keeps an all-zero ``gt_map`` (as in the reference code,
  where it can never score) and is listed in the report.
* missing media: ``missing="error"`` names the first missing file and the
  count, ``missing="skip"`` drops those clips and counts them (DESIGN 4.2).

avbench policies (deviations from the reference code, on purpose)
-----------------------------------------------------------------
* Train/test overlap: the public 144k list contains about 3.7k VGG-SS test
  clips (REFERENCE.md B). Training ids that are VGGSound test clips or VGG-SS
  clips are removed and counted (``VGGSound.test_overlap``);
  ``allow_test_overlap=True`` keeps them (to reproduce the reference setup)
  but still reports them.
* Validation: VGGSound has no val split, so ``split="val"`` is a
  deterministic hold-out of the training list: the ids whose stable hash
  (SHA-1 of the id, see :func:`holdout_fraction`) falls below
  ``val_fraction``; at least one id when ``val_fraction > 0``. The hold-out
  depends only on the id, so the val clips of the 10k list are also val clips
  of the 144k list. Checkpoints are never selected on test.
* Audio: the ``clip_seconds`` window centred on the middle of the track
  (EZ-VSL ``load_spectrogram``: start ``max(dur/2 - clip/2, 0)``), tiled when
  the track is shorter; resampled to ``sample_rate``.
* Classes: ``dataset.classes`` is the sorted list of ``vggsound.csv`` labels
  (all splits), so VGGSound and VGG-SS share one index space; without
  ``vggsound.csv`` VGG-SS uses the sorted classes of ``vggss.json``.

The helpers :func:`read_id_list`, :func:`holdout_split` and
:func:`boxes_to_gt_map` are shared with :mod:`avbench.data.datasets.flickr`
(same family of SSL layouts).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from avbench.data.datasets.base import AVDataset, MissingPolicy
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.io import (
    SOUNDFILE_EXTENSIONS,
    fit_length,
    probe,
    read_audio,
    read_image,
    read_video_frame,
)
from avbench.data.splits import holdout_mask, stable_unit

log = logging.getLogger(__name__)

Source = Literal["frames", "video"]
Split = Literal["train", "val", "test"]
VGGSSSubset = Literal["all", "heard", "unheard"]

#: where list/annotation files are looked up, relative to the dataset root
METADATA_DIRS = ("metadata", ".")

VGGSS_JSON = "vggss.json"
VGGSS_SUBSET_LISTS = {
    "heard": "vggss_heard_test.csv",
    "unheard": "vggss_unheard_test.csv",
}


# --------------------------------------------------------------------------
# shared helpers (also used by the Flickr-SoundNet loader)
# --------------------------------------------------------------------------
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


def read_id_list(path: Path) -> list[tuple[str, list[str]]]:
    """Read an id list: one row per line, id in the first column.

    Returns ``[(id, other_columns), ...]`` in file order. ``.csv`` rows are
    parsed with the csv module (quoted class names with commas, as in
    ACL-SSL's ``vggss_heard_test.csv``); blank lines are skipped. An empty id
    raises :class:`AnnotationError` naming the file and line.
    """
    rows: list[tuple[str, list[str]]] = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for lineno, fields in enumerate(csv.reader(f), start=1):
                if not fields or all(not x.strip() for x in fields):
                    continue
                ident = fields[0].strip()
                if not ident:
                    raise AnnotationError(path, f"line {lineno}: empty id in first column")
                rows.append((ident, [x.strip() for x in fields[1:]]))
    except UnicodeDecodeError as err:
        raise AnnotationError(path, f"not a UTF-8 text list ({err})") from err
    except csv.Error as err:
        raise AnnotationError(path, f"malformed csv: {err}") from err
    return rows


def holdout_fraction(ident: str) -> float:
    """A stable pseudo-random number in [0, 1) for ``ident`` (SHA-1 of the UTF-8 id)."""
    return stable_unit(ident)


def holdout_split(ids: Sequence[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """Split ``ids`` into (train, val) by :func:`holdout_fraction` < ``val_fraction``.

    Deterministic and order-preserving; see :func:`avbench.data.splits.holdout_mask`
    for the guarantees on tiny lists (val and train both non-empty).
    """
    held = holdout_mask(ids, val_fraction)
    return [i for i, h in zip(ids, held) if not h], [i for i, h in zip(ids, held) if h]


def boxes_to_gt_map(
    boxes: Sequence[Sequence[float]], size: int, mode: Literal["union", "consensus"]
) -> Tensor:
    """Rasterise normalised ``[xmin, ymin, xmax, ymax]`` boxes into a ``[size, size]`` map.

    Pixels ``[int(ymin*size):int(ymax*size), int(xmin*size):int(xmax*size)]``
    of each box add 1 (the reference ``bbox2gtmap`` at 224 px). ``"union"``
    (VGG-SS) binarises the sum; ``"consensus"`` (Flickr, 3 annotators) divides
    by 2 and caps at 1, giving values 0, 0.5, 1.
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


# --------------------------------------------------------------------------
# vggsound.csv
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class VGGSoundRow:
    """One row of ``vggsound.csv``."""

    youtube_id: str
    start: int
    label: str
    split: str

    @property
    def id(self) -> str:
        return clip_id(self.youtube_id, self.start)


def clip_id(youtube_id: str, start: int) -> str:
    """The VGGSound clip id ``<youtube_id>_<start:06d>`` used by every file name."""
    return f"{youtube_id}_{int(start):06d}"


def _is_header(fields: list[str]) -> bool:
    first = fields[0].strip().lower()
    return first.startswith("#") or "youtube" in first or (
        len(fields) > 1 and "start" in fields[1].strip().lower()
    )


def parse_vggsound_csv(path: Path) -> list[VGGSoundRow]:
    """Parse ``vggsound.csv`` (no header: ``youtube_id,start_seconds,label,split``).

    Raises :class:`AnnotationError` naming the file and line for a row with
    the wrong number of fields, a non-integer start or a split other than
    train/test. A header line (mirrors add one) is skipped; duplicate clip
    ids keep their first row.
    """
    rows: list[VGGSoundRow] = []
    seen: set[str] = set()
    duplicates = 0
    try:
        f = open(path, newline="", encoding="utf-8")
    except FileNotFoundError as err:
        raise MissingFileError(path) from err
    with f:
        try:
            for lineno, fields in enumerate(csv.reader(f), start=1):
                if not fields or all(not x.strip() for x in fields):
                    continue
                if lineno == 1 and _is_header(fields):
                    continue
                if len(fields) != 4:
                    raise AnnotationError(
                        path,
                        f"line {lineno}: expected 4 fields (youtube_id,start_seconds,label,split), "
                        f"got {len(fields)}: {','.join(fields)[:120]!r}",
                    )
                ytid, start_s, label, split = (x.strip() for x in fields)
                try:
                    start_f = float(start_s)
                except ValueError:
                    start_f = math.nan
                if not math.isfinite(start_f) or start_f != int(start_f) or start_f < 0:
                    raise AnnotationError(
                        path, f"line {lineno}: start_seconds {start_s!r} is not a non-negative integer"
                    )
                if split not in ("train", "test"):
                    raise AnnotationError(
                        path, f"line {lineno}: split {split!r} is neither 'train' nor 'test'"
                    )
                if not ytid or not label:
                    raise AnnotationError(path, f"line {lineno}: empty youtube_id or label")
                row = VGGSoundRow(ytid, int(start_f), label, split)
                if row.id in seen:
                    duplicates += 1
                    continue
                seen.add(row.id)
                rows.append(row)
        except UnicodeDecodeError as err:
            raise AnnotationError(path, f"not UTF-8 text ({err})") from err
        except csv.Error as err:
            raise AnnotationError(path, f"malformed csv: {err}") from err
    if duplicates:
        log.warning("%s: %d duplicate clip ids ignored (first row kept)", path, duplicates)
    if not rows:
        raise AnnotationError(path, "no rows")
    return rows


# --------------------------------------------------------------------------
# vggss.json
# --------------------------------------------------------------------------
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
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise MissingFileError(path) from err
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


# --------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class ClipRecord:
    id: str
    label: int
    class_name: str
    boxes: tuple[tuple[float, float, float, float], ...] | None = None


class _VGGSoundMedia(AVDataset):
    """Shared media access of VGGSound and VGG-SS (frames+audio or mp4)."""

    def __init__(
        self,
        root: str | Path,
        *,
        source: Source,
        frames_dir: str,
        audio_dir: str,
        video_dir: str,
        sample_rate: int,
        clip_seconds: float,
        image_size: int | None,
        missing: MissingPolicy,
    ) -> None:
        super().__init__(root, missing=missing)
        if source not in ("frames", "video"):
            raise ValueError(f"source must be 'frames' or 'video', got {source!r}")
        if sample_rate <= 0 or clip_seconds <= 0:
            raise ValueError("sample_rate and clip_seconds must be positive")
        self.source = source
        self.frames_dir = self.root / frames_dir
        self.audio_dir = self.root / audio_dir
        self.video_dir = self.root / video_dir
        self.sample_rate = int(sample_rate)
        self.clip_seconds = float(clip_seconds)
        self.image_size = image_size
        self.classes: list[str] = []

    def media_paths(self, ident: str) -> dict[str, Path]:
        if self.source == "video":
            return {"video": self.video_dir / f"{ident}.mp4"}
        return {"image": self.frames_dir / f"{ident}.jpg", "audio": self.audio_dir / f"{ident}.wav"}

    def required_files(self, record: ClipRecord) -> Sequence[Path]:
        return list(self.media_paths(record.id).values())

    def _load_media(self, ident: str) -> dict[str, Tensor]:
        paths = self.media_paths(ident)
        if self.source == "video":
            image = read_video_frame(paths["video"], None, self.image_size)
            audio = load_audio_window(paths["video"], self.sample_rate, self.clip_seconds)
        else:
            image = read_image(paths["image"], self.image_size)
            audio = load_audio_window(paths["audio"], self.sample_rate, self.clip_seconds)
        return {"image": image, "audio": audio}

    def _class_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}


class VGGSound(_VGGSoundMedia):
    """VGGSound clips with their class label (train / val hold-out / test).

    Args:
        root: directory with ``vggsound.csv``, ``metadata/`` and the media folders.
        split: ``"train"`` and ``"val"`` come from the training list (val =
            deterministic hash hold-out of ``val_fraction``, see module doc);
            ``"test"`` is every ``test`` row of ``vggsound.csv``.
        train_list: id list restricting the training clips
            (``vggsound_10k.txt``, ``vggsound_144k.txt``, ``vggss_heard.txt``);
            ``None`` = every ``train`` row of the csv.
        source: ``"frames"`` reads ``frames/<id>.jpg`` + ``audio/<id>.wav``,
            ``"video"`` decodes the middle frame and audio of ``<video_dir>/<id>.mp4``.
        video_dir, frames_dir, audio_dir: media folders under ``root``.
        sample_rate, clip_seconds: audio rate and centred window length.
        image_size: side of the square output frame (``None`` = as stored).
        missing: ``"error"`` or ``"skip"`` for clips with missing media.
        val_fraction: share of the training list held out as val.
        allow_test_overlap: keep training ids that are test clips (reported
            either way in :attr:`test_overlap`).
        csv_name: name of the metadata csv.

    Samples: ``id``, ``image`` [3,H,W], ``audio`` [1,L], ``label``, ``class_name``.
    """

    name = "vggsound"

    def __init__(
        self,
        root: str | Path,
        split: Split = "train",
        *,
        train_list: str | None = "vggsound_144k.txt",
        source: Source = "frames",
        video_dir: str = "video",
        frames_dir: str = "frames",
        audio_dir: str = "audio",
        sample_rate: int = 16000,
        clip_seconds: float = 3.0,
        image_size: int | None = 224,
        missing: MissingPolicy = "error",
        val_fraction: float = 0.05,
        allow_test_overlap: bool = False,
        csv_name: str = "vggsound.csv",
    ) -> None:
        super().__init__(
            root, source=source, frames_dir=frames_dir, audio_dir=audio_dir,
            video_dir=video_dir, sample_rate=sample_rate, clip_seconds=clip_seconds,
            image_size=image_size, missing=missing,
        )
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        self.split = split
        self.train_list = train_list
        self.csv_path = find_metadata(self.root, csv_name)
        rows = parse_vggsound_csv(self.csv_path)
        self.classes = sorted({r.label for r in rows})
        index = self._class_index()
        by_id = {r.id: r for r in rows}
        #: training-list ids that are test clips (VGGSound test rows or VGG-SS ids)
        self.test_overlap: list[str] = []

        if split == "test":
            ids = [r.id for r in rows if r.split == "test"]
        else:
            ids = self._training_ids(rows, by_id, allow_test_overlap)
            train_ids, val_ids = holdout_split(ids, val_fraction)
            ids = train_ids if split == "train" else val_ids
        self.records = [ClipRecord(i, index[by_id[i].label], by_id[i].label) for i in ids]
        self._finalize_records()

    def _training_ids(
        self, rows: list[VGGSoundRow], by_id: dict[str, VGGSoundRow], allow_test_overlap: bool
    ) -> list[str]:
        if self.train_list is None:
            return [r.id for r in rows if r.split == "train"]
        list_path = find_metadata(self.root, self.train_list)
        listed = list(dict.fromkeys(i for i, _ in read_id_list(list_path)))
        unknown = [i for i in listed if i not in by_id]
        if unknown:
            # No label for these: they cannot be used; counted, not fatal.
            self.skipped["id not in vggsound.csv"] += len(unknown)
            log.warning("%s: %d ids of %s are not in %s (e.g. %s); dropped",
                        self.describe(), len(unknown), list_path.name, self.csv_path.name, unknown[0])
        test_ids = {r.id for r in rows if r.split == "test"}
        vggss = _optional_metadata(self.root, VGGSS_JSON)
        if vggss is not None:
            test_ids |= set(parse_vggss_json(vggss, warn=False)[1])
        ids = [i for i in listed if i in by_id]
        self.test_overlap = [i for i in ids if i in test_ids]
        if self.test_overlap:
            log.warning(
                "%s: %d ids of %s are test clips (VGGSound test / VGG-SS)%s",
                self.describe(), len(self.test_overlap), list_path.name,
                " - kept (allow_test_overlap=True)" if allow_test_overlap else " - removed",
            )
            if not allow_test_overlap:
                overlap = set(self.test_overlap)
                ids = [i for i in ids if i not in overlap]
                self.skipped["train/test overlap"] += len(overlap)
        return ids

    def describe(self) -> str:
        return f"VGGSound({self.root}, split={getattr(self, 'split', '?')})"

    def load(self, record: ClipRecord) -> dict[str, Any]:
        sample: dict[str, Any] = {"id": record.id}
        sample.update(self._load_media(record.id))
        sample["label"] = record.label
        sample["class_name"] = record.class_name
        return sample


def _optional_metadata(root: Path, name: str) -> Path | None:
    try:
        return find_metadata(root, name)
    except MissingFileError:
        return None


class VGGSS(_VGGSoundMedia):
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
        entries, order, self.box_report = parse_vggss_json(self.json_path)
        if subset == "all":
            ids = order
        else:
            list_path = find_metadata(self.root, VGGSS_SUBSET_LISTS[subset])
            ids = []
            for lineno, (ident, _rest) in enumerate(read_id_list(list_path), start=1):
                if ident not in entries:
                    raise AnnotationError(
                        list_path, f"row {lineno}: clip {ident!r} is not in {self.json_path.name}"
                    )
                ids.append(ident)
            ids = list(dict.fromkeys(ids))
        if classes is None:
            csv_path = _optional_metadata(self.root, "vggsound.csv")
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


def vggsound_classes(root: str | Path, csv_name: str = "vggsound.csv") -> list[str]:
    """Sorted class labels of ``vggsound.csv`` under ``root`` (the shared index space)."""
    return sorted({r.label for r in parse_vggsound_csv(find_metadata(Path(root), csv_name))})


__all__ = [
    "VGGSound",
    "VGGSS",
    "BoxReport",
    "VGGSoundRow",
    "clip_id",
    "parse_vggsound_csv",
    "parse_vggss_json",
    "read_id_list",
    "holdout_split",
    "holdout_fraction",
    "boxes_to_gt_map",
    "load_audio_window",
    "find_metadata",
    "vggsound_classes",
]
