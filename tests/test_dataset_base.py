"""The missing-file policy of DESIGN 4.2, on a minimal dataset over text files."""

from pathlib import Path

import pytest

from avbench.data.datasets.base import AVDataset
from avbench.data.errors import CorruptMediaError, MissingFileError


class TextDataset(AVDataset):
    def __init__(self, root, ids, missing="error"):
        super().__init__(root, missing=missing)
        self.records = list(ids)
        self._finalize_records()

    def required_files(self, record):
        return [self.root / f"{record}.txt"]

    def load(self, record):
        text = (self.root / f"{record}.txt").read_text()
        if text == "corrupt":
            raise CorruptMediaError(self.root / f"{record}.txt")
        return {"id": record, "text": text}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for i in range(5):
        (tmp_path / f"c{i}.txt").write_text(f"item {i}")
    return tmp_path


def test_missing_error_names_file_and_count(root):
    (root / "c3.txt").unlink()
    with pytest.raises(MissingFileError) as err:
        TextDataset(root, [f"c{i}" for i in range(5)])
    assert "c3.txt" in str(err.value) and "1 of 5" in str(err.value)


def test_missing_skip_drops_and_reports(root):
    (root / "c1.txt").unlink()
    (root / "c3.txt").unlink()
    ds = TextDataset(root, [f"c{i}" for i in range(5)], missing="skip")
    assert len(ds) == 3 and [ds[i]["id"] for i in range(3)] == ["c0", "c2", "c4"]
    assert ds.skipped["file does not exist"] == 2
    assert "skipped 2" in ds.skip_report()


def test_corrupt_item_skipped_at_load_time(root):
    (root / "c2.txt").write_text("corrupt")
    ds = TextDataset(root, [f"c{i}" for i in range(5)], missing="skip")
    assert ds[2]["id"] == "c3"
    assert sum(ds.load_failures.values()) == 1
    strict = TextDataset(root, [f"c{i}" for i in range(5)])
    with pytest.raises(CorruptMediaError, match="c2.txt"):
        strict[2]


def test_missing_root_is_named(tmp_path):
    with pytest.raises(MissingFileError, match="nope"):
        TextDataset(tmp_path / "nope", [])


def test_bad_policy_rejected(root):
    with pytest.raises(ValueError, match="missing"):
        TextDataset(root, [], missing="ignore")
