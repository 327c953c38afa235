"""Ego4D-Sounds clip tables (``train_clips_1.2m.csv``, ``test_clips_11k.csv``): rows and reader.

Sources: the Ego4D-Sounds release repository (``Ego4DSounds/Ego4DSounds``:
``README.md``, ``test_clips_11k.csv``, ``dataset.py``), the Action2Sound reference
code (``ChanganVR/action2sound``: ``ldm/datasets/ego4dsounds_dataset.py``), the
EgoClip loader that the first ten columns come from (``showlab/EgoVLP``:
``data_loader/EgoClip_EgoMCQ_dataset.py``) and REFERENCE.md B. The tables are
TAB-separated despite the ``.csv`` name; the dataset reading them is
:class:`avbench.data.datasets.ego4d.Ego4DClips`.

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

Tolerated
---------
Byte-order marks, UTF-16, any line ending (the text normalisation of
:mod:`avbench.data.id_lists`); extra table columns; missing optional columns (``video_dur``, ``clip_start``,
``clip_end``, ``tag_verb``, ``tag_noun``, the four tagger columns); empty optional
cells; ``narration_ind`` written as ``"12.0"``; surrounding whitespace; a table
named ``train_clips*.csv`` / ``test_clips*.csv`` other than the release names (e.g.
Action2Sound's ``train_clips_0.4m.csv``). Not tolerated (:class:`AnnotationError` naming file and line): a
row with the wrong number of columns (unless ``bad_rows="skip"``, which drops and
counts it, like the reference's ``on_bad_lines='warn'``), a missing required
column, an unparsable number or tag list, a duplicate clip id.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.id_lists import clean_field, open_text

log = logging.getLogger(__name__)

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
    def id(self) -> str:
        """The item id: :attr:`clip_id` (unique per table; duplicates raise when read)."""
        return self.clip_id

    @property
    def sounding(self) -> bool:
        return self.positive >= 0.5


@dataclass(frozen=True)
class ClipTable:
    """A parsed clip table: its rows in file order and the count of rows skipped as malformed."""

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
    try:
        return _read_clip_table_cached(str(path), stat.st_size, stat.st_mtime_ns, bad_rows)
    except UnicodeDecodeError as err:
        raise AnnotationError(path, f"not UTF-8 text (nor UTF-16/32 with a BOM): {err}") from err


@functools.lru_cache(maxsize=8)
def _read_clip_table_cached(path_str: str, size: int, mtime_ns: int, bad_rows: str) -> ClipTable:
    path = Path(path_str)
    rows: list[ClipRow] = []
    seen: dict[str, int] = {}
    skipped = 0
    # BOMs, UTF-16, any line ending: the one text normalisation (id_lists)
    with open_text(path) as f:
        reader = csv.reader(f, delimiter="\t")
        try:
            header = [clean_field(h) for h in next(reader)]
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


__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "TAGGER_COLUMNS",
    "TEST_TABLE_NAMES",
    "TRAIN_TABLE_NAMES",
    "BadRowPolicy",
    "ClipRow",
    "ClipTable",
    "clip_id",
    "find_table",
    "read_clip_table",
]
