"""Generated-audio scores on hand-built inputs with known answers (avbench/metrics/generation.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avbench.metrics import NotScorableError
from avbench.metrics.generation import (
    ambient_level_scores,
    detect_onsets,
    frechet_distance,
    gaussian_frechet_distance,
    lowest_window_db,
    match_onsets,
    onset_precision_recall,
    window_levels_db,
)

SR = 16000


def test_frechet_distance_of_identical_sets_is_zero() -> None:
    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(x, x.clone()) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_shifted_gaussians_is_the_closed_form() -> None:
    # N(mu1, s1^2 I) vs N(mu2, s2^2 I): ||mu1 - mu2||^2 + D (s1 - s2)^2
    d = 4
    mu1, mu2 = torch.zeros(d), torch.tensor([1.0, 2.0, 0.0, -1.0])
    s1, s2 = 1.0, 2.0
    expect = float((mu1 - mu2).square().sum()) + d * (s1 - s2) ** 2
    got = gaussian_frechet_distance(mu1, s1**2 * torch.eye(d), mu2, s2**2 * torch.eye(d))
    assert got == pytest.approx(expect, rel=1e-9)
    # from samples: a shifted copy of the same points has covariance equal, FD = ||shift||^2
    x = np.random.default_rng(1).normal(size=(500, d))
    assert frechet_distance(x, x + mu2.numpy()) == pytest.approx(6.0, rel=1e-6)
    # and it agrees with the scipy.linalg.sqrtm form on arbitrary sets
    from scipy.linalg import sqrtm

    a, b = np.random.default_rng(2).normal(size=(300, 3)), np.random.default_rng(3).normal(size=(250, 3)) * 1.5
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * sqrtm(ca @ cb).real)
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-6)


def test_frechet_distance_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match=">= 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="embeddings"):
        frechet_distance(np.zeros((4, 3)), np.zeros((5, 2)))


def _clicks(times: list[float], seconds: float = 3.0, level: float = 0.5,
            noise: float = 0.003) -> np.ndarray:
    """Decaying 1-kHz bursts starting at ``times`` over faint white noise."""
    rng = np.random.default_rng(0)
    y = noise * rng.normal(size=int(seconds * SR))
    t = np.arange(int(0.08 * SR)) / SR
    burst = level * np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.02)
    for s in times:
        i = int(round(s * SR))
        y[i:i + burst.size] += burst[:max(0, min(burst.size, y.size - i))]
    return y.astype(np.float32)


def test_detected_onsets_of_planted_bursts_score_one_and_shifted_ones_zero() -> None:
    planted = [0.4, 1.1, 1.7, 2.5]
    det = detect_onsets(_clicks(planted), SR)
    assert len(det) == 4 and np.max(np.abs(det - planted)) < 0.03
    exact = onset_precision_recall([det], [np.array(planted)])
    assert exact["precision"] == exact["recall"] == exact["f1"] == 1.0
    shifted = onset_precision_recall([det], [np.array(planted) + 0.2])
    assert shifted["precision"] == shifted["recall"] == 0.0 and shifted["n_matched"] == 0
    # silence: no onsets (the absolute threshold)
    assert detect_onsets(np.zeros(3 * SR, np.float32), SR).size == 0


def test_onset_matching_is_one_to_one_and_pooled_over_clips() -> None:
    assert match_onsets([1.0, 1.05], [1.02]) == 1  # two detections, one planted onset
    assert match_onsets([0.95, 1.1], [1.0, 1.12]) == 2  # best assignment, not greedy-nearest
    assert match_onsets([1.0], [1.1 + 1e-3]) == 0 and match_onsets([1.0], [1.1]) == 1
    pr = onset_precision_recall([np.array([1.0, 2.0]), np.array([0.5])],
                                [np.array([1.0]), np.array([])])
    assert pr["precision"] == pytest.approx(1 / 3) and pr["recall"] == 1.0
    nothing = onset_precision_recall([np.array([])], [np.array([])])
    assert nothing["precision"] == nothing["recall"] == 1.0
    with pytest.raises(ValueError, match="detected lists"):
        onset_precision_recall([np.array([1.0])], [])


def test_lowest_window_level_of_a_known_signal() -> None:
    # 1 s of a full-scale sine (-3.01 dBFS) then 1 s at amplitude 0.01 (-43.01) then a sine again
    t = np.arange(SR) / SR
    loud = np.sin(2 * np.pi * 440 * t)
    wave = np.concatenate([loud, 0.01 * loud, loud]).astype(np.float32)
    expect = 10 * math.log10(0.5 * 0.01**2)
    assert lowest_window_db(wave, SR, window=0.5, hop=0.05) == pytest.approx(expect, abs=0.05)
    levels = window_levels_db(wave, SR, window=0.5, hop=0.5)
    assert levels.shape == (6,) and levels[0] == pytest.approx(10 * math.log10(0.5), abs=0.01)
    # a constant-level signal: every window at that level
    assert lowest_window_db(0.1 * np.ones(SR), SR) == pytest.approx(-20.0, abs=1e-6)
    with pytest.raises(ValueError, match="window"):
        window_levels_db(wave, SR, window=0.0)


def test_ambient_level_scores_against_the_planted_level() -> None:
    planted = np.array([-40.0, -30.0, -20.0])
    s = ambient_level_scores(planted + 2.0, planted)
    assert s["mae_db"] == pytest.approx(2.0) and s["bias_db"] == pytest.approx(2.0)
    assert s["corr"] == pytest.approx(1.0) and s["mean_db"] == pytest.approx(-28.0)
    flat = ambient_level_scores(np.full(3, -35.0), planted)
    assert "corr" not in flat and flat["mae_db"] == pytest.approx(25 / 3)
    with pytest.raises(NotScorableError):
        ambient_level_scores([], [])
