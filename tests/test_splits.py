"""Hash-based val hold-out: stable per id, never empty on either side."""

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
