"""Stand-in ``mel-autoencoder``: a small ``diffusers.AutoencoderKL`` on log-mels (AV-LDM's autoencoder).

Action2Sound's AV-LDM diffuses in the latent of a Stable-Diffusion-style
autoencoder over mel spectrograms (REFERENCE.md C). The stand-in is
``diffusers.AutoencoderKL`` at CPU size (:data:`AE_CONFIG`): one input channel
(the log-mel as a 1 x 128 x T image), three encoder/decoder blocks of 16, 32, 32
channels (one resnet each), so the latent is downsampled 4x in mel and time,
4 latent channels, no attention in the mid block (fully convolutional: it
trains on 1-s windows and applies to AV-LDM's 3-s ones), GroupNorm with 16
groups. Loads as the real one does::

    AutoencoderKL.from_pretrained(DIR, local_files_only=True)

Front-end (:class:`MelFrontEnd`, AV-LDM's): 16 kHz mono, ``torchaudio``
``MelSpectrogram(n_fft=1024, hop_length=256, n_mels=128, f_min=125, f_max=7600,
power=1.0, norm="slaney", mel_scale="slaney")`` (magnitude mel, the
HiFi-GAN/AudioLDM convention), ``log(clamp(mel, 1e-5))``, then normalised as
``(log_mel - LOG_MEL_MEAN) / LOG_MEL_STD`` with the fixed constants -4.0 and
1.5 (on the pretraining sounds the log-mel has mean -4.2 and std 1.07, so the
input is about zero-mean with std 0.7); frames are cropped to a multiple of 4
(3 s -> 188 frames, 1 s -> 60).

Training (own loop, no classifier): 1-s windows of
:class:`~avbench.pretrain.corpus.SoundCorpus` (pretraining categories, disjoint
from every benchmark's), loss = L1 reconstruction summed per sample +
``KL_WEIGHT`` (1e-6, the LDM/Stable-Diffusion autoencoder's weight) x the
posterior's KL to N(0, I) summed per sample, both averaged over the batch
(LDM's ``LPIPSWithDiscriminator`` without its LPIPS and GAN terms); AdamW, lr
1e-3, linear warm-up + cosine. The card's held-out figures are per-element L1 and
MSE of the reconstruction from the posterior mode on held-out clips, and, for
scale, the L1 of predicting each held-out mel by the training mean.
``config.scaling_factor`` is set to 1 / std of the training latents (how
Stable Diffusion's 0.18215 was chosen), so ``latents * scaling_factor`` has
unit variance for the diffusion model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from avbench.pretrain.card import StandinCard
from avbench.pretrain.corpus import SoundCorpus
from avbench.pretrain.local_pretrained import from_pretrained_checked
from avbench.pretrain.registry import StandinSpec, register_standin
from avbench.pretrain.training import StandinRun, seed_everything

__all__ = ["AE_CONFIG", "KL_WEIGHT", "LOG_MEL_MEAN", "LOG_MEL_STD", "MEL", "NAME", "MelFrontEnd",
           "load_autoencoder", "train"]

NAME = "mel-autoencoder"
CONFIG_FILE, WEIGHTS_FILE = "config.json", "diffusion_pytorch_model.safetensors"
#: AV-LDM's mel front-end (16 kHz, 3-s clips in the paper)
MEL: dict[str, Any] = {"sample_rate": 16000, "n_fft": 1024, "hop_length": 256, "n_mels": 128,
                       "f_min": 125.0, "f_max": 7600.0, "power": 1.0, "norm": "slaney",
                       "mel_scale": "slaney"}
LOG_MEL_MEAN, LOG_MEL_STD, LOG_CLAMP = -4.0, 1.5, 1e-5
DOWNSAMPLE = 4  # 2 ** (len(block_out_channels) - 1)
KL_WEIGHT = 1e-6
AE_CONFIG: dict[str, Any] = {
    "in_channels": 1, "out_channels": 1, "latent_channels": 4,
    "down_block_types": ["DownEncoderBlock2D"] * 3, "up_block_types": ["UpDecoderBlock2D"] * 3,
    "block_out_channels": [16, 32, 32], "layers_per_block": 1, "norm_num_groups": 16,
    "sample_size": 128, "mid_block_add_attention": False,
}
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"n_train": 32, "n_heldout": 16, "steps": 4, "batch_size": 8, "lr": 1e-3},
    "default": {"n_train": 1024, "n_heldout": 128, "steps": 120, "batch_size": 16, "lr": 1e-3},
}


class MelFrontEnd(nn.Module):
    """AV-LDM's log-mel, normalised: wave ``[B, L]`` at 16 kHz -> ``[B, 1, 128, T]``,
    ``T = (1 + L // 256)`` cropped down to a multiple of 4 (module doc)."""

    def __init__(self) -> None:
        super().__init__()
        import torchaudio

        self.mel = torchaudio.transforms.MelSpectrogram(**MEL)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        log_mel = torch.log(self.mel(wave).clamp(min=LOG_CLAMP))
        frames = log_mel.shape[-1] // DOWNSAMPLE * DOWNSAMPLE
        return ((log_mel[..., :frames] - LOG_MEL_MEAN) / LOG_MEL_STD).unsqueeze(1)

    @staticmethod
    def to_log_mel(x: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation: ``[B, 1, 128, T]`` -> natural-log magnitude mel ``[B, 128, T]``."""
        return x.squeeze(1) * LOG_MEL_STD + LOG_MEL_MEAN


def load_autoencoder(out_dir: str | Path) -> nn.Module:
    """``AutoencoderKL.from_pretrained(out_dir, local_files_only=True)`` in eval mode.

    Raises:
        avbench.nn.weights.WeightsError: ``config.json`` / the weights file missing, truncated
            or mismatched (the message names the directory and files).
    """
    from diffusers import AutoencoderKL

    return from_pretrained_checked(AutoencoderKL, out_dir, (CONFIG_FILE, WEIGHTS_FILE)).eval()


def _mels(corpus: SoundCorpus, frontend: MelFrontEnd, desc: str, progress: bool) -> torch.Tensor:
    waves = torch.stack([corpus[i][0] for i in tqdm(range(len(corpus)), desc=desc, leave=False,
                                                     disable=None if progress else True)])
    with torch.no_grad():
        return frontend(waves)


def _heldout(ae: nn.Module, mels: torch.Tensor, train_mean: torch.Tensor,
             batch_size: int) -> dict[str, float]:
    ae.eval()
    l1 = mse = 0.0
    with torch.no_grad():
        for x in mels.split(batch_size):
            rec = ae.decode(ae.encode(x).latent_dist.mode()).sample
            l1 += float((rec - x).abs().sum())
            mse += float((rec - x).square().sum())
    n = mels.numel()
    return {"l1": l1 / n, "mse": mse / n, "loss": l1 / n,
            "l1_mean_predictor": float((mels - train_mean).abs().mean())}


def _latent_std(ae: nn.Module, mels: torch.Tensor, batch_size: int) -> float:
    with torch.no_grad():
        z = torch.cat([ae.encode(x).latent_dist.mode() for x in mels.split(batch_size)])
    return float(z.std())


def train(out_dir: Path, seed: int = 0, size: str = "default", progress: bool = True) -> StandinCard:
    """Train the mel autoencoder into ``out_dir`` (``config.json``,
    ``diffusion_pytorch_model.safetensors``, ``card.json``). Deterministic in ``(seed, size)``."""
    from diffusers import AutoencoderKL

    cfg = SIZES[size]
    run = StandinRun.start(NAME, out_dir, seed, size)
    world = run.world
    frontend = MelFrontEnd()
    mels = {split: _mels(SoundCorpus(world, cfg[f"n_{split}"], seed, split, 1.0, MEL["sample_rate"]),
                         frontend, f"{NAME} {split} sounds", progress)
            for split in ("train", "heldout")}
    seed_everything(seed)
    ae = AutoencoderKL(**AE_CONFIG)
    opt = torch.optim.AdamW(ae.parameters(), lr=cfg["lr"], weight_decay=0.0)
    steps, bs = cfg["steps"], cfg["batch_size"]
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else
                                              0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    gen = torch.Generator().manual_seed(seed)
    ae.train()
    order = torch.randperm(len(mels["train"]), generator=gen)
    pos, last = 0, []
    for _ in tqdm(range(steps), desc=f"pretrain {NAME}", leave=False, disable=None if progress else True):
        if pos + bs > len(order):
            order, pos = torch.randperm(len(mels["train"]), generator=gen), 0
        x = mels["train"][order[pos:pos + bs]]
        pos += bs
        post = ae.encode(x).latent_dist
        rec = ae.decode(post.sample(generator=gen)).sample
        loss = ((rec - x).abs().sum() + KL_WEIGHT * post.kl().sum()) / len(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        last.append(float(loss.detach()) / x[0].numel())
    heldout = _heldout(ae, mels["heldout"], mels["train"].mean(dim=0, keepdim=True), bs)
    ae.register_to_config(scaling_factor=1.0 / max(_latent_std(ae, mels["train"], bs), 1e-6))
    ae.save_pretrained(run.out_dir, safe_serialization=True)
    frames = mels["train"].shape[-1]
    return run.finish(
        architecture={"library": "diffusers", "class": "AutoencoderKL", "config": dict(AE_CONFIG),
                      "scaling_factor": float(ae.config.scaling_factor),
                      "load": "AutoencoderKL.from_pretrained(DIR, local_files_only=True)",
                      "frontend": {**MEL, "log": f"ln(clamp(mel, {LOG_CLAMP}))",
                                   "normalise": f"(log_mel - ({LOG_MEL_MEAN})) / {LOG_MEL_STD}",
                                   "frames": f"cropped to a multiple of {DOWNSAMPLE}"},
                      "loss": f"sum L1 + {KL_WEIGHT} * sum KL per sample, batch mean",
                      "latent": f"4 x 32 x T/4 (input 1 x 128 x T, T a multiple of {DOWNSAMPLE})",
                      "role": "Stable-Diffusion-style mel autoencoder (AV-LDM)"},
        files={"config": CONFIG_FILE, "weights": WEIGHTS_FILE},
        corpus={"kind": "SoundCorpus", "n_train": cfg["n_train"], "n_heldout": cfg["n_heldout"],
                "seconds": 1.0, "frames": frames, "sample_rate": MEL["sample_rate"],
                "batch_size": bs, "lr": cfg["lr"],
                "train_l1_last": float(sum(last[-20:]) / max(1, len(last[-20:])))},
        steps=steps, heldout=heldout)


register_standin(StandinSpec(
    name=NAME,
    description="diffusers AutoencoderKL (16/32/32 channels, 4 latent channels, 4x down) on AV-LDM "
                "log-mels of world sounds: the Stable-Diffusion autoencoder's role (AV-LDM)",
    train=train,
))
