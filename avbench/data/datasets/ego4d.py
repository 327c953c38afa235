"""Ego4D narrated action clips in the Ego4D-Sounds layout (SoundingActions/MC3, Action2Sound).

Real layout
-----------
Sources: the Ego4D-Sounds release repository (``Ego4DSounds/Ego4DSounds``:
``README.md``, ``test_clips_11k.csv``, ``extract_ego4d_clips.py``, ``dataset.py``),
the Action2Sound reference code (``ChanganVR/action2sound``:
``ldm/datasets/ego4dsounds_dataset.py``, ``configs/ldm/ego4dsounds.yaml``), the
EgoClip loader that the first ten columns come from (``showlab/EgoVLP``:
``data_loader/EgoClip_EgoMCQ_dataset.py``) and REFERENCE.md B::

    <root>/
      narration.json                 Ego4D v1 narrations (optional for this loader)
      train_clips_1.2m.csv           clip table, TAB-separated despite the .csv name
      test_clips_11k.csv             clip table (11k test clips)
      ego4dsounds_224p/<video_uid>/<video_uid>_<narration_source>_<narration_ind>.mp4
      ego4dsounds_224p_test/...      (optional: Action2Sound's config keeps test clips apart)

* ``narration.json`` = ``{video_uid: {"narration_pass_1": {"narrations": [{"timestamp_sec",
  "timestamp_frame", "narration_text", "annotation_uid"}, ...], "summaries": [...]},
  "narration_pass_2": {...}, ...}}`` (Ego4D). Read by :func:`read_narrations`.
* Clip tables have a header and the columns ``video_uid, video_dur, narration_source,
  narration_ind, narration_time, clip_start, clip_end, clip_text, tag_verb, tag_noun,
  positive, clip_file, speech, background_music, traffic_noise, wind_noise``
  (``README.md`` of Ego4D-Sounds). Observed in ``test_clips_11k.csv``:
  ``video_dur`` is ``-1`` (unknown); ``narration_ind`` is an integer that with
  ``video_uid`` and ``narration_source`` forms the clip id
  ``<video_uid>_<narration_source>_<narration_ind>`` (``get_id`` in both reference
  loaders); ``clip_start``/``clip_end`` are the EgoClip narration window
  (``narration_time - 0.5`` .. ``+ 1.0`` in every row read), NOT the extracted media
  window; ``clip_text`` is the raw narration (``"#C C Rinses spoons ..."``, also
  ``"#c c"``, ``"# c c"``, ``"#O Woman X ..."`` for other people, ``#unsure``
  tokens); ``tag_verb``/``tag_noun`` are Python-list strings of indices into the
  Ego4D verb (118) / noun (582) taxonomy, ``"[]"`` in the public test table (EgoVLP
  reads them with ``eval``); ``clip_file`` is relative to the clip directory;
  ``speech``, ``background_music``, ``traffic_noise``, ``wind_noise`` are audio-tagger
  probabilities in [0, 1], not 0/1 flags.
* The media: ``extract_ego4d_clips.py`` cuts ``narration_time +- 1.5 s`` (shifted to
  stay inside the video) with ``ffmpeg -vf scale=224:224 -ar 16000 -ac 1`` - 3 s,
  224 x 224, 16 kHz mono mp4.
* ``positive``: every row of the public test table read here (three 16k-character
  windows at the start, middle and end of the file) has ``positive = 1.0``; no
  public document defines the column. Our reading: it marks a clip kept as a
  positive (action-sound) example by the Ego4D-Sounds curation, i.e. the action is
  taken to be *sounding*. avbench therefore sets ``sounding = positive >= 0.5``.
  The synthetic world writes ``1.0`` for verbs that make sound and ``0.0`` for
  silent ones (a real table would hold positives only; the synthetic one keeps
  silent clips so that sounding-action discovery, REFERENCE A5, can be scored). The
  human sounding/silent labels of the SoundingActions discovery test set are not in
  the public table; if you have them, write them into ``positive``.
* Splits: the release has train and test tables only, split by ``video_uid``.
  Action2Sound holds out 5% of the training videos as validation (a seeded shuffle of
  ``video_uid``); avbench holds out ``val_fraction`` of the training ``video_uid``\\ s
  chosen by a stable hash of the uid (:func:`val_videos`), so the val set does not
  depend on the table order or on other videos, and never selects on test.

Samples
-------
``id`` (the clip id above), ``frames`` [T,3,H,W] (``fps`` frames per second over the
centre ``clip_seconds`` of the clip file, or ``num_frames`` evenly spaced there),
``image`` (the middle frame of ``frames``), ``audio`` [1,L] (the clip's audio at
``sample_rate``, centre ``clip_seconds``, tiled when short), ``text`` (the narration;
with ``strip_prefix=True`` the ``#C C`` camera-wearer tag is removed -
``"#C C cuts the carrot"`` -> ``"cuts the carrot"``; for ``#O`` narrations only the
``#O`` tag is removed: ``"Woman X puts the card"``; whitespace is collapsed;
``#unsure`` tokens are kept), ``sounding`` (bool, see ``positive``), ``label`` /
``class_name`` (the narration's verb, e.g. ``"cuts"``, as an index into
``dataset.classes``: the sorted verbs of every clip table under ``root``, so the
indices agree across splits), ``video_uid`` and ``narration_time``.

With ``with_cond_audio=True`` (Action2Sound's ambient condition) a sample also has
``cond_audio`` [1,L] and ``cond_id``: the audio of another clip of the SAME long
video. The reference picks uniformly at random among the 3 table neighbours on each
side (``left_nearest_k``/``right_nearest_k``) with an unseeded RNG; avbench takes,
among the clips of the same video whose narration time is at least ``clip_seconds``
away (so the condition never contains the target action itself), the
``cond_neighbors`` nearest before and after in time, and picks one by a stable hash
of ``(cond_seed, clip id)`` - the same choice in every epoch, worker and run. A video
with no such clip gives a zero waveform and ``cond_id = ""`` (the reference's zero
spectrogram).

Tolerated
---------
Extra table columns; missing optional columns (``video_dur``, ``clip_start``,
``clip_end``, ``tag_verb``, ``tag_noun``, the four tagger columns); empty optional
cells; ``narration_ind`` written as ``"12.0"``; surrounding whitespace; a table
named ``train_clips*.csv`` / ``test_clips*.csv`` other than the release names (e.g.
Action2Sound's ``train_clips_0.4m.csv``); test clips under ``ego4dsounds_224p`` or
``ego4dsounds_224p_test``; clips of any length and size (centre window, resized to
``image_size``). Not tolerated (:class:`AnnotationError` naming file and line): a
row with the wrong number of columns (unless ``bad_rows="skip"``, which drops and
counts it, like the reference's ``on_bad_lines='warn'``), a missing required
column, an unparsable number or tag list, a duplicate clip id. Training videos that
also occur in the test table are dropped from train/val and counted.
"""

from __future__ import annotations

import bisect
import csv
import functools
import json
import logging
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from avbench.data import io
from avbench.data.datasets.base import AVDataset, MissingPolicy
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.splits import holdout_mask, stable_unit

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
BadRowPolicy = Literal["error", "skip"]

#: the 16 columns of the Ego4D-Sounds clip tables, in file order (Ego4D-Sounds README)
COLUMNS: tuple[str, ...] = (
    "video_uid", "video_dur", "narration_source", "narration_ind", "narration_time",
    "clip_start", "clip_end", "clip_text", "tag_verb", "tag_noun", "positive",
    "clip_file", "speech", "background_music", "traffic_noise", "wind_noise",
)
REQUIRED_COLUMNS: tuple[str, ...] = (
    "video_uid", "narration_source", "narration_ind", "narration_time", "clip_text",
    "positive", "clip_file",
)
TAGGER_COLUMNS: tuple[str, ...] = ("speech", "background_music", "traffic_noise", "wind_noise")

#: release file names (Ego4D-Sounds repo; Action2Sound trains on ``train_clips_0.4m.csv``)
TRAIN_TABLE_NAMES: tuple[str, ...] = ("train_clips_1.2m.csv", "train_clips_0.4m.csv")
TEST_TABLE_NAMES: tuple[str, ...] = ("test_clips_11k.csv",)
NARRATION_FILE = "narration.json"
#: clip directories: ``extract_ego4d_clips.py`` output / Action2Sound's test data_dir
CLIPS_DIR = "ego4dsounds_224p"
TEST_CLIPS_DIR = "ego4dsounds_224p_test"
#: Ego4D canonical videos are 30 fps (``timestamp_frame = timestamp_sec * 30``)
EGO4D_FPS = 30.0


# ----------------------------------------------------------------------------
# narration text
# ----------------------------------------------------------------------------
_TAG_RE = re.compile(r"^\s*#\s*([A-Za-z])\b\s*")
_C_SUBJECT_RE = re.compile(r"^[Cc]\b\s*")
_SUBJECT_WORDS = frozenset(
    {"man", "woman", "person", "lady", "boy", "girl", "child", "the", "a", "another"}
)


def clean_narration(text: str, strip_prefix: bool = True) -> str:
    """Normalise an Ego4D narration: collapse whitespace, optionally drop the tag.

    ``"#C C cuts the carrot "`` -> ``"cuts the carrot"`` (camera wearer: the ``#C``
    tag and the subject ``C`` go); ``"#O Woman X puts the card"`` ->
    ``"Woman X puts the card"`` (other people keep their subject). Variants seen in
    the public table (``#c c``, ``# c c``, ``#C c``, ``#c  c``) are handled alike.
    """
    text = " ".join(str(text).split())
    if not strip_prefix:
        return text
    m = _TAG_RE.match(text)
    if m is None:
        return text
    tag = m.group(1).upper()
    rest = text[m.end():]
    if tag == "C":
        rest = _C_SUBJECT_RE.sub("", rest, count=1)
    return rest.strip()


def narration_verb(text: str) -> str:
    """The verb of a narration: the first word after the subject, lower-cased.

    ``"#C C cuts the carrot"`` -> ``"cuts"``; ``"#O Woman X puts ..."`` -> ``"puts"``.
    Returns ``""`` for an empty narration.
    """
    raw = " ".join(str(text).split())
    m = _TAG_RE.match(raw)
    tag = m.group(1).upper() if m else "C"
    words = clean_narration(raw).split()
    if tag != "C":
        # skip a subject like "Woman X", "the man Y", "X"
        k = 0
        while k < len(words) and k < 4 and (
            words[k].lower() in _SUBJECT_WORDS or (len(words[k]) == 1 and words[k].isupper())
        ):
            k += 1
        words = words[k:] or words
    return words[0].lower().strip(".,;:") if words else ""


# ----------------------------------------------------------------------------
# clip tables
# ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClipRow:
    """One row of an Ego4D-Sounds clip table (``line`` = 1-based line in the file)."""

    clip_id: str
    video_uid: str
    video_dur: float
    narration_source: str
    narration_ind: int
    narration_time: float
    clip_start: float
    clip_end: float
    clip_text: str
    tag_verb: tuple[int, ...]
    tag_noun: tuple[int, ...]
    positive: float
    clip_file: str
    speech: float
    background_music: float
    traffic_noise: float
    wind_noise: float
    line: int

    @property
    def sounding(self) -> bool:
        return self.positive >= 0.5


@dataclass(frozen=True)
class ClipTable:
    rows: tuple[ClipRow, ...]
    bad_rows: int


def clip_id(video_uid: str, narration_source: str, narration_ind: int) -> str:
    """``<video_uid>_<narration_source>_<narration_ind>`` (``get_id`` of the reference loaders)."""
    return f"{video_uid}_{narration_source}_{narration_ind}"


def _float(path: Path, line: int, column: str, value: str | None, default: float) -> float:
    if value is None or value.strip() == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise AnnotationError(path, f"line {line}: column {column!r}: not a number: {value!r}") from None


def _int(path: Path, line: int, column: str, value: str) -> int:
    try:
        f = float(value)
    except ValueError:
        raise AnnotationError(path, f"line {line}: column {column!r}: not an integer: {value!r}") from None
    if not math.isfinite(f) or f != int(f):
        raise AnnotationError(path, f"line {line}: column {column!r}: not an integer: {value!r}")
    return int(f)


def _tags(path: Path, line: int, column: str, value: str | None) -> tuple[int, ...]:
    if value is None or value.strip() in ("", "[]"):
        return ()
    try:
        parsed = json.loads(value)
        if not isinstance(parsed, list) or not all(isinstance(x, int) for x in parsed):
            raise ValueError
    except ValueError:
        raise AnnotationError(
            path, f"line {line}: column {column!r}: expected a list of integers like [3, 17], got {value!r}"
        ) from None
    return tuple(parsed)


def _parse_row(path: Path, line: int, cells: dict[str, str | None]) -> ClipRow:
    def cell(name: str) -> str | None:
        v = cells.get(name)
        return None if v is None else v.strip()

    uid = cell("video_uid") or ""
    source = cell("narration_source") or ""
    clip_file = cell("clip_file") or ""
    for name, value in (("video_uid", uid), ("narration_source", source), ("clip_file", clip_file)):
        if not value:
            raise AnnotationError(path, f"line {line}: column {name!r} is empty")
    ind = _int(path, line, "narration_ind", cell("narration_ind") or "")
    t = _float(path, line, "narration_time", cell("narration_time"), math.nan)
    if not math.isfinite(t):
        raise AnnotationError(path, f"line {line}: column 'narration_time' is empty or not finite")
    positive = _float(path, line, "positive", cell("positive"), math.nan)
    if not math.isfinite(positive):
        raise AnnotationError(path, f"line {line}: column 'positive' is empty or not finite")
    start = _float(path, line, "clip_start", cell("clip_start"), math.nan)
    end = _float(path, line, "clip_end", cell("clip_end"), math.nan)
    if math.isfinite(start) and math.isfinite(end) and end < start:
        raise AnnotationError(path, f"line {line}: clip_end {end} is before clip_start {start}")
    tagger = {c: _float(path, line, c, cell(c), math.nan) for c in TAGGER_COLUMNS}
    return ClipRow(
        clip_id=clip_id(uid, source, ind),
        video_uid=uid,
        video_dur=_float(path, line, "video_dur", cell("video_dur"), -1.0),
        narration_source=source,
        narration_ind=ind,
        narration_time=t,
        clip_start=start,
        clip_end=end,
        clip_text=cells.get("clip_text") or "",
        tag_verb=_tags(path, line, "tag_verb", cell("tag_verb")),
        tag_noun=_tags(path, line, "tag_noun", cell("tag_noun")),
        positive=positive,
        clip_file=clip_file,
        line=line,
        **tagger,
    )


def _fast_tags(value: str) -> tuple[int, ...]:
    value = value.strip()
    if value in ("", "[]"):
        return ()
    if value[0] != "[" or value[-1] != "]":
        raise ValueError(value)
    return tuple(int(x) for x in value[1:-1].split(","))


def _fast_row(cells: list[str], ix: dict[str, int], line: int) -> ClipRow:
    """Parse a well-formed row quickly; any problem raises and :func:`_parse_row` explains it.

    The 1.2M-row training table spends most of its parse time here, so this path
    avoids per-cell dicts and helper calls; the slow path exists for messages.
    """

    def opt(name: str, default: float) -> float:
        i = ix.get(name, -1)
        v = cells[i] if i >= 0 else ""
        return float(v) if v.strip() else default

    uid = cells[ix["video_uid"]].strip()
    source = cells[ix["narration_source"]].strip()
    clip_file = cells[ix["clip_file"]].strip()
    if not (uid and source and clip_file):
        raise ValueError("empty id column")
    ind = int(cells[ix["narration_ind"]])
    t = float(cells[ix["narration_time"]])
    positive = float(cells[ix["positive"]])
    if not (math.isfinite(t) and math.isfinite(positive)):
        raise ValueError("not finite")
    start, end = opt("clip_start", math.nan), opt("clip_end", math.nan)
    if end < start:
        raise ValueError("clip_end before clip_start")
    iv, inn = ix.get("tag_verb", -1), ix.get("tag_noun", -1)
    return ClipRow(
        f"{uid}_{source}_{ind}", uid, opt("video_dur", -1.0), source, ind, t, start, end,
        cells[ix["clip_text"]], _fast_tags(cells[iv]) if iv >= 0 else (),
        _fast_tags(cells[inn]) if inn >= 0 else (), positive, clip_file,
        opt("speech", math.nan), opt("background_music", math.nan),
        opt("traffic_noise", math.nan), opt("wind_noise", math.nan), line,
    )


def read_clip_table(path: str | Path, bad_rows: BadRowPolicy = "error") -> ClipTable:
    """Parse a tab-separated Ego4D-Sounds clip table.

    Raises :class:`AnnotationError` naming the file and line for a row with the
    wrong number of columns (``bad_rows="skip"`` drops and counts such rows), a
    missing required column, an unparsable value, or a duplicate clip id.
    Parsed tables are cached per (path, size, mtime): the 1.2M-row training table
    is read once per process even though train, val and class lists all need it.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "clip table does not exist")
    stat = path.stat()
    return _read_clip_table_cached(str(path), stat.st_size, stat.st_mtime_ns, bad_rows)


@functools.lru_cache(maxsize=8)
def _read_clip_table_cached(path_str: str, size: int, mtime_ns: int, bad_rows: str) -> ClipTable:
    path = Path(path_str)
    rows: list[ClipRow] = []
    seen: dict[str, int] = {}
    skipped = 0
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise AnnotationError(path, "line 1: empty clip table (no header)") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise AnnotationError(
                path,
                f"line 1: header lacks column(s) {missing} (a tab-separated header with "
                f"{', '.join(COLUMNS)} is expected)",
            )
        ncol = len(header)
        ix = {name: header.index(name) for name in COLUMNS if name in header}
        for cells in reader:
            line = reader.line_num
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # blank line
            if len(cells) != ncol:
                if bad_rows == "skip":
                    skipped += 1
                    continue
                raise AnnotationError(
                    path, f"line {line}: expected {ncol} tab-separated columns, got {len(cells)}"
                )
            try:
                row = _fast_row(cells, ix, line)
            except (ValueError, TypeError):
                row = _parse_row(path, line, dict(zip(header, cells)))
            if row.clip_id in seen:
                raise AnnotationError(
                    path, f"line {line}: duplicate clip id {row.clip_id!r} (first on line {seen[row.clip_id]})"
                )
            seen[row.clip_id] = line
            rows.append(row)
    if skipped:
        log.warning("%s: skipped %d malformed row(s)", path, skipped)
    return ClipTable(tuple(rows), skipped)


def find_table(root: Path, split: str, name: str | Path | None = None) -> Path | None:
    """Locate the train or test clip table under ``root`` (``name`` overrides; relative to root)."""
    if name is not None:
        p = Path(name)
        return p if p.is_absolute() else root / p
    names = TRAIN_TABLE_NAMES if split in ("train", "val") else TEST_TABLE_NAMES
    for n in names:
        if (root / n).is_file():
            return root / n
    prefix = "train_clips" if split in ("train", "val") else "test_clips"
    found = sorted(root.glob(f"{prefix}*.csv"))
    return found[0] if found else None


# ----------------------------------------------------------------------------
# narration.json
# ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Narration:
    video_uid: str
    narration_source: str
    narration_ind: int
    timestamp_sec: float
    timestamp_frame: int | None
    narration_text: str
    annotation_uid: str


def read_narrations(path: str | Path) -> dict[tuple[str, str, int], Narration]:
    """Parse Ego4D ``narration.json`` into ``{(video_uid, pass, index): Narration}``.

    ``index`` is the position in that pass's ``narrations`` list. Keys of a video
    entry other than ``narration_pass_*`` (e.g. ``status``) and ``summaries`` are
    ignored. A structurally wrong entry raises :class:`AnnotationError` naming the
    file and the JSON path.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "narration file does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise AnnotationError(path, f"line {err.lineno}: invalid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise AnnotationError(path, "top level must be an object {video_uid: {...}}")
    out: dict[tuple[str, str, int], Narration] = {}
    for uid, entry in data.items():
        if not isinstance(entry, dict):
            raise AnnotationError(path, f"[{uid!r}] must be an object")
        for source, block in entry.items():
            if not str(source).startswith("narration_pass"):
                continue
            where = f"[{uid!r}][{source!r}]"
            if not isinstance(block, dict) or not isinstance(block.get("narrations", []), list):
                raise AnnotationError(path, f"{where} must be an object with a 'narrations' list")
            for i, n in enumerate(block.get("narrations", [])):
                try:
                    out[(uid, source, i)] = Narration(
                        video_uid=uid,
                        narration_source=source,
                        narration_ind=i,
                        timestamp_sec=float(n["timestamp_sec"]),
                        timestamp_frame=None if n.get("timestamp_frame") is None
                        else int(n["timestamp_frame"]),
                        narration_text=str(n["narration_text"]),
                        annotation_uid=str(n.get("annotation_uid", "")),
                    )
                except (KeyError, TypeError, ValueError) as err:
                    raise AnnotationError(
                        path, f"{where}['narrations'][{i}]: bad narration ({type(err).__name__}: {err})"
                    ) from None
    return out


# ----------------------------------------------------------------------------
# splits and the ambient condition
# ----------------------------------------------------------------------------
def _unit_hash(*parts: object) -> float:
    """A stable number in [0, 1) from ``parts`` (sha1; independent of PYTHONHASHSEED)."""
    return stable_unit("\x1f".join(str(p) for p in parts))


def val_videos(video_uids: Sequence[str], val_fraction: float) -> set[str]:
    """The training videos held out for validation: ``sha1(uid) < val_fraction``.

    Each video's membership depends on its uid alone, so adding or removing other
    videos does not move it. If that selects nothing while there are at least two
    videos and ``val_fraction > 0``, the video with the smallest hash is taken so a
    small copy still has a validation split.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    uids = sorted(set(video_uids))
    if val_fraction == 0.0 or len(uids) < 2:
        return set()
    held = holdout_mask([f"ego4d-val\x1f{u}" for u in uids], val_fraction)
    return {u for u, h in zip(uids, held) if h}


def condition_map(
    rows: Sequence[ClipRow], min_gap: float, neighbors: int, seed: int
) -> list[int | None]:
    """For each row, the index of its ambient-condition clip in ``rows`` (or None).

    Candidates for a clip: the other clips of its video whose narration time is at
    least ``min_gap`` seconds away, the ``neighbors`` nearest before and the
    ``neighbors`` nearest after it in time; one is picked by a stable hash of
    ``(seed, clip id)``. Per video the clips are sorted once and searched with
    bisection, so this is O(n log n) on the 1.2M-row table.
    """
    by_video: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_video[r.video_uid].append(i)
    out: list[int | None] = [None] * len(rows)
    for idx in by_video.values():
        idx.sort(key=lambda j: (rows[j].narration_time, rows[j].clip_id))
        times = [rows[j].narration_time for j in idx]
        for j in idx:
            t = rows[j].narration_time
            lo = bisect.bisect_right(times, t - min_gap)  # idx[:lo] are early enough
            hi = bisect.bisect_left(times, t + min_gap)  # idx[hi:] are late enough
            cands = [k for k in idx[max(lo - neighbors, 0):lo] + idx[hi:hi + neighbors] if k != j]
            if cands:
                cands.sort(key=lambda k: rows[k].clip_id)
                pick = int(_unit_hash("ego4d-cond", seed, rows[j].clip_id) * len(cands))
                out[j] = cands[min(pick, len(cands) - 1)]
    return out


# ----------------------------------------------------------------------------
# the dataset
# ----------------------------------------------------------------------------
class Ego4DClips(AVDataset):
    """Ego4D-Sounds narrated clips of one split (``train``, ``val`` or ``test``).

    Args:
        root: directory with the clip tables and clip folders (module docstring).
        split: ``"train"`` / ``"val"`` (held out from the training table by video,
            ``val_fraction``) or ``"test"`` (the test table).
        sample_rate: audio rate in Hz.
        clip_seconds: audio/video window, the centre of each clip file (3 s in the
            papers; tiled when the clip is shorter).
        image_size: frames are resized to ``image_size`` x ``image_size``.
        fps: frames per second sampled from the window (``T = ceil(fps * clip_seconds)``).
        num_frames: if given, exactly this many frames evenly spaced over the window
            (Action2Sound uses 16); overrides ``fps``.
        strip_prefix: remove the ``#C C`` tag from ``text`` (see :func:`clean_narration`).
        val_fraction: share of training videos held out as ``val``.
        with_cond_audio: add ``cond_audio``/``cond_id`` (same-video ambient condition).
        cond_neighbors, cond_seed: candidates per side and seed of that choice.
        train_table, test_table: table file names/paths overriding the search.
        clips_dir: clip directory (relative to ``root``) overriding the search.
        bad_rows: ``"error"`` or ``"skip"`` rows with the wrong number of columns.
        exclude_test_videos: drop training/val clips whose video is in the test table.
        classes: the verb list to index ``label`` into (default: the sorted verbs of
            every clip table under ``root``); a verb missing from a given list gets
            ``label = -1`` (its ``class_name`` is still the verb).
        missing: ``"error"`` / ``"skip"`` for missing clip files (DESIGN 4.2).
    """

    name = "ego4d"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        sample_rate: int = 16000,
        clip_seconds: float = 3.0,
        image_size: int = 224,
        fps: float = 8.0,
        num_frames: int | None = None,
        strip_prefix: bool = True,
        val_fraction: float = 0.05,
        with_cond_audio: bool = False,
        cond_neighbors: int = 3,
        cond_seed: int = 0,
        train_table: str | Path | None = None,
        test_table: str | Path | None = None,
        clips_dir: str | Path | None = None,
        bad_rows: BadRowPolicy = "error",
        exclude_test_videos: bool = True,
        classes: Sequence[str] | None = None,
        missing: MissingPolicy = "error",
    ) -> None:
        super().__init__(root, missing=missing)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if bad_rows not in ("error", "skip"):
            raise ValueError(f"bad_rows must be 'error' or 'skip', got {bad_rows!r}")
        if clip_seconds <= 0 or fps <= 0 or (num_frames is not None and num_frames <= 0):
            raise ValueError("clip_seconds, fps and num_frames must be positive")
        self.split = split
        self.sample_rate = int(sample_rate)
        self.clip_seconds = float(clip_seconds)
        self.image_size = int(image_size)
        self.fps = float(fps)
        self.num_frames = num_frames
        self.strip_prefix = strip_prefix
        self.val_fraction = float(val_fraction)
        self.with_cond_audio = with_cond_audio
        self.cond_neighbors = int(cond_neighbors)
        self.cond_seed = int(cond_seed)
        self.bad_rows = bad_rows

        train_path = find_table(self.root, "train", train_table)
        test_path = find_table(self.root, "test", test_table)
        self.table_path = train_path if split in ("train", "val") else test_path
        if self.table_path is None:
            wanted = TRAIN_TABLE_NAMES if split in ("train", "val") else TEST_TABLE_NAMES
            raise MissingFileError(
                self.root / wanted[0],
                f"no {'training' if split != 'test' else 'test'} clip table under {self.root} "
                f"(looked for {', '.join(wanted)} and "
                f"{'train' if split != 'test' else 'test'}_clips*.csv)",
            )
        table = read_clip_table(self.table_path, bad_rows)
        if table.bad_rows:
            self.skipped["malformed table row"] += table.bad_rows
        rows = list(table.rows)
        other = None
        other_path = test_path if split in ("train", "val") else train_path
        if other_path is not None and other_path.is_file():
            other = read_clip_table(other_path, bad_rows)

        if split in ("train", "val"):
            if exclude_test_videos and other is not None:
                test_uids = {r.video_uid for r in other.rows}
                leaked = [r for r in rows if r.video_uid in test_uids]
                if leaked:
                    n_vid = len({r.video_uid for r in leaked})
                    log.warning("%s: %d training clips from %d test videos dropped",
                                self.table_path, len(leaked), n_vid)
                    self.skipped["video in test table"] += len(leaked)
                    rows = [r for r in rows if r.video_uid not in test_uids]
            held = val_videos([r.video_uid for r in rows], self.val_fraction)
            rows = [r for r in rows if (r.video_uid in held) == (split == "val")]
        self.video_uids: list[str] = sorted({r.video_uid for r in rows})

        if classes is None:
            verbs = {narration_verb(r.clip_text) for r in table.rows}
            if other is not None:
                verbs |= {narration_verb(r.clip_text) for r in other.rows}
            classes = sorted(verbs)
        self.classes: list[str] = list(classes)
        self._class_index = {c: i for i, c in enumerate(self.classes)}

        self.clips_dir = self._resolve_clips_dir(clips_dir)
        self.records = rows
        self._finalize_records()
        self._cond_index: dict[str, int | None] = {}
        if with_cond_audio:
            cond = condition_map(self.records, self.clip_seconds, self.cond_neighbors, self.cond_seed)
            self._cond_index = {r.clip_id: c for r, c in zip(self.records, cond)}

    # --- layout -------------------------------------------------------
    def _resolve_clips_dir(self, clips_dir: str | Path | None) -> Path:
        if clips_dir is not None:
            p = Path(clips_dir)
            return p if p.is_absolute() else self.root / p
        names = (TEST_CLIPS_DIR, CLIPS_DIR) if self.split == "test" else (CLIPS_DIR,)
        for n in names:
            if (self.root / n).is_dir():
                return self.root / n
        return self.root

    def clip_path(self, record: ClipRow) -> Path:
        return self.clips_dir / record.clip_file

    def required_files(self, record: ClipRow) -> Sequence[Path]:
        return [self.clip_path(record)]

    def describe(self) -> str:
        return f"Ego4DClips({self.root}, split={self.split!r})"

    # --- loading ------------------------------------------------------
    @property
    def audio_num_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    def _audio_window(self, path: Path) -> tuple[torch.Tensor, float]:
        """The centre ``clip_seconds`` of the clip's audio and the window start (s)."""
        wave = io.read_audio(path, self.sample_rate)
        n = self.audio_num_samples
        start = max(wave.shape[-1] - n, 0) // 2 / self.sample_rate
        return io.fit_length(wave, n, "center"), start

    def label_of(self, record: ClipRow) -> tuple[int, str]:
        verb = narration_verb(record.clip_text)
        return self._class_index.get(verb, -1), verb

    def load(self, record: ClipRow) -> dict[str, Any]:
        path = self.clip_path(record)
        audio, start = self._audio_window(path)
        if self.num_frames is not None:
            fps, n = self.num_frames / self.clip_seconds, self.num_frames
        else:
            fps, n = self.fps, max(1, math.ceil(self.fps * self.clip_seconds - 1e-6))
        frames = io.read_video_frames(path, fps, start=start, num_frames=n, size=self.image_size)
        label, verb = self.label_of(record)
        sample: dict[str, Any] = {
            "id": record.clip_id,
            "frames": frames,
            "image": frames[frames.shape[0] // 2],
            "audio": audio,
            "text": clean_narration(record.clip_text, self.strip_prefix),
            "sounding": record.sounding,
            "label": label,
            "class_name": verb,
            "video_uid": record.video_uid,
            "narration_time": float(record.narration_time),
        }
        if self.with_cond_audio:
            j = self._cond_index.get(record.clip_id)
            if j is None:
                sample["cond_audio"] = torch.zeros(1, self.audio_num_samples)
                sample["cond_id"] = ""
            else:
                other = self.records[j]
                sample["cond_audio"] = self._audio_window(self.clip_path(other))[0]
                sample["cond_id"] = other.clip_id
        return sample

    # --- introspection --------------------------------------------------
    def clips_by_video(self) -> dict[str, list[ClipRow]]:
        out: dict[str, list[ClipRow]] = defaultdict(list)
        for r in self.records:
            out[r.video_uid].append(r)
        return dict(out)


__all__ = [
    "COLUMNS",
    "ClipRow",
    "ClipTable",
    "Ego4DClips",
    "Narration",
    "clean_narration",
    "clip_id",
    "condition_map",
    "find_table",
    "narration_verb",
    "read_clip_table",
    "read_narrations",
    "val_videos",
]
