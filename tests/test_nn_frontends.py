"""Audio front-ends: the EZ-VSL log spectrogram and the log-mel, checked against hand computations."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import scipy.signal
import torch

from avbench.nn.frontends import LogMelSpectrogram, LogSpectrogram

SR = 16000


def tone(freq: float, seconds: float = 3.0, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(round(seconds * SR), dtype=torch.float64) / SR
    return (amp * torch.sin(2 * math.pi * freq * t)).to(torch.float32)


def periodic_tukey(n: int, alpha: float) -> torch.Tensor:
    """Tukey window by its definition, periodic (= symmetric of n + 1 points, last dropped)."""
    m = n + 1
    x = torch.arange(m, dtype=torch.float64) / (m - 1)
    w = torch.ones(m, dtype=torch.float64)
    rise = x < alpha / 2
    fall = x > 1 - alpha / 2
    w[rise] = 0.5 * (1 - torch.cos(2 * math.pi * x[rise] / alpha))
    w[fall] = 0.5 * (1 - torch.cos(2 * math.pi * (1 - x[fall]) / alpha))
    return w[:n]


def test_shape_257_bins_and_reference_frame_count() -> None:
    spec = LogSpectrogram()(tone(440)[None])
    # 3 s at 16 kHz, nperseg 512, noverlap 274: 1 + (48000 - 512) // 238 = 200 frames
    assert spec.shape == (1, 1, 257, 200)
    assert LogSpectrogram().num_frames(48000) == 200


@pytest.mark.parametrize("freq", [440.0, 1000.0, 3125.0, 7000.0])
def test_sine_energy_in_its_bin(freq: float) -> None:
    spec = LogSpectrogram()(tone(freq)[None])[0, 0]  # [F, T]
    expected_bin = round(freq * 512 / SR)  # bin spacing 31.25 Hz
    assert (spec.argmax(dim=0) == expected_bin).all()
    # far from the tone the spectrum is many decades lower
    assert float(spec[expected_bin].mean() - spec[(expected_bin + 60) % 257].mean()) * 12 > math.log(1e4)


def test_matches_hand_computation_with_detrend_and_psd_scaling() -> None:
    gen = torch.Generator().manual_seed(0)
    x = 0.3 * torch.randn(1200, generator=gen) + 0.2  # offset: detrend matters
    n_fft, hop = 512, 238
    w = periodic_tukey(n_fft, 0.25)
    frames = x.double().unfold(0, n_fft, hop)  # [T, 512], no padding
    frames = frames - frames.mean(dim=1, keepdim=True)
    power = torch.fft.rfft(frames * w, dim=1).abs() ** 2  # [T, 257]
    power = power / (SR * (w**2).sum())  # density
    power[:, 1:-1] *= 2  # one-sided
    expected = (torch.log(power + 1e-7) / 12).T  # [257, T]
    got = LogSpectrogram()(x[None])[0, 0]
    assert got.shape == expected.shape == (257, 3)
    torch.testing.assert_close(got.double(), expected, atol=2e-5, rtol=0)


def test_plain_config_equals_torch_stft() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1000, generator=gen)
    module = LogSpectrogram(window="hann", detrend=False, scaling=None)
    stft = torch.stft(x, n_fft=512, hop_length=238, win_length=512,
                      window=torch.hann_window(512, periodic=True), center=False,
                      return_complex=True)
    expected = torch.log(stft.abs() ** 2 + 1e-7) / 12
    torch.testing.assert_close(module(x[None])[0, 0], expected, atol=1e-5, rtol=0)
    magnitude = LogSpectrogram(window="hann", detrend=False, scaling=None, power=1.0)
    torch.testing.assert_close(magnitude(x[None])[0, 0], torch.log(stft.abs() + 1e-7) / 12,
                               atol=1e-5, rtol=0)


def test_matches_scipy_spectrogram_as_in_ezvsl() -> None:
    rng = np.random.default_rng(2)
    x = (0.4 * np.sin(2 * np.pi * 523.0 * np.arange(SR * 3) / SR)
         + 0.05 * rng.standard_normal(SR * 3) + 0.01).astype(np.float32)
    _, _, ref = scipy.signal.spectrogram(x.astype(np.float64), SR, nperseg=512, noverlap=274)
    ref = np.log(ref + 1e-7) / 12
    got = LogSpectrogram()(torch.from_numpy(x)[None])[0, 0].double().numpy()
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_batch_and_input_layouts() -> None:
    freqs = [300.0, 1500.0, 4000.0]
    batch = torch.stack([tone(f, 1.0) for f in freqs])  # [3, L]
    module = LogSpectrogram()
    out = module(batch)
    assert out.shape[:3] == (3, 1, 257)
    torch.testing.assert_close(module(batch[:, None]), out)  # [B,1,L] same as [B,L]
    for i, f in enumerate(freqs):  # items do not leak into each other
        torch.testing.assert_close(out[i], module(batch[i])[0], atol=1e-5, rtol=0)
        assert int(out[i, 0].mean(dim=1).argmax()) == round(f * 512 / SR)
    with pytest.raises(ValueError):
        module(torch.zeros(2, 100))  # shorter than n_fft
    with pytest.raises(ValueError):
        module(torch.zeros(2, 2, SR))  # stereo is the loader's job


def test_silence_gives_log_eps() -> None:
    out = LogSpectrogram()(torch.zeros(1, SR))
    torch.testing.assert_close(out, torch.full_like(out, math.log(1e-7) / 12))


def test_log_mel_shape_and_peak() -> None:
    module = LogMelSpectrogram()
    low, high = module(torch.stack([tone(500.0), tone(3000.0)]))
    assert low.shape == (1, 128, 1 + 48000 // 256)
    fb = module.mel.mel_scale.fb  # [n_freqs, n_mels]
    for spec, freq in ((low, 500.0), (high, 3000.0)):
        expected_band = int(fb[round(freq * 1024 / SR)].argmax())
        band = int(spec[0, :, 10:-10].mean(dim=1).argmax())
        assert abs(band - expected_band) <= 1
    assert int(high[0].mean(1).argmax()) > int(low[0].mean(1).argmax()) + 30


def test_log_mel_equation_and_floor() -> None:
    x = tone(1000.0, 0.5)[None]
    module = LogMelSpectrogram(n_mels=64, eps=1e-6)
    mel = module.mel(x)
    torch.testing.assert_close(module(x)[:, 0], torch.log(mel + 1e-6))
    clamp = LogMelSpectrogram(eps=1e-5, floor="clamp")
    silent = clamp(torch.zeros(1, SR))
    torch.testing.assert_close(silent, torch.full_like(silent, math.log(1e-5)))


def test_modules_copy_and_pickle() -> None:
    # EMA encoders (SLAVC) deepcopy models; DDP spawn pickles them
    for module in (LogSpectrogram(), LogMelSpectrogram()):
        x = tone(440.0, 0.5)[None]
        torch.testing.assert_close(copy.deepcopy(module)(x), module(x))
        torch.testing.assert_close(pickle.loads(pickle.dumps(module))(x), module(x))


# --- per-model audio length and SpecAugment (paper configs) -------------------
def test_clip_seconds_takes_the_centre_and_eval_clip_applies_in_eval_mode():
    sr = 1000
    wave = torch.arange(10 * sr, dtype=torch.float32)[None, None] / (10 * sr)
    spec = LogSpectrogram(sample_rate=sr, n_fft=64, hop_length=32, clip_seconds=3.0,
                          eval_clip_seconds=5.0)
    crop = spec.crop(wave)
    assert crop.shape[-1] == 3 * sr
    torch.testing.assert_close(crop, wave[..., 3500:6500])
    plain = LogSpectrogram(sample_rate=sr, n_fft=64, hop_length=32)
    torch.testing.assert_close(spec(wave), plain(wave[..., 3500:6500]))
    assert spec(wave).shape[-1] == plain.num_frames(3 * sr)
    spec.eval()
    assert spec.crop(wave).shape[-1] == 5 * sr
    torch.testing.assert_close(spec(wave), plain(wave[..., 2500:7500]))
    with pytest.raises(ValueError, match="shorter than the front-end's clip"):
        spec(wave[..., : 4 * sr])


def test_spec_augment_masks_per_sample_in_training_only_with_value_zero():
    torch.manual_seed(0)
    wave = torch.randn(8, 1, 16000)
    spec = LogSpectrogram(n_fft=256, hop_length=128, freq_mask_param=10, time_mask_param=10)
    plain = LogSpectrogram(n_fft=256, hop_length=128)
    ref = plain(wave)
    out = spec.train()(wave)
    diff = out != ref
    assert (out[diff] == 0).all()  # masked entries are 0 (the reference's value)
    rows = diff.any(dim=-1)[:, 0]  # [B,F] frequency rows touched
    cols = diff.any(dim=-2)[:, 0]  # [B,T] time columns touched
    # a frequency band (< 10 bins masked over all frames) and a time band per sample
    full_rows = diff.all(dim=-1)[:, 0].sum(dim=1)
    full_cols = diff.all(dim=-2)[:, 0].sum(dim=1)
    assert (full_rows < 10).all() and (full_cols < 10).all()
    assert rows.any() and cols.any()
    assert len({tuple(r.nonzero().flatten().tolist()) for r in diff.all(dim=-1)[:, 0]}) > 1
    torch.testing.assert_close(spec.eval()(wave), ref)  # eval: no masks
    # no masks configured: no random numbers drawn (CPU configs unchanged)
    state = torch.get_rng_state()
    plain.train()(wave)
    assert torch.equal(state, torch.get_rng_state())
