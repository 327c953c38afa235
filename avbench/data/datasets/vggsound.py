"""VGGSound: ``vggsound.csv`` and the VGGSound dataset, in the published layout.

The same tree holds VGG-Sound Source (VGG-SS, :mod:`avbench.data.datasets.vggss`;
its boxes: :mod:`avbench.data.datasets.vggss_annotations`); both share this
module's clip media access (:class:`VGGSoundMedia`).

Real layout (what the loaders read)
-----------------------------------
::

    <root>/
      vggsound.csv                 no header: youtube_id,start_seconds,label,split
      metadata/                    (or directly in <root>; both are searched)
        vggsound_10k.txt           training subsets: one clip id per line
        vggsound_144k.txt
        vggss.json                 VGG-SS boxes (vggss_annotations)
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
* ``vggss.json`` and its boxes: :mod:`avbench.data.datasets.vggss_annotations`.
* Heard/unheard test lists: :mod:`avbench.data.datasets.vggss`.
* The mp4 folder: VGGSound downloads name clips ``<id>.mp4`` (the release
  archives unpack to ``.../VGGSound_final/video/<id>.mp4``); the folder is the
  ``video_dir`` argument (default ``video``). The boxes were drawn on the
  125th frame of the 25-fps clip, i.e. the middle of the 10 s (ACL-SSL
  README), which is the frame :func:`avbench.data.io.read_video_frame` picks.

Item ids
--------
The clip id ``<youtube_id>_<start:06d>`` (unique: ``vggsound.csv`` rows repeating a
clip id keep the first row). VGG-SS items use the same id (the ``file`` of
``vggss.json``).

What the loaders tolerate
-------------------------
* a ``# ...`` or ``youtube_id,start...`` header line in ``vggsound.csv``
  (some mirrors add one), blank lines, surrounding whitespace, a
  ``start_seconds`` written as ``30.0``; duplicate csv rows (first kept,
  counted). A row with the wrong number of fields, a non-integer start or an
  unknown split raises :class:`~avbench.data.errors.AnnotationError` naming
  the file and line.
* every text file normalised by :mod:`avbench.data.id_lists` (byte-order
  marks, UTF-16, any line ending, quoting; ids lose a media extension, so
  VGGSound's own ``train.csv``/``test.csv`` with ``<id>.mp4,<label>`` rows work
  as ``train_list``). A training list matching none or fewer than 50% of the
  clips of ``vggsound.csv`` raises
  :class:`~avbench.data.id_lists.IdListMismatchError` naming the list, the
  counts and example ids of both sides; below that, unknown ids are dropped
  and counted.
* id lists as ``.txt`` or ``.csv`` (first column, read by
  :mod:`avbench.data.id_lists`; ``flickr_144k`` ships as ``.csv`` in EZ-VSL,
  so a missing ``X.txt`` falls back to ``X.csv`` and vice versa:
  :func:`avbench.data.datasets.ssl_layout.find_metadata`).
* VGG-SS boxes: see :mod:`avbench.data.datasets.vggss_annotations`.
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
  (SHA-1 of the id, :func:`avbench.data.splits.holdout_split`) falls below
  ``val_fraction``; at least one id when ``val_fraction > 0``. The hold-out
  depends only on the id, so the val clips of the 10k list are also val clips
  of the 144k list. Checkpoints are never selected on test.
* Audio: the ``clip_seconds`` window centred on the middle of the track
  (EZ-VSL ``load_spectrogram``: start ``max(dur/2 - clip/2, 0)``), tiled when
  the track is shorter; resampled to ``sample_rate``
  (:func:`avbench.data.datasets.ssl_layout.load_audio_window`).
* Classes: ``dataset.classes`` is the sorted list of ``vggsound.csv`` labels
  (all splits), so VGGSound and VGG-SS share one index space; without
  ``vggsound.csv`` VGG-SS uses the sorted classes of ``vggss.json``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import Tensor

from avbench.data.datasets.base import AVDataset, MissingPolicy
from avbench.data.datasets.ssl_layout import find_metadata, load_audio_window, optional_metadata
from avbench.data.datasets.vggss_annotations import VGGSS_JSON, parse_vggss_json
from avbench.data.errors import AnnotationError
from avbench.data.id_lists import clean_field, match_ids, normalize_id, read_ids, read_text
from avbench.data.io import read_image, read_video_frame
from avbench.data.splits import holdout_split

log = logging.getLogger(__name__)

Source = Literal["frames", "video"]
Split = Literal["train", "val", "test"]


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
    text = read_text(path)  # BOMs, UTF-16, any line ending (id_lists); raises if missing
    try:
        for lineno, fields in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
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
            ytid, start_s, label, split = (clean_field(x) for x in fields)
            ytid = normalize_id(ytid)
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
    except csv.Error as err:
        raise AnnotationError(path, f"malformed csv: {err}") from err
    if duplicates:
        log.warning("%s: %d duplicate clip ids ignored (first row kept)", path, duplicates)
    if not rows:
        raise AnnotationError(path, "no rows")
    return rows



def vggsound_classes(root: str | Path, csv_name: str = "vggsound.csv") -> list[str]:
    """Sorted class labels of ``vggsound.csv`` under ``root`` (the shared index space)."""
    return sorted({r.label for r in parse_vggsound_csv(find_metadata(Path(root), csv_name))})


# --------------------------------------------------------------------------
# clip media (shared with VGG-SS)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class ClipRecord:
    """One clip of VGGSound or VGG-SS: id, class index and name, boxes (VGG-SS only)."""

    id: str
    label: int
    class_name: str
    boxes: tuple[tuple[float, float, float, float], ...] | None = None


class VGGSoundMedia(AVDataset):
    """Media access shared by VGGSound and VGG-SS: frames+audio or the mp4 of a clip id.

    ``source="frames"`` reads ``<frames_dir>/<id>.jpg`` and ``<audio_dir>/<id>.wav``,
    ``source="video"`` the middle frame and audio of ``<video_dir>/<id>.mp4``;
    :meth:`_load_media` returns ``image`` [3,H,W] and ``audio`` [1,L] (the centred
    ``clip_seconds`` window at ``sample_rate``). Raises ``ValueError`` for an
    unknown ``source`` or a non-positive rate/window.
    """

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
            image = read_video_frame(paths["video"], None, self.image_size,
                                     interpolation=self.frame_interpolation)
            audio = load_audio_window(paths["video"], self.sample_rate, self.clip_seconds)
        else:
            image = read_image(paths["image"], self.image_size,
                               interpolation=self.frame_interpolation)
            audio = load_audio_window(paths["audio"], self.sample_rate, self.clip_seconds)
        return {"image": image, "audio": audio}

    def _class_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}



# --------------------------------------------------------------------------
# the dataset
# --------------------------------------------------------------------------
class VGGSound(VGGSoundMedia):
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
        self.annotation_file = self.csv_path
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
        self.annotation_file = list_path
        listed = list(dict.fromkeys(read_ids(list_path)))
        # a list in another id form (or of another dataset) raises here, naming both sides
        match_ids(list_path, listed, by_id, what=f"clips of {self.csv_path.name}")
        unknown = [i for i in listed if i not in by_id]
        if unknown:
            # No label for these: they cannot be used; counted, not fatal.
            self.skipped["id not in vggsound.csv"] += len(unknown)
            log.warning("%s: %d ids of %s are not in %s (e.g. %s); dropped",
                        self.describe(), len(unknown), list_path.name, self.csv_path.name, unknown[0])
        test_ids = {r.id for r in rows if r.split == "test"}
        vggss = optional_metadata(self.root, VGGSS_JSON)
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


__all__ = [
    "ClipRecord",
    "Source",
    "Split",
    "VGGSound",
    "VGGSoundMedia",
    "VGGSoundRow",
    "clip_id",
    "parse_vggsound_csv",
    "vggsound_classes",
]
