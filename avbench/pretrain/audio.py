"""``audio-resnet18``: a spectrogram ResNet-18 in the role of VGGish (128-d embedding).

``AudioEncoder(arch="resnet18", width=16, layers=[1, 1, 1, 1])`` on a log-mel
of 0.96-s windows with VGGish's framing (:class:`VGGishLogMel`: 16 kHz, 64
HTK mel bands over 125-7500 Hz, 25-ms window, 10-ms hop, ``log(mel + 0.01)``,
96 frames) learns to classify the pretraining world's sounds
(:class:`~.corpus.SoundCorpus`, 1-s mixes; random gain and circular time
shift). Head: ``avgpool -> Linear(C, 128) -> ReLU -> Linear(128,
n_classes)``; the 128-d post-ReLU layer plays VGGish's embedding
(:class:`~.extractors.AudioFeatureExtractor`).

``DIR/model.safetensors``: the backbone in timm's resnet key layout
(``AudioEncoder(..., pretrained_path=...)`` strict-loads it) and ``head.*``; the
classifier and its training are shared with ``image-resnet18``
(:mod:`~avbench.pretrain.resnet_classifier`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from avbench.nn.encoders import AudioEncoder
from avbench.nn.frontends import LogMelSpectrogram
from avbench.pretrain.card import StandinCard
from avbench.pretrain.corpus import SoundCorpus
from avbench.pretrain.registry import StandinSpec, register_standin
from avbench.pretrain.resnet_classifier import WEIGHTS_FILE, ResNetClassifier, train_resnet_standin
from avbench.pretrain.training import StandinRun

__all__ = ["ARCHITECTURE", "AUDIO_SIZES", "SAMPLE_RATE", "WEIGHTS_FILE", "WINDOW_FRAMES",
           "AudioClassifier", "AudioSize", "VGGishLogMel", "augment_waves", "train_audio_resnet18"]

SAMPLE_RATE = 16000
#: frames of one 0.96-s example (VGGish)
WINDOW_FRAMES = 96
ARCHITECTURE: dict = {
    "arch": "resnet18", "width": 16, "layers": [1, 1, 1, 1], "in_chans": 1, "embedding_dim": 128,
    "head": "avgpool -> Linear(C, 128) -> ReLU -> Linear(128, n_classes)",
    "frontend": "VGGish log-mel: 16 kHz, 64 HTK mels 125-7500 Hz, win 400, hop 160, "
                "log(mel + 0.01), 96 frames (0.96 s)",
}


@dataclass(frozen=True)
class AudioSize:
    """Corpus and optimisation of one size preset."""

    n_train: int
    n_heldout: int
    seconds: float
    steps: int
    batch_size: int
    lr: float
    weight_decay: float


AUDIO_SIZES: dict[str, AudioSize] = {
    "tiny": AudioSize(n_train=128, n_heldout=64, seconds=1.0, steps=6, batch_size=32, lr=2e-3,
                      weight_decay=0.05),
    "default": AudioSize(n_train=2000, n_heldout=640, seconds=1.0, steps=250, batch_size=64,
                         lr=3e-3, weight_decay=0.05),
}


class VGGishLogMel(nn.Module):
    """``wave [B, L] at 16 kHz -> log-mel [B, 1, 64, 96]`` of the first 0.96 s (VGGish framing).

    Uncentred frames: ``1 + (L - 400) // 160`` of them; needs ``L >= 15600`` samples.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mel = LogMelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=512, win_length=400,
                                     hop_length=160, n_mels=64, f_min=125.0, f_max=7500.0,
                                     power=1.0, center=False, mel_scale="htk", norm=None, eps=0.01)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = self.mel(wave)
        if spec.shape[-1] < WINDOW_FRAMES:
            raise ValueError(f"need at least 0.975 s of audio for a 0.96-s window, got "
                             f"{wave.shape[-1]} samples")
        return spec[..., :WINDOW_FRAMES]


class AudioClassifier(ResNetClassifier):
    """Log-mel front-end + ``AudioEncoder`` + the 128-d head (module docstring).

    ``forward(wave [B, L >= 15600] at 16 kHz) -> logits [B, n_classes]``;
    :meth:`embed` gives the 128-d post-ReLU layer.
    """

    def __init__(self, n_classes: int, width: int = 16, layers: tuple[int, ...] = (1, 1, 1, 1),
                 embedding_dim: int = 128, pretrained_path: str | None = None) -> None:
        frontend = VGGishLogMel()  # no parameters; built first as before the encoder
        super().__init__(AudioEncoder("resnet18", in_chans=1, pretrained_path=pretrained_path,
                                      width=width, layers=list(layers)), embedding_dim, n_classes)
        self.frontend = frontend

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, L] -> [B, embedding_dim] (post-ReLU) of the first 0.96 s."""
        return self.head_features(self.frontend(wave))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head.fc2(self.embed(wave))


def augment_waves(wave: torch.Tensor) -> torch.Tensor:
    """Random gain (+/- 6 dB) and a random circular shift of up to 0.25 s: [B, L] -> [B, L]."""
    b, n = wave.shape
    gain = 10 ** (torch.empty(b, 1).uniform_(-6.0, 6.0) / 20)
    shift = torch.randint(-SAMPLE_RATE // 4, SAMPLE_RATE // 4 + 1, (b,))
    idx = (torch.arange(n)[None, :] - shift[:, None]) % n
    return torch.gather(wave, 1, idx) * gain


def train_audio_resnet18(out_dir: Path, seed: int, size: str, progress: bool = True) -> StandinCard:
    """Train ``audio-resnet18`` into ``out_dir`` (weights, then the card); returns the card."""
    p = AUDIO_SIZES[size]
    run = StandinRun.start("audio-resnet18", out_dir, seed, size)
    return train_resnet_standin(
        run, lambda n: AudioClassifier(n, ARCHITECTURE["width"], tuple(ARCHITECTURE["layers"]),
                                       ARCHITECTURE["embedding_dim"]),
        SoundCorpus(run.world, p.n_train, seed, "train", p.seconds, SAMPLE_RATE),
        SoundCorpus(run.world, p.n_heldout, seed, "heldout", p.seconds, SAMPLE_RATE), p,
        architecture=ARCHITECTURE, corpus={"kind": "SoundCorpus", "sample_rate": SAMPLE_RATE},
        augment=augment_waves, progress=progress)


register_standin(StandinSpec(
    name="audio-resnet18",
    description="spectrogram ResNet-18 (width 16) classifying world sounds on VGGish log-mel "
                "windows: plays VGGish (128-d embedding) and the papers' audio ResNet",
    train=train_audio_resnet18))
