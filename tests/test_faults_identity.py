"""Fault kind "identity" (issue 12): every item of every dataset has its own id, by a rule per layout.

Case 1 of the issue: AVE's ``Annotations.txt`` lists some videos twice with the same
segment and two categories (male and female speech on one clip); both rows used to
get the id ``<video>_<start>_<end>`` and the evaluator then dropped one as padding.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from avbench.data.datasets.ave import AVE
from avbench.data.datasets.avsbench import AVSBench
from avbench.data.datasets.base import AVDataset
from avbench.data.datasets.features import FeatureDataset
from avbench.data.errors import DuplicateIdError
from avbench.data.synthetic.media import write_mp4

MALE, FEMALE = "Male speech, man speaking", "Female speech, woman speaking"
ROWS = [
    f"{MALE}&SPK0000000a&good&0&10",  # the pair: same video and segment,
    f"{FEMALE}&SPK0000000a&good&0&10",  # two categories
    "Bark&DOG0000000b&good&2&5",  # a video with two segments
    "Bark&DOG0000000b&good&6&9",
    "Church bell&BEL0000000c&good&0&10",  # a video with one row
    "Church bell&BEL0000000c&good&0&10",  # ... repeated verbatim
]


@pytest.fixture(scope="module")
def ave_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ave") / "AVE_Dataset"
    (root / "AVE").mkdir(parents=True)
    text = "Category&VideoID&Quality&StartTime&EndTime\n" + "\n".join(ROWS) + "\n"
    for name in ("Annotations.txt", "trainSet.txt", "valSet.txt", "testSet.txt"):
        (root / name).write_text(text)
    frames = np.zeros((10, 32, 32, 3), np.uint8)
    clip = write_mp4(root / "AVE" / "SPK0000000a.mp4", frames, 1, np.zeros(16000 * 10, np.float32), 16000)
    for vid in ("DOG0000000b", "BEL0000000c"):
        (root / "AVE" / f"{vid}.mp4").write_bytes(clip.read_bytes())
    return root


def test_ave_same_segment_two_categories_are_two_items_with_distinct_ids(ave_root: Path) -> None:
    ds = AVE(ave_root, "test", image_size=32)
    ids = [r.id for r in ds.records]
    assert ids == [
        "SPK0000000a_0_10_male-speech-man-speaking",
        "SPK0000000a_0_10_female-speech-woman-speaking",
        "DOG0000000b_2_5",
        "DOG0000000b_6_9",
        "BEL0000000c",
    ]
    assert ds.skipped["duplicate row"] == 1  # the verbatim repeat is one item
    # the two speech items are two samples of the same clip, one label each (single-label protocol)
    a, b = ds[0], ds[1]
    assert (a["id"], b["id"]) == (ids[0], ids[1])
    assert {a["class_name"], b["class_name"]} == {MALE, FEMALE} and a["label"] != b["label"]


class _Listed(AVDataset):
    """A minimal layout whose ids come straight from a list (to test the base check)."""

    def __init__(self, root: Path, ids: list[str]) -> None:
        super().__init__(root)
        self.annotation_file = root / "list.txt"
        self.records = ids
        self._finalize_records()

    def required_files(self, record: str) -> list[Path]:
        return []


def test_base_refuses_duplicate_ids_naming_dataset_ids_and_file(tmp_path: Path) -> None:
    assert len(_Listed(tmp_path, ["a", "b"])) == 2
    with pytest.raises(DuplicateIdError) as err:
        _Listed(tmp_path, ["a", "b", "a", "c", "c", "c"])
    msg = str(err.value)
    assert str(tmp_path / "list.txt") in msg and "_Listed" in msg
    assert "2 ids name more than one item" in msg and "'a' x2" in msg and "'c' x3" in msg


def test_feature_rows_sharing_a_stored_id_become_distinct_items(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as h5:
        for split, ids in (("train", ["v1", "v2", "v1", "v3"]), ("test", ["t1", "t2"])):
            n = len(ids)
            h5[f"audio_{split}"] = np.zeros((n, 128), np.float32)
            h5[f"visual_{split}"] = np.zeros((n, 1024), np.float32)
            h5[f"lab_{split}"] = np.arange(n) % 2
            h5[f"ids_{split}"] = np.array(ids, dtype=h5py.string_dtype())
    train = FeatureDataset(tmp_path, "f.h5", "train", val_fraction=0.0)
    assert [r.id for r in train.records] == ["v1#0", "v2", "v1#2", "v3"]
    assert [r.id for r in FeatureDataset(tmp_path, "f.h5", "test").records] == ["t1", "t2"]


def _touch_s4(data: Path, split: str, cat: str, name: str) -> None:
    for kind in ("visual_frames", "gt_masks"):
        d = data / kind / split / cat / name
        d.mkdir(parents=True, exist_ok=True)
        for k in range(1, 6):
            (d / f"{name}_{k}.png").touch()
    (data / "audio_wav" / split / cat).mkdir(parents=True, exist_ok=True)
    (data / "audio_wav" / split / cat / f"{name}.wav").touch()


def test_avsbench_name_under_two_categories_gets_category_prefix(tmp_path: Path) -> None:
    sub = tmp_path / "Single-source"
    data = sub / "s4_data"
    rows = [("vidA_1", "dog_barking"), ("vidA_1", "cat_meowing"), ("vidB_2", "helicopter"),
            ("vidB_2", "helicopter")]
    for name, cat in rows:
        _touch_s4(data, "test", cat, name)
    sub.mkdir(exist_ok=True)
    (sub / "s4_meta_data.csv").write_text(
        "name,start,category,split\n" + "".join(f"{n},0,{c},test\n" for n, c in rows)
    )
    ds = AVSBench(tmp_path, "s4", "test")
    assert [r.id for r in ds.records] == ["dog_barking/vidA_1", "cat_meowing/vidA_1", "vidB_2"]
    assert ds.skipped["duplicate row"] == 1
