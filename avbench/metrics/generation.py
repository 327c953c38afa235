"""Scores of generated audio (issue 17, must-have 2): Frechet distance, onsets, ambient level.

* :func:`frechet_distance` - the Frechet distance between Gaussians fitted to two sets of
  embeddings, ``||mu_g - mu_r||^2 + Tr(S_g + S_r - 2 (S_g S_r)^(1/2))`` (the FAD / FID
  formula; torchmetrics' ``_compute_fid`` in float64, unbiased covariances as ``np.cov``).
  avbench computes it in the ``audio-resnet18`` stand-in's 128-d per-second embedding space
  and calls it "FD-avbench" (never FAD: VGGish is not used).
* :func:`detect_onsets` - onsets by spectral flux (no librosa): STFT magnitude (Hann,
  ``n_fft`` 512 = 32 ms, hop 160 = 10 ms at 16 kHz), log compression ``log(1 + C |X|)``
  (C = 1000), flux ``mean_k max(0, L[t, k] - L[t-1, k])``, then librosa-style peak picking:
  a frame is an onset when it is the maximum of ``+-pre_max`` frames (30 ms), exceeds the
  mean of ``-pre_avg .. +post_avg`` frames (100 ms) by ``delta`` (``delta_rel`` x the clip's
  largest flux, at least ``delta_abs``), and comes ``wait`` frames (50 ms) after the previous
  onset. Onset time = frame centre.
* :func:`onset_precision_recall` - one-to-one matching (maximum bipartite matching, as
  ``mir_eval.onset``) within ``+-tolerance`` s (0.1), pooled over clips: precision = matched /
  detected, recall = matched / planted.
* :func:`lowest_window_db` - the level (dBFS: ``10 log10 mean(x^2)``, full scale 1.0) of the
  quietest ``window`` s (0.5) window, hop ``hop`` s (0.05): the clip's ambient floor;
  :func:`ambient_level_scores` compares it with the planted ambience (MAE dB, Pearson r, bias).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from avbench.metrics._common import NotScorableError

__all__ = [
    "ambient_level_scores",
    "detect_onsets",
    "frechet_distance",
    "gaussian_frechet_distance",
    "lowest_window_db",
    "match_onsets",
    "onset_precision_recall",
    "onset_strength",
    "window_levels_db",
]

_EPS = 1e-10


def gaussian_frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (means [D], covariances
    [D, D]), computed in float64 and clamped at 0 (rounding can make it -1e-12)."""
    from torchmetrics.image.fid import _compute_fid

    d = _compute_fid(mu1.double(), sigma1.double(), mu2.double(), sigma2.double())
    return max(float(d), 0.0)


def frechet_distance(x: Tensor | np.ndarray, y: Tensor | np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to embeddings ``x`` [N, D] and ``y`` [M, D]
    (means and unbiased covariances; the FAD formula).

    Raises:
        ValueError: not 2-D, different widths, or fewer than 2 rows in a set.
    """
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).double()
    y = torch.as_tensor(np.asarray(y) if not isinstance(y, Tensor) else y).double()
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected [N,D] and [M,D] embeddings, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(f"a covariance needs >= 2 embeddings per set, got {x.shape[0]} and "
                         f"{y.shape[0]}")
    return gaussian_frechet_distance(x.mean(0), torch.cov(x.t()), y.mean(0), torch.cov(y.t()))


def _as_wave(wave: Tensor | np.ndarray) -> Tensor:
    w = torch.as_tensor(np.asarray(wave) if not isinstance(wave, Tensor) else wave).float()
    w = w.reshape(-1)
    if w.numel() == 0:
        raise ValueError("empty waveform")
    return w


def onset_strength(wave: Tensor | np.ndarray, sample_rate: int = 16000, n_fft: int = 512,
                   hop: int = 160, compression: float = 1000.0) -> tuple[np.ndarray, np.ndarray]:
    """Spectral-flux onset strength of a mono wave [L].

    Returns:
        ``(flux [F], times [F])``: flux per frame (0 for the first), frame-centre times (s).
    """
    w = _as_wave(wave)
    spec = torch.stft(w, n_fft, hop, window=torch.hann_window(n_fft), center=True,
                      return_complex=True).abs()  # [K, F]
    logmag = torch.log1p(compression * spec)
    flux = torch.zeros(spec.shape[1])
    if spec.shape[1] > 1:
        flux[1:] = (logmag[:, 1:] - logmag[:, :-1]).clamp_min(0).mean(0)
    times = np.arange(spec.shape[1]) * hop / sample_rate
    return flux.numpy().astype(np.float64), times


def detect_onsets(wave: Tensor | np.ndarray, sample_rate: int = 16000, *, n_fft: int = 512,
                  hop: int = 160, pre_max: float = 0.03, pre_avg: float = 0.1,
                  post_avg: float = 0.1, wait: float = 0.05, delta_rel: float = 0.3,
                  delta_abs: float = 0.05) -> np.ndarray:
    """Onset times (s, ascending) of a mono wave [L] by spectral-flux peak picking (module
    docstring; window lengths in seconds)."""
    flux, times = onset_strength(wave, sample_rate, n_fft, hop)
    fps = sample_rate / hop
    pm, pa, qa, wt = (max(1, round(s * fps)) for s in (pre_max, pre_avg, post_avg, wait))
    delta = max(delta_rel * float(flux.max(initial=0.0)), delta_abs)
    onsets: list[float] = []
    last = -10**9
    n = flux.size
    for t in range(1, n):
        v = flux[t]
        if v <= 0 or v < flux[max(t - pm, 0):t + pm + 1].max():
            continue
        if v < flux[max(t - pa, 0):t + qa + 1].mean() + delta or t - last <= wt:
            continue
        onsets.append(float(times[t]))
        last = t
    return np.asarray(onsets, dtype=np.float64)


def match_onsets(detected: Sequence[float] | np.ndarray, reference: Sequence[float] | np.ndarray,
                 tolerance: float = 0.1) -> int:
    """Largest number of one-to-one pairs (detected, reference) with ``|d - r| <= tolerance``
    (maximum bipartite matching, as ``mir_eval.onset``)."""
    d, r = np.asarray(detected, float).reshape(-1), np.asarray(reference, float).reshape(-1)
    if d.size == 0 or r.size == 0:
        return 0
    from scipy.optimize import linear_sum_assignment

    ok = np.abs(d[:, None] - r[None, :]) <= tolerance + 1e-9
    rows, cols = linear_sum_assignment(-ok.astype(np.float64))
    return int(ok[rows, cols].sum())


def onset_precision_recall(detected: Sequence[np.ndarray], planted: Sequence[np.ndarray],
                           tolerance: float = 0.1) -> dict[str, float]:
    """Pooled onset precision / recall / F1 over clips (``detected[i]``, ``planted[i]``: onset
    times of clip i in s). Precision is NaN-free: 0 detections give precision 1.0 only when
    nothing was planted either (counts in ``n_detected``, ``n_planted``, ``n_matched``).

    Raises:
        ValueError: the two lists differ in length.
    """
    if len(detected) != len(planted):
        raise ValueError(f"{len(detected)} detected lists for {len(planted)} planted ones")
    matched = sum(match_onsets(d, p, tolerance) for d, p in zip(detected, planted))
    n_det = int(sum(np.asarray(d).size for d in detected))
    n_pl = int(sum(np.asarray(p).size for p in planted))
    precision = matched / n_det if n_det else float(n_pl == 0)
    recall = matched / n_pl if n_pl else float(n_det == 0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "n_detected": float(n_det),
            "n_planted": float(n_pl), "n_matched": float(matched)}


def window_levels_db(wave: Tensor | np.ndarray, sample_rate: int = 16000, window: float = 0.5,
                     hop: float = 0.05) -> np.ndarray:
    """Level (dBFS, ``10 log10(mean(x^2) + 1e-10)``) of every ``window``-s window of a mono
    wave [L], hop ``hop`` s; a wave shorter than one window gives its whole level.

    Raises:
        ValueError: non-positive window or hop, empty wave.
    """
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be > 0, got {window}, {hop}")
    w = _as_wave(wave).double()
    n, h = int(round(window * sample_rate)), max(1, int(round(hop * sample_rate)))
    if w.numel() <= n:
        power = w.square().mean().reshape(1)
    else:
        power = w.square().unfold(0, n, h).mean(1)
    return (10 * torch.log10(power + _EPS)).numpy()


def lowest_window_db(wave: Tensor | np.ndarray, sample_rate: int = 16000, window: float = 0.5,
                     hop: float = 0.05) -> float:
    """The level (dBFS) of the quietest ``window``-s window of a mono wave (ambient floor)."""
    return float(window_levels_db(wave, sample_rate, window, hop).min())


def ambient_level_scores(measured_db: Sequence[float] | np.ndarray,
                         planted_db: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Compare measured ambient levels with the planted ones (dB, one per clip).

    Returns ``mae_db`` (mean |measured - planted|), ``bias_db`` (mean measured - planted),
    ``mean_db`` (mean measured) and ``corr`` (Pearson r; left out when either side is
    constant).

    Raises:
        ValueError: different lengths.
        NotScorableError: no clip.
    """
    m, p = np.asarray(measured_db, float), np.asarray(planted_db, float)
    if m.shape != p.shape:
        raise ValueError(f"{m.size} measured levels for {p.size} planted ones")
    if m.size == 0:
        raise NotScorableError("no clip with a planted ambience level")
    out = {"mae_db": float(np.abs(m - p).mean()), "bias_db": float((m - p).mean()),
           "mean_db": float(m.mean())}
    if m.size >= 2 and m.std() > 0 and p.std() > 0:
        out["corr"] = float(np.corrcoef(m, p)[0, 1])
    return out
