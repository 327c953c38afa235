"""Text and id-list files: the one normalisation every avbench reader applies.

Every list/annotation/table reader of every layout (id lists, ``vggsound.csv``,
AVE ``Annotations.txt``, the AVSBench metadata csvs, the Ego4D-Sounds clip
tables, ``vggss.json``, ``narration.json``) opens its file with
:func:`open_text` / :func:`read_text`, and every id it reads goes through
:func:`normalize_id`. The id lists themselves (the SSL training lists
``vggsound_144k.txt``, ``flickr_10k.txt``..., the test lists
``vggss_heard_test.csv``, ``flickr_test.csv`` - ACL-SSL's copies are ``id,class``
with quoted class names -, VGGSound's own ``train.csv``/``test.csv`` with
``<id>.mp4,<label>`` rows, and any list given to the leak check,
:mod:`avbench.benchmarks.leak`) are read by :func:`read_id_rows`.

Text normalisation (:func:`open_text`)
    * encoding: UTF-8; a UTF-8 byte-order mark is dropped; a UTF-16 or UTF-32
      byte-order mark (LE or BE, what Windows "Unicode" saves) selects that
      encoding. Anything else that is not UTF-8 raises
      :class:`~avbench.data.errors.AnnotationError` naming the file.
    * line endings ``\\n``, ``\\r\\n`` and ``\\r`` all end a line.

Field and id normalisation (:func:`clean_field`, :func:`normalize_id`)
    * surrounding whitespace, byte-order marks and zero-width characters
      (``U+FEFF``, ``U+200B``-``U+200D``, ``U+2060``) are removed from every field;
    * csv quoting is undone by the ``csv`` module (quoted fields may contain
      commas); a stray pair of quotes around a whole id (``"abc_000001"`` in a
      one-column list) is removed too;
    * an id ending in a known media extension (:data:`MEDIA_EXTENSIONS`,
      case-insensitive: ``<id>.mp4`` in VGGSound's own split csvs, ``<id>.jpg``,
      ``<id>.wav``...) loses it. No avbench id ends in one of these (VGGSound
      ``<youtube_id>_<start:06d>``, numeric Flickr ids, AVE/AVSBench YouTube ids,
      VEGAS ``<class>/<stem>``, Ego4D ``<uid>_<source>_<ind>``), so the rule never
      changes a real id.

List format (:func:`read_id_rows`)
    * one row per line; the id is the first field, the other fields are kept
      (e.g. a class name). Fields are comma-separated (``csv`` module); a file
      whose first row holds a tab and no comma is read as tab-separated.
    * skipped: blank lines, lines starting with ``#``, and a header line whose
      first field is one of :data:`HEADER_NAMES` (``id``, ``file``, ...).

Matching a list against a dataset (:func:`match_ids`)
    A list that matches none of the dataset's clips, or fewer than
    :data:`MIN_MATCH_FRACTION` (50%) of its distinct entries, raises
    :class:`IdListMismatchError` naming the list, both counts and example ids of
    both sides: such a list is in another id form (or of another dataset), and
    training on the few matches (or on nothing: "num_samples should be a
    positive integer value" later) would be silent.

Errors: a missing file raises :class:`~avbench.data.errors.MissingFileError`
(a ``FileNotFoundError``); an empty id, undecodable text or a malformed csv
raises :class:`~avbench.data.errors.AnnotationError`, naming the file (and line).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TextIO

from avbench.data.errors import AnnotationError, MissingFileError

#: first fields that mark a header line (skipped)
HEADER_NAMES = frozenset({"id", "file", "name", "filename", "video_id", "youtube_id"})

#: extensions stripped from the end of an id (case-insensitive)
MEDIA_EXTENSIONS: tuple[str, ...] = (
    ".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv",
    ".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus",
    ".jpg", ".jpeg", ".png", ".pkl", ".npy", ".h5",
)

#: a list must match at least this share of its distinct entries (see module doc)
MIN_MATCH_FRACTION = 0.5

#: byte-order marks and the encodings they select; longest first (UTF-32-LE starts like UTF-16-LE)
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"
_MEDIA_EXT_RE = re.compile("(" + "|".join(re.escape(e) for e in MEDIA_EXTENSIONS) + r")$", re.IGNORECASE)

IdRow = tuple[str, list[str]]


class IdListMismatchError(AnnotationError):
    """An id list matches none, or too few, of a dataset's clips."""

    reason = "id list does not match the dataset"


def text_encoding(path: str | Path) -> str:
    """The encoding :func:`open_text` uses for ``path``: chosen by its byte-order mark, else UTF-8.

    Raises :class:`MissingFileError` when the file does not exist.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except FileNotFoundError as err:
        raise MissingFileError(path, "text file does not exist") from err
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    return "utf-8"


def open_text(path: str | Path) -> TextIO:
    """Open a text/list/annotation file for reading with avbench's normalisation.

    Encoding by byte-order mark (module doc), universal newlines (``\\n``,
    ``\\r\\n``, ``\\r``); the mark itself is not part of the text. Streams, so the
    1.2M-row Ego4D table is not held twice. Decoding errors surface while
    reading as ``UnicodeDecodeError``; :func:`read_text` maps them to
    :class:`AnnotationError`. Raises :class:`MissingFileError` for a missing file.
    """
    path = Path(path)
    return open(path, encoding=text_encoding(path), newline=None)


def read_text(path: str | Path) -> str:
    """The whole text of ``path`` normalised as by :func:`open_text` (lines end in ``\\n``).

    Raises :class:`MissingFileError` for a missing file and :class:`AnnotationError`
    naming the file when it is not text in the detected encoding.
    """
    path = Path(path)
    try:
        with open_text(path) as fh:
            return fh.read()
    except UnicodeDecodeError as err:
        raise AnnotationError(path, f"not a UTF-8 text file (nor UTF-16/32 with a BOM): {err}") from err


def clean_field(text: str) -> str:
    """A field without surrounding whitespace, byte-order marks or zero-width characters."""
    return text.strip().strip(_INVISIBLE).strip()


def normalize_id(text: str) -> str:
    """An id as avbench compares it: :func:`clean_field`, outer quotes and a media extension removed.

    ``' "abc_000001.mp4" '`` -> ``"abc_000001"``; see the module doc for why
    stripping :data:`MEDIA_EXTENSIONS` never changes a real id.
    """
    ident = clean_field(text)
    if len(ident) >= 2 and ident[0] == ident[-1] and ident[0] in "\"'":
        ident = clean_field(ident[1:-1])
    return _MEDIA_EXT_RE.sub("", ident)


def _delimiter(lines: list[str]) -> str:
    """``"\\t"`` when the first data line has a tab and no comma, else ``","``."""
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            return "\t" if "\t" in text and "," not in text else ","
    return ","


def read_id_rows(path: str | Path) -> list[IdRow]:
    """Read an id list: ``[(id, other_fields), ...]`` in file order, duplicates kept.

    Ids are :func:`normalize_id`-ed, other fields :func:`clean_field`-ed. See the
    module docstring for the accepted format. Raises :class:`MissingFileError`
    for a missing file and :class:`AnnotationError` (naming the file and line)
    for an empty id, undecodable text or malformed csv.
    """
    path = Path(path)
    text = read_text(path)
    lines = text.splitlines()
    rows: list[IdRow] = []
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(lines))
        for lineno, fields in enumerate(reader, start=1):
            fields = [clean_field(x) for x in fields]
            if not any(fields) or fields[0].startswith("#"):
                continue
            ident = normalize_id(fields[0])
            if not ident:
                raise AnnotationError(path, f"line {lineno}: empty id in first column")
            if not rows and ident.lower() in HEADER_NAMES:
                continue
            rows.append((ident, fields[1:]))
    except csv.Error as err:
        raise AnnotationError(path, f"malformed csv: {err}") from err
    return rows


def read_ids(path: str | Path) -> list[str]:
    """The ids of an id list (first field of each row, file order, duplicates kept).

    Same format, normalisation and errors as :func:`read_id_rows`.
    """
    return [ident for ident, _ in read_id_rows(path)]


def _examples(ids: Sequence[str] | Collection[str], n: int = 3) -> str:
    shown = [repr(i) for i, _ in zip(ids, range(n))]
    return ", ".join(shown) if shown else "none"


def match_ids(
    list_path: str | Path,
    listed: Sequence[str],
    available: Collection[str],
    *,
    what: str,
    min_fraction: float = MIN_MATCH_FRACTION,
) -> list[str]:
    """The distinct ids of ``listed`` that are in ``available``, in list order.

    ``what`` names ``available`` in the error (e.g. ``"clips of vggsound.csv"``).
    Raises :class:`IdListMismatchError` naming ``list_path``, the counts and
    example ids of both sides when ``listed`` is non-empty and none of its
    distinct entries, or fewer than ``min_fraction`` of them, are in
    ``available`` (or when the list has no entries at all).
    """
    distinct = list(dict.fromkeys(listed))
    if not distinct:
        raise IdListMismatchError(
            list_path,
            f"the list is empty: it names no ids (it should name some of the {len(available)} "
            f"{what}, e.g. {_examples(sorted(available))})",
        )
    matched = [i for i in distinct if i in available]
    if len(matched) < min_fraction * len(distinct) or not matched:
        unmatched = [i for i in distinct if i not in available]
        raise IdListMismatchError(
            list_path,
            f"{len(matched)} of its {len(distinct)} distinct ids are among the {len(available)} "
            f"{what} (at least {min_fraction:.0%} must be); list ids e.g. {_examples(unmatched)}; "
            f"dataset ids e.g. {_examples(sorted(available))}",
        )
    return matched


__all__ = [
    "HEADER_NAMES",
    "MEDIA_EXTENSIONS",
    "MIN_MATCH_FRACTION",
    "IdListMismatchError",
    "IdRow",
    "clean_field",
    "match_ids",
    "normalize_id",
    "open_text",
    "read_id_rows",
    "read_ids",
    "read_text",
    "text_encoding",
]
