"""Fault kind "id lists and text files" (issue 12): one normalisation for every reader.

Case 2 of the issue: VGGSound's own split lists (``train.csv``/``test.csv``) name clips
``<id>.mp4,<label>``; given as ``train_list`` such a list matched 0 clips, a warning
was logged and the dataloader failed later ("num_samples should be a positive
integer value"). A list that matches none or few of the clips now raises naming
the list, the counts and example ids of both sides.
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

import numpy as np
import pytest
from test_data_vggsound import ROWS as VGGSOUND_ROWS
from torch.utils.data import DataLoader

from avbench.data.datasets.ave import read_ave_annotations
from avbench.data.datasets.avsbench import read_meta_csv
from avbench.data.datasets.ego4d_tables import COLUMNS, read_clip_table
from avbench.data.datasets.flickr import FlickrSoundNet
from avbench.data.datasets.vggsound import VGGSound, parse_vggsound_csv
from avbench.data.id_lists import IdListMismatchError, normalize_id, read_ids
from avbench.data.synthetic.media import write_image, write_wav

ROWS = VGGSOUND_ROWS[:6]  # the planted VGGSound rows of tests/test_data_vggsound.py
IDS = [f"{a}_{b:06d}" for a, b, _, _ in ROWS]
TRAIN = IDS[:4]


def _encodings(text: str) -> dict[str, bytes]:
    """The same text as real copies store it: BOMs, UTF-16, Windows and old-Mac line endings."""
    return {
        "utf8": text.encode(),
        "utf8-bom": codecs.BOM_UTF8 + text.encode(),
        "utf16-le-bom": text.encode("utf-16"),  # Python writes the BOM (LE on this machine)
        "utf16-be-bom": codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
        "crlf": text.replace("\n", "\r\n").encode(),
        "cr": text.replace("\n", "\r").encode(),
    }


@pytest.fixture
def vgg_root(tmp_path: Path) -> Path:
    root = tmp_path / "vggsound"
    (root / "metadata").mkdir(parents=True)
    with open(root / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(ROWS)
    for ident in IDS:
        write_image(root / "frames" / f"{ident}.jpg", np.full((16, 16, 3), 128, np.uint8))
        write_wav(root / "audio" / f"{ident}.wav", np.zeros(1600, np.float32), 16000)
    return root


def test_vggsound_release_split_csv_with_mp4_names_selects_its_clips(vgg_root: Path) -> None:
    # VGGSound's own train.csv: "<id>.mp4,<label>", labels quoted when they hold commas
    with open(vgg_root / "metadata" / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows([(f"{i}.mp4", r[2]) for i, r in zip(TRAIN, ROWS)])
    ds = VGGSound(vgg_root, "train", train_list="train.csv", val_fraction=0.0, image_size=16,
                  clip_seconds=0.1)
    assert [r.id for r in ds.records] == TRAIN
    batch = next(iter(DataLoader(ds, batch_size=2)))  # the dataloader has samples
    assert list(batch["id"]) == TRAIN[:2]


@pytest.mark.parametrize("kind", ["utf8-bom", "utf16-le-bom", "utf16-be-bom", "crlf", "cr"])
def test_training_list_in_any_encoding_and_line_ending(vgg_root: Path, kind: str) -> None:
    text = "".join(f'  "{i}"  \n' for i in TRAIN)  # quoted, padded ids
    (vgg_root / "metadata" / "l.txt").write_bytes(_encodings(text)[kind])
    assert read_ids(vgg_root / "metadata" / "l.txt") == TRAIN
    ds = VGGSound(vgg_root, "train", train_list="l.txt", val_fraction=0.0)
    assert [r.id for r in ds.records] == TRAIN


def test_list_matching_no_clip_raises_naming_list_counts_and_examples(vgg_root: Path) -> None:
    lst = vgg_root / "metadata" / "frames_list.txt"
    lst.write_text("".join(f"frames/{i}.jpg\n" for i in TRAIN))  # paths, not ids
    with pytest.raises(IdListMismatchError) as err:
        VGGSound(vgg_root, "train", train_list="frames_list.txt")
    msg = str(err.value)
    assert str(lst) in msg and "0 of its 4 distinct ids" in msg and "among the 6 clips of vggsound.csv" in msg
    assert f"'frames/{TRAIN[0]}'" in msg and f"'{IDS[0]}'" in msg  # examples of both sides


def test_list_matching_few_clips_raises_and_most_is_accepted(vgg_root: Path) -> None:
    few = vgg_root / "metadata" / "few.txt"
    few.write_text(f"{TRAIN[0]}\nxxxxxxxxxxx_000001\nyyyyyyyyyyy_000002\n")  # 1 of 3 < 50%
    with pytest.raises(IdListMismatchError, match=r"few.txt: 1 of its 3 distinct ids"):
        VGGSound(vgg_root, "train", train_list="few.txt")
    most = vgg_root / "metadata" / "most.txt"
    most.write_text("\n".join([*TRAIN[:3], "xxxxxxxxxxx_000001"]) + "\n")  # 3 of 4: kept, unknown counted
    ds = VGGSound(vgg_root, "train", train_list="most.txt", val_fraction=0.0)
    assert [r.id for r in ds.records] == TRAIN[:3]
    assert ds.skipped["id not in vggsound.csv"] == 1


def test_flickr_list_matched_against_the_frames_present(tmp_path: Path) -> None:
    root = tmp_path / "flickr"
    (root / "metadata").mkdir(parents=True)
    for ident in ("101", "102", "103"):
        write_image(root / "frames" / f"{ident}.jpg", np.zeros((8, 8, 3), np.uint8))
        write_wav(root / "audio" / f"{ident}.wav", np.zeros(160, np.float32), 16000)
    (root / "metadata" / "flickr_10k.txt").write_bytes(_encodings("101.jpg\n102.jpg\n103.jpg\n")["crlf"])
    assert [r.id for r in FlickrSoundNet(root, "train", val_fraction=0.0).records] == ["101", "102", "103"]
    (root / "metadata" / "flickr_10k.txt").write_text("9001\n9002\n")
    with pytest.raises(IdListMismatchError, match=r"flickr_10k.txt: 0 of its 2 distinct ids.*'9001'.*'101'"):
        FlickrSoundNet(root, "train", missing="skip")


def test_every_annotation_reader_accepts_every_encoding(tmp_path: Path) -> None:
    ave = "Category&VideoID&Quality&StartTime&EndTime\nBark&q9zz0000001.mp4 &good&2&5\n"
    vgg = '# header\naaaaaaaaaaa,30,"dog barking",train\n'
    avs = "name,start,category,split\nvidA_1,0,dog_barking,test\n"
    table = "\t".join(COLUMNS) + "\n" + "\t".join(
        ["uid1", "-1", "narration_pass_1", "3", "12.5", "12.0", "13.5", "#C C cuts", "[]", "[]",
         "1.0", "uid1/uid1_narration_pass_1_3.mp4", "0", "0", "0", "0"]) + "\n"
    for kind in _encodings(""):
        def put(name: str, text: str, kind: str = kind) -> Path:
            path = tmp_path / f"{kind}-{name}"
            path.write_bytes(_encodings(text)[kind])
            return path

        (row,) = read_ave_annotations(put("ave.txt", ave))
        assert (row.category, row.video_id, row.start, row.end) == ("Bark", "q9zz0000001", 2, 5)
        assert [r.id for r in parse_vggsound_csv(put("vggsound.csv", vgg))] == [IDS[0]]
        assert read_meta_csv(put("s4.csv", avs), ("name", "category", "split")) == [
            {"name": "vidA_1", "start": "0", "category": "dog_barking", "split": "test"}]
        (clip,) = read_clip_table(put("test_clips.csv", table)).rows
        assert clip.id == "uid1_narration_pass_1_3" and clip.positive == 1.0


def test_normalize_id_strips_extension_quotes_and_invisible_characters() -> None:
    assert normalize_id(' "\ufeffabc_000001.MP4"\u200b ') == "abc_000001"
    assert normalize_id("baby_cry/video_00001") == "baby_cry/video_00001"  # VEGAS ids keep their folder
    assert normalize_id("1234.5") == "1234.5"  # only media extensions are removed


@pytest.mark.parametrize("content", ["", "\n\n", "\ufeff\r\n"])
def test_empty_list_says_it_is_empty(vgg_root: Path, tmp_path: Path, content: str) -> None:
    empty = vgg_root / "metadata" / "vggsound_144k.txt"
    empty.write_text(content, encoding="utf-8")
    with pytest.raises(IdListMismatchError, match=r"vggsound_144k.txt: the list is empty") as err:
        VGGSound(vgg_root, "train", train_list="vggsound_144k.txt")
    assert "0 of its 0" not in str(err.value) and "6 clips of vggsound.csv" in str(err.value)
    root = tmp_path / "flickr"
    (root / "metadata").mkdir(parents=True)
    write_image(root / "test" / "frames" / "101.jpg", np.zeros((8, 8, 3), np.uint8))
    (root / "metadata" / "flickr_test.csv").write_text(content, encoding="utf-8")
    with pytest.raises(IdListMismatchError, match=r"flickr_test.csv: the list is empty"):
        FlickrSoundNet(root, "test")
