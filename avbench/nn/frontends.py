"""Audio front-ends that models own: waveform -> log spectrogram, as ``nn.Module``s.

Datasets return waveforms (DESIGN 4.1); each model owns its front-end so the
transform runs on the model's device and each paper gets its own recipe
(hence here in :mod:`avbench.nn`, not in :mod:`avbench.data`).
Both modules take ``[B,L]`` or ``[B,1,L]`` (or a single ``[L]``) and return
``[B,1,F,T]``, a one-channel "image" for the audio CNNs. Built on
``torchaudio.transforms`` (STFT, mel filter bank); no gradients are needed but
nothing prevents them.

:class:`LogSpectrogram` reproduces the EZ-VSL line's front-end (EZ-VSL, FNAC,
SLAVC, JSA, ...). Their loader (``stoneMo/EZ-VSL`` ``datasets.py``,
``load_spectrogram``) does::

    f, t, S = scipy.signal.spectrogram(audio, samplerate, nperseg=512, noverlap=274)
    S = np.log(S + 1e-7)                               # then Normalize(mean=0, std=12)

i.e. ``scipy.signal.spectrogram`` defaults: a *periodic Tukey(0.25)* window,
per-segment mean removal (``detrend='constant'``), no padding (frames start at
sample 0, ``T = 1 + (L - 512) // 238``: 200 frames for 3 s at 16 kHz), and
``mode='psd'`` with ``scaling='density'``: the one-sided power spectral
density

    S[k, t] = c_k / (fs * sum_n w[n]^2) * |sum_n (x_t[n] - mean(x_t)) w[n] e^{-2 pi i k n / N}|^2

with ``c_k = 2`` for 0 < k < N/2 and ``c_k = 1`` for the DC and Nyquist bins.
Because the eps (1e-7) sits inside the log, the scale factor is not a mere
offset, so it is matched exactly rather than dropped. The module computes the
complex STFT with ``torchaudio.transforms.Spectrogram(center=False)`` and the
same window, applies the detrend analytically (``X_detrended(k) = X(k) -
mean(x_t) W(k)`` with ``W = rfft(w)``, exact for a constant detrend), then
the density scale. Against ``scipy.signal.spectrogram`` it agrees to float32
precision (see ``tests/test_nn_frontends.py``). Deliberate deviations from the
reference loader, all outside this module: audio is resampled to the
datamodule rate first (the reference uses the file's own rate; the SSL repos'
wav files are already 16 kHz), and the reference clips samples to [-1, 1]
before mono mixing, which :mod:`avbench.data.io` does not.

:class:`LogMelSpectrogram` is a generic log-mel, ``log(mel + eps)``; its
defaults follow Action2Sound's (AV-LDM) mel recipe (``ChanganVR/action2sound``
``ldm/datasets/utils.py``: librosa STFT n_fft 1024, hop 256, magnitude
(power 1), 128 Slaney mel bands over 125-7600 Hz at 16 kHz). That recipe
then takes ``20 * log10(max(mel, 1e-5))`` and an affine map to [0, 1];
``floor="clamp", eps=1e-5`` gives the ``log(max(mel, 1e-5))`` part and the
model applies the affine (``20 log10 x = (20 / ln 10) ln x``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.signal
import torch
import torchaudio
from torch import Tensor, nn

__all__ = ["LogSpectrogram", "LogMelSpectrogram", "scipy_window"]

WindowSpec = str | tuple


def scipy_window(length: int, spec: WindowSpec = ("tukey", 0.25)) -> Tensor:
    """A periodic (DFT-even) window from ``scipy.signal.get_window``, as float32.

    Used as torchaudio's ``window_fn`` so the STFT window is exactly the one
    ``scipy.signal.spectrogram`` uses (``get_window(..., fftbins=True)``).
    Module-level (not a lambda) so modules stay picklable for DDP spawn.
    """
    if isinstance(spec, list):  # configs (YAML/JSON) give tuples as lists
        spec = tuple(spec)
    win = scipy.signal.get_window(spec, length, fftbins=True)
    return torch.from_numpy(np.asarray(win, dtype=np.float64)).to(torch.float32)


def _as_batch(wave: Tensor) -> Tensor:
    """``[L]``, ``[B,L]`` or ``[B,1,L]`` -> ``[B,L]``."""
    if wave.dim() == 1:
        return wave[None]
    if wave.dim() == 2:
        return wave
    if wave.dim() == 3 and wave.shape[1] == 1:
        return wave[:, 0]
    raise ValueError(f"expected a waveform [L], [B,L] or [B,1,L], got shape {tuple(wave.shape)}")


class LogSpectrogram(nn.Module):
    """EZ-VSL-line front-end: ``log(S + eps) / scale`` with ``S`` scipy's PSD spectrogram.

    Equation (defaults = ``scipy.signal.spectrogram(x, fs, nperseg=512,
    noverlap=274)`` then ``np.log(S + 1e-7) / 12``)::

        S[k,t] = c_k * |STFT_w(x - mean_t(x))[k,t]|^2 / (fs * sum w^2)     (scaling="density")
        out    = log(S**(power/2) + eps) / scale

    Args:
        sample_rate: input rate ``fs``; enters only the density scale.
        n_fft: FFT size ``N``; ``N // 2 + 1`` bins (257 for 512).
        win_length: window length; must equal ``n_fft`` when ``detrend``
            (scipy's segment = window). Defaults to ``n_fft``.
        hop_length: frame step; 238 = 512 - 274 (scipy's ``noverlap=274``).
        window: a ``scipy.signal.get_window`` spec; scipy's default
            ``("tukey", 0.25)``; ``"hann"`` for the usual STFT.
        detrend: subtract each frame's mean before windowing (scipy's
            ``detrend='constant'``).
        scaling: ``"density"`` (PSD, scipy's default), ``"spectrum"``
            (``|X|^2 / (sum w)^2``, one-sided doubling as in scipy) or
            ``None`` (raw ``|X|^2``).
        power: 2 for a power spectrogram (the reference), 1 for magnitude;
            applied after scaling.
        eps, scale: ``log(S + eps) / scale``; 1e-7 and 12 in the reference.
        clip_seconds: if given, the centre ``clip_seconds * sample_rate``
            samples of the waveform are used (a longer window loaded once
            serves models with different audio lengths: 3 s for the EZ-VSL
            line, 5 s for JSA, 10 s for LVS); ``None`` (default) uses the
            input as given. An input shorter than the clip raises.
        eval_clip_seconds: the clip in eval mode (``None`` = ``clip_seconds``);
            SLAVC's reference trains on 3 s and tests on 5 s.
        freq_mask_param, time_mask_param: SpecAugment in TRAINING mode only
            (JSA's ``hard_aud``): one frequency and one time mask per sample
            (``torchaudio.transforms.FrequencyMasking``/``TimeMasking``,
            ``iid_masks=True``), width uniform in ``[0, param)``, value 0 (the
            reference sets the masked log-spectrogram entries to 0 before
            dividing by 12). 0 (default) disables a mask and draws no random
            numbers.

    Input ``[B,L]``/``[B,1,L]``/``[L]``, output ``[B,1,n_fft//2+1,T]`` with
    ``T = 1 + (L' - n_fft) // hop_length`` (no padding, as scipy; ``L'`` the
    clip length). Inputs shorter than ``n_fft`` raise.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 512,
        win_length: int | None = None,
        hop_length: int = 238,
        window: WindowSpec = ("tukey", 0.25),
        detrend: bool = True,
        scaling: Literal["density", "spectrum"] | None = "density",
        power: float = 2.0,
        eps: float = 1e-7,
        scale: float = 12.0,
        clip_seconds: float | None = None,
        eval_clip_seconds: float | None = None,
        freq_mask_param: int = 0,
        time_mask_param: int = 0,
    ) -> None:
        super().__init__()
        win_length = n_fft if win_length is None else win_length
        for name, value in (("clip_seconds", clip_seconds), ("eval_clip_seconds", eval_clip_seconds)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if freq_mask_param < 0 or time_mask_param < 0:
            raise ValueError("SpecAugment mask parameters must be >= 0")
        self.clip_seconds = clip_seconds
        self.eval_clip_seconds = eval_clip_seconds
        self.freq_mask = (torchaudio.transforms.FrequencyMasking(freq_mask_param, iid_masks=True)
                          if freq_mask_param > 0 else None)
        self.time_mask = (torchaudio.transforms.TimeMasking(time_mask_param, iid_masks=True)
                          if time_mask_param > 0 else None)
        if detrend and win_length != n_fft:
            raise ValueError("detrend=True needs win_length == n_fft (scipy's segment = window)")
        if scaling not in ("density", "spectrum", None):
            raise ValueError(f"scaling must be 'density', 'spectrum' or None, got {scaling!r}")
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.detrend = detrend
        self.power = float(power)
        self.eps = float(eps)
        self.scale = float(scale)
        self.stft = torchaudio.transforms.Spectrogram(
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            window_fn=scipy_window,
            wkwargs={"spec": window},
            power=None,  # complex: the detrend correction is applied before |.|^2
            center=False,
            normalized=False,
            onesided=True,
        )
        win = self.stft.window.to(torch.float64)
        # DFT of the window (zero-padded to n_fft like torch.stft does, centred).
        pad = (n_fft - win_length) // 2
        win_full = torch.nn.functional.pad(win, (pad, n_fft - win_length - pad))
        self.register_buffer("window_dft", torch.fft.rfft(win_full).to(torch.complex64), persistent=False)
        n_bins = n_fft // 2 + 1
        factor = torch.ones(n_bins, dtype=torch.float64)
        if scaling is not None:
            factor *= 1.0 / (sample_rate * (win**2).sum()) if scaling == "density" else 1.0 / win.sum() ** 2
            # one-sided spectrum: fold negative frequencies onto positive ones
            factor[1 : (-1 if n_fft % 2 == 0 else None)] *= 2.0
        self.register_buffer("bin_scale", factor.to(torch.float32)[:, None], persistent=False)

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, num_samples: int) -> int:
        """Number of STFT frames for an input of ``num_samples`` (no padding)."""
        return 1 + (num_samples - self.n_fft) // self.hop_length

    def clip_samples(self) -> int | None:
        """Samples of the centre clip in the current mode (``None`` = the whole input)."""
        seconds = self.clip_seconds
        if not self.training and self.eval_clip_seconds is not None:
            seconds = self.eval_clip_seconds
        return None if seconds is None else int(round(seconds * self.sample_rate))

    def crop(self, x: Tensor) -> Tensor:
        """Centre ``clip_samples()`` of ``x`` [..., L] (unchanged without ``clip_seconds``)."""
        n = self.clip_samples()
        if n is None or x.shape[-1] == n:
            return x
        if x.shape[-1] < n:
            raise ValueError(
                f"waveform of {x.shape[-1]} samples is shorter than the front-end's clip of "
                f"{n} samples: load a longer window (data clip_seconds)")
        start = (x.shape[-1] - n) // 2
        return x[..., start:start + n]

    def forward(self, wave: Tensor) -> Tensor:
        x = self.crop(_as_batch(wave).to(torch.float32))
        if x.shape[-1] < self.n_fft:
            raise ValueError(f"waveform of {x.shape[-1]} samples is shorter than n_fft={self.n_fft}")
        spec = self.stft(x)  # complex [B, F, T]
        if self.detrend:
            frame_mean = x.unfold(-1, self.n_fft, self.hop_length).mean(-1)  # [B, T]
            spec = spec - frame_mean[:, None, :] * self.window_dft[None, :, None]
        power = (spec.real.square() + spec.imag.square()) * self.bin_scale
        if self.power != 2.0:
            power = power.pow(self.power / 2.0)
        out = (torch.log(power + self.eps) / self.scale)[:, None]
        if self.training and (self.freq_mask is not None or self.time_mask is not None):
            out = self.spec_augment(out)
        return out

    def spec_augment(self, spec: Tensor) -> Tensor:
        """One frequency and one time mask per sample of ``spec`` [B,1,F,T] (value 0)."""
        if self.freq_mask is not None:
            spec = self.freq_mask(spec, mask_value=0.0)
        if self.time_mask is not None:
            spec = self.time_mask(spec, mask_value=0.0)
        return spec

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
                f"detrend={self.detrend}, power={self.power}, eps={self.eps}, scale={self.scale}, "
                f"clip_seconds={self.clip_seconds}")


class LogMelSpectrogram(nn.Module):
    """Log-mel spectrogram: ``log(M + eps)`` (or ``log(max(M, eps))``), ``M = mel(|STFT|^power)``.

    Equation::

        M[m,t] = sum_k H[m,k] |STFT_hann(x)[k,t]|^power
        out    = log(M + eps)                     (floor="add")
               = log(max(M, eps))                 (floor="clamp", SpecVQGAN / Action2Sound)

    with ``H`` a mel filter bank (``mel_scale``/``norm`` "slaney" = librosa's
    defaults). Defaults follow Action2Sound (see module doc): 16 kHz, n_fft
    1024, hop 256, 128 bands in 125-7600 Hz, magnitude (power 1), centred
    frames with zero padding (librosa >= 0.10's ``pad_mode="constant"``), so
    ``T = 1 + L // hop_length`` (188 frames for 3 s).

    Input ``[B,L]``/``[B,1,L]``/``[L]``, output ``[B,1,n_mels,T]``.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        win_length: int | None = None,
        hop_length: int = 256,
        n_mels: int = 128,
        f_min: float = 125.0,
        f_max: float | None = 7600.0,
        power: float = 1.0,
        center: bool = True,
        pad_mode: str = "constant",
        mel_scale: Literal["slaney", "htk"] = "slaney",
        norm: Literal["slaney"] | None = "slaney",
        eps: float = 1e-6,
        floor: Literal["add", "clamp"] = "add",
    ) -> None:
        super().__init__()
        if floor not in ("add", "clamp"):
            raise ValueError(f"floor must be 'add' or 'clamp', got {floor!r}")
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.hop_length = hop_length
        self.eps = float(eps)
        self.floor = floor
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            f_min=f_min,
            f_max=f_max,
            n_mels=n_mels,
            power=power,
            center=center,
            pad_mode=pad_mode,
            norm=norm,
            mel_scale=mel_scale,
        )

    def forward(self, wave: Tensor) -> Tensor:
        mel = self.mel(_as_batch(wave).to(torch.float32))  # [B, n_mels, T]
        mel = mel + self.eps if self.floor == "add" else mel.clamp_min(self.eps)
        return torch.log(mel)[:, None]

    def extra_repr(self) -> str:
        return f"sample_rate={self.sample_rate}, n_mels={self.n_mels}, eps={self.eps}, floor={self.floor!r}"
