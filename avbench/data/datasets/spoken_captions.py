"""Spoken captions of images (Places Audio Captions), in the published layout.

DenseAV's speech data (REFERENCE.md "Spoken captions"): images with a spoken
description recorded by a speaker. Read as the DAVEnet line and DenseAV read it.

Real layout (what the loader reads)
-----------------------------------
::

    <root>/                          DenseAV's data root (or the distro folder itself)
      PlacesAudio_400k_distro/
        metadata/
          train.json                 {"image_base_path": ..., "audio_base_path": ...,
          val.json                    "data": [{"image", "wav", "uttid", "speaker",
                                                "asr_text"}, ...]}
        wavs/<...>.wav               the utterances ("wav" is relative to audio_base_path)
      places_subset/<image>          the Places images DenseAV reads ("image" is relative)
      synthetic_word_timings.jsonl   SYNTHETIC WORLD ONLY (see below)

Sources of each fact:

* The metadata json with ``image_base_path``, ``audio_base_path`` and a ``data``
  list of ``{"image", "wav", "uttid", "speaker", "asr_text"}`` entries, paths joined
  as ``os.path.join(base_path, entry[...])``: ``dharwath/DAVEnet-pytorch``,
  ``dataloaders/image_caption_dataset.py`` (``ImageCaptionDataset.__init__`` /
  ``__getitem__``).
* ``PlacesAudio_400k_distro/metadata/{train,val}.json``, wavs under
  ``PlacesAudio_400k_distro/wavs`` (``wav`` entries start with ``wavs/``; DenseAV's
  id is ``wav[5:-4]``) and images under the sibling folder ``places_subset`` joined
  with ``entry["image"]``: ``mhamilton723/DenseAV``, ``denseav/data/AVDatasets.py``
  (``PlacesAudio._load_info``, ``_audio_root``, ``_frame_root``, ``_get_frame_files``).
  The file names ``train.json`` / ``val.json`` are also those of the DAVEnet-derived
  training scripts (``--data_train .../metadata/train.json``).
* The published base paths are absolute paths of the authors' machine. So: a base
  path that is a directory (relative ones resolved against the distro folder) is
  used; otherwise DenseAV's convention (audio = the distro folder, images =
  ``places_subset``). ``image_root=`` / ``audio_root=`` override both.

Not read: DenseAV's ``metadata/word-alignment-{train.json,val.csv}`` (forced
alignments of the ASR words; DenseAV reads them only with ``use_caption``).

Synthetic-world sidecar (NOT part of the published format)
----------------------------------------------------------
``synthetic_word_timings.jsonl`` (written by
:mod:`avbench.data.synthetic.writers.spoken_captions`, one line per utterance):
``{"uttid", "split", "wav", "synthetic_only": true, "words": [{"word", "category",
"class_name", "start", "end"}, ...]}`` with ``start``/``end`` the seconds of each
spoken word in the wav and ``category`` the world category it names (ground truth
for benchmarks). ``word_timings=True`` reads it into each sample.

Splits and ids
--------------
``train`` = ``train.json`` minus a deterministic hash hold-out of ``val_fraction``
(:func:`avbench.data.splits.holdout_split`, the ``val`` split; never selected on
test); ``test`` = ``val.json`` (DAVEnet and DenseAV report retrieval on it). The
item id is ``uttid`` (the wav path without ``wavs/`` and ``.wav`` when an entry has
none); ids must be unique.

Audio: read whole at ``sample_rate``, the first ``clip_seconds`` kept, zero-padded
when shorter (never tiled: a repeated caption would repeat words); ``audio_mask``
marks the real samples. DenseAV pads captions and masks the padding the same way
(``prep_waveform`` in ``denseav/shared.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from avbench.data.datasets.base import AVDataset, MissingPolicy
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.io import read_audio, read_image
from avbench.data.splits import holdout_split

DISTRO_DIR = "PlacesAudio_400k_distro"
IMAGE_DIR = "places_subset"
TRAIN_JSON = "train.json"
TEST_JSON = "val.json"
#: the fields every ``data`` entry needs, and the optional ones (DAVEnet's json)
REQUIRED_FIELDS = ("image", "wav")
OPTIONAL_FIELDS = ("uttid", "speaker", "asr_text")
BASE_PATH_FIELDS = ("image_base_path", "audio_base_path")
WORD_TIMINGS_FILE = "synthetic_word_timings.jsonl"

Split = Literal["train", "val", "test"]


@dataclass(frozen=True)
class CaptionRecord:
    """One ``data`` entry: the utterance id and the resolved image and wav paths."""

    id: str
    image: Path
    wav: Path
    speaker: str
    asr_text: str


@dataclass(frozen=True)
class CaptionMetadata:
    """A parsed metadata json: its base paths (as written) and its entries."""

    path: Path
    image_base_path: str
    audio_base_path: str
    entries: list[dict[str, str]]


def _utt_id(wav: str) -> str:
    stem = wav[:-4] if wav.lower().endswith(".wav") else wav
    return stem[5:] if stem.startswith("wavs/") else stem


def parse_caption_json(path: Path) -> CaptionMetadata:
    """Parse a Places-Audio-style metadata json (module doc).

    Returns the base paths and the entries with ``uttid`` filled (from the wav path
    when absent), ``speaker`` and ``asr_text`` defaulting to ``""``.

    Raises:
        MissingFileError: ``path`` does not exist.
        AnnotationError: not JSON, no ``data`` list or base paths, or an entry that is
            not an object or lacks a string ``image``/``wav`` (names the entry index).
    """
    if not path.is_file():
        raise MissingFileError(path, "metadata json does not exist")
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AnnotationError(path, f"not valid JSON: {err}") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise AnnotationError(path, 'expected an object with a "data" list of entries')
    missing = [k for k in BASE_PATH_FIELDS if not isinstance(doc.get(k), str)]
    if missing:
        raise AnnotationError(path, f"missing or non-string {missing} (DAVEnet metadata format)")
    entries: list[dict[str, str]] = []
    for i, entry in enumerate(doc["data"]):
        if not isinstance(entry, dict):
            raise AnnotationError(path, f"data[{i}]: expected an object, got {entry!r:.80}")
        bad = [k for k in REQUIRED_FIELDS if not isinstance(entry.get(k), str) or not entry[k]]
        if bad:
            raise AnnotationError(path, f"data[{i}]: missing or empty string field(s) {bad} "
                                        f"in {json.dumps(entry)[:160]}")
        row = {k: str(entry[k]) for k in REQUIRED_FIELDS}
        row["uttid"] = str(entry.get("uttid") or _utt_id(entry["wav"]))
        row["speaker"] = str(entry.get("speaker", ""))
        row["asr_text"] = str(entry.get("asr_text", ""))
        entries.append(row)
    if not entries:
        raise AnnotationError(path, '"data" is empty')
    return CaptionMetadata(path, doc["image_base_path"], doc["audio_base_path"], entries)


def read_word_timings(path: Path) -> dict[str, list[dict[str, Any]]]:
    """``uttid -> words`` of the synthetic sidecar (module doc).

    Raises:
        MissingFileError: no sidecar (real data has none: pass ``word_timings=False``).
        AnnotationError: a line that is not JSON or lacks ``uttid``/``words`` (names the line).
    """
    if not path.is_file():
        raise MissingFileError(path, "word-timing sidecar does not exist (the synthetic world "
                                     "writes it; real Places Audio has none: word_timings=False)")
    out: dict[str, list[dict[str, Any]]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out[str(rec["uttid"])] = [
                {"category": int(w["category"]), "start": float(w["start"]), "end": float(w["end"]),
                 "word": str(w["word"])} for w in rec["words"]]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise AnnotationError(path, f"line {lineno}: {type(err).__name__}: {err}") from err
    return out


def pad_or_crop(wave: Tensor, num_samples: int) -> tuple[Tensor, Tensor]:
    """``wave`` [1, L] -> (the first ``num_samples`` zero-padded [1, n], mask FloatTensor[n])."""
    n = min(wave.shape[-1], num_samples)
    out = torch.zeros(1, num_samples, dtype=wave.dtype)
    out[:, :n] = wave[:, :n]
    mask = torch.zeros(num_samples)
    mask[:n] = 1.0
    return out, mask


class SpokenCaptions(AVDataset):
    """Images with spoken captions (Places Audio Captions layout; module doc).

    Args:
        root: DenseAV's data root holding ``PlacesAudio_400k_distro/`` (and
            ``places_subset/``), or the distro folder itself.
        split: ``"train"`` / ``"val"`` (hash hold-out of ``train_json``) / ``"test"``
            (``test_json``).
        train_json, test_json: metadata file names under ``metadata/``.
        image_root, audio_root: override the folders the entries' paths are joined to.
        sample_rate: audio rate in Hz.
        clip_seconds: audio length (first seconds kept, zero padding after).
        image_size: side of the square image (``None`` = as stored).
        val_fraction: share of ``train_json`` held out as val.
        word_timings: add the synthetic sidecar's word timings to each sample.
        missing: ``"error"`` / ``"skip"`` for entries with missing files.

    Samples: ``id`` str, ``image`` FloatTensor[3,H,W] in [0,1], ``audio`` FloatTensor[1,L]
    (``L = round(clip_seconds * sample_rate)``), ``audio_mask`` FloatTensor[L] (1 = real
    audio, 0 = padding), ``text`` str (``asr_text``), ``speaker`` str; with
    ``word_timings``: ``word_start`` / ``word_end`` FloatTensor[N] (seconds in the wav),
    ``word_label`` LongTensor[N] (the world category each word names), N >= 1.

    Raises:
        MissingFileError / AnnotationError: naming the metadata file (and entry).
        ValueError: unknown split, non-positive rate/length.
    """

    name = "spoken_captions"

    def __init__(
        self,
        root: str | Path,
        split: Split = "train",
        *,
        train_json: str = TRAIN_JSON,
        test_json: str = TEST_JSON,
        image_root: str | Path | None = None,
        audio_root: str | Path | None = None,
        sample_rate: int = 16000,
        clip_seconds: float = 3.0,
        image_size: int | None = 224,
        val_fraction: float = 0.05,
        word_timings: bool = False,
        missing: MissingPolicy = "error",
    ) -> None:
        super().__init__(root, missing=missing)
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if sample_rate <= 0 or clip_seconds <= 0:
            raise ValueError("sample_rate and clip_seconds must be positive")
        self.split = split
        self.sample_rate = int(sample_rate)
        self.clip_seconds = float(clip_seconds)
        self.image_size = image_size
        self.distro = self.root / DISTRO_DIR if (self.root / DISTRO_DIR).is_dir() else self.root
        meta = parse_caption_json(self.distro / "metadata" / (test_json if split == "test"
                                                               else train_json))
        self.annotation_file = meta.path
        self.metadata = meta
        self.image_root = self._base(image_root, meta.image_base_path,
                                     self.distro.parent / IMAGE_DIR)
        self.audio_root = self._base(audio_root, meta.audio_base_path, self.distro)
        entries = meta.entries
        if split != "test":
            train_ids, val_ids = holdout_split([e["uttid"] for e in entries], val_fraction)
            keep = set(train_ids if split == "train" else val_ids)
            entries = [e for e in entries if e["uttid"] in keep]
        self.records = [CaptionRecord(e["uttid"], self.image_root / e["image"],
                                      self.audio_root / e["wav"], e["speaker"], e["asr_text"])
                        for e in entries]
        self.word_timings: dict[str, list[dict[str, Any]]] | None = None
        if word_timings:
            sidecar = self.distro.parent / WORD_TIMINGS_FILE
            if not sidecar.is_file():
                sidecar = self.distro / WORD_TIMINGS_FILE
            self.word_timings = read_word_timings(sidecar)
            absent = [r.id for r in self.records if r.id not in self.word_timings]
            if absent:
                raise AnnotationError(sidecar, f"no word timings for {len(absent)} utterances of "
                                               f"{meta.path.name} (e.g. {absent[0]!r})")
        self._finalize_records()

    def _base(self, override: str | Path | None, written: str, fallback: Path) -> Path:
        if override is not None:
            return Path(override)
        base = Path(written)
        base = base if base.is_absolute() else self.distro / base
        return base if base.is_dir() else fallback

    def describe(self) -> str:
        return f"SpokenCaptions({self.root}, split={getattr(self, 'split', '?')})"

    def required_files(self, record: CaptionRecord) -> Sequence[Path]:
        return [record.image, record.wav]

    def load(self, record: CaptionRecord) -> dict[str, Any]:
        wave = read_audio(record.wav, self.sample_rate)
        audio, mask = pad_or_crop(wave, max(1, round(self.sample_rate * self.clip_seconds)))
        sample: dict[str, Any] = {
            "id": record.id,
            "image": read_image(record.image, self.image_size,
                                interpolation=self.frame_interpolation),
            "audio": audio,
            "audio_mask": mask,
            "text": record.asr_text,
            "speaker": record.speaker,
        }
        if self.word_timings is not None:
            words = self.word_timings[record.id]
            sample["word_start"] = torch.tensor([w["start"] for w in words], dtype=torch.float32)
            sample["word_end"] = torch.tensor([w["end"] for w in words], dtype=torch.float32)
            sample["word_label"] = torch.tensor([w["category"] for w in words], dtype=torch.long)
        return sample


__all__ = [
    "BASE_PATH_FIELDS",
    "CaptionMetadata",
    "CaptionRecord",
    "DISTRO_DIR",
    "IMAGE_DIR",
    "OPTIONAL_FIELDS",
    "REQUIRED_FIELDS",
    "SpokenCaptions",
    "TEST_JSON",
    "TRAIN_JSON",
    "WORD_TIMINGS_FILE",
    "pad_or_crop",
    "parse_caption_json",
    "read_word_timings",
]
