"""Clip-id list files: one id per line, or the id in the first column of a CSV/TSV.

The one reader of id lists in avbench: the SSL training lists
(``vggsound_144k.txt``, ``flickr_10k.txt``, ...), the test lists
(``vggss_heard_test.csv``, ``flickr_test.csv``; ACL-SSL's copies are
``id,class`` with quoted class names) and any list given to the train/test leak
check (:mod:`avbench.benchmarks.leak`).

Format accepted
    * one row per line; the id is the first field, the other fields are kept
      (e.g. a class name). Fields are comma-separated, parsed with the ``csv``
      module (quoted fields may contain commas); a file whose first row holds
      a tab and no comma is read as tab-separated.
    * skipped: blank lines, lines starting with ``#``, and a header line whose
      first field is one of :data:`HEADER_NAMES` (``id``, ``file``, ...).
    * surrounding whitespace of every field is removed.

Errors: a missing file raises :class:`~avbench.data.errors.MissingFileError`
(a ``FileNotFoundError``); an empty id, a file that is not UTF-8 text or a
malformed csv raises :class:`~avbench.data.errors.AnnotationError`, naming the
file (and the line).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from avbench.data.errors import AnnotationError, MissingFileError

#: first fields that mark a header line (skipped)
HEADER_NAMES = frozenset({"id", "file", "name", "filename", "video_id", "youtube_id"})

IdRow = tuple[str, list[str]]


def _delimiter(lines: list[str]) -> str:
    """``"\\t"`` when the first data line has a tab and no comma, else ``","``."""
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            return "\t" if "\t" in text and "," not in text else ","
    return ","


def read_id_rows(path: str | Path) -> list[IdRow]:
    """Read an id list: ``[(id, other_fields), ...]`` in file order, duplicates kept.

    See the module docstring for the accepted format. Raises
    :class:`MissingFileError` for a missing file and :class:`AnnotationError`
    (naming the file and line) for an empty id, non-UTF-8 text or malformed csv.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise MissingFileError(path, "id list does not exist") from err
    except UnicodeDecodeError as err:
        raise AnnotationError(path, f"not a UTF-8 text list ({err})") from err
    lines = text.splitlines()
    rows: list[IdRow] = []
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(lines))
        for lineno, fields in enumerate(reader, start=1):
            fields = [x.strip() for x in fields]
            if not any(fields) or fields[0].startswith("#"):
                continue
            ident = fields[0]
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

    Same format and errors as :func:`read_id_rows`.
    """
    return [ident for ident, _ in read_id_rows(path)]


__all__ = ["HEADER_NAMES", "IdRow", "read_id_rows", "read_ids"]
