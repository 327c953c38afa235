"""AVSBench (AVS v1): S4 single-source and MS3 multi-source audio-visual segmentation.

Real layout (AVSBench release as unpacked by the reference code,
OpenNLPLab/AVSBench: ``avs_scripts/avs_s4/config.py``, ``avs_scripts/avs_s4/dataloader.py``,
``avs_scripts/avs_ms3/config.py``, ``avs_scripts/avs_ms3/dataloader.py``,
``preprocess_scripts/preprocess_s4.py``, ``preprocess_scripts/preprocess_ms3.py``)::

    avsbench_data/
      Single-source/
        s4_meta_data.csv                      header ``name,start,category,split``
        s4_data/
          visual_frames/{split}/{category}/{name}/{name}_{k}.png     k = 1..5
          gt_masks/{split}/{category}/{name}/{name}_{k}.png          train: k = 1 only
          audio_wav/{split}/{category}/{name}.wav                    16 kHz, 5 s
      Multi-sources/
        ms3_meta_data.csv                     header ``video_id,split``
        ms3_data/
          visual_frames/{video_id}/{video_id}.mp4_{k}.png            k = 1..5 (no split dir)
          gt_masks/{split}/{video_id}/{video_id}_{k}.png             k = 1..5 in every split
          audio_wav/{split}/{video_id}.wav                           16 kHz, 5 s

Facts: the ``name``/``category``/``split`` column names are the ones the reference
preprocessing reads (``df['category']``, ``df['split']``; third-party AVS code reads
``df['name']``); 23 S4 categories (``preprocess_s4.py``); 3,452/740/740 S4 and
296/64/64 MS3 videos (REFERENCE.md B). Frame k is the frame near the end of second k
of the 5-s clip (the preprocessing keeps the 16th of 16 samples per second).

Ground-truth masks (docs/protocols.md "Ground-truth rasters"): binarised as the
reference loaders read them, by :func:`avbench.data.io.read_mask`. S4
(``dataloader.py``: ``Image.open(p).convert('1')``): exactly PIL's ``convert('1')``,
threshold 128 with Floyd-Steinberg dithering, so JPEG grey levels saved along the
edges of an 8-bit png do not all count as foreground. MS3 (``convert('P')``):
palette index non-zero. A palette png in S4 is also read by index (the reference
would threshold the palette colour's luma, which drops a dark-coloured index 1).

Item ids: ``name`` (S4) / ``video_id`` (MS3) as in the csv; an S4 name listed under
several categories of one split becomes ``<category>/<name>`` on each of those rows
(the files live under different category folders); a row repeated verbatim is one
item (later copies dropped, counted in ``skipped["duplicate row"]``).

Samples: ``frames`` [5,3,H,W], ``image`` = frame 1, ``audio`` [1,L] (the whole 5-s
clip at ``sample_rate``, centre-cropped/tiled to ``clip_seconds``), ``masks`` [5,H,W]
with ``mask_valid`` [5] bool (S4 train annotates frame 1 only; missing frames are
zero masks marked invalid), ``gt_map`` = mask of frame 1 (AVSBench used as a
localization test set), and for S4 ``label``/``class_name`` (index into the sorted
category list over all splits). MS3 has no category column, so its samples carry no
label.

Tolerated: ``root`` pointing at ``avsbench_data`` or directly at ``Single-source`` /
``Multi-sources``; extra csv columns; surrounding whitespace in cells, byte-order
marks, any line ending (:mod:`avbench.data.id_lists`); MS3 frames
named ``{video_id}_{k}.png`` (some re-extractions drop the ``.mp4``); frames/masks of
any size (resized to ``image_size``: bilinear for frames, nearest for masks).
Missing files follow the ``missing`` policy (a missing mask png drops the clip under
``"skip"`` and is counted).
"""

from __future__ import annotations

import csv
import io as _io
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch

from avbench.data import io
from avbench.data.datasets.base import AVDataset, MissingPolicy
from avbench.data.errors import AnnotationError, MissingFileError
from avbench.data.id_lists import clean_field, normalize_id, read_text

Subset = Literal["s4", "ms3"]
SPLITS = ("train", "val", "test")
NUM_FRAMES = 5
CLIP_SECONDS = 5.0

#: per subset: (directory under the release root, csv name, data directory)
SUBSET_LAYOUT: dict[str, tuple[str, str, str]] = {
    "s4": ("Single-source", "s4_meta_data.csv", "s4_data"),
    "ms3": ("Multi-sources", "ms3_meta_data.csv", "ms3_data"),
}

#: the 23 S4 categories, as in the reference ``preprocess_s4.py``
S4_CATEGORIES: tuple[str, ...] = (
    "baby_laughter", "female_singing", "male_speech", "dog_barking", "cat_meowing",
    "lions_roaring", "horse_clip-clop", "coyote_howling", "mynah_bird_singing",
    "playing_acoustic_guitar", "playing_tabla", "playing_violin", "playing_piano",
    "playing_ukulele", "playing_glockenspiel", "helicopter", "race_car", "driving_buses",
    "ambulance_siren", "typing_on_computer_keyboard", "chainsawing_trees",
    "cap_gun_shooting", "lawn_mowing",
)


@dataclass(frozen=True)
class AVSRecord:
    """One AVSBench video: its id, split, category (S4 only) and files."""

    name: str
    split: str
    category: str | None
    frames: tuple[Path, ...]
    masks: tuple[Path, ...]  # annotated masks only, in frame order
    mask_index: tuple[int, ...]  # 0-based frame index of each annotated mask
    audio: Path
    id: str = ""  #: the item id (rule in the module docstring)


def resolve_subset_dir(root: Path, subset: str) -> Path:
    """The directory holding ``{s4,ms3}_meta_data.csv`` (``root`` or its subset dir)."""
    folder, csv_name, _ = SUBSET_LAYOUT[subset]
    for cand in (root / folder, root):
        if (cand / csv_name).is_file():
            return cand
    raise MissingFileError(
        root / folder / csv_name,
        f"AVSBench {subset} metadata csv not found (looked in {root / folder} and {root})",
    )


def read_meta_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of an AVSBench metadata csv as dicts; malformed rows raise naming the line.

    Text and ids are normalised by :mod:`avbench.data.id_lists` (BOMs, line
    endings, whitespace; ``name``/``video_id`` lose a media extension).
    """
    text = read_text(path)
    reader = csv.reader(_io.StringIO(text, newline=""))
    try:
        header = [clean_field(h) for h in next(reader)]
    except StopIteration:
        raise AnnotationError(path, "empty metadata csv (no header line)") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise AnnotationError(path, f"line 1: header {header} lacks column(s) {missing}")
    rows = []
    for lineno, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise AnnotationError(
                path, f"line {lineno}: expected {len(header)} fields {header}, got {len(row)}"
            )
        rec = {h: clean_field(c) for h, c in zip(header, row)}
        for key in ("name", "video_id"):
            if key in rec:
                rec[key] = normalize_id(rec[key])
        if rec["split"] not in SPLITS:
            raise AnnotationError(
                path, f"line {lineno}: split {rec['split']!r} is not one of {SPLITS}"
            )
        if not all(rec[c] for c in required):
            raise AnnotationError(path, f"line {lineno}: empty field in {row}")
        rows.append(rec)
    return rows


def avs_item_records(records: list[AVSRecord]) -> list[AVSRecord]:
    """The split's items with their ids: ``name``, or ``<category>/<name>`` for a name
    listed under several categories; a row repeated verbatim is kept once (file order)."""
    first: dict[tuple[str, str | None], AVSRecord] = {}
    for r in records:
        first.setdefault((r.name, r.category), r)
    per_name = Counter(name for name, _ in first)
    return [
        replace(r, id=r.name if per_name[r.name] == 1 else f"{r.category}/{r.name}")
        for r in first.values()
    ]


class AVSBench(AVDataset):
    """AVSBench S4 / MS3 over the published layout (see module docstring).

    Args:
        root: ``avsbench_data`` (holding ``Single-source``/``Multi-sources``) or the
            subset directory itself.
        subset: ``"s4"`` (single source, labelled) or ``"ms3"`` (multi-source).
        split: ``"train"``, ``"val"`` or ``"test"`` (the csv's own split column).
        sample_rate: audio rate in Hz.
        clip_seconds: audio window (the whole 5-s clip by default; centre crop or tile).
        image_size: frames and masks are resized to ``image_size`` x ``image_size``.
        missing: ``"error"`` or ``"skip"`` for clips with missing files.
    """

    name = "avsbench"

    def __init__(
        self,
        root: str | Path,
        subset: Subset = "s4",
        split: str = "train",
        *,
        sample_rate: int = 16000,
        clip_seconds: float = CLIP_SECONDS,
        image_size: int = 224,
        missing: MissingPolicy = "error",
    ) -> None:
        super().__init__(root, missing=missing)
        if subset not in SUBSET_LAYOUT:
            raise ValueError(f"subset must be one of {sorted(SUBSET_LAYOUT)}, got {subset!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.subset, self.split = subset, split
        self.sample_rate, self.clip_seconds, self.image_size = sample_rate, clip_seconds, image_size
        self.subset_dir = resolve_subset_dir(self.root, subset)
        _, csv_name, data_dir = SUBSET_LAYOUT[subset]
        self.meta_csv = self.subset_dir / csv_name
        self.data_dir = self.subset_dir / data_dir
        if subset == "s4":
            rows = read_meta_csv(self.meta_csv, ("name", "category", "split"))
            #: sorted categories over all splits, so label indices agree across splits
            self.classes: list[str] = sorted({r["category"] for r in rows})
            records = [self._s4_record(r) for r in rows if r["split"] == split]
        else:
            rows = read_meta_csv(self.meta_csv, ("video_id", "split"))
            self.classes = []
            records = [self._ms3_record(r) for r in rows if r["split"] == split]
        self.records = avs_item_records(records)
        if len(self.records) < len(records):
            self.skipped["duplicate row"] += len(records) - len(self.records)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.annotation_file = self.meta_csv
        self._finalize_records()

    # --- layout -------------------------------------------------------
    def _s4_record(self, row: dict[str, str]) -> AVSRecord:
        name, cat, split = row["name"], row["category"], row["split"]
        fdir = self.data_dir / "visual_frames" / split / cat / name
        mdir = self.data_dir / "gt_masks" / split / cat / name
        n_masks = 1 if split == "train" else NUM_FRAMES
        return AVSRecord(
            name=name, split=split, category=cat,
            frames=tuple(fdir / f"{name}_{k}.png" for k in range(1, NUM_FRAMES + 1)),
            masks=tuple(mdir / f"{name}_{k}.png" for k in range(1, n_masks + 1)),
            mask_index=tuple(range(n_masks)),
            audio=self.data_dir / "audio_wav" / split / cat / f"{name}.wav",
        )

    def _ms3_record(self, row: dict[str, str]) -> AVSRecord:
        vid, split = row["video_id"], row["split"]
        fdir = self.data_dir / "visual_frames" / vid
        frames = []
        for k in range(1, NUM_FRAMES + 1):
            ref = fdir / f"{vid}.mp4_{k}.png"  # reference naming
            alt = fdir / f"{vid}_{k}.png"  # tolerated re-extraction naming
            frames.append(alt if (not ref.exists() and alt.exists()) else ref)
        mdir = self.data_dir / "gt_masks" / split / vid
        return AVSRecord(
            name=vid, split=split, category=None, frames=tuple(frames),
            masks=tuple(mdir / f"{vid}_{k}.png" for k in range(1, NUM_FRAMES + 1)),
            mask_index=tuple(range(NUM_FRAMES)),
            audio=self.data_dir / "audio_wav" / split / f"{vid}.wav",
        )

    def required_files(self, record: AVSRecord) -> list[Path]:
        return [*record.frames, *record.masks, record.audio]

    # --- loading ------------------------------------------------------
    def load(self, record: AVSRecord) -> dict[str, Any]:
        size = self.image_size
        frames = torch.stack([io.read_image(p, size=size, interpolation=self.frame_interpolation) for p in record.frames])
        masks = torch.zeros(NUM_FRAMES, size, size)
        valid = torch.zeros(NUM_FRAMES, dtype=torch.bool)
        for k, path in zip(record.mask_index, record.masks):
            masks[k] = io.read_mask(path, size=size).float()
            valid[k] = True
        wave = io.read_audio(record.audio, self.sample_rate)
        audio = io.fit_length(wave, int(round(self.clip_seconds * self.sample_rate)), mode="center")
        sample: dict[str, Any] = {
            "id": record.id,
            "image": frames[0],
            "frames": frames,
            "audio": audio,
            "masks": masks,
            "mask_valid": valid,
            "gt_map": masks[0].clone(),
        }
        if record.category is not None:
            sample["label"] = self.class_to_idx[record.category]
            sample["class_name"] = record.category
        return sample

    def describe(self) -> str:
        return f"AVSBench[{self.subset}/{self.split}]({self.subset_dir})"
