"""Pre-extracted audio/visual feature files (HDF5) used by the AVE/VEGAS retrieval line.

The cross-modal retrieval papers on AVE and VEGAS (TNN-C-CCA, Zeng et al. TOMM 2020,
repo ZenzenDatabase/CMR; the ILI paper, repo ZenzenDatabase/causalCMR) do not train
on pixels: they use per-second features from pretrained extractors, VGGish 128-d for
audio and Inception-v3 1024-d (pool layer) for visual frames, mean-pooled per video,
shipped as one HDF5 file (CMR README: ``vegas_feature.h5``; its training script
loads ``vegas_feature_norm.h5`` with ``visual_feat_dim = 1024``, ``audio 128``,
10 classes). Layout (REFERENCE.md B)::

    audio_train  float [N_train, 128]     visual_train  float [N_train, 1024]
    lab_train    int [N_train] or one-hot [N_train, C]
    audio_test   ...                      visual_test   ...        lab_test ...
    audio_val / visual_val / lab_val      optional (most releases have none)

avbench additions it writes (optional when reading): ``class_names`` (utf-8 strings,
index = label) and ``ids_{split}`` (item ids). The public files could not be opened
here (offline), so the exact key set is taken from REFERENCE.md; anything else in the
file is ignored.

Tolerated: integer or one-hot/multi-hot (argmax) labels, float or int feature
arrays, per-second features ``[N, T, D]`` (mean-pooled over T here, as the papers
do), a missing ``class_names`` (names then come from ``default_class_names`` when
its length matches the number of classes, else ``"class_<i>"``).
Not tolerated (raises naming the file and key): a missing required key, row counts
that disagree between audio/visual/labels, labels out of range.

Item ids: ``ids_<split>[row]`` when the file stores ids, else ``<split>_<row>``
(``train_0``, ...); a stored id shared by several rows of a split (one video
stored once per category) gets ``#<row>`` appended on each of those rows, so every
row is its own item (:func:`unique_row_ids`).

Validation split: when the file has no ``*_val`` keys, ``val`` is a deterministic
held-out fraction (``val_fraction``) of the training rows chosen by a stable hash of
the row id (``ids_train`` or ``"train_<row>"``, salted with
:data:`avbench.data.splits.FEATURES_VAL_SALT`, a salt of its own: see
:mod:`avbench.data.splits`; at least one row), and ``train`` excludes them, so
checkpoints are never selected on test. The file itself is written by
:func:`avbench.data.synthetic.writers.feature_file.write_feature_file`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avbench.data.datasets.base import AVDataset, MissingPolicy
from avbench.data.errors import AnnotationError, CorruptMediaError, MissingFileError
from avbench.data.splits import FEATURES_VAL_SALT, holdout_mask

SPLITS = ("train", "val", "test")
AUDIO_KEY, VISUAL_KEY, LABEL_KEY, IDS_KEY = "audio_{}", "visual_{}", "lab_{}", "ids_{}"
CLASS_NAMES_KEY = "class_names"
AUDIO_DIM, VISUAL_DIM = 128, 1024  # VGGish / Inception-v3 pool features


@dataclass(frozen=True)
class FeatureRecord:
    id: str
    row: int
    split_key: str  # the split the row is stored under in the file
    label: int


def _read_key(h5: Any, path: Path, key: str) -> np.ndarray:
    if key not in h5:
        raise AnnotationError(path, f"missing key {key!r} (file has {sorted(h5.keys())})")
    return np.asarray(h5[key][()])


def _labels_1d(lab: np.ndarray, path: Path, key: str) -> np.ndarray:
    if lab.ndim == 2 and lab.shape[1] == 1:
        lab = lab[:, 0]
    if lab.ndim == 2:  # one-hot / multi-hot
        return lab.argmax(axis=1).astype(np.int64)
    if lab.ndim != 1:
        raise AnnotationError(path, f"key {key!r}: labels must be [N] or [N,C], got {lab.shape}")
    if np.issubdtype(lab.dtype, np.floating) and not np.all(lab == np.round(lab)):
        raise AnnotationError(path, f"key {key!r}: non-integer labels")
    return lab.astype(np.int64)


def _pooled(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    if x.ndim == 3:  # per-second features: mean over time, as the papers do
        x = x.mean(axis=1)
    if x.ndim != 2:
        raise AnnotationError(path, f"key {key!r}: expected [N,D] or [N,T,D], got {x.shape}")
    return x.astype(np.float32)


def _decode(names: np.ndarray) -> list[str]:
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names.tolist()]


def unique_row_ids(ids: list[str]) -> list[str]:
    """Item ids of a split's rows: the stored id, with ``#<row>`` appended to every row
    whose stored id is shared (a video stored once per category is several items)."""
    counts = Counter(ids)
    return [i if counts[i] == 1 else f"{i}#{row}" for row, i in enumerate(ids)]


def _open_feature_file(path: Path) -> Any:
    """The open ``h5py.File`` at ``path`` (read-only).

    Raises:
        MissingFileError: no file. CorruptMediaError: not a readable HDF5 file (truncated).
    """
    import h5py

    if not path.is_file():
        raise MissingFileError(path, "feature file does not exist")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise CorruptMediaError(path, f"not a readable HDF5 file ({err})") from err


def read_feature_split(path: Path, split: str) -> dict[str, Any]:
    """Read one stored split (``train``/``val``/``test``) of a feature file.

    Returns ``audio`` [N,Da], ``visual`` [N,Dv], ``labels`` [N], ``ids`` list, and
    ``class_names`` (list or None). Raises :class:`AnnotationError` naming the file
    and key on a missing key or inconsistent shapes.
    """
    with _open_feature_file(path) as h5:
        akey, vkey, lkey = AUDIO_KEY.format(split), VISUAL_KEY.format(split), LABEL_KEY.format(split)
        audio = _pooled(_read_key(h5, path, akey), path, akey)
        visual = _pooled(_read_key(h5, path, vkey), path, vkey)
        labels = _labels_1d(_read_key(h5, path, lkey), path, lkey)
        n = {akey: len(audio), vkey: len(visual), lkey: len(labels)}
        if len(set(n.values())) != 1:
            raise AnnotationError(path, f"row counts disagree: {n}")
        ikey = IDS_KEY.format(split)
        ids = _decode(np.asarray(h5[ikey][()])) if ikey in h5 else [f"{split}_{i}" for i in range(len(labels))]
        if len(ids) != len(labels):
            raise AnnotationError(path, f"key {ikey!r} has {len(ids)} ids for {len(labels)} rows")
        ids = unique_row_ids(ids)
        names = _decode(np.asarray(h5[CLASS_NAMES_KEY][()])) if CLASS_NAMES_KEY in h5 else None
    return {"audio": audio, "visual": visual, "labels": labels, "ids": ids, "class_names": names}


def stored_splits(path: Path) -> tuple[str, ...]:
    """Splits a feature file stores (``lab_<split>`` present).

    Raises:
        MissingFileError: no file. CorruptMediaError: not a readable HDF5 file (truncated).
    """
    with _open_feature_file(path) as h5:
        return tuple(s for s in SPLITS if LABEL_KEY.format(s) in h5)


class FeatureDataset(AVDataset):
    """Per-video pooled audio/visual features of one split of an HDF5 feature file.

    Items: ``id``, ``audio_feat`` [Da], ``visual_feat`` [Dv], ``label`` (index into
    ``classes``: the sorted class names, like every avbench dataset), ``class_name``.

    Args:
        root: dataset root; ``file`` is resolved relative to it unless absolute.
        file: the HDF5 feature file.
        split: ``train``, ``val`` or ``test``.
        val_fraction: held-out fraction of training rows forming ``val`` when the
            file stores no val split (see module docstring).
        classes: keep only these class names (labels re-indexed over the sorted
            kept names); ``None`` keeps all.
        default_class_names: names by label index for files without ``class_names``
            (used only when the number of classes matches).
        missing: kept for API symmetry; the file is the whole dataset, so a missing
            file always raises :class:`MissingFileError`.
    """

    name = "features"

    def __init__(
        self,
        root: str | Path,
        file: str | Path,
        split: str = "train",
        *,
        val_fraction: float = 0.05,
        classes: Sequence[str] | None = None,
        default_class_names: Sequence[str] | None = None,
        missing: MissingPolicy = "error",
    ) -> None:
        super().__init__(root, missing=missing)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.split, self.val_fraction = split, val_fraction
        self.file = Path(file) if Path(file).is_absolute() else self.root / file
        stored = stored_splits(self.file)
        source = split if split in stored else ("train" if split == "val" else split)
        if source not in stored:
            raise AnnotationError(
                self.file, f"missing key {LABEL_KEY.format(source)!r} (stored splits: {stored})"
            )
        data = read_feature_split(self.file, source)
        if split in ("train", "val") and "val" not in stored:
            held = holdout_mask(data["ids"], val_fraction, salt=FEATURES_VAL_SALT)
            keep = held if split == "val" else [not h for h in held]
        else:
            keep = [True] * len(data["ids"])

        labels = data["labels"]
        n_classes = int(labels.max()) + 1 if len(labels) else 0
        names = data["class_names"]
        if names is None:
            # class count from the training split, so train and test agree
            if source != "train" and "train" in stored:
                n_classes = max(n_classes, int(read_feature_split(self.file, "train")["labels"].max()) + 1)
            if default_class_names is not None and len(default_class_names) == n_classes:
                names = list(default_class_names)
            else:
                names = [f"class_{i}" for i in range(n_classes)]
        if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
            raise AnnotationError(
                self.file, f"key {LABEL_KEY.format(source)!r}: labels outside [0, {len(names)})"
            )
        if classes is not None:
            unknown = sorted(set(classes) - set(names))
            if unknown:
                raise AnnotationError(self.file, f"classes {unknown} not in the file's classes {names}")
        kept_names = sorted(set(classes) if classes is not None else set(names))
        self.file_class_names: list[str] = list(names)
        self.classes: list[str] = kept_names
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self._audio = torch.from_numpy(data["audio"])
        self._visual = torch.from_numpy(data["visual"])
        self.annotation_file = self.file
        self.records = [
            FeatureRecord(id=i, row=r, split_key=source, label=self.class_to_idx[names[lab]])
            for r, (i, lab, k) in enumerate(zip(data["ids"], labels.tolist(), keep))
            if k and names[lab] in self.class_to_idx
        ]
        self._finalize_records()

    def required_files(self, record: FeatureRecord) -> list[Path]:
        return [self.file]

    def load(self, record: FeatureRecord) -> dict[str, Any]:
        return {
            "id": record.id,
            "audio_feat": self._audio[record.row],
            "visual_feat": self._visual[record.row],
            "label": record.label,
            "class_name": self.classes[record.label],
        }

    @property
    def audio_dim(self) -> int:
        return int(self._audio.shape[1])

    @property
    def visual_dim(self) -> int:
        return int(self._visual.shape[1])

    def describe(self) -> str:
        return f"{type(self).__name__}[{self.split}]({self.file})"
