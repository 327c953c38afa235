"""AVE (Audio-Visual Event localization, Tian et al. ECCV 2018) and its retrieval features.

Real layout (the ``AVE_Dataset.zip`` release of YapengTian/AVE-ECCV18; its ReadMe:
"AVE.zip: videos ... annotations.txt ... train/val/test-Set.txt"; paths as used by
third-party loaders, e.g. ``AVE_Dataset/AVE/<VideoID>.mp4``,
``AVE_Dataset/Annotations.txt``)::

    AVE_Dataset/
      Annotations.txt     Category&VideoID&Quality&StartTime&EndTime   (4,143 rows)
      trainSet.txt        same format (3,339 rows)
      valSet.txt          same format (402 rows)
      testSet.txt         same format (402 rows)
      AVE/<VideoID>.mp4   10-s YouTube clips with audio

Facts: ``&``-separated because category names contain commas
(``Baby cry, infant cry``); 28 categories; events are whole seconds in [0, 10];
Quality is ``good`` for every released row; a video may carry more than one event
row (the ReadMe notes "the total number of videos is not 4143"). Some copies of
the files start with the header line ``Category&VideoID&Quality&StartTime&EndTime``
and some do not; both are accepted.

Retrieval line (ILI paper, repo ZenzenDatabase/causalCMR ``causality_discovery.py``):
a 15-class subset, :data:`AVE15_CLASSES`, over pre-extracted per-video features in
the HDF5 format of :mod:`avbench.data.datasets.features`; :class:`AVEFeatures`
reads it (default file name ``ave_feature.h5`` at the root: an avbench convention,
the public file name is not documented).

Samples of :class:`AVE` (raw videos): ``image`` = the frame at the event's centre,
``audio`` = a ``clip_seconds`` window centred on the event (clamped to the video;
tiled when the video is shorter), ``label``/``class_name``, ``event_start`` /
``event_end`` (whole seconds), ``event_labels`` [10] (1 for the seconds inside
``[start, end)``: the per-second labels of the localization task), and
``frames`` [T,3,H,W] sampled uniformly over the video when ``num_frames`` is set.
With ``center_on_event=False`` the window and frame are centred on the video.

Item ids (unique per split; the rule depends only on the split file's rows):

* ``<VideoID>`` when the video has one event row in the split;
* ``<VideoID>_<start>_<end>`` for each row of a video with several rows;
* ``<VideoID>_<start>_<end>_<category>`` (category slug: lower case, every run of
  other characters than letters and digits as ``-``, e.g.
  ``..._0_10_male-speech-man-speaking``) for rows whose video *and* segment are
  shared with another row of another category. ``Annotations.txt`` has 45 such
  pairs (e.g. male and female speech on one clip).

Those pairs stay two items, one per category, not one multi-label item: the AVE
protocols are single-label (localization: one category per event; the ILI
retrieval protocol, REFERENCE A3: relevant = same class, one class per gallery
item, as in the feature files' one label per row), and each row is one item of
the 4,143 of the release. A row repeated verbatim (same category and segment) is
one item: later copies are dropped and counted (``skipped["duplicate row"]``).

Tolerated: root = ``AVE_Dataset`` or its parent; header line or not; blank lines,
any line ending, UTF-8/UTF-16 byte-order marks, spaces around fields, a VideoID
written with its ``.mp4`` (text normalisation of :mod:`avbench.data.id_lists`);
zero-length events (dropped and counted in ``skipped``). Raised
(:class:`AnnotationError` naming file and line): a row with a field count other
than 5, non-integer or out-of-range times, end before start, a category missing
from the class list.

Time: event seconds are on the video file's container clock (t = 0 at the
container's start, :mod:`avbench.data.io`), so an audio stream that starts later
than the video (``start_time > 0``) is placed where it plays.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from avbench.data import io
from avbench.data.datasets.base import AVDataset, MissingPolicy
from avbench.data.datasets.features import FeatureDataset
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.id_lists import clean_field, normalize_id, read_text

SPLIT_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}
ANNOTATIONS_FILE = "Annotations.txt"
VIDEO_DIR = "AVE"
HEADER = ("category", "videoid", "quality", "starttime", "endtime")
VIDEO_SECONDS = 10
FEATURES_FILE = "ave_feature.h5"

#: the 28 AVE categories in the label order of the AVE-ECCV18 release
AVE_CATEGORIES: tuple[str, ...] = (
    "Church bell", "Male speech, man speaking", "Bark", "Fixed-wing aircraft, airplane",
    "Race car, auto racing", "Female speech, woman speaking", "Helicopter", "Violin, fiddle",
    "Flute", "Ukulele", "Frying (food)", "Truck", "Shofar", "Motorcycle", "Acoustic guitar",
    "Train horn", "Clock", "Banjo", "Goat", "Baby cry, infant cry", "Bus", "Chainsaw", "Cat",
    "Horse", "Toilet flush", "Rodents, rats, mice", "Accordion", "Mandolin",
)

#: the ILI/causalCMR 15-class subset, in that repo's order (its short names
#: "Rodents/rats" and "Infant cry" mapped to the AVE category names)
AVE15_CLASSES: tuple[str, ...] = (
    "Clock", "Motorcycle", "Train horn", "Bark", "Cat", "Bus", "Rodents, rats, mice",
    "Toilet flush", "Acoustic guitar", "Frying (food)", "Chainsaw", "Horse", "Helicopter",
    "Baby cry, infant cry", "Truck",
)

ClassSet = Literal["all", "ave15"]


@dataclass(frozen=True)
class AVERecord:
    category: str
    video_id: str
    quality: str
    start: int
    end: int
    source: Path  # list file the row came from
    line: int
    id: str = ""


def _parse_time(text: str, path: Path, lineno: int, what: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(path, f"line {lineno}: {what} {text!r} is not a number") from None
    if value != int(value):
        raise AnnotationError(path, f"line {lineno}: {what} {text!r} is not a whole second")
    return int(value)


def read_ave_annotations(path: str | Path, video_seconds: int = VIDEO_SECONDS) -> list[AVERecord]:
    """Parse an AVE list file (``Annotations.txt`` or a split file), header or not.

    Returns the rows in file order, zero-length events included (callers decide).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "AVE annotation file does not exist")
    records: list[AVERecord] = []
    # BOMs, UTF-16, any line ending: the one text normalisation (id_lists)
    for lineno, raw in enumerate(read_text(path).split("\n"), start=1):
        line = clean_field(raw)
        if not line:
            continue
        fields = [clean_field(f) for f in line.split("&")]
        if tuple(f.lower().replace(" ", "") for f in fields) == HEADER:
            continue
        if len(fields) != 5:
            raise AnnotationError(
                path,
                f"line {lineno}: expected 5 '&'-separated fields "
                f"(Category&VideoID&Quality&StartTime&EndTime), got {len(fields)}: {line!r}",
            )
        cat, vid, quality, start_s, end_s = fields
        vid = normalize_id(vid)
        if not cat or not vid:
            raise AnnotationError(path, f"line {lineno}: empty category or video id: {line!r}")
        start = _parse_time(start_s, path, lineno, "StartTime")
        end = _parse_time(end_s, path, lineno, "EndTime")
        if not (0 <= start <= video_seconds and 0 <= end <= video_seconds) or end < start:
            raise AnnotationError(
                path, f"line {lineno}: event [{start}, {end}) outside [0, {video_seconds}] or reversed"
            )
        records.append(AVERecord(cat, vid, quality, start, end, path, lineno))
    return records


def category_slug(category: str) -> str:
    """``"Male speech, man speaking"`` -> ``"male-speech-man-speaking"`` (the id suffix)."""
    return re.sub(r"[^0-9a-z]+", "-", category.lower()).strip("-")


def ave_item_records(rows: Sequence[AVERecord]) -> list[AVERecord]:
    """The items of a split's rows with their ids (rule in the module docstring).

    Rows repeated verbatim (same video, segment and category) are kept once, in
    file order; every returned record has a distinct ``id``.
    """
    first: dict[tuple[str, int, int, str], AVERecord] = {}
    for r in rows:
        first.setdefault((r.video_id, r.start, r.end, r.category), r)
    unique = list(first.values())
    per_video = Counter(r.video_id for r in unique)
    per_segment = Counter((r.video_id, r.start, r.end) for r in unique)
    out = []
    for r in unique:
        ident = r.video_id
        if per_video[r.video_id] > 1:
            ident = f"{r.video_id}_{r.start}_{r.end}"
            if per_segment[(r.video_id, r.start, r.end)] > 1:
                ident = f"{ident}_{category_slug(r.category)}"
        out.append(AVERecord(**{**r.__dict__, "id": ident}))
    return out


def resolve_ave_root(root: Path) -> Path:
    """``root`` itself or ``root/AVE_Dataset``, whichever holds the list files."""
    for cand in (root, root / "AVE_Dataset"):
        if any((cand / f).is_file() for f in (ANNOTATIONS_FILE, *SPLIT_FILES.values())):
            return cand
    raise MissingFileError(
        root / SPLIT_FILES["train"],
        f"no AVE list files ({ANNOTATIONS_FILE}, {', '.join(SPLIT_FILES.values())}) "
        f"in {root} or {root / 'AVE_Dataset'}",
    )


def ave_class_names(classes: ClassSet | Sequence[str], available: Sequence[str]) -> list[str]:
    """The sorted class list for ``classes`` (``all`` = every category in ``available``)."""
    if classes == "all":
        return sorted(set(available))
    wanted = AVE15_CLASSES if classes == "ave15" else tuple(classes)
    return sorted(set(wanted))


class AVE(AVDataset):
    """AVE over raw videos (see module docstring for the layout and sample keys).

    Args:
        root: ``AVE_Dataset`` or its parent.
        split: ``train``/``val``/``test`` (the released split files).
        sample_rate: audio rate in Hz.
        clip_seconds: audio window length (centred on the event by default).
        image_size: side of the returned frame(s).
        classes: ``"all"`` (28), ``"ave15"`` (ILI subset) or an explicit list; rows
            of other classes are dropped.
        num_frames: also return ``frames`` with this many uniformly spaced frames.
        center_on_event: centre the audio window and the frame on the event.
        video_seconds: nominal video length (AVE: 10 s).
        missing: ``"error"`` or ``"skip"`` for rows whose video is missing.
    """

    name = "ave"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        sample_rate: int = 16000,
        clip_seconds: float = 3.0,
        image_size: int = 224,
        classes: ClassSet | Sequence[str] = "all",
        num_frames: int | None = None,
        center_on_event: bool = True,
        video_seconds: int = VIDEO_SECONDS,
        missing: MissingPolicy = "error",
    ) -> None:
        super().__init__(root, missing=missing)
        if split not in SPLIT_FILES:
            raise ValueError(f"split must be one of {tuple(SPLIT_FILES)}, got {split!r}")
        self.split = split
        self.sample_rate, self.clip_seconds, self.image_size = sample_rate, clip_seconds, image_size
        self.num_frames, self.center_on_event, self.video_seconds = num_frames, center_on_event, video_seconds
        self.data_root = resolve_ave_root(self.root)
        self.list_file = self.data_root / SPLIT_FILES[split]
        rows = read_ave_annotations(self.list_file, video_seconds)
        self._match_list_to_files(
            self.list_file, [r.video_id for r in rows], self.data_root / VIDEO_DIR, ".mp4"
        )

        ann = self.data_root / ANNOTATIONS_FILE
        if ann.is_file():
            available = [r.category for r in read_ave_annotations(ann, video_seconds)]
        else:  # class list from the union of the split files
            available = [
                r.category
                for s, f in SPLIT_FILES.items()
                if (self.data_root / f).is_file()
                for r in (rows if s == split else read_ave_annotations(self.data_root / f, video_seconds))
            ]
        self.classes: list[str] = ave_class_names(classes, available)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        if classes == "all":
            for r in rows:
                if r.category not in self.class_to_idx:
                    raise AnnotationError(
                        r.source, f"line {r.line}: category {r.category!r} is not in {ann.name}"
                    )

        zero = [r for r in rows if r.end == r.start]
        if zero:
            self.skipped["zero-length event"] += len(zero)
        rows = [r for r in rows if r.end > r.start and r.category in self.class_to_idx]
        self.records = ave_item_records(rows)
        if len(self.records) < len(rows):
            self.skipped["duplicate row"] += len(rows) - len(self.records)
        self.annotation_file = self.list_file
        self._finalize_records()

    def video_path(self, record: AVERecord) -> Path:
        return self.data_root / VIDEO_DIR / f"{record.video_id}.mp4"

    def required_files(self, record: AVERecord) -> list[Path]:
        return [self.video_path(record)]

    def load(self, record: AVERecord) -> dict[str, Any]:
        path = self.video_path(record)
        wave = io.read_audio(path, self.sample_rate)
        n = int(round(self.clip_seconds * self.sample_rate))
        total = wave.shape[-1]
        centre_s = (record.start + record.end) / 2 if self.center_on_event else total / self.sample_rate / 2
        if total > n:
            begin = int(round(centre_s * self.sample_rate)) - n // 2
            begin = min(max(begin, 0), total - n)
            wave = wave[..., begin : begin + n]
        audio = io.fit_length(wave, n, mode="center")
        image = io.read_video_frame(path, t=centre_s, size=self.image_size,
                                   interpolation=self.frame_interpolation)
        event = torch.zeros(self.video_seconds)
        event[record.start : record.end] = 1.0
        sample: dict[str, Any] = {
            "id": record.id,
            "image": image,
            "audio": audio,
            "label": self.class_to_idx[record.category],
            "class_name": record.category,
            "event_start": record.start,
            "event_end": record.end,
            "event_labels": event,
        }
        if self.num_frames:
            sample["frames"] = io.read_video_frames(
                path, fps=self.num_frames / self.video_seconds, start=0.0,
                duration=float(self.video_seconds), num_frames=self.num_frames, size=self.image_size,
                interpolation=self.frame_interpolation,
            )
        return sample

    def describe(self) -> str:
        return f"AVE[{self.split}]({self.data_root})"


class AVEFeatures(FeatureDataset):
    """AVE retrieval features (HDF5, see :mod:`avbench.data.datasets.features`).

    ``classes="ave15"`` keeps the ILI 15-class subset. Files without
    ``class_names`` get :data:`AVE15_CLASSES` (15 labels, ILI order) or
    :data:`AVE_CATEGORIES` (28 labels) as names.
    """

    name = "ave_features"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        file: str | Path = FEATURES_FILE,
        classes: ClassSet | Sequence[str] = "all",
        val_fraction: float = 0.05,
        missing: MissingPolicy = "error",
    ) -> None:
        root = Path(root)
        if not Path(file).is_absolute() and not (root / file).exists() and (root / "AVE_Dataset" / file).exists():
            root = root / "AVE_Dataset"
        keep = None if classes == "all" else list(AVE15_CLASSES if classes == "ave15" else classes)
        defaults = _default_names_for(root, file)
        super().__init__(
            root, file, split, val_fraction=val_fraction, classes=keep,
            default_class_names=defaults, missing=missing,
        )


def _default_names_for(root: Path, file: str | Path) -> tuple[str, ...] | None:
    """Names for a feature file without ``class_names``: by its number of classes."""
    import h5py

    path = Path(file) if Path(file).is_absolute() else root / file
    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as h5:
            if "lab_train" not in h5:
                return None
            lab = h5["lab_train"][()]
    except OSError:  # unreadable: FeatureDataset raises the named error
        return None
    n = lab.shape[1] if getattr(lab, "ndim", 1) == 2 and lab.shape[1] > 1 else int(lab.max()) + 1
    return {15: AVE15_CLASSES, 28: AVE_CATEGORIES}.get(n)
