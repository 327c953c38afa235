"""ADE20K speech- and sound-prompted segmentation (DenseAV), in the published layout.

DenseAV's prompted-segmentation evaluation (REFERENCE.md A4 and "ADE20K prompted"):
ADE20K images with class masks, each row prompting one class present in the image
with a spoken word naming it (speech) or a VGGSound clip of its sound (sound).

Real layout (what the loader reads)
-----------------------------------
::

    <root>/                               DenseAV's data root
      ADE20KSpeechPrompted/               (ADE20KSpeechPrompted.zip)
        prompted_segmentation.csv         header; columns image_location, ade_class_id,
                                          speech_prompt_file, timing (others ignored)
        frames/<image_location>           the ADE20K image (jpg)
        annotations/<image_location with .jpg -> _seg.png>
                                          ADE20K full-format class map (RGB png)
        audio/<basename of speech_prompt_file>
      ADE20KSoundPrompted/                (ADE20KSoundPrompted.zip)
        prompted_segmentation.csv         columns image_location, ade_class_id, vggsound_file
        frames/ annotations/              as above
        audio/<basename of vggsound_file>
      synthetic_classes.json              SYNTHETIC WORLD ONLY: {"<ade_class_id>": name}

Sources of each fact (``mhamilton723/DenseAV``):

* Folder names, ``prompted_segmentation.csv``, rows whose prompt column is empty
  dropped, rows with ``ade_class_id == 0`` dropped, ``frames/<image_location>``,
  ``annotations/<image_location>.replace(".jpg", "_seg.png")`` and
  ``audio/<prompt file>.split("/")[-1]``: ``denseav/data/AVDatasets.py``
  (``ADE20KPromptedBase``, ``ADE20KSpeechPrompted``, ``ADE20KSoundPrompted``).
* The class map: ``class = floor(R / 10) * 256 + G`` of the ``_seg.png``
  (``prep_ade_label`` there; the ADE20K full-dataset encoding); the prompted mask is
  ``semseg == ade_class_id`` (``eval_utils.get_paired_heatmaps``).
* ``timing``: a JSON list ``[start, end]`` in seconds of the prompt word in the
  speech prompt (``json.loads`` in ``eval_utils.get_paired_heatmaps``, which widens it
  by 0.2 s each side); sound prompts have none.
* The download: the DenseAV README ("Speech and Sound Prompted ADE20K").

Item ids
--------
``<image stem>_<ade_class_id>_<prompt file stem>`` (DenseAV keys rows by
``image_location``, which repeats when an image prompts several classes).

Audio: read whole at ``sample_rate``, the first ``clip_seconds`` kept and zero-padded
after (so ``timing`` stays valid), ``audio_mask`` marking real samples.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from avbench.data.datasets.base import AVDataset, MissingPolicy
from avbench.data.datasets.spoken_captions import pad_or_crop
from avbench.data.errors import AnnotationError, CorruptMediaError, MissingFileError
from avbench.data.io import read_audio, read_image

PromptKind = Literal["speech", "sound"]

CSV_NAME = "prompted_segmentation.csv"
FOLDERS: dict[str, str] = {"speech": "ADE20KSpeechPrompted", "sound": "ADE20KSoundPrompted"}
#: the prompt-file column of each kind
PROMPT_COLUMNS: dict[str, str] = {"speech": "speech_prompt_file", "sound": "vggsound_file"}
#: columns each kind needs in the csv
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "speech": ("image_location", "ade_class_id", "speech_prompt_file", "timing"),
    "sound": ("image_location", "ade_class_id", "vggsound_file"),
}
CLASSES_FILE = "synthetic_classes.json"


def seg_file_name(image_location: str) -> str:
    """The annotation file of an image: ``.jpg`` -> ``_seg.png`` (DenseAV)."""
    return image_location.replace(".jpg", "_seg.png")


def encode_class_map(classes: np.ndarray) -> np.ndarray:
    """int [H,W] class indices -> uint8 [H,W,3] ADE20K full-format RGB (R = idx // 256 * 10,
    G = idx % 256, B = 0); inverse of :func:`decode_class_map`. Raises ``ValueError`` for
    indices outside ``0..6399``."""
    classes = np.asarray(classes)
    if classes.min(initial=0) < 0 or classes.max(initial=0) >= 25 * 256:
        raise ValueError("ADE class indices must be in 0..6399 for the RGB encoding")
    out = np.zeros((*classes.shape, 3), np.uint8)
    out[..., 0] = (classes // 256) * 10
    out[..., 1] = classes % 256
    return out


def decode_class_map(rgb: np.ndarray) -> np.ndarray:
    """uint8 [H,W,3] ADE20K full-format RGB -> int64 [H,W] ``floor(R/10) * 256 + G``."""
    rgb = np.asarray(rgb)
    return (rgb[..., 0].astype(np.int64) // 10) * 256 + rgb[..., 1].astype(np.int64)


def read_class_map(path: Path) -> torch.Tensor:
    """The ``_seg.png`` at ``path`` as LongTensor[H,W] of ADE class indices.

    Raises:
        MissingFileError / CorruptMediaError: naming ``path``.
    """
    if not path.is_file():
        raise MissingFileError(path)
    try:
        with Image.open(path) as img:
            rgb = np.array(img.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as err:
        raise CorruptMediaError(path, f"cannot decode annotation png ({err})") from err
    return torch.from_numpy(decode_class_map(rgb))


@dataclass(frozen=True)
class PromptRecord:
    """One kept csv row: the image, the prompted class, the prompt file and its timing."""

    id: str
    image_location: str
    ade_class_id: int
    prompt_file: str
    timing: tuple[float, float] | None
    line: int


def parse_prompted_csv(path: Path, kind: PromptKind) -> tuple[list[PromptRecord], int]:
    """Parse ``prompted_segmentation.csv`` for ``kind``.

    Returns ``(records, n_class0)``: the rows with a prompt of this kind and a class id
    other than 0, and how many rows had class id 0 (dropped as the reference does).
    Rows whose prompt column is empty are skipped silently (the other kind's rows).

    Raises:
        MissingFileError: no csv.
        AnnotationError: a required column missing from the header (names it), or a row
            with a non-integer ``ade_class_id``, an empty ``image_location`` or a ``timing``
            that is not a JSON ``[start, end]`` with start <= end (names the line).
    """
    if not path.is_file():
        raise MissingFileError(path, "prompted_segmentation.csv does not exist")
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    absent = [c for c in REQUIRED_COLUMNS[kind] if c not in header]
    if absent:
        raise AnnotationError(path, f"header lacks column(s) {absent} needed for {kind} prompts "
                                    f"(header: {header})")
    prompt_col = PROMPT_COLUMNS[kind]
    records: list[PromptRecord] = []
    class0 = 0
    for line, row in enumerate(reader, start=2):
        prompt = (row.get(prompt_col) or "").strip()
        if not prompt or prompt.lower() == "nan":
            continue
        image = (row.get("image_location") or "").strip()
        if not image:
            raise AnnotationError(path, f"line {line}: empty image_location")
        try:
            class_f = float(row["ade_class_id"])
            if not math.isfinite(class_f) or class_f != int(class_f):
                raise ValueError
            class_id = int(class_f)
        except (TypeError, ValueError) as err:
            raise AnnotationError(path, f"line {line}: ade_class_id {row['ade_class_id']!r} is "
                                        "not an integer") from err
        if class_id == 0:
            class0 += 1
            continue
        timing = None
        if kind == "speech":
            try:
                t = json.loads(row["timing"])
                start, end = float(t[0]), float(t[1])
                if len(t) != 2 or not (0.0 <= start <= end):
                    raise ValueError
            except (TypeError, ValueError, IndexError, KeyError) as err:
                raise AnnotationError(path, f"line {line}: timing {row['timing']!r} is not a "
                                            "JSON [start, end] in seconds") from err
            timing = (start, end)
        ident = f"{Path(image).stem}_{class_id}_{Path(prompt.split('/')[-1]).stem}"
        records.append(PromptRecord(ident, image, class_id, prompt, timing, line))
    return records, class0


class ADE20KPrompted(AVDataset):
    """Speech- or sound-prompted ADE20K rows (module doc).

    Args:
        root: DenseAV's data root holding ``ADE20KSpeechPrompted/`` and
            ``ADE20KSoundPrompted/``, or one of those folders itself.
        kind: ``"speech"`` or ``"sound"``.
        sample_rate: audio rate in Hz.
        clip_seconds: prompt audio length (first seconds kept, zero padding after).
        image_size: side of the square image and masks (``None`` = as stored).
        missing: ``"error"`` / ``"skip"`` for rows with missing files.

    Samples: ``id`` str; ``image`` FloatTensor[3,H,W] in [0,1]; ``mask`` BoolTensor[H,W]
    (pixels of the prompted class, nearest-resized); ``semseg`` LongTensor[H,W] (every
    pixel's ADE class, 0 = unlabelled); ``audio`` FloatTensor[1,L] and ``audio_mask``
    FloatTensor[L] (``L = round(clip_seconds * sample_rate)``); ``prompt_kind`` str;
    ``timing`` FloatTensor[2] (word start, end in seconds of ``audio``; NaN for sound
    prompts); ``ade_class_id`` int; ``class_name`` str (``synthetic_classes.json`` if
    present, else the id as text); ``image_location`` str.

    ``class0_rows`` counts the csv rows dropped for class id 0.

    Raises:
        MissingFileError / AnnotationError: naming the csv (and line or column).
        ValueError: unknown kind, non-positive rate/length.
    """

    name = "ade20k_prompted"

    def __init__(
        self,
        root: str | Path,
        kind: PromptKind = "speech",
        *,
        sample_rate: int = 16000,
        clip_seconds: float = 3.0,
        image_size: int | None = 224,
        missing: MissingPolicy = "error",
    ) -> None:
        super().__init__(root, missing=missing)
        if kind not in FOLDERS:
            raise ValueError(f"kind must be 'speech' or 'sound', got {kind!r}")
        if sample_rate <= 0 or clip_seconds <= 0:
            raise ValueError("sample_rate and clip_seconds must be positive")
        self.kind = kind
        self.sample_rate = int(sample_rate)
        self.clip_seconds = float(clip_seconds)
        self.image_size = image_size
        folder = self.root / FOLDERS[kind]
        self.folder = folder if folder.is_dir() else self.root
        self.annotation_file = self.folder / CSV_NAME
        self.records, self.class0_rows = parse_prompted_csv(self.annotation_file, kind)
        if not self.records:
            raise AnnotationError(self.annotation_file, f"no {kind}-prompted rows with a class "
                                                        "id other than 0")
        self.class_names = self._class_names()
        self._finalize_records()

    def _class_names(self) -> dict[int, str]:
        for where in (self.folder.parent, self.folder):
            path = where / CLASSES_FILE
            if path.is_file():
                try:
                    return {int(k): str(v) for k, v in json.loads(path.read_text()).items()}
                except (json.JSONDecodeError, ValueError, AttributeError) as err:
                    raise AnnotationError(path, f"expected {{id: name}}: {err}") from err
        return {}

    def describe(self) -> str:
        return f"ADE20KPrompted({self.root}, kind={getattr(self, 'kind', '?')})"

    def paths(self, record: PromptRecord) -> dict[str, Path]:
        """The image, annotation and audio files of ``record``."""
        return {"image": self.folder / "frames" / record.image_location,
                "seg": self.folder / "annotations" / seg_file_name(record.image_location),
                "audio": self.folder / "audio" / record.prompt_file.split("/")[-1]}

    def required_files(self, record: PromptRecord) -> Sequence[Path]:
        return list(self.paths(record).values())

    def load(self, record: PromptRecord) -> dict[str, Any]:
        paths = self.paths(record)
        image = read_image(paths["image"], self.image_size, interpolation=self.frame_interpolation)
        semseg = read_class_map(paths["seg"])
        if self.image_size is not None and tuple(semseg.shape) != (self.image_size,) * 2:
            semseg = F.interpolate(semseg[None, None].float(), size=(self.image_size,) * 2,
                                   mode="nearest-exact")[0, 0].long()
        audio, audio_mask = pad_or_crop(read_audio(paths["audio"], self.sample_rate),
                                        max(1, round(self.sample_rate * self.clip_seconds)))
        timing = record.timing if record.timing is not None else (math.nan, math.nan)
        return {
            "id": record.id,
            "image": image,
            "mask": semseg == record.ade_class_id,
            "semseg": semseg,
            "audio": audio,
            "audio_mask": audio_mask,
            "prompt_kind": self.kind,
            "timing": torch.tensor(timing, dtype=torch.float32),
            "ade_class_id": record.ade_class_id,
            "class_name": self.class_names.get(record.ade_class_id, str(record.ade_class_id)),
            "image_location": record.image_location,
        }


__all__ = [
    "ADE20KPrompted",
    "CLASSES_FILE",
    "CSV_NAME",
    "FOLDERS",
    "PROMPT_COLUMNS",
    "PromptKind",
    "PromptRecord",
    "REQUIRED_COLUMNS",
    "decode_class_map",
    "encode_class_map",
    "parse_prompted_csv",
    "read_class_map",
    "seg_file_name",
]
