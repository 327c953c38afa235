"""A truncated feature HDF5 (AVE/VEGAS) is a typed error naming the file, never an h5py traceback."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from avbench.data.datasets.features import read_feature_split, stored_splits
from avbench.data.errors import CorruptMediaError, MediaError


@pytest.fixture
def truncated(tmp_path):
    path = tmp_path / "ave_feature.h5"
    with h5py.File(path, "w") as h5:
        h5["audio_train"] = np.random.default_rng(0).normal(size=(64, 10, 128)).astype("float32")
        h5["lab_train"] = np.zeros(64, dtype="int64")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_feature_file_names_the_file(truncated):
    for read in (lambda: stored_splits(truncated), lambda: read_feature_split(truncated, "train")):
        with pytest.raises(CorruptMediaError, match="not a readable HDF5 file") as err:
            read()
        assert isinstance(err.value, MediaError) and str(truncated) in str(err.value)
