"""Hash-based val hold-out: stable per id, never empty on either side; pinned membership per layout."""

import pytest

from avbench.data.splits import holdout_mask, stable_unit


def test_stable_unit_is_fixed_and_salted():
    assert stable_unit("abc") == stable_unit("abc")
    assert 0.0 <= stable_unit("abc") < 1.0
    assert stable_unit("abc", salt="x") != stable_unit("abc")
    assert stable_unit("abc", salt="x") == stable_unit("x:abc")


def test_membership_does_not_depend_on_other_ids():
    ids = [f"clip{i:04d}" for i in range(2000)]
    full = dict(zip(ids, holdout_mask(ids, 0.1)))
    sub = ids[::3]
    assert dict(zip(sub, holdout_mask(sub, 0.1))) == {i: full[i] for i in sub}
    assert 0.08 < sum(full.values()) / len(ids) < 0.12


def test_tiny_lists_keep_both_sides_nonempty():
    assert holdout_mask(["a", "b"], 0.01).count(True) == 1
    assert holdout_mask(["a", "b"], 0.99).count(False) == 1
    assert holdout_mask(["a", "b", "c"], 0.0) == [False] * 3


def test_bad_fraction_rejected():
    with pytest.raises(ValueError, match="fraction"):
        holdout_mask(["a"], 1.0)


# ---------------------------------------------------------------------------
# pinned membership: the ids below are from the synthetic ``tiny`` preset
# (seed 0) of each layout, with the split each had before the split hash was
# consolidated into avbench.data.splits. A change here moves real clips
# between train, val and test.
# ---------------------------------------------------------------------------
PINNED_SSL = {  # VGGSound / Flickr: bare clip id, val_fraction 0.3
    "val": ["sNImCFalAt9_000027", "vnS4UjCWEzO_000168", "BGLz9lW2HTn_000088",
            "15641052215", "20973614479", "6990232451"],
    "train": ["U0eLVnfkjwa_000467", "b9VOPaTzsBA_000236", "82JpfIGjIab_000211",
              "18899434263", "11366079834", "2881819661"],
}
PINNED_FEATURES = {  # AVE/VEGAS feature rows: salted id, val_fraction 0.3
    "val": ["chainsaw/video_00001", "dog/video_00001", "snoring/video_00000"],
    "train": ["baby_cry/video_00001", "chainsaw/video_00002", "drum/video_00000"],
}
PINNED_VEGAS = {  # raw VEGAS clips: test 0.2, val 0.05 (defaults)
    "water_flowing/video_00023": "val",
    "baby_cry/video_00000": "test",
    "helicopter/video_00004": "test",
    "baby_cry/video_00001": "train",
    "dog/video_00002": "train",
}
EGO4D_TRAIN_UIDS = [
    "824ff0d3-0db1-413d-845f-5620ab503e87",
    "99519fdb-2940-4f92-a085-b1243b4ff65c",
    "cfe4c292-6f78-499e-84cd-01ccac1f3cbc",
]


def test_pinned_ssl_holdout():
    from avbench.data.splits import holdout_split

    ids = PINNED_SSL["train"] + PINNED_SSL["val"]
    assert holdout_split(ids, 0.3) == (PINNED_SSL["train"], PINNED_SSL["val"])


def test_pinned_feature_holdout():
    from avbench.data.splits import HOLDOUT_SALT, holdout_split

    assert HOLDOUT_SALT == "avbench-holdout"
    ids = PINNED_FEATURES["val"] + PINNED_FEATURES["train"]
    assert holdout_split(ids, 0.3, salt=HOLDOUT_SALT) == (PINNED_FEATURES["train"], PINNED_FEATURES["val"])
    # unsalted, the same ids would split differently: the salt is part of the rule
    assert holdout_split(ids, 0.3)[1] != PINNED_FEATURES["val"]


def test_pinned_vegas_split():
    from avbench.data.datasets.vegas import vegas_split

    assert {i: vegas_split(i) for i in PINNED_VEGAS} == PINNED_VEGAS


def test_pinned_ego4d_val_videos_and_condition_key():
    import hashlib

    from avbench.data.datasets.ego4d import val_videos
    from avbench.data.splits import EGO4D_COND_KEY, joined_key

    for fraction in (0.05, 0.3):
        assert val_videos(EGO4D_TRAIN_UIDS, fraction) == {EGO4D_TRAIN_UIDS[2]}
    # the ambient-condition pick hashes "ego4d-cond<US>seed<US>clip_id" (sha1, first 8 bytes)
    key = joined_key(EGO4D_COND_KEY, 0, "clip")
    assert key == "ego4d-cond\x1f0\x1fclip"
    expected = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") / 2.0**64
    assert stable_unit(key) == expected


@pytest.mark.slow
def test_pinned_membership_on_synthetic_tiny(tmp_path):
    """The same pins through the dataset classes on freshly written tiny datasets."""
    import logging

    from avbench.data import VEGAS, Ego4DClips, FlickrSoundNet, VGGSound
    from avbench.data.datasets.vegas import VEGASFeatures
    from avbench.data.synthetic import generate

    logging.disable(logging.WARNING)
    try:
        for name in ("vggsound", "flickr", "vegas", "ego4d"):
            generate(name, tmp_path / name, "tiny", 0)

        def ids(ds):
            return {getattr(r, "id", None) or r.clip_id for r in ds.records}

        ssl_val = ids(VGGSound(tmp_path / "vggsound", "val", val_fraction=0.3))
        ssl_val |= ids(FlickrSoundNet(tmp_path / "flickr", "val", train_list="flickr_144k.txt",
                                      val_fraction=0.3))
        assert set(PINNED_SSL["val"]) <= ssl_val and not set(PINNED_SSL["train"]) & ssl_val
        feat_val = ids(VEGASFeatures(tmp_path / "vegas", "val", val_fraction=0.3))
        assert set(PINNED_FEATURES["val"]) <= feat_val and not set(PINNED_FEATURES["train"]) & feat_val
        for split in ("train", "val", "test"):
            got = ids(VEGAS(tmp_path / "vegas", split))
            assert {i for i, s in PINNED_VEGAS.items() if s == split} <= got
        assert Ego4DClips(tmp_path / "ego4d", "val", val_fraction=0.3).video_uids == [EGO4D_TRAIN_UIDS[2]]
    finally:
        logging.disable(logging.NOTSET)
