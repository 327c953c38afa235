"""Action2Sound / AV-LDM: "Action2Sound: Ambient-Aware Generation of Action Sounds from
Egocentric Videos" (Chen et al., ECCV 2024; REFERENCE C). Reference code:
``ChanganVR/action2sound`` (``configs/ldm/ego4dsounds.yaml``,
``ldm/models/diffusion/sd_ddpm_scale.py``, ``ldm/modules/cond_stage/*.py``,
``ldm/datasets/{ego4dsounds_dataset,utils}.py``, ``ldm/logger.py``, the README's training
command). Built on ``diffusers``; no hand-written diffusion. docs/avldm.md has every
default with its source.

Audio representation (:class:`avbench.nn.mel.ScaledLogMel`)
    16 kHz, 3 s, magnitude mel (n_fft 1024, hop 256, 128 Slaney bands, 125-7600 Hz,
    ``torchaudio.transforms.MelSpectrogram``) -> ``mel_scaling``: ``"reference"`` =
    ``clip((20 log10(max(mel, 1e-5)) + 80) / 100, 0, 1)`` (the reference's dB map), or
    ``"standin"`` = the mel-autoencoder stand-in's ``(ln(max(mel, 1e-5)) + 4) / 1.5``;
    padded with silence to ``mel_frames`` (reference 196; 3 s gives 188). The image
    ``[B, 1, 128, frames]`` is repeated to the autoencoder's input channels (3 for the
    Stable-Diffusion autoencoder, as the reference repeats it; 1 for the stand-in).

Latent (``diffusers.AutoencoderKL`` from the local directory ``autoencoder``, frozen)
    ``z0 = scale_factor * posterior.sample()`` (the reference's
    ``get_first_stage_encoding``; ``scale_factor`` 0.18215, Stable Diffusion's, or
    ``None``: the autoencoder config's ``scaling_factor`` (the stand-in's 1 / std of its
    training latents, how 0.18215 was chosen)). Reference latent: 4 x 16 x 24.

Conditions (cross-attention tokens, width ``d`` = the UNet's ``cross_attention_dim``)
    video: ``batch["frames"]`` [B, T, 3, H, W] (T = ``video_frames``, reference 16) through
    the frozen image encoder (``image_*``; the image stand-in on the synthetic world),
    pooled per frame over space (``frame_pool`` "max": the reference's
    ``--pool-patches max``) -> [B, T, C] -> Linear(C, d) + learned positional embedding
    (T): reference ``Video_Feat_Encoder_Posembed``.
    audio (ambient condition): ``batch["cond_audio"]`` [B, 1, L], a clip of the same long
    video at another time (the Ego4D datamodule with ``with_cond_audio=True``), through
    the same mel + autoencoder (``scale_factor * posterior.sample()``) -> latent
    [B, c, f, t] -> per latent time step the c*f values -> MLP (Linear(c f, 512), GELU,
    Linear(512, d)) + learned positional embedding (t): reference
    ``Audio_Feat_Encoder_Posembed``; appended after the video tokens (T + t tokens).
    A batch without ``cond_audio`` gets the zero audio condition (zero tokens; warned once).

Training (``compute_losses``; reference ``LatentDiffusion.get_input`` / ``p_losses``)
    ``t ~ U{0..999}``, ``eps ~ N(0, I)``, ``z_t = DDPMScheduler.add_noise(z0, eps, t)``
    (1000 steps, betas ``scaled_linear`` 0.00085 -> 0.012: the reference's "linear"
    schedule in sqrt space), loss ``diffusion = mean ||eps - UNet(z_t, t, tokens)||^2``
    (``l_simple_weight`` 1, no VLB term). Condition dropout per sample: the video features
    are replaced by zeros with probability ``video_drop_prob`` (0.2, the reference's
    ``class_free_drop_prob``: the video tokens then are the linear's bias + positions);
    the audio tokens by zeros with probability ``audio_drop_prob`` (reference: the
    training command's ``neighbor_audio_cond_prob=1`` keeps it always, i.e. 0.0).
    AdamW (torch defaults: weight decay 0.01) lr 1e-4 (``base_learning_rate``, not scaled)
    with a linear warm-up from 1e-6 x lr over 1,000 steps, then constant
    (``LambdaLinearScheduler``). Trained: UNet, video and audio condition encoders.

Sampling (``generate_audio``)
    ``sampler`` "ddim" (``DDIMScheduler``, Stable Diffusion's settings: leading spacing,
    offset 1, eta 0) or "dpm_solver" (``DPMSolverMultistepScheduler``, DPM-Solver++ order 2:
    the reference's test sampler), ``sampling_steps`` 25 (the reference's test call);
    classifier-free guidance ``eps = eps_u + s (eps_c - eps_u)`` with ``s`` =
    ``guidance_scale`` 6.5 and the unconditional tokens ``uncond``: "zero" (all tokens 0:
    the reference's ``uncond_cond``) or "null_video" (the training-time null: video
    features zeroed, audio condition kept). Then ``z0 / scale_factor`` -> decoder ->
    first channel -> crop to the clip's frames -> unscale -> Griffin-Lim
    (:class:`avbench.nn.mel.GriffinLimVocoder`; the reference's HiFi-GAN weights are not
    available here) -> wave [B, clip_seconds * 16000].
    Test-time audio conditions (the generation task composes them): "same_video" (the
    batch's ``cond_audio``), "retrieved" (:func:`retrieve_condition`: top-1 training audio
    by audio-visual cosine under any suite model's ``embed``), "low_ambient"
    (:func:`lowest_energy_index`: the quietest training clip, for every test clip), "zero".

Deviations, with reasons (docs/avldm.md)
    - Video tower: the reference's frozen EgoVLP TimeSformer (768-d, patch tokens max-pooled
      per frame) is not available; a frozen per-frame image encoder (timm, local weights)
      pooled the same way takes its place.
    - Vocoder Griffin-Lim (above); InverseMelScale is least squares, librosa's NNLS.
    - Sampler DDIM by default (issue 17); the reference samples with DPM-Solver++ (25
      steps), available as ``sampler="dpm_solver"``.
    - The reference runs its audio-condition MLP under ``torch.no_grad`` and outside the
      optimizer, so it stays at its random initialisation; the paper describes a learned
      MLP. Default: trained; ``train_audio_encoder=False`` reproduces the released code.
    - The condition clip is chosen by the datamodule once per clip (stable hash among the
      3 nearest narrations on either side at least one clip length away), the reference
      draws one of its 3 + 3 neighbouring table rows anew at every load.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avbench.models.base import AVModel, FitStage, ModelMeta, register
from avbench.nn.encoders import ImageEncoder
from avbench.nn.mel import AVLDM_MEL, GriffinLimVocoder, MelScaling, ScaledLogMel
from avbench.nn.weights import WeightsError, resolve_weights_path

__all__ = ["AVLDM", "SD_V1_UNET", "Condition", "lowest_energy_index", "retrieve_condition"]

log = logging.getLogger(__name__)

#: Stable Diffusion v1's UNet layout (reference ``unet_config``: model_channels 320,
#: channel_mult 1,2,4,4, 2 res blocks, attention at the first three levels, 8 heads,
#: transformer depth 1, context 768) as ``UNet2DConditionModel`` arguments
SD_V1_UNET: dict[str, Any] = {
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                         "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                       "CrossAttnUpBlock2D"],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "attention_head_dim": 8,
    "cross_attention_dim": 768,
    "transformer_layers_per_block": 1,
    "norm_num_groups": 32,
}
#: the reference's noise schedule (``timesteps`` 1000, ``linear_start`` 0.00085,
#: ``linear_end`` 0.012; ldm's "linear" = diffusers' "scaled_linear"), epsilon prediction
NOISE_SCHEDULE: dict[str, Any] = {"num_train_timesteps": 1000, "beta_start": 0.00085,
                                  "beta_end": 0.012, "beta_schedule": "scaled_linear",
                                  "prediction_type": "epsilon", "clip_sample": False}
AE_FILES = ("config.json", "diffusion_pytorch_model.safetensors")
Condition = Literal["batch", "zero"] | Tensor


def retrieve_condition(video_emb: Tensor, train_audio_emb: Tensor) -> Tensor:
    """Top-1 training audio per query by cosine similarity (the reference's retrieval).

    Args:
        video_emb: [B, D] visual embeddings of the test clips (any suite model's ``embed``).
        train_audio_emb: [N, D] audio embeddings of the training clips (same model).

    Returns:
        [B] long indices into the training clips.

    Raises:
        ValueError: shapes that are not [B, D] and [N >= 1, D].
    """
    if video_emb.dim() != 2 or train_audio_emb.dim() != 2 or train_audio_emb.shape[0] == 0 \
            or video_emb.shape[1] != train_audio_emb.shape[1]:
        raise ValueError(f"expected [B,D] and [N,D] embeddings, got {tuple(video_emb.shape)} and "
                         f"{tuple(train_audio_emb.shape)}")
    sim = F.normalize(video_emb.float(), dim=-1) @ F.normalize(train_audio_emb.float(), dim=-1).t()
    return sim.argmax(dim=1)


def lowest_energy_index(waves: Tensor) -> int:
    """Index of the clip with the lowest mean energy ``mean(x^2)`` among ``waves`` [N, L]
    (or [N, 1, L]): the low-ambient condition (the reference hand-picks one quiet clip)."""
    if waves.dim() == 3:
        waves = waves.flatten(1)
    if waves.dim() != 2 or waves.shape[0] == 0:
        raise ValueError(f"expected waves [N,L] with N >= 1, got {tuple(waves.shape)}")
    return int(waves.float().square().mean(dim=1).argmin())


class AudioConditionEncoder(nn.Module):
    """Latent [B, c, f, t] -> tokens [B, t, d]: MLP over the c*f values of each latent time
    step + learned positions (reference ``Audio_Feat_Encoder_Posembed``)."""

    def __init__(self, channels: int, freq: int, length: int, dim: int, hidden: int = 512) -> None:
        super().__init__()
        self.shape = (channels, freq, length)
        self.mlp = nn.Sequential(nn.Linear(channels * freq, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.pos = nn.Embedding(length, dim)

    def forward(self, z: Tensor) -> Tensor:
        if tuple(z.shape[1:]) != self.shape:
            raise ValueError(f"audio-condition latent {tuple(z.shape[1:])} != expected {self.shape}")
        x = self.mlp(z.flatten(1, 2).transpose(1, 2))
        return x + self.pos.weight[None]


class VideoConditionEncoder(nn.Module):
    """Per-frame features [B, T, C] -> tokens [B, T, d]: Linear + learned positions
    (reference ``Video_Feat_Encoder_Posembed``)."""

    def __init__(self, in_dim: int, dim: int, frames: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, dim)
        self.pos = nn.Embedding(frames, dim)

    def forward(self, feats: Tensor) -> Tensor:
        return self.proj(feats) + self.pos.weight[None, :feats.shape[1]]


def _latent_size(n: int, downsamples: int) -> int:
    for _ in range(downsamples):  # diffusers' Downsample2D: pad (0,1), conv k3 s2 -> floor(n/2)
        n //= 2
    return n


def load_mel_autoencoder(directory: str | Path) -> nn.Module:
    """``AutoencoderKL.from_pretrained(directory, local_files_only=True)``, frozen, eval mode.

    Raises:
        WeightsError: the directory, ``config.json`` or the weights file is missing,
            truncated or does not fit (the message names the path).
    """
    from diffusers import AutoencoderKL

    from avbench.pretrain.local_pretrained import from_pretrained_checked

    path = resolve_weights_path(directory)
    if not (path / "config.json").is_file():
        raise WeightsError(f"mel autoencoder {str(path / 'config.json')!r} does not exist (build the "
                           f"stand-in with `avbench pretrain mel-autoencoder --out {path}`, or give a "
                           "local diffusers AutoencoderKL directory)")
    ae = from_pretrained_checked(AutoencoderKL, path, AE_FILES).eval()
    ae.requires_grad_(False)
    return ae


@register("avldm")
class AVLDM(AVModel):
    """AV-LDM (module docstring: equations, defaults, deviations).

    Args:
        autoencoder: local ``diffusers`` AutoencoderKL directory (required).
        mel_scaling: ``"reference"`` or ``"standin"`` (the scaling the autoencoder was
            trained on).
        mel_frames: mel frames fed to the autoencoder (reference 196; the stand-in needs a
            multiple of 4: 188).
        scale_factor: latent scale (0.18215); ``None``: the autoencoder's ``scaling_factor``.
        clip_seconds, sample_rate: generated length (3 s at 16 kHz).
        unet: ``UNet2DConditionModel`` arguments over :data:`SD_V1_UNET` (``in_channels`` /
            ``out_channels`` default to the autoencoder's latent channels).
        unet_pretrained: local ``UNet2DConditionModel`` directory to start from (the
            reference starts from Stable Diffusion v1.4); ``None``: random init.
        image_arch, image_pretrained, image_width, image_layers: the frozen frame encoder
            (:class:`~avbench.nn.encoders.ImageEncoder`).
        frame_pool: ``"max"`` (reference) or ``"mean"`` over each frame's feature map.
        video_frames: frames per clip (16); the batch must have exactly this many.
        audio_condition: use the ambient audio tokens at all (reference: yes).
        audio_hidden: hidden width of the audio-condition MLP (512).
        train_audio_encoder: train the audio-condition MLP (module doc, deviations).
        video_drop_prob, audio_drop_prob: condition dropout in training (0.2, 0.0).
        guidance_scale: classifier-free guidance at test (6.5).
        uncond: unconditional tokens of the guidance, ``"zero"`` or ``"null_video"``.
        sampler, sampling_steps, ddim_eta: test sampler (``"ddim"``, 25, 0.0).
        griffin_lim_iters: Griffin-Lim iterations (32).
        warmup_steps: linear warm-up (1,000 steps, from 1e-6 x lr).
        max_epochs: training length (8, the README's ``--epoch 8``); ``None``: the trainer
            config's.
        gradient_checkpointing: UNet activation checkpointing (reference ``use_checkpoint``).
        precision: Trainer precision the method asks for (``None``: the trainer config's).
        global_batch_size: the recipe's global batch (paper: 90 x 8 = 720).
        lr, weight_decay, optimizer, betas: :class:`AVModel` (AdamW 1e-4, 0.01).

    Raises:
        ValueError: inconsistent options (UNet channels vs the autoencoder's latent
            channels, naming its config.json; unknown pooling/sampler/uncond).
        avbench.nn.weights.WeightsError: the autoencoder / UNet / image weights do not load.
    """

    meta = ModelMeta(
        name="avldm",
        paper="Action2Sound: Ambient-Aware Generation of Action Sounds from Egocentric Videos "
              "(Chen et al., ECCV 2024)",
        year=2024,
        capabilities=frozenset({"generate_audio"}),
        reference_code="https://github.com/ChanganVR/action2sound",
    )

    def __init__(
        self,
        autoencoder: str | None = None,
        mel_scaling: MelScaling = "reference",
        mel_frames: int = 196,
        scale_factor: float | None = 0.18215,
        clip_seconds: float = 3.0,
        sample_rate: int = 16000,
        unet: dict[str, Any] | None = None,
        unet_pretrained: str | None = None,
        image_arch: str = "resnet18",
        image_pretrained: str | None = None,
        image_width: int | None = None,
        image_layers: Sequence[int] | None = None,
        frame_pool: Literal["max", "mean"] = "max",
        video_frames: int = 16,
        audio_condition: bool = True,
        audio_hidden: int = 512,
        train_audio_encoder: bool = True,
        video_drop_prob: float = 0.2,
        audio_drop_prob: float = 0.0,
        guidance_scale: float = 6.5,
        uncond: Literal["zero", "null_video"] = "zero",
        sampler: Literal["ddim", "dpm_solver"] = "ddim",
        sampling_steps: int = 25,
        ddim_eta: float = 0.0,
        griffin_lim_iters: int = 32,
        warmup_steps: int = 1000,
        max_epochs: int | None = 8,
        gradient_checkpointing: bool = False,
        precision: str | None = None,
        global_batch_size: int | None = None,
        lr: float = 1e-4,
        weight_decay: float = 0.01,
        optimizer: Literal["adam", "adamw"] = "adamw",
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay, optimizer=optimizer, betas=betas)
        self.save_hyperparameters()
        from diffusers import DDPMScheduler, UNet2DConditionModel

        if autoencoder is None:
            raise ValueError("avldm needs autoencoder: a local diffusers AutoencoderKL directory "
                             "(standins/mel-autoencoder on the synthetic world)")
        for name, value, allowed in (("frame_pool", frame_pool, ("max", "mean")),
                                     ("uncond", uncond, ("zero", "null_video")),
                                     ("sampler", sampler, ("ddim", "dpm_solver"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        for name, p in (("video_drop_prob", video_drop_prob), ("audio_drop_prob", audio_drop_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        if video_frames < 1 or sampling_steps < 1:
            raise ValueError("video_frames and sampling_steps must be >= 1")
        self.frame_pool, self.video_frames = frame_pool, video_frames
        self.video_drop_prob, self.audio_drop_prob = video_drop_prob, audio_drop_prob
        self.guidance_scale, self.uncond = guidance_scale, uncond
        self.sampler, self.sampling_steps, self.ddim_eta = sampler, sampling_steps, ddim_eta
        if max_epochs is not None and max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1 or None, got {max_epochs}")
        self.warmup_steps, self.precision, self.max_epochs = warmup_steps, precision, max_epochs
        self.global_batch_size = global_batch_size
        self.sample_rate = sample_rate
        self.num_samples = int(round(clip_seconds * sample_rate))
        self._warned_no_cond = False

        # mel <-> wave
        mel_args = {k: v for k, v in AVLDM_MEL.items() if k != "sample_rate"}
        self.mel = ScaledLogMel(mel_scaling, mel_frames, sample_rate=sample_rate, **mel_args)
        self.clip_frames = min(self.mel.frames_of(self.num_samples), mel_frames)
        self.vocoder = GriffinLimVocoder(self.num_samples, griffin_lim_iters, sample_rate=sample_rate,
                                         **mel_args)

        # autoencoder (frozen)
        self.autoencoder = load_mel_autoencoder(autoencoder)
        ae_cfg = self.autoencoder.config
        ae_config_file = resolve_weights_path(autoencoder) / "config.json"
        self.latent_channels = int(ae_cfg.latent_channels)
        self.ae_in_channels = int(ae_cfg.in_channels)
        self.scale_factor = float(scale_factor if scale_factor is not None else ae_cfg.scaling_factor)
        downs = len(ae_cfg.block_out_channels) - 1
        self.latent_shape = (self.latent_channels, _latent_size(self.mel.n_mels, downs),
                             _latent_size(mel_frames, downs))

        # UNet
        if unet_pretrained is not None:
            from avbench.pretrain.local_pretrained import from_pretrained_checked

            self.unet = from_pretrained_checked(UNet2DConditionModel,
                                                resolve_weights_path(unet_pretrained), ("config.json",))
        else:
            cfg = {**SD_V1_UNET, "in_channels": self.latent_channels,
                   "out_channels": self.latent_channels, **(unet or {})}
            cfg.setdefault("sample_size", list(self.latent_shape[1:]))
            self.unet = UNet2DConditionModel(**cfg)
        for key in ("in_channels", "out_channels"):
            if int(self.unet.config[key]) != self.latent_channels:
                raise ValueError(f"UNet {key} {self.unet.config[key]} != the autoencoder's "
                                 f"latent_channels {self.latent_channels} ({ae_config_file})")
        if gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        dim = int(self.unet.config.cross_attention_dim)

        # conditions
        self.image_encoder = ImageEncoder(image_arch, image_pretrained, width=image_width,
                                          layers=image_layers)
        self.image_encoder.requires_grad_(False).eval()
        self.video_encoder = VideoConditionEncoder(self.image_encoder.out_channels, dim, video_frames)
        c, f, t = self.latent_shape
        self.audio_encoder = (AudioConditionEncoder(c, f, t, dim, audio_hidden)
                              if audio_condition else None)
        if self.audio_encoder is not None and not train_audio_encoder:
            self.audio_encoder.requires_grad_(False)
        self.noise_scheduler = DDPMScheduler(**NOISE_SCHEDULE)

    # --- modes ----------------------------------------------------------------------
    def train(self, mode: bool = True) -> AVLDM:
        """As ``nn.Module.train``; the frozen autoencoder and image encoder stay in eval mode."""
        super().train(mode)
        self.autoencoder.eval()
        self.image_encoder.eval()
        return self

    def configure_fit_stages(self) -> list[FitStage]:
        """One stage ``fit`` of ``max_epochs`` (``None``: the trainer config's length)."""
        return [FitStage(max_epochs=self.max_epochs)]

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """The paper's precision when set (``16-mixed``)."""
        return {"precision": self.precision} if self.precision else {}

    # --- encoders ---------------------------------------------------------------------
    @property
    def num_tokens(self) -> int:
        """Cross-attention tokens: video frames + audio latent steps (0 without audio)."""
        return self.video_frames + (self.latent_shape[2] if self.audio_encoder is not None else 0)

    @torch.no_grad()
    def encode_audio(self, wave: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Wave [B, 1, L] / [B, L] -> scaled latent ``scale_factor * posterior.sample()``
        [B, c, f, t] (frozen autoencoder)."""
        x = self.mel(wave)
        if self.ae_in_channels != 1:
            x = x.expand(-1, self.ae_in_channels, -1, -1)
        z = self.autoencoder.encode(x).latent_dist.sample(generator=generator)
        return z * self.scale_factor

    @torch.no_grad()
    def decode_latents(self, z: Tensor) -> Tensor:
        """Scaled latent [B, c, f, t] -> scaled log-mel [B, n_mels, clip_frames] (channel 0,
        padding cropped)."""
        x = self.autoencoder.decode(z / self.scale_factor).sample
        return x[:, 0, :, :self.clip_frames]

    @torch.no_grad()
    def frame_features(self, batch: Mapping[str, Any]) -> Tensor:
        """``batch["frames"]`` [B, T, 3, H, W] (or ``image`` [B, 3, H, W] as T = 1) -> frozen
        per-frame features pooled over space [B, T, C].

        Raises:
            ValueError: T differs from ``video_frames`` (set the data's ``num_frames``).
        """
        frames = batch.get("frames")
        if frames is None:
            frames = batch["image"][:, None]
        b, t = frames.shape[:2]
        if t != self.video_frames:
            raise ValueError(f"avldm: the batch has {t} frames per clip, the model expects "
                             f"video_frames={self.video_frames} (set the data's num_frames, e.g. "
                             f"--data.init_args.num_frames {self.video_frames})")
        fmap = self.image_encoder(frames.flatten(0, 1).float()).flatten(2)
        pooled = fmap.amax(-1) if self.frame_pool == "max" else fmap.mean(-1)
        return pooled.view(b, t, -1)

    def condition_tokens(self, feats: Tensor, cond_latent: Tensor | None,
                         keep_video: Tensor | None = None, keep_audio: Tensor | None = None) -> Tensor:
        """Cross-attention tokens [B, T (+ t), d].

        Args:
            feats: per-frame features [B, T, C].
            cond_latent: scaled latent of the condition clip [B, c, f, t]; ``None``: zero
                audio tokens.
            keep_video, keep_audio: [B] bool; False replaces the video features / the audio
                tokens by zeros (``None``: keep all).
        """
        if keep_video is not None:
            feats = feats * keep_video.view(-1, 1, 1).to(feats.dtype)
        tokens = self.video_encoder(feats)
        if self.audio_encoder is None:
            return tokens
        b, d = feats.shape[0], tokens.shape[-1]
        if cond_latent is None:
            audio = tokens.new_zeros(b, self.latent_shape[2], d)
        else:
            audio = self.audio_encoder(cond_latent.to(tokens.dtype))
            if keep_audio is not None:
                audio = audio * keep_audio.view(-1, 1, 1).to(audio.dtype)
        return torch.cat([tokens, audio], dim=1)

    def drop_masks(self, batch_size: int,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Training condition dropout: ``(keep_video, keep_audio)`` [B] bool, each kept with
        probability ``1 - video_drop_prob`` / ``1 - audio_drop_prob``."""
        u = torch.rand(2, batch_size, generator=generator, device=self.device if generator is None
                       else generator.device)
        return u[0] >= self.video_drop_prob, u[1] >= self.audio_drop_prob

    def _cond_latent(self, batch: Mapping[str, Any],
                     generator: torch.Generator | None = None) -> Tensor | None:
        if self.audio_encoder is None:
            return None
        cond = batch.get("cond_audio")
        if cond is None:
            if not self._warned_no_cond:
                log.warning("avldm: the batch has no 'cond_audio' (the Ego4D datamodule's "
                            "with_cond_audio=True): the audio condition is zero")
                self._warned_no_cond = True
            return None
        return self.encode_audio(cond, generator)

    # --- training ---------------------------------------------------------------------
    def compute_losses(self, batch: Mapping[str, Any],
                       generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``{"diffusion", "total"}``: the epsilon-prediction MSE (module docstring).

        ``generator`` makes posterior samples, condition dropout, noise and timesteps
        reproducible (``None``: the global RNG; dropout only in training mode).
        """
        z0 = self.encode_audio(batch["audio"], generator)
        b = z0.shape[0]
        feats = self.frame_features(batch)
        keep_v = keep_a = None
        if self.training:
            keep_v, keep_a = self.drop_masks(b, generator)
            keep_v, keep_a = keep_v.to(z0.device), keep_a.to(z0.device)
        tokens = self.condition_tokens(feats, self._cond_latent(batch, generator), keep_v, keep_a)
        noise = torch.randn(z0.shape, generator=generator, device=z0.device, dtype=z0.dtype)
        t = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (b,),
                          generator=generator, device=z0.device)
        z_t = self.noise_scheduler.add_noise(z0, noise, t)
        pred = self.unet(z_t, t, encoder_hidden_states=tokens).sample
        loss = F.mse_loss(pred.float(), noise.float())
        return {"diffusion": loss, "total": loss}

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        losses = self.compute_losses(batch)
        self.log_losses(losses, "train", batch["audio"].shape[0])
        return losses["total"]

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        # fixed noise/timesteps per batch so val/loss compares across epochs
        gen = torch.Generator(device=self.device).manual_seed(batch_idx)
        losses = self.compute_losses(batch, generator=gen)
        self.log_losses(losses, "val", batch["audio"].shape[0])
        return losses["total"]

    def configure_optimizers(self) -> Any:
        """AdamW over the trainable parameters; linear warm-up from 1e-6 x lr over
        ``warmup_steps``, then constant (reference ``LambdaLinearScheduler``)."""
        opt = super().configure_optimizers()
        warm = max(self.warmup_steps, 0)

        def factor(step: int) -> float:
            return 1e-6 + (1 - 1e-6) * step / warm if step < warm else 1.0

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # --- sampling -----------------------------------------------------------------------
    def predict_noise(self, z: Tensor, t: Tensor | int, tokens: Tensor, uncond_tokens: Tensor,
                      guidance_scale: float) -> Tensor:
        """Classifier-free guided noise ``eps_u + s (eps_c - eps_u)`` (one UNet call on the
        stacked batch; ``s == 1`` returns the conditional prediction alone)."""
        if guidance_scale == 1.0:
            return self.unet(z, t, encoder_hidden_states=tokens).sample
        eps = self.unet(torch.cat([z, z]), t, encoder_hidden_states=torch.cat([uncond_tokens, tokens])).sample
        eps_u, eps_c = eps.chunk(2)
        return eps_u + guidance_scale * (eps_c - eps_u)

    def make_sampler(self, steps: int | None = None) -> Any:
        """A fresh test-time scheduler (``sampler``) with ``steps`` (``sampling_steps``) set."""
        from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

        config = self.noise_scheduler.config
        if self.sampler == "ddim":
            sched = DDIMScheduler.from_config(config, timestep_spacing="leading", steps_offset=1,
                                              set_alpha_to_one=False)
        else:
            sched = DPMSolverMultistepScheduler.from_config(
                config, algorithm_type="dpmsolver++", solver_order=2, lower_order_final=True)
        sched.set_timesteps(steps or self.sampling_steps, device=self.device)
        return sched

    @torch.no_grad()
    def sample_latents(self, tokens: Tensor, uncond_tokens: Tensor, guidance_scale: float | None = None,
                       steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Reverse diffusion from Gaussian noise: scaled latents [B, c, f, t]."""
        scale = self.guidance_scale if guidance_scale is None else guidance_scale
        sched = self.make_sampler(steps)
        z = torch.randn((tokens.shape[0], *self.latent_shape), generator=generator,
                        device=tokens.device if generator is None else generator.device).to(tokens)
        z = z * sched.init_noise_sigma
        extra = {"eta": self.ddim_eta, "generator": generator} if self.sampler == "ddim" else {}
        for t in sched.timesteps:
            eps = self.predict_noise(sched.scale_model_input(z, t), t, tokens, uncond_tokens, scale)
            z = sched.step(eps, t, z, **extra).prev_sample
        return z

    @torch.no_grad()
    def generate_audio(self, batch: Mapping[str, Any], condition: Condition = "batch",
                       guidance_scale: float | None = None, steps: int | None = None,
                       generator: torch.Generator | None = None) -> Tensor:
        """Generate each clip's sound from its silent frames (capability ``generate_audio``).

        Args:
            batch: ``frames`` [B, T, 3, H, W] (``video_frames`` frames; ``audio`` unused)
                and, for ``condition="batch"``, ``cond_audio`` [B, 1, L].
            condition: ``"batch"``: the batch's ``cond_audio`` (zero tokens when absent);
                ``"zero"``: zero audio tokens (reference ``--cond-zero``); or waveforms
                [B, L] / [B, 1, L] to condition on (a retrieved clip per test clip, the
                low-ambient clip repeated: :func:`retrieve_condition`,
                :func:`lowest_energy_index`).
            guidance_scale, steps: override ``guidance_scale`` / ``sampling_steps``.
            generator: makes the noise, posterior samples and Griffin-Lim phases reproducible.

        Returns:
            Waveforms [B, clip_seconds * sample_rate] (3 s at 16 kHz), float32.
        """
        was_training = self.training
        self.eval()
        try:
            feats = self.frame_features(batch)
            if isinstance(condition, Tensor):
                cond = self.encode_audio(condition.to(self.device), generator)
            elif condition == "batch":
                cond = self._cond_latent(batch, generator)
            elif condition == "zero":
                cond = None
            else:
                raise ValueError(f"condition must be 'batch', 'zero' or waveforms, got {condition!r}")
            tokens = self.condition_tokens(feats, cond)
            if self.uncond == "zero":
                uncond = torch.zeros_like(tokens)
            else:
                uncond = self.condition_tokens(feats, cond, keep_video=torch.zeros(
                    feats.shape[0], dtype=torch.bool, device=feats.device))
            z = self.sample_latents(tokens, uncond, guidance_scale, steps, generator)
            mel = self.mel.unscale(self.decode_latents(z).float())
            return self.vocoder(mel, generator)
        finally:
            self.train(was_training)

