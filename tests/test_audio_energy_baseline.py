"""The audio-energy trivial baseline: the clip's audio RMS as its sounding score.

Hand-made loud and quiet clips with known RMS go through the one evaluation path
(:func:`avbench.benchmarks.evaluate`) on ``ego4d-discovery``; applicability is checked
against every registered benchmark.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

from avbench.benchmarks import applicability, evaluate, list_benchmarks
from avbench.benchmarks.baselines import BASELINES, AudioEnergyBaseline, audio_rms
from avbench.data.sample import collate

SR = 1600  # 1 s clips at a small rate: the score does not depend on the rate


class _DM:
    """setup(stage) + test_dataloader(): what evaluate() needs of a datamodule."""

    def __init__(self, items: list[dict[str, Any]], batch_size: int = 3) -> None:
        self.items, self.batch_size = items, batch_size

    def setup(self, stage: str | None = None) -> None:
        pass

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.items, batch_size=self.batch_size, collate_fn=collate)


def _sine(amplitude: float, hz: float = 100.0) -> torch.Tensor:
    """[1, SR] sine of ``amplitude``: RMS = amplitude / sqrt(2) (whole periods)."""
    t = torch.arange(SR, dtype=torch.float64) / SR
    return (amplitude * torch.sin(2 * math.pi * hz * t)).float()[None]


def _clip(i: int, amplitude: float, sounding: bool) -> dict[str, Any]:
    return {"id": f"clip{i}", "audio": _sine(amplitude), "sounding": sounding}


def test_rms_by_hand():
    # a constant 0.5 -> 0.5; silence -> 0; a sine of amplitude 0.3 -> 0.3 / sqrt(2)
    assert audio_rms(torch.stack([torch.full((1, 8), 0.5), torch.zeros(1, 8)])).tolist() == \
        pytest.approx([0.5, 0.0])
    assert audio_rms(_sine(0.3)[None]).item() == pytest.approx(0.3 / math.sqrt(2), rel=1e-6)
    assert audio_rms(_sine(0.3)[None]).dtype == torch.float64
    # [B, L] and [B, C, L]: every channel and sample counts
    two_ch = torch.stack([torch.zeros(2, 4), torch.tensor([[0.0] * 4, [0.8] * 4])])
    assert audio_rms(two_ch).tolist() == pytest.approx([0.0, 0.8 / math.sqrt(2)])
    assert audio_rms(torch.full((3, 5), -0.25)).tolist() == pytest.approx([0.25] * 3)
    with pytest.raises(ValueError, match="waveform"):
        audio_rms(torch.zeros(4))
    with pytest.raises(KeyError, match="audio"):
        AudioEnergyBaseline().sounding_score({"id": ["a"]})


def test_loud_sounding_quiet_silent_is_solved():
    # sounding clips loud (0.2-0.5), silent ones quiet (0.01-0.05): every pair ordered
    items = [_clip(i, 0.2 + 0.1 * i, True) for i in range(4)]
    items += [_clip(10 + i, 0.01 + 0.01 * i, False) for i in range(5)]
    r = evaluate(AudioEnergyBaseline(), "ego4d-discovery", _DM(items), progress=False)
    assert r.status == "ok", r
    assert r.tasks[0].capability_used == "sounding_score"
    assert r.metrics["roc_auc"] == pytest.approx(1.0)
    assert r.metrics["pr_auc"] == pytest.approx(1.0)
    assert r.tasks[0].info["positive_rate"] == pytest.approx(4 / 9)


def test_quiet_sounding_clips_are_missed():
    # sounding: 0.4, 0.3 and a quiet 0.02; silent: 0.01, 0.03, 0.05.
    # The quiet sounding clip is louder than 1 of the 3 silent ones: ROC-AUC = (3 + 3 + 1) / 9.
    items = [_clip(0, 0.4, True), _clip(1, 0.3, True), _clip(2, 0.02, True),
             _clip(3, 0.01, False), _clip(4, 0.03, False), _clip(5, 0.05, False)]
    r = evaluate(AudioEnergyBaseline(), "ego4d-discovery", _DM(items, batch_size=4),
                 progress=False)
    assert r.metrics["roc_auc"] == pytest.approx(7 / 9)
    # ranking 0.4+, 0.3+, 0.05-, 0.03-, 0.02+, 0.01-: AP = (1 + 1 + 3/5) / 3
    assert r.metrics["pr_auc"] == pytest.approx((1 + 1 + 0.6) / 3)
    # loud silent clips and quiet sounding ones: the order is inverted
    flipped = [dict(c, sounding=not c["sounding"]) for c in items]
    f = evaluate(AudioEnergyBaseline(), "ego4d-discovery", _DM(flipped), progress=False)
    assert f.metrics["roc_auc"] == pytest.approx(2 / 9)


def test_registered_and_applicable_to_discovery_only():
    assert BASELINES["audio-energy"] is AudioEnergyBaseline
    b = BASELINES["audio-energy"]()
    assert b.meta.name == "audio-energy" and b.meta.trivial
    assert b.meta.capabilities == frozenset({"sounding_score"})
    names = list_benchmarks()
    assert "ego4d-discovery" in names
    ok = {n for n in names if applicability(b, n).applicable}
    assert ok == {"ego4d-discovery"}
    why = applicability(b, "ego4d-retrieval")
    assert not why.applicable and "sounding_score" in (why.reason or "")
