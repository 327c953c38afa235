"""AV-LDM's (Action2Sound) mel front-end and its Griffin-Lim inverse, on ``torchaudio``.

Reference: ``ChanganVR/action2sound`` ``ldm/datasets/utils.py`` (``TRANSFORMS_LDM``) and
``ldm/logger.py`` (``spec_to_wav``). The reference computes, with librosa 0.8::

    mel  = mel_basis(sr 16000, n_fft 1024, 125-7600 Hz, 128 bands, Slaney) @ |stft(x, n_fft 1024, hop 256)|
    spec = clip((20 * log10(max(mel, 1e-5)) - 20 + 100) / 100, 0, 1)          # "reference" scaling

(librosa's STFT: centred, reflect padding, periodic Hann window; 3 s -> 188 frames) and
zero-pads the frames to 196 (``input_tdim``). Here the same magnitude mel comes from
``torchaudio.transforms.MelSpectrogram(n_fft=1024, hop_length=256, n_mels=128, f_min=125,
f_max=7600, power=1, norm="slaney", mel_scale="slaney", center=True, pad_mode="reflect")``.

Two scalings (``scaling``), because an autoencoder only means something on the input it
was trained on:

- ``"reference"``: the dB map above into [0, 1] (the reference and a real
  Stable-Diffusion-style mel autoencoder trained on it);
- ``"standin"``: ``(ln(max(mel, 1e-5)) - (-4)) / 1.5``, the scaling the ``mel-autoencoder``
  stand-in was trained on (:mod:`avbench.pretrain.autoencoder`, constants imported from
  there: one home).

Padding to ``frames`` uses the scaled floor (silence: 0 for ``"reference"`` as the
reference's zero padding, -5 for ``"standin"``); longer inputs are cropped.

Inverse (:class:`GriffinLimVocoder`): magnitude mel -> linear STFT magnitude by
``torchaudio.transforms.InverseMelScale`` (least squares, negative values clamped to 0;
librosa's ``mel_to_stft`` solves a non-negative least squares: a small difference) ->
``torchaudio.transforms.GriffinLim`` (32 iterations, momentum 0.99, random phase init:
librosa's ``griffinlim`` defaults, as the reference's Griffin-Lim path). The reference's
default test-time vocoder is a HiFi-GAN trained on its data; those weights are not
available here (never downloaded), so Griffin-Lim is the vocoder.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torchaudio
from torch import Tensor, nn

from avbench.pretrain.autoencoder import LOG_CLAMP, LOG_MEL_MEAN, LOG_MEL_STD

__all__ = ["AVLDM_MEL", "GriffinLimVocoder", "MelScaling", "ScaledLogMel"]

MelScaling = Literal["reference", "standin"]
#: AV-LDM's mel parameters (reference ``TRANSFORMS_LDM``)
AVLDM_MEL: dict[str, float | int] = {"sample_rate": 16000, "n_fft": 1024, "hop_length": 256,
                                     "n_mels": 128, "f_min": 125.0, "f_max": 7600.0}
_DB = 20.0 / math.log(10.0)  # 20 log10 x = _DB * ln x


class ScaledLogMel(nn.Module):
    """Wave ``[B, L]`` / ``[B, 1, L]`` -> scaled log-mel ``[B, 1, n_mels, frames]`` (module doc).

    Args:
        scaling: ``"reference"`` (dB map to [0, 1]) or ``"standin"`` (the stand-in's).
        frames: pad (with the scaled floor) or crop the time axis to this many frames;
            ``None``: keep ``1 + L // hop_length``. Reference: 196.
        sample_rate, n_fft, hop_length, n_mels, f_min, f_max: :data:`AVLDM_MEL`.

    Raises:
        ValueError: an unknown ``scaling`` or a non-positive ``frames``.
    """

    def __init__(self, scaling: MelScaling = "reference", frames: int | None = 196,
                 sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 256,
                 n_mels: int = 128, f_min: float = 125.0, f_max: float = 7600.0) -> None:
        super().__init__()
        if scaling not in ("reference", "standin"):
            raise ValueError(f"mel scaling must be 'reference' or 'standin', got {scaling!r}")
        if frames is not None and frames < 1:
            raise ValueError(f"frames must be positive, got {frames}")
        self.scaling, self.frames = scaling, frames
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.n_mels, self.f_min, self.f_max = n_mels, f_min, f_max
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
            f_min=f_min, f_max=f_max, power=1.0, norm="slaney", mel_scale="slaney",
            center=True, pad_mode="reflect")

    def frames_of(self, num_samples: int) -> int:
        """STFT frames of a wave of ``num_samples`` (centred): ``1 + L // hop``."""
        return 1 + num_samples // self.hop_length

    def scale(self, mel: Tensor) -> Tensor:
        """Magnitude mel (any shape) -> scaled log-mel."""
        log_mel = torch.log(mel.clamp(min=LOG_CLAMP))
        if self.scaling == "reference":
            return ((_DB * log_mel + 80.0) / 100.0).clamp(0.0, 1.0)
        return (log_mel - LOG_MEL_MEAN) / LOG_MEL_STD

    def unscale(self, x: Tensor) -> Tensor:
        """Scaled log-mel -> magnitude mel (the reference's ``10 ** ((100 x - 80) / 20)``)."""
        if self.scaling == "reference":
            return torch.exp((100.0 * x - 80.0) / _DB)
        return torch.exp(x * LOG_MEL_STD + LOG_MEL_MEAN)

    @property
    def floor(self) -> float:
        """The scaled value of silence (the padding value)."""
        return float(self.scale(torch.zeros(())))

    def forward(self, wave: Tensor) -> Tensor:
        if wave.dim() == 3:
            if wave.shape[1] != 1:
                raise ValueError(f"expected a mono wave [B,1,L], got {tuple(wave.shape)}")
            wave = wave[:, 0]
        if wave.dim() != 2:
            raise ValueError(f"expected a wave [B,L] or [B,1,L], got {tuple(wave.shape)}")
        x = self.scale(self.mel(wave.float()))  # [B, n_mels, T]
        if self.frames is not None:
            t = x.shape[-1]
            x = (x[..., :self.frames] if t >= self.frames
                 else nn.functional.pad(x, (0, self.frames - t), value=self.floor))
        return x.unsqueeze(1)


class GriffinLimVocoder(nn.Module):
    """Magnitude mel ``[B, n_mels, T]`` -> wave ``[B, length]`` (InverseMelScale + GriffinLim).

    Args:
        length: output samples (``None``: ``hop * (T - 1)``); 48,000 for 3 s at 16 kHz.
        n_iter, momentum: Griffin-Lim iterations and momentum (32, 0.99: librosa's).
        sample_rate, n_fft, hop_length, n_mels, f_min, f_max: as the front-end's.

    ``forward(mel, generator=None)``: the random initial phase is drawn from the global
    RNG, or reproducibly from a seed drawn from ``generator``.
    """

    def __init__(self, length: int | None = None, n_iter: int = 32, momentum: float = 0.99,
                 sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 256,
                 n_mels: int = 128, f_min: float = 125.0, f_max: float = 7600.0) -> None:
        super().__init__()
        self.inverse_mel = torchaudio.transforms.InverseMelScale(
            n_stft=n_fft // 2 + 1, n_mels=n_mels, sample_rate=sample_rate, f_min=f_min,
            f_max=f_max, norm="slaney", mel_scale="slaney")
        self.griffin_lim = torchaudio.transforms.GriffinLim(
            n_fft=n_fft, n_iter=n_iter, hop_length=hop_length, power=1.0, momentum=momentum,
            length=length, rand_init=True)

    def forward(self, mel: Tensor, generator: torch.Generator | None = None) -> Tensor:
        spec = self.inverse_mel(mel.float())
        if generator is None:
            return self.griffin_lim(spec)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.griffin_lim(spec)
