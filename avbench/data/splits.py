"""Deterministic held-out splits by a stable hash of each item's id.

Several datasets have no validation split (VGGSound, Flickr, Ego4D-Sounds,
VEGAS, feature files without ``*_val``), yet checkpoints must be selected on
val, never on test. An item goes to val when ``stable_unit(id) < fraction``:
membership depends on the id alone (sha1, independent of PYTHONHASHSEED and of
which other items exist), so a missing clip never moves the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def stable_unit(key: str, salt: str = "") -> float:
    """A number in [0, 1) fixed by ``key`` (and ``salt``): sha1 of ``"salt:key"`` (or ``key``)."""
    text = f"{salt}:{key}" if salt else key
    digest = hashlib.sha1(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def holdout_mask(ids: Sequence[str], fraction: float, salt: str = "") -> list[bool]:
    """Which of ``ids`` are held out: ``stable_unit(id, salt) < fraction``.

    With ``fraction > 0`` and at least two ids, at least one is held out (the
    smallest hash), so tiny copies still have a val split, and at least one
    stays in (the largest hash), so train is never empty.
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
