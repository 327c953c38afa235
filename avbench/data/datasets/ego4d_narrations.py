"""Ego4D narrations: the text of a narration and Ego4D's ``narration.json``.

Sources: Ego4D v1 (``narration.json``), the EgoClip loader (``showlab/EgoVLP``:
``data_loader/EgoClip_EgoMCQ_dataset.py``) and the Ego4D-Sounds clip tables,
whose ``clip_text`` is the raw narration (``"#C C Rinses spoons ..."``, also
``"#c c"``, ``"# c c"``, ``"#O Woman X ..."`` for other people, ``#unsure``
tokens); see :mod:`avbench.data.datasets.ego4d_tables`.

* ``narration.json`` = ``{video_uid: {"narration_pass_1": {"narrations": [{"timestamp_sec",
  "timestamp_frame", "narration_text", "annotation_uid"}, ...], "summaries": [...]},
  "narration_pass_2": {...}, ...}}`` (Ego4D). Read by :func:`read_narrations`.
* :func:`clean_narration` gives a sample's ``text`` and :func:`narration_verb` its
  class (the verb), as used by :class:`avbench.data.datasets.ego4d.Ego4DClips`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.id_lists import read_text

NARRATION_FILE = "narration.json"
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
# narration.json
# ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Narration:
    """One narration of ``narration.json`` (``narration_ind`` = position in its pass)."""

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
        data = json.loads(read_text(path))
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


__all__ = [
    "EGO4D_FPS",
    "NARRATION_FILE",
    "Narration",
    "clean_narration",
    "narration_verb",
    "read_narrations",
]
