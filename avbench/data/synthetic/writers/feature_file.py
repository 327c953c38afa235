"""Writing an AVE/VEGAS feature file (HDF5) in the layout :mod:`avbench.data.datasets.features` reads.

The keys come from the reader module, so the writer and the reader cannot drift
apart; the synthetic AVE and VEGAS writers store their pooled features
(:func:`avbench.data.synthetic.writers.features.pooled_features`) through it, with
the stand-ins that produced them as a root attribute
(:data:`~avbench.data.synthetic.writers.features.PROVENANCE_ATTR`, JSON).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avbench.atomic_io import atomic_path
from avbench.data.datasets.features import (
    AUDIO_KEY,
    CLASS_NAMES_KEY,
    IDS_KEY,
    LABEL_KEY,
    VISUAL_KEY,
)


def write_feature_file(
    path: str | Path,
    splits: Mapping[str, Mapping[str, Any]],
    class_names: Sequence[str] | None = None,
    attrs: Mapping[str, str] | None = None,
) -> Path:
    """Write a feature file atomically and return its path.

    ``splits[split]`` holds ``audio`` [N,Da] (float32), ``visual`` [N,Dv]
    (float32), ``labels`` [N] (int64) and optionally ``ids`` (N strings);
    ``class_names`` (index = label) is stored as ``class_names``. Keys are
    written in the order given. ``attrs`` become string attributes of the file's
    root group (metadata such as which extractors produced the features; readers
    ignore them, the keys and datasets are unchanged).
    """
    import h5py

    path = Path(path)
    str_dt = h5py.string_dtype("utf-8")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            for split, data in splits.items():
                h5.create_dataset(AUDIO_KEY.format(split), data=np.asarray(data["audio"], np.float32))
                h5.create_dataset(VISUAL_KEY.format(split), data=np.asarray(data["visual"], np.float32))
                h5.create_dataset(LABEL_KEY.format(split), data=np.asarray(data["labels"], np.int64))
                if data.get("ids") is not None:
                    h5.create_dataset(IDS_KEY.format(split), data=list(data["ids"]), dtype=str_dt)
            if class_names is not None:
                h5.create_dataset(CLASS_NAMES_KEY, data=list(class_names), dtype=str_dt)
            for key, value in (attrs or {}).items():
                h5.attrs[key] = str(value)
    return path


__all__ = ["write_feature_file"]
