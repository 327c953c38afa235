"""The stand-ins committed in standins/ are the ones the code would train (issue 11, must-have 2).

`make leaderboard` skips a stand-in whose card is current (same name, seed, code version and
file hashes), so a committed stand-in that is stale would be retrained on every fresh clone
(minutes) and would not be the weights the committed leaderboard was made with.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from avbench.pretrain.card import read_card, stale_reasons

ROOT = Path(__file__).resolve().parents[1]


def makefile_standins() -> list[str]:
    """``STANDIN_NAMES`` of the Makefile (what `make standins` builds)."""
    match = re.search(r"^STANDIN_NAMES\s*:?=\s*(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "Makefile has no STANDIN_NAMES"
    return match.group(1).split()


def test_the_makefile_names_the_five_leaderboard_standins():
    assert makefile_standins() == ["image-resnet18", "audio-resnet18", "text-encoder", "image-vit",
                                   "audio-transformer"]


@pytest.mark.parametrize("name", makefile_standins())
def test_committed_standin_is_current(name):
    out = ROOT / "standins" / name
    reasons = stale_reasons(out, name, 0, "default")
    assert not reasons, (f"standins/{name} is stale ({'; '.join(reasons)}): run `make standins` "
                         f"and commit standins/{name}")
    card = read_card(out)
    assert card.seed == 0
    total = sum((out / f).stat().st_size for f in card.files.values())
    assert total < 8e6, f"standins/{name} is {total / 1e6:.1f} MB; keep committed weights small"
