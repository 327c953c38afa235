"""Deterministic held-out splits by a stable hash of each item's id: the one split hash of avbench.

Several datasets have no validation split (VGGSound, Flickr, Ego4D-Sounds,
VEGAS, feature files without ``*_val``), yet checkpoints must be selected on
val, never on test. An item goes to val when ``stable_unit(key) < fraction``:
membership depends on the key alone (sha1, independent of PYTHONHASHSEED and of
which other items exist), so a missing clip never moves the others.

What each layout hashes (changing any of these moves items between splits):

==========================================  =========================================
layout                                      key hashed by :func:`stable_unit`
==========================================  =========================================
VGGSound, Flickr-SoundNet (val of the       the clip id (no salt)
training list, :func:`holdout_split`)
raw VEGAS train/val/test                    ``HOLDOUT_SALT:<class>/<stem>``
feature files without ``*_val`` (val        ``FEATURES_VAL_SALT:<row id>``
hold-out of the training rows)
Ego4D-Sounds val videos                     ``joined_key(EGO4D_VAL_KEY, video_uid)``
Ego4D ambient-condition pick (not a split)  ``joined_key(EGO4D_COND_KEY, seed, clip_id)``
==========================================  =========================================

The feature-file hold-out has its own salt: the synthetic VEGAS feature file's
training rows are the raw clips with ``stable_unit(id, HOLDOUT_SALT) >= 0.2`` (its
test rows the ones below), so under that salt a val fraction below 0.2 would
select no row by hash (one row by the at-least-one rule). Under
:data:`FEATURES_VAL_SALT` the units of those rows are again uniform on [0, 1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

#: salt of the raw VEGAS split (and, before session 7, of the feature-file val hold-out)
HOLDOUT_SALT = "avbench-holdout"
#: salt of the val hold-out of a feature file's training rows (feature files without ``*_val``)
FEATURES_VAL_SALT = "avbench-features-val"
#: first part of the Ego4D keys (validation videos; ambient-condition choice)
EGO4D_VAL_KEY = "ego4d-val"
EGO4D_COND_KEY = "ego4d-cond"


def stable_unit(key: str, salt: str = "") -> float:
    """A number in [0, 1) fixed by ``key`` (and ``salt``): sha1 of ``"salt:key"`` (or ``key``)."""
    text = f"{salt}:{key}" if salt else key
    digest = hashlib.sha1(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def joined_key(*parts: object) -> str:
    """A hash key made of several parts: their ``str`` joined by the unit separator ``\\x1f``."""
    return "\x1f".join(str(p) for p in parts)


def holdout_mask(ids: Sequence[str], fraction: float, salt: str = "") -> list[bool]:
    """Which of ``ids`` are held out: ``stable_unit(id, salt) < fraction``.

    With ``fraction > 0`` and at least two ids, at least one is held out (the
    smallest hash), so tiny copies still have a val split, and at least one
    stays in (the largest hash), so train is never empty. Raises
    ``ValueError`` unless ``0 <= fraction < 1``.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"val fraction must be in [0, 1), got {fraction}")
    units = [stable_unit(i, salt) for i in ids]
    held = [u < fraction for u in units]
    if fraction > 0 and len(ids) > 1:
        if not any(held):
            held[min(range(len(units)), key=units.__getitem__)] = True
        if all(held):
            held[max(range(len(units)), key=units.__getitem__)] = False
    return held


def holdout_split(
    ids: Sequence[str], fraction: float, salt: str = ""
) -> tuple[list[str], list[str]]:
    """Split ``ids`` into ``(kept, held_out)`` by :func:`holdout_mask`, both in input order."""
    held = holdout_mask(ids, fraction, salt)
    return [i for i, h in zip(ids, held) if not h], [i for i, h in zip(ids, held) if h]


__all__ = [
    "EGO4D_COND_KEY",
    "EGO4D_VAL_KEY",
    "FEATURES_VAL_SALT",
    "HOLDOUT_SALT",
    "holdout_mask",
    "holdout_split",
    "joined_key",
    "stable_unit",
]
