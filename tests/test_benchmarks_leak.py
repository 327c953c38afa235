"""Train/test leak check (REFERENCE B: VGGSound-144k contains ~3.7k VGG-SS test clips)."""

from __future__ import annotations

import pytest

from avbench.benchmarks import check_leak, normalize_id, read_id_list


def test_normalize_id():
    assert normalize_id("---g-f_I2yQ_000001") == "---g-f_I2yQ_000001"
    assert normalize_id("frames/---g-f_I2yQ_000001.jpg") == "---g-f_I2yQ_000001"
    assert normalize_id("abcdefghijk_30.wav") == "abcdefghijk_000030"
    assert normalize_id(" 10000130166 ") == "10000130166"  # Flickr ids untouched
    uid = "0a1b2c3d-0000-1111-2222-333344445555_narration_pass_1_7"
    assert normalize_id(uid) == uid


def test_check_leak_counts_and_examples():
    test = [f"vid{i:08d}_{i:06d}" for i in range(100)]  # 11-char youtube ids
    train = [f"frames/{t}.jpg" for t in test[:37]] + [f"other{i:06d}_000000" for i in range(500)]
    train += [test[0]]  # duplicates count once
    r = check_leak(train, test, train_source="vggsound_144k.txt", test_source="vggss")
    assert (r.n_train, r.n_test, r.n_overlap) == (537, 100, 37)
    assert r.overlap_fraction == pytest.approx(0.37) and r.has_leak
    assert r.examples == sorted(test[:37])[:10]
    assert "LEAK: 37 of 100" in r.summary()
    assert r.model_dump()["overlap_fraction"] == pytest.approx(0.37)
    clean = check_leak(["a", "b"], ["c"])
    assert not clean.has_leak and clean.n_overlap == 0 and "no overlap" in clean.summary()


def test_read_id_list(tmp_path):
    p = tmp_path / "list.csv"
    p.write_text("id,class\n# comment\nabcdefghijk_000001,dog\n\nzzzzzzzzzzz_000002,cat\n")
    assert read_id_list(p) == ["abcdefghijk_000001", "zzzzzzzzzzz_000002"]
    t = tmp_path / "list.txt"
    t.write_text("a\nb\n")
    assert read_id_list(t) == ["a", "b"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_id_list(tmp_path / "missing.txt")


def test_normalize_id_keeps_class_folders_drops_media_folders():
    """VEGAS ids restart their numbers in every class folder: the folder is part of the id."""
    assert normalize_id("baby_cry/video_00001") == "baby_cry/video_00001"
    assert normalize_id("baby_cry/video_00001") != normalize_id("dog/video_00001")
    assert normalize_id("videos/video_00001.mp4") == "video_00001"
    assert normalize_id("/data/vggsound/video/abcdefghijk_30.mp4") == "abcdefghijk_000030"
    assert normalize_id("C:\\\\data\\\\frames\\\\10000130166.jpg") == "10000130166"
