"""EPIC-Sounds: labelled sound events in the untrimmed audio of EPIC-KITCHENS-100.

Real layout
-----------
Sources: the annotation repository ``epic-kitchens/epic-sounds-annotations``
(``README.md`` "Annotations" tables, ``EPIC_Sounds_validation.csv``/``.pkl``) and its
reference recognition code under ``src/`` (REFERENCE.md B)::

    <root>/
      EPIC_Sounds_train.csv                          labelled annotations
      EPIC_Sounds_validation.csv                     labelled annotations
      EPIC_Sounds_recognition_test_timestamps.csv    timestamps only (no labels)
      EPIC_Sounds_*.pkl                              the same tables as pandas DataFrames
      EPIC_audio.hdf5                                untrimmed audio, one dataset per video_id

* Columns (README): ``annotation_id, participant_id, video_id, start_timestamp,
  stop_timestamp, start_sample, stop_sample, description, class, class_id``; the
  first public release had no ``start_sample``/``stop_sample`` (both forms are read).
  The recognition test file has the first seven columns only. Timestamps are
  ``HH:MM:SS.mmm``; ``*_sample`` index the 24 kHz untrimmed audio and equal
  ``milliseconds * 24`` on every row of the public validation file.
* 44 classes, ``class_id`` 0..43 (:data:`CLASSES`, the names as they appear in the
  public CSVs; ``13 = background``).
* The audio: the reference reads ONE HDF5 file (``EPICSOUNDS.AUDIO_DATA_FILE``,
  ``EPIC_audio.hdf5`` in ``src/README.md``) opened with ``h5py.File(path, 'r')`` in
  ``src/slowfast/datasets/epicsounds.py`` (``__getitem__``, line 98), takes the
  whole recording with ``audio_dataset[video_id][()]`` in
  ``src/slowfast/datasets/audio_loader_epicsounds.py`` (``pack_audio``, line 56)
  and slices it by sample index (same file, line 111); the sample index is
  ``int(seconds * 24000)`` of the timestamps
  (``src/slowfast/datasets/epicsounds_record.py``, lines 31-36) with
  ``AUDIO_DATA.SAMPLING_RATE = 24000`` (``src/slowfast/config/defaults.py``, line 297).
  So: one 1-D dataset per ``video_id``, mono, 24 kHz.

This loader reads the CSVs (the reference reads the ``.pkl`` copies; same rows) and
only the annotated slice of each recording. Sample indices are computed in integer
milliseconds (``ms * rate // 1000``), which equals the published ``*_sample``
columns exactly where the reference's float ``int(s * 24000)`` can be one sample low.
Integer HDF5 datasets are scaled to [-1, 1] (int16 / 32768); float ones are used as is.

Splits: ``train`` = the training CSV, ``val`` = the validation CSV, ``test`` = the
recognition-test timestamps (no labels: ``label = -1``, ``class_name = ""``).

Samples
-------
``id`` (``annotation_id``), ``audio`` [1, L] float32 at ``sample_rate`` (the
annotated segment, resampled with the project's torchaudio resampler
(:mod:`avbench.data.io`); with ``clip_seconds`` set, the centre window of that
length, tiled when the segment is shorter), ``label`` (``class_id``), ``class_name``
(``class``), ``description``, ``video_id``, ``participant_id``, ``start``/``stop``
(seconds) and ``annotation_id``.

Validation
----------
Every bad row raises :class:`~avbench.data.errors.AnnotationError` naming the CSV and
its line: a timestamp not ``HH:MM:SS.mmm``, ``stop <= start``, a ``class_id`` outside
0..43 or not matching ``class``, ``*_sample`` more than 1 ms away from the timestamp,
a segment ending after its recording. ``bad_rows="skip"`` drops and counts them
(``skip_report()``). A ``video_id`` with no dataset in the HDF5 raises
:class:`~avbench.data.errors.MissingFileError` naming the HDF5 file and the row;
``missing="skip"`` drops and counts those rows. A repeated ``annotation_id`` raises
:class:`~avbench.data.errors.DuplicateIdError`.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from avbench.data import io
from avbench.data.datasets.base import AVDataset, MissingPolicy
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.id_lists import clean_field, open_text

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
#: rate of the untrimmed audio in the reference HDF5 (``AUDIO_DATA.SAMPLING_RATE``)
SAMPLE_RATE = 24000
TRAIN_CSV = "EPIC_Sounds_train.csv"
VAL_CSV = "EPIC_Sounds_validation.csv"
TEST_CSV = "EPIC_Sounds_recognition_test_timestamps.csv"
SPLIT_FILES = {"train": TRAIN_CSV, "val": VAL_CSV, "test": TEST_CSV}
#: HDF5 names searched under ``root`` (``src/README.md``; the name the brief used)
AUDIO_FILES = ("EPIC_audio.hdf5", "EPIC-KITCHENS-100_audio.hdf5")
#: header of the labelled files (README); the test file has the first seven
COLUMNS = ("annotation_id", "participant_id", "video_id", "start_timestamp", "stop_timestamp",
           "start_sample", "stop_sample", "description", "class", "class_id")
TEST_COLUMNS = COLUMNS[:7]
#: the first public release (no sample columns)
LEGACY_COLUMNS = tuple(c for c in COLUMNS if not c.endswith("_sample"))
REQUIRED_COLUMNS = ("annotation_id", "participant_id", "video_id", "start_timestamp",
                    "stop_timestamp")
LABEL_COLUMNS = ("description", "class", "class_id")

#: the 44 classes by ``class_id`` (names as in the public CSVs)
CLASSES: tuple[str, ...] = (
    "metal-only collision", "scrub / scrape / scour / wipe", "cut / chop", "open / close",
    "rustle", "water", "plastic-only collision", "footstep", "stir / mix / whisk",
    "slide object", "metal / wood collision", "metal / plastic collision",
    "metal / ceramic collision", "background", "ceramic-only collision", "beep", "click",
    "metal / glass collision", "paper-only collision", "pour", "glass-only collision",
    "wood-only collision", "plastic / paper collision", "metal / paper collision", "human",
    "metal / cloth collision", "plastic / ceramic collision", "plastic / wood collision",
    "metal / marble collision", "sizzling / boiling", "ceramic / glass collision",
    "plastic / marble collision", "plastic / glass collision", "kettle / mixer / appliance",
    "ceramic / wood collision", "kneading", "cloth-only collision", "ceramic / marble collision",
    "glass / marble collision", "wood / glass collision", "hoover / fan", "spray", "zip",
    "drink / eat",
)
NUM_CLASSES = len(CLASSES)

_TIMESTAMP = re.compile(r"^(\d{2}):([0-5]\d):([0-5]\d)\.(\d{3})$")

BadRowPolicy = Literal["error", "skip"]


def parse_timestamp(text: str) -> int:
    """``HH:MM:SS.mmm`` -> integer milliseconds.

    Raises:
        ValueError: ``text`` is not exactly that form.
    """
    m = _TIMESTAMP.match(text.strip())
    if not m:
        raise ValueError(f"timestamp {text!r} is not HH:MM:SS.mmm")
    h, mi, s, ms = (int(g) for g in m.groups())
    return ((h * 60 + mi) * 60 + s) * 1000 + ms


def format_timestamp(ms: int) -> str:
    """Integer milliseconds -> ``HH:MM:SS.mmm`` (the published form)."""
    if ms < 0:
        raise ValueError(f"negative time {ms} ms")
    s, ms = divmod(int(ms), 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def ms_to_sample(ms: int, rate: int = SAMPLE_RATE) -> int:
    """Sample index of a millisecond time at ``rate`` (exact integer arithmetic)."""
    return int(ms) * int(rate) // 1000


@dataclass(frozen=True)
class Annotation:
    """One row of an EPIC-Sounds CSV (``line`` = its 1-based line in the file)."""

    annotation_id: str
    participant_id: str
    video_id: str
    start_ms: int
    stop_ms: int
    description: str
    class_name: str
    label: int  # -1 in the unlabelled test file
    line: int

    @property
    def id(self) -> str:
        return self.annotation_id

    @property
    def start(self) -> float:
        return self.start_ms / 1000.0

    @property
    def stop(self) -> float:
        return self.stop_ms / 1000.0


def read_annotations(path: str | Path) -> tuple[list[Annotation], list[AnnotationError]]:
    """Parse one EPIC-Sounds CSV into annotations and the errors of its bad rows.

    A bad row (timestamp, order, class) becomes an :class:`AnnotationError` naming the
    file and line in the second list; the caller raises or counts it.

    Raises:
        MissingFileError: no such file.
        AnnotationError: empty file, a header lacking a required column, a row with
            the wrong number of fields.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "EPIC-Sounds annotation file does not exist")
    rows: list[Annotation] = []
    errors: list[AnnotationError] = []
    with open_text(path) as f:
        reader = csv.reader(f)
        try:
            header = [clean_field(h) for h in next(reader)]
        except StopIteration:
            raise AnnotationError(path, "line 1: empty file (no header)") from None
        absent = [c for c in REQUIRED_COLUMNS if c not in header]
        labelled = all(c in header for c in LABEL_COLUMNS)
        if absent or (not labelled and any(c in header for c in LABEL_COLUMNS)):
            raise AnnotationError(path, f"line 1: header {header} is not an EPIC-Sounds header "
                                        f"({', '.join(COLUMNS)})")
        ix = {c: header.index(c) for c in COLUMNS if c in header}
        for line, fields in enumerate(reader, start=2):
            if not fields or all(not x.strip() for x in fields):
                continue
            if len(fields) != len(header):
                raise AnnotationError(path, f"line {line}: {len(fields)} fields, "
                                            f"header has {len(header)}")
            get = {c: clean_field(fields[i]) for c, i in ix.items()}
            where = f"line {line} ({get['annotation_id']!r})"
            try:
                start = parse_timestamp(get["start_timestamp"])
                stop = parse_timestamp(get["stop_timestamp"])
            except ValueError as err:
                errors.append(AnnotationError(path, f"{where}: bad timestamp: {err}"))
                continue
            if stop <= start:
                errors.append(AnnotationError(
                    path, f"{where}: stop_timestamp {get['stop_timestamp']} is not after "
                          f"start_timestamp {get['start_timestamp']}"))
                continue
            bad_sample = _check_samples(get, start, stop)
            if bad_sample:
                errors.append(AnnotationError(path, f"{where}: {bad_sample}"))
                continue
            label, name, desc = -1, "", ""
            if labelled:
                name, desc = get["class"], get["description"]
                try:
                    label = int(get["class_id"])
                except ValueError:
                    label = -2
                if not 0 <= label < NUM_CLASSES:
                    errors.append(AnnotationError(
                        path, f"{where}: class_id {get['class_id']!r} is not in 0..{NUM_CLASSES - 1}"))
                    continue
                if name != CLASSES[label]:
                    errors.append(AnnotationError(
                        path, f"{where}: class {name!r} does not match class_id {label} "
                              f"({CLASSES[label]!r})"))
                    continue
            rows.append(Annotation(get["annotation_id"], get["participant_id"], get["video_id"],
                                   start, stop, desc, name, label, line))
    return rows, errors


def _check_samples(get: dict[str, str], start_ms: int, stop_ms: int) -> str | None:
    """Why the ``*_sample`` columns disagree with the timestamps (None if they agree)."""
    for col, ms in (("start_sample", start_ms), ("stop_sample", stop_ms)):
        if col not in get:
            continue
        try:
            value = int(get[col])
        except ValueError:
            return f"{col} {get[col]!r} is not an integer"
        if abs(value - ms_to_sample(ms)) > SAMPLE_RATE // 1000:
            return f"{col} {value} disagrees with the timestamp ({ms_to_sample(ms)} at 24 kHz)"
    return None


def find_audio_file(root: Path, audio_file: str | Path | None = None) -> Path:
    """The HDF5 audio store: ``audio_file`` (relative to ``root``), else a known name
    under ``root``, else the only ``*.hdf5`` there.

    Raises:
        MissingFileError: none found (the message lists what was looked for).
    """
    if audio_file is not None:
        p = Path(audio_file)
        p = p if p.is_absolute() else root / p
        if not p.is_file():
            raise MissingFileError(p, "EPIC-Sounds audio HDF5 does not exist")
        return p
    for name in AUDIO_FILES:
        if (root / name).is_file():
            return root / name
    found = sorted(root.glob("*.hdf5"))
    if len(found) == 1:
        return found[0]
    raise MissingFileError(root / AUDIO_FILES[0],
                           f"no audio HDF5 under {root} (looked for {', '.join(AUDIO_FILES)} "
                           f"and a single *.hdf5; found {len(found)})")


class EPICSounds(AVDataset):
    """EPIC-Sounds annotated segments of one split.

    Args:
        root: directory with the CSVs and the audio HDF5 (module docstring).
        split: ``"train"``, ``"val"`` (validation CSV) or ``"test"`` (recognition
            test timestamps, unlabelled).
        sample_rate: output rate in Hz (the store is read at its own rate, 24 kHz in
            the reference, and resampled).
        clip_seconds: ``None`` returns the whole segment (variable length); a number
            returns the centre window of that length (tiled when shorter).
        audio_file: HDF5 path overriding the search (:func:`find_audio_file`).
        store_rate: rate of the HDF5 recordings (the ``*_sample`` columns assume 24 kHz).
        bad_rows: ``"error"`` or ``"skip"`` for invalid rows (module docstring).
        missing: ``"error"`` or ``"skip"`` for rows whose video is not in the HDF5.

    Raises:
        AnnotationError, MissingFileError: see the module docstring.
    """

    name = "epic_sounds"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        sample_rate: int = 16000,
        clip_seconds: float | None = None,
        audio_file: str | Path | None = None,
        store_rate: int = SAMPLE_RATE,
        bad_rows: BadRowPolicy = "error",
        missing: MissingPolicy = "error",
    ) -> None:
        super().__init__(root, missing=missing)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if bad_rows not in ("error", "skip"):
            raise ValueError(f"bad_rows must be 'error' or 'skip', got {bad_rows!r}")
        if clip_seconds is not None and clip_seconds <= 0:
            raise ValueError(f"clip_seconds must be positive, got {clip_seconds}")
        self.split = split
        self.sample_rate = int(sample_rate)
        self.clip_seconds = clip_seconds
        self.store_rate = int(store_rate)
        self.classes: list[str] = list(CLASSES)
        self.annotation_file = self.root / SPLIT_FILES[split]
        self.audio_path = find_audio_file(self.root, audio_file)
        self._h5: Any = None

        rows, errors = read_annotations(self.annotation_file)
        lengths = self._recording_lengths()
        absent: list[Annotation] = []
        kept: list[Annotation] = []
        for r in rows:
            n = lengths.get(r.video_id)
            if n is None:
                absent.append(r)
            elif ms_to_sample(r.stop_ms, self.store_rate) > n:
                errors.append(AnnotationError(
                    self.annotation_file,
                    f"line {r.line} ({r.annotation_id!r}): segment ends at {r.stop:.3f} s, after "
                    f"the end of recording {r.video_id!r} ({n / self.store_rate:.3f} s in "
                    f"{self.audio_path})"))
            else:
                kept.append(r)
        if errors:
            if bad_rows == "error":
                errors.sort(key=lambda e: int(re.search(r"line (\d+)", e.problem).group(1)))
                raise errors[0]
            self.skipped["invalid annotation row"] += len(errors)
            log.warning("%s: skipped %d invalid rows (e.g. %s)", self.describe(), len(errors),
                        errors[0])
        if absent:
            first = absent[0]
            if missing == "error":
                raise MissingFileError(
                    self.audio_path,
                    f"no dataset {first.video_id!r} (line {first.line} of {self.annotation_file}; "
                    f"{len(absent)} of {len(rows)} rows name videos not in the store; pass "
                    "missing='skip' to drop them)")
            self.skipped["video not in audio store"] += len(absent)
        self.video_ids: list[str] = sorted({r.video_id for r in kept})
        self.records = kept
        self._finalize_records()

    # --- layout -------------------------------------------------------
    def _recording_lengths(self) -> dict[str, int]:
        import h5py

        try:
            with h5py.File(self.audio_path, "r") as f:
                return {k: int(f[k].shape[0]) for k in f.keys()
                        if isinstance(f[k], h5py.Dataset) and len(f[k].shape) == 1}
        except OSError as err:
            raise MissingFileError(self.audio_path, f"not a readable HDF5 file: {err}") from err

    def required_files(self, record: Annotation) -> Sequence[Path]:
        return [self.audio_path]

    def describe(self) -> str:
        return f"EPICSounds({self.root}, split={self.split!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_h5"] = None  # an open h5py handle is per process
        return state

    # --- loading ------------------------------------------------------
    def read_segment(self, record: Annotation) -> torch.Tensor:
        """The annotated segment at the store's rate: float32 ``[1, L]``."""
        if self._h5 is None:
            import h5py

            self._h5 = h5py.File(self.audio_path, "r")
        s0 = ms_to_sample(record.start_ms, self.store_rate)
        s1 = ms_to_sample(record.stop_ms, self.store_rate)
        data = np.asarray(self._h5[record.video_id][s0:s1])
        if np.issubdtype(data.dtype, np.integer):
            data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
        return torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))[None]

    def load(self, record: Annotation) -> dict[str, Any]:
        wave = io._resample(self.read_segment(record), self.store_rate, self.sample_rate)
        if self.clip_seconds is not None:
            wave = io.fit_length(wave, int(round(self.clip_seconds * self.sample_rate)), "center")
        return {
            "id": record.annotation_id,
            "audio": wave.contiguous(),
            "label": record.label,
            "class_name": record.class_name,
            "description": record.description,
            "video_id": record.video_id,
            "participant_id": record.participant_id,
            "start": record.start,
            "stop": record.stop,
            "annotation_id": record.annotation_id,
        }

    def class_counts(self) -> Counter[int]:
        """Annotations per ``class_id`` in this split."""
        return Counter(r.label for r in self.records)


__all__ = [
    "AUDIO_FILES",
    "CLASSES",
    "COLUMNS",
    "LEGACY_COLUMNS",
    "NUM_CLASSES",
    "SAMPLE_RATE",
    "SPLIT_FILES",
    "SPLITS",
    "TEST_COLUMNS",
    "Annotation",
    "EPICSounds",
    "find_audio_file",
    "format_timestamp",
    "ms_to_sample",
    "parse_timestamp",
    "read_annotations",
]
