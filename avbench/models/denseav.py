"""DenseAV: "Separating the Chirp from the Chat: Self-supervised Visual Grounding of Sound and
Language" (Hamilton, Zisserman, Hershey & Freeman, CVPR 2024).

Reference code: https://github.com/mhamilton723/DenseAV (``denseav/train.py``,
``aligners.py``, ``aggregators.py``, ``configs/av_align.yaml``,
``data/AVDatasets.py``, ``shared.py``). Equations, defaults and deviations in
detail: docs/denseav.md.

Architecture (reference config ``av_align.yaml``)
    image: timm ViT patch tokens after the final norm (paper: DINO ViT-S/8,
    ``vit_small_patch8_224``, frozen, LoRA r 8, alpha 32, dropout 0.1 on every
    ``qkv`` through ``peft``); input RGB in [0, 1] normalised by ImageNet
    mean/std. Aligner (``image_linear``): LayerNorm over channels (eps 1e-4) +
    1x1 conv to ``dim``. In training only, 2x2 average pooling
    (``image_pool_width: 2``).
    audio: ``transformers.HubertModel`` on the 16-kHz wave, zero-mean
    unit-variance per clip (paper: HuBERT-Large fine-tuned on LibriSpeech,
    fine-tuned further in the full stage), last hidden state ``[B, D, 1, T]``:
    the reference inserts a singleton "frequency" axis after HuBERT, so the
    aligner's mean over frequency is the identity for HuBERT (it matters only
    for spectrogram backbones). Aligner (``audio_sa_3_3_pool_2``): frequency
    mean, LayerNorm over channels, conv (1x3, stride 3) to ``dim``, conv (1x3,
    stride 3), one pre-LN transformer block (6 heads, MLP ratio 4, LayerNorm
    eps 1e-4) over the time tokens plus a learned audio CLS token
    (``learn_audio_cls``; it only takes part in the attention). HuBERT's 50 Hz
    becomes 50/9 = 5.6 tokens per second.

Similarity (avbench/nn/dense_similarity.py)
    Channels split into ``heads`` contiguous groups; volume
    ``S[i,j,k,y,x,t] = <a_k(i,t), v_k(j,y,x)>``; training score
    ``s(i,j)`` = masked mean over non-silent t of max over (k, y, x); the
    evaluation (retrieval) score sums the per-head scores. Computed in chunks
    of the image batch. ``image_agg`` / ``time_agg`` switch the image and time
    reductions of both scores (the paper's aggregation ablation). Capability
    ``pairwise_score`` ranks a whole retrieval gallery with the evaluation score.

Loss (``LitAVAligner.loss``; every term logged by name, total =
``nce + sum_r weight_r * term_r``)
    - ``nce``: symmetric InfoNCE on ``w * s`` with the learnable inverse
      temperature ``w = clamp(exp(log_w), 0.01, 100)`` (init 1):
      ``(CE over images of each audio + CE over audios of each image) / 2``;
      negatives gathered across ranks with gradient.
    - ``nonneg`` (0.01): mean of ``min(<a_k, v_k>, 0)^2`` over all pairs of
      ``nonneg_samples`` (250) random audio tokens and random image tokens.
    - ``silence`` (0.01): mean of ``|<v_k(j,y,x), a_k(i,t)>|`` over every image
      and ``silence_samples`` (250) random silent audio tokens (``m = 0``);
      zero when the batch has fewer silent tokens (as the reference).
    - ``neg_audio`` (0.01): mean of ``P^2`` over the audio tokens of a spliced-in
      negative clip, weighted by ``(1 - pos_mask) * m``, where ``P`` is the
      paired (own image) volume ``[B,K,h,w,T]`` times ``m``.
    - ``tv`` (0.01): temporal smoothness ``mean (P[..., t+1] - P[..., t])^2``.
    - ``cal_balance`` (0.1): ``max(log 1 - log w, 0)^2`` (keeps the temperature
      from collapsing below its initial value).
    - ``specialize`` (0.05, only with more than one head): mean over head pairs
      ``i < j`` of ``mean |P_i| * |P_j|``.
    - ``mixup`` (0.1): with probability 0.1 a training image is a 2x2 mosaic of
      itself and three other images at half size; ``sum P^2 (1 - M) / sum (1 - M)``
      over the tokens ``M = 0`` outside its own quadrant.

Training-batch preparation the reference does in its dataset (here in the
model, training only, on the batch the datamodule gives: ``image [B,3,H,W]``
in [0, 1], ``audio [B,1,L]``, optional ``audio_mask [B,L]``): negative-audio
splicing (a random 1-4 s piece of another clip of the batch with cosine
easing, ``pos_mask`` its complement), extra audio masking (with probability
0.5 keep a random window of at least 0.5 s, zero the rest: the silent tokens
of the silence term), the 2x2 image mixup.

Stages (``configure_fit_stages``): ``aligners`` (``aligner_steps``, 3,000 at
paper scale; only the aligners, the temperature and the audio CLS train; lr
5e-5) then ``full`` (the trainer config's length; adds HuBERT and the image
LoRA weights; the ViT itself stays frozen). Adam eps 1e-7, linear warm-up over
``warmup_steps`` (1,000) in each stage (the reference re-creates its
scheduler per stage), each parameter tensor's gradient clipped to norm 10
(the reference's per-parameter clipping).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from avbench.models.base import AVModel, FitStage, ModelMeta, register
from avbench.nn.dense_similarity import (
    aggregate_similarity,
    aggregate_volume,
    masked_time_mean,
    paired_volume,
    split_heads,
)
from avbench.nn.distributed import all_gather_no_grad, gather_with_offset
from avbench.nn.losses import info_nce_logits
from avbench.nn.weights import WeightsError, resolve_weights_path
from avbench.pretrain.audio_transformer import normalize_wave
from avbench.pretrain.vit import normalize as normalize_image

__all__ = ["AudioAligner", "ChannelNorm", "DenseAV", "ImageAligner", "quad_mixup", "splice_clips"]

LN_EPS = 1e-4  # the reference's LayerNorm eps everywhere (fp16 training)
HUBERT_FRAME_HOP = 320  # samples per HuBERT frame at 16 kHz (conv strides 5*2^6)


class ChannelNorm(nn.Module):
    """LayerNorm over the channel axis (dim 1) of ``[B, C, ...]`` (reference ``ChannelNorm``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)


class ImageAligner(nn.Module):
    """``image_linear``: channel LayerNorm + 1x1 conv, ``[B, C_in, h, w] -> [B, dim, h, w]``."""

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.norm = ChannelNorm(in_dim)
        self.conv = nn.Conv2d(in_dim, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.norm(x))


class AudioAligner(nn.Module):
    """``audio_sa_3_3_pool_2``: frequency mean, channel LayerNorm, two stride-3 time pools
    (1x3 convs), one self-attention block over [CLS, time tokens].

    ``forward(feats [B, C_in, F, T], cls [B, C_in]) -> [B, dim, T // 9]`` (each pool
    floors). The block's width is padded at the front to a multiple of its 6 heads, as
    the reference pads.
    """

    def __init__(self, in_dim: int, dim: int, attn_heads: int = 6) -> None:
        super().__init__()
        from timm.models.vision_transformer import Block

        self.norm = nn.LayerNorm(in_dim, eps=LN_EPS)
        self.pool1 = nn.Conv2d(in_dim, dim, kernel_size=(1, 3), stride=(1, 3))
        self.cls_layer = nn.Linear(in_dim, dim)
        self.pool2 = nn.Conv2d(dim, dim, kernel_size=(1, 3), stride=(1, 3))
        self.padding = (-dim) % attn_heads
        self.block = Block(dim + self.padding, num_heads=attn_heads, mlp_ratio=4.0, qkv_bias=True,
                           norm_layer=partial(nn.LayerNorm, eps=LN_EPS))

    def forward(self, feats: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        x = feats.mean(2, keepdim=True)  # frequency mean (identity for HuBERT's F = 1)
        x = self.norm(x.movedim(1, -1)).movedim(-1, 1)
        cls = self.cls_layer(self.norm(cls))
        x = self.pool2(self.pool1(x))  # [B, dim, 1, T']
        b, c, _, t = x.shape
        tokens = torch.cat([cls.unsqueeze(1), x.flatten(2).transpose(1, 2)], dim=1)
        tokens = F.pad(tokens, [self.padding, 0])
        out = self.block(tokens)[:, 1:, self.padding:]  # drop CLS and the padding
        return out.transpose(1, 2)


def splice_clips(clip: torch.Tensor, piece: torch.Tensor, loc: int,
                 easing: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Splice ``piece`` into ``clip`` at sample ``loc`` with raised-cosine easing (reference
    ``_splice_clips``).

    Returns ``(spliced [L], pos_mask [L])``: ``pos_mask`` is the weight of the original
    clip (1 outside the piece, 1 -> 0 over the first ``easing`` samples of the piece,
    0, 0 -> 1 over its last ``easing``).

    Raises:
        ValueError: the piece does not fit before the clip's end or ``easing`` is out of range.
    """
    n, size = clip.shape[0], piece.shape[0]
    if not (0 <= loc and loc + size < n and 0 < easing <= size // 2):
        raise ValueError(f"cannot splice {size} samples at {loc} into {n} with easing {easing}")
    fade = 0.5 * (1 + torch.cos(math.pi * torch.linspace(0, 1, easing, device=clip.device)))
    ease = torch.cat([fade, clip.new_zeros(size - 2 * easing), 1 - fade]).to(clip.dtype)
    pos = torch.ones_like(clip)
    pos[loc:loc + size] = ease
    out = clip.clone()
    out[loc:loc + size] = ease * clip[loc:loc + size] + (1 - ease) * piece
    return out, pos


def quad_mixup(images: torch.Tensor, index: int, others: Sequence[int],
               order: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2x2 mosaic of image ``index`` and three ``others`` at half size (reference quad mixup).

    ``order`` is a permutation of 0..3 placing ``[index, *others][order[p]]`` at position
    ``p`` (0: top left, 1: bottom left, 2: top right, 3: bottom right, as the reference's
    ``grid_frames``). Returns ``(mosaic [3, H', W'], mask [1, H', W'])`` with ``mask`` 1 on
    the own image's quadrant; ``H' = 2 * (H // 2)``.
    """
    ids = [index, *others]
    small = F.interpolate(images[[ids[o] for o in order]], scale_factor=0.5, mode="bilinear")
    masks = torch.stack([torch.full_like(small[0, :1], float(o == 0)) for o in order])
    def grid(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.cat([x[0], x[1]], dim=1), torch.cat([x[2], x[3]], dim=1)], dim=2)

    return grid(small), grid(masks)


@register("denseav")
class DenseAV(AVModel):
    """DenseAV (see the module docstring and docs/denseav.md).

    Args:
        dim: aligned feature width (384); divisible by ``heads``.
        heads: similarity heads K (1 or 2 in the paper).
        image_timm_name / image_timm_kwargs: timm architecture of the image tower
            (``dynamic_img_size`` is forced on, so any multiple of the patch size works).
        image_weights: local timm-layout weights file (``standins/...`` resolves under
            ``$AVBENCH_STANDINS``); None: random initialisation (tests only).
        image_lora_rank / image_lora_alpha / image_lora_dropout: LoRA on ``qkv`` (8, 32, 0.1);
            rank 0: no LoRA.
        image_pool: average-pooling width of the image features in training (2).
        audio_weights: local ``HubertModel`` directory (``config.json`` + ``model.safetensors``);
            None: ``HubertModel(HubertConfig(**audio_config))`` at random (tests only).
        audio_config: HubertConfig overrides when ``audio_weights`` is None.
        learn_audio_cls: the learned audio CLS token of the attention block.
        cal_init / cal_min / cal_max: inverse temperature init and clamp (1, 0.01, 100).
        *_weight: regulariser weights (reference values as defaults).
        nonneg_samples / silence_samples: token samples of the two sampled terms (250).
        mixup_prob: probability of the 2x2 mosaic per training image (0.1).
        neg_audio: splice a piece of another clip into every training clip.
        neg_audio_seconds: (min, max) length of the spliced piece (1, 4 s) and
            ``neg_audio_easing_seconds`` the easing floor (0.5 s).
        extra_audio_masking / audio_window_prob / audio_window_min_seconds: keep a random
            window (>= 0.5 s) of the clip with probability 0.5, zeros elsewhere.
        gather_negatives: contrast against every rank's clips under DDP.
        image_agg / time_agg: reduction of the similarity volume over image tokens and over
            audio time in the training AND the evaluation (retrieval, per-head) scores:
            ``"max"`` / ``"mean"`` is the reference's "max image, mean audio" (``misa``);
            ``"mean"``/``"mean"`` (``sisa``) and ``"max"``/``"max"`` (``mima``) are the
            paper's aggregation ablations. ``localize`` and ``prompted_heatmap``'s maps do
            not depend on them.
        chunk_size: images per slice of the similarity volume.
        aligner_steps / aligner_lr: first stage length and lr (3,000 steps, 5e-5).
        warmup_steps: linear lr warm-up at the start of each stage (1,000).
        grad_clip: per-parameter gradient-norm clip (10); None: none.
        precision: Trainer precision the method asks for (paper: ``"16-mixed"``); None: the
            trainer config's.
        adam_eps: Adam epsilon (1e-7).
        sample_rate: audio rate (16 kHz; HuBERT's).
    """

    meta = ModelMeta(
        name="denseav",
        paper="Separating the Chirp from the Chat: Self-supervised Visual Grounding of Sound "
              "and Language (Hamilton et al., CVPR 2024)",
        year=2024,
        capabilities=frozenset({"embed", "localize", "prompted_heatmap", "pairwise_score"}),
        reference_code="https://github.com/mhamilton723/DenseAV",
    )

    def __init__(
        self,
        dim: int = 384,
        heads: int = 1,
        image_timm_name: str = "vit_small_patch8_224",
        image_timm_kwargs: dict[str, Any] | None = None,
        image_weights: str | None = None,
        image_lora_rank: int = 8,
        image_lora_alpha: float = 32.0,
        image_lora_dropout: float = 0.1,
        image_pool: int = 2,
        audio_weights: str | None = None,
        audio_config: dict[str, Any] | None = None,
        learn_audio_cls: bool = True,
        cal_init: float = 1.0,
        cal_min: float = 0.01,
        cal_max: float = 100.0,
        nonneg_weight: float = 0.01,
        nonneg_samples: int = 250,
        silence_weight: float = 0.01,
        silence_samples: int = 250,
        neg_audio_weight: float = 0.01,
        tv_weight: float = 0.01,
        cal_balance_weight: float = 0.1,
        specialization_weight: float = 0.05,
        mixup_weight: float = 0.1,
        mixup_prob: float = 0.1,
        neg_audio: bool = True,
        neg_audio_seconds: tuple[float, float] = (1.0, 4.0),
        neg_audio_easing_seconds: float = 0.5,
        extra_audio_masking: bool = True,
        audio_window_prob: float = 0.5,
        audio_window_min_seconds: float = 0.5,
        gather_negatives: bool = True,
        image_agg: Literal["max", "mean"] = "max",
        time_agg: Literal["mean", "max"] = "mean",
        chunk_size: int = 8,
        aligner_steps: int = 3000,
        aligner_lr: float = 5e-5,
        warmup_steps: int = 1000,
        grad_clip: float | None = 10.0,
        precision: str | None = None,
        adam_eps: float = 1e-7,
        sample_rate: int = 16000,
        lr: float = 5e-5,
        weight_decay: float = 0.0,
        optimizer: Literal["adam", "adamw"] = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay, optimizer=optimizer, betas=betas)
        self.save_hyperparameters()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.dim, self.heads = dim, heads
        self.image_model = self._build_image_model(image_timm_name, image_timm_kwargs or {},
                                                   image_weights)
        self.lora_targets: tuple[str, ...] = ()
        if image_lora_rank > 0:
            from peft import LoraConfig, inject_adapter_in_model

            inject_adapter_in_model(LoraConfig(target_modules=["qkv"], r=image_lora_rank,
                                               lora_alpha=image_lora_alpha,
                                               lora_dropout=image_lora_dropout),
                                    self.image_model)
        self.patch_size = int(self.image_model.patch_embed.patch_size[0])
        self.image_aligner = ImageAligner(int(self.image_model.num_features), dim)
        self.image_pool = image_pool

        self.audio_model = self._build_audio_model(audio_weights, audio_config or {})
        audio_dim = int(self.audio_model.config.hidden_size)
        self.audio_aligner = AudioAligner(audio_dim, dim)
        self.audio_cls = nn.Parameter(torch.randn(audio_dim)) if learn_audio_cls else None
        #: log of the inverse temperature w (reference SimilarityCalibrator)
        self.log_inv_temperature = nn.Parameter(torch.tensor([math.log(cal_init)]))
        self.cal_init, self.cal_min, self.cal_max = cal_init, cal_min, cal_max

        self.weights = {"nonneg": nonneg_weight, "silence": silence_weight,
                        "neg_audio": neg_audio_weight, "tv": tv_weight,
                        "cal_balance": cal_balance_weight,
                        "specialize": specialization_weight if heads > 1 else 0.0,
                        "mixup": mixup_weight}
        self.nonneg_samples, self.silence_samples = nonneg_samples, silence_samples
        self.mixup_prob = mixup_prob
        self.neg_audio, self.neg_audio_seconds = neg_audio, tuple(neg_audio_seconds)
        self.neg_audio_easing_seconds = neg_audio_easing_seconds
        self.extra_audio_masking = extra_audio_masking
        self.audio_window_prob, self.audio_window_min_seconds = (audio_window_prob,
                                                                 audio_window_min_seconds)
        self.gather_negatives, self.chunk_size = gather_negatives, chunk_size
        if image_agg not in ("max", "mean") or time_agg not in ("mean", "max"):
            raise ValueError(f"image_agg must be max|mean and time_agg mean|max, got "
                             f"{image_agg!r}, {time_agg!r}")
        self.image_agg, self.time_agg = image_agg, time_agg
        self.aligner_steps, self.aligner_lr = aligner_steps, aligner_lr
        self.warmup_steps, self.grad_clip = warmup_steps, grad_clip
        self.precision, self.adam_eps, self.sample_rate = precision, adam_eps, sample_rate
        # the loaders return eval-mode towers; Lightning keeps submodule modes, so switch them
        # back (LoRA dropout and HuBERT's dropouts act in training, as in the reference)
        self.image_model.train()
        self.audio_model.train()
        # the backbones start frozen (the first stage's setting; stages set the flags)
        for p in itertools.chain(self.image_model.parameters(), self.audio_model.parameters()):
            p.requires_grad_(False)

    # --- towers -------------------------------------------------------------
    @staticmethod
    def _build_image_model(name: str, kwargs: dict[str, Any], weights: str | None) -> nn.Module:
        import timm

        kwargs = {"num_classes": 0, **kwargs, "dynamic_img_size": True}
        if weights is None:
            return timm.create_model(name, pretrained=False, **kwargs)
        path = resolve_weights_path(weights)
        if not path.is_file():
            raise WeightsError(f"{path}: image tower weights file does not exist")
        try:
            return timm.create_model(name, pretrained=True,
                                     pretrained_cfg_overlay={"file": str(path)}, **kwargs)
        except Exception as err:  # timm/safetensors errors do not name the file
            raise WeightsError(f"{path}: cannot load as timm {name} with {kwargs}: "
                               f"{type(err).__name__}: {err}") from err

    @staticmethod
    def _build_audio_model(weights: str | None, config: dict[str, Any]) -> nn.Module:
        from transformers import HubertConfig, HubertModel

        if weights is None:
            model = HubertModel(HubertConfig(**config))
        else:
            from avbench.pretrain.audio_transformer import load_hubert

            model = load_hubert(resolve_weights_path(weights))
        for m in model.modules():  # the reference sets HuBERT's layer_norm_eps to 1e-4
            if isinstance(m, nn.LayerNorm):
                m.eps = LN_EPS
        return model

    def image_tokens(self, image: torch.Tensor) -> torch.Tensor:
        """Backbone patch tokens after the final norm: ``[B,3,H,W]`` in [0,1] -> ``[B,D,H/p,W/p]``."""
        h, w = image.shape[-2] // self.patch_size, image.shape[-1] // self.patch_size
        tokens = self.image_model.forward_features(normalize_image(image))
        tokens = tokens[:, self.image_model.num_prefix_tokens:]
        return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)

    def image_features(self, image: torch.Tensor) -> torch.Tensor:
        """Aligned image features ``[B, dim, h, w]`` (2x average-pooled in training only)."""
        feats = self.image_aligner(self.image_tokens(image))
        if self.training and self.image_pool > 1:
            feats = F.avg_pool2d(feats, self.image_pool)
        return feats

    def audio_features(self, wave: torch.Tensor) -> torch.Tensor:
        """Aligned audio features ``[B, dim, T]`` from the wave ``[B, L]`` (or ``[B, 1, L]``)."""
        wave = wave.flatten(1)
        hidden = self.audio_model(normalize_wave(wave)).last_hidden_state  # [B, T0, D]
        feats = hidden.transpose(1, 2).unsqueeze(2)  # [B, D, F=1, T0]
        cls = (self.audio_cls.expand(wave.shape[0], -1) if self.audio_cls is not None
               else feats.new_zeros(feats.shape[:2]))
        return self.audio_aligner(feats, cls)

    @staticmethod
    def token_mask(sample_mask: torch.Tensor, tokens: int, discrete: bool) -> torch.Tensor:
        """A per-sample mask ``[B, L]`` at token resolution ``[B, T]`` (reference
        ``interpolate_mask``: bilinear resampling; ``discrete``: ``> 0.01``, and a row with
        no true token gets one at random)."""
        b = sample_mask.shape[0]
        m = F.interpolate(sample_mask.float().reshape(b, 1, 1, -1), (1, tokens),
                          mode="bilinear").reshape(b, tokens)
        if not discrete:
            return m
        m = m > 0.01
        for row in torch.where(m.sum(1) == 0)[0].tolist():
            m[row, int(torch.randint(0, max(tokens - 1, 1), ()))] = True
        return m

    def token_times(self, tokens: int) -> torch.Tensor:
        """Centre time in seconds of each aligned audio token ``[T]`` (9 HuBERT frames each)."""
        hop = HUBERT_FRAME_HOP * 9 / self.sample_rate
        return (torch.arange(tokens, dtype=torch.float32) + 0.5) * hop

    # --- batch preparation (the reference dataset's augmentations) ------------
    def prepare_training_batch(self, image: torch.Tensor, wave: torch.Tensor,
                               sample_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Negative-audio splicing, extra audio masking and quad mixup on a training batch.

        Args:
            image: ``[B,3,H,W]`` in [0, 1]; wave: ``[B, L]``; sample_mask: ``[B, L]`` (1 = real
                audio) or None.

        Returns:
            ``image``, ``image_mask [B,1,H,W]`` (1 on the own image), ``wave``,
            ``audio_mask [B,L]`` (1 = not silent), ``pos_mask [B,L]`` (weight of the own clip).
        """
        b, n = wave.shape
        sr = self.sample_rate
        wave = wave.clone()
        mask = torch.ones_like(wave) if sample_mask is None else sample_mask.to(wave.dtype).clone()
        pos = torch.ones_like(wave)
        draw = lambda lo, hi: int(torch.randint(lo, hi + 1, ()))  # noqa: E731 (inclusive)
        if self.neg_audio and b > 1:
            lo, hi = (int(s * sr) for s in self.neg_audio_seconds)
            for i in range(b):
                j = draw(0, b - 2)
                j += j >= i
                piece = wave[j]
                if n >= lo:  # reference _generate_random_subset
                    start = draw(0, n - lo)
                    piece = piece[start:start + draw(lo, min(hi, n - start))]
                size = piece.shape[0]
                if n - size > 0:
                    easing = max(size // 4, int(self.neg_audio_easing_seconds * sr))
                    easing = max(min(size // 2, easing), 1)
                    wave[i], pos[i] = splice_clips(wave[i], piece, draw(0, n - size - 1), easing)
        if self.extra_audio_masking:
            min_size = int(self.audio_window_min_seconds * sr)
            for i in range(b):
                eff = int(mask[i].sum())
                if eff <= min_size or float(torch.rand(())) <= 1 - self.audio_window_prob:
                    continue
                size = min(draw(min_size, min(eff, n) - 1), n)
                start = 0 if size == n else draw(0, eff - size - 1)
                keep = torch.zeros_like(mask[i])
                keep[start:start + size] = 1
                wave[i] = wave[i] * keep
                mask[i] = mask[i] * keep
        image_mask = image.new_ones(b, 1, *image.shape[-2:])
        if self.mixup_prob > 0 and b > 1:
            chosen = torch.where(torch.rand(b) < self.mixup_prob)[0].tolist()
            if chosen:
                source, image, image_mask = image, image.clone(), image_mask.clone()
                for i in chosen:
                    others = [(i + 1 + int(o)) % b for o in torch.randint(0, b - 1, (3,))]
                    mosaic, m = quad_mixup(source, i, others, torch.randperm(4).tolist())
                    mh, mw = mosaic.shape[-2:]
                    image[i] = image[i].new_zeros(image.shape[1:])
                    image[i, :, :mh, :mw] = mosaic
                    image_mask[i] = 0
                    image_mask[i, :, :mh, :mw] = m
        return {"image": image, "image_mask": image_mask, "wave": wave, "audio_mask": mask,
                "pos_mask": pos}

    # --- loss --------------------------------------------------------------------
    def inverse_temperature(self) -> torch.Tensor:
        """``w = clamp(exp(log_w), cal_min, cal_max)`` (scalar tensor; no gradient when clamped)."""
        return self.log_inv_temperature.exp().clamp(self.cal_min, self.cal_max)[0]

    def features(self, batch: Mapping[str, Any], train: bool) -> dict[str, torch.Tensor]:
        """Head-split features and masks of a batch (training preparation when ``train``)."""
        image, wave = batch["image"], batch["audio"].flatten(1)
        sample_mask = batch.get("audio_mask")
        if sample_mask is not None:
            sample_mask = sample_mask.flatten(1)
        if train:
            prep = self.prepare_training_batch(image, wave, sample_mask)
        else:
            ones = torch.ones_like(wave)
            prep = {"image": image, "wave": wave,
                    "image_mask": image.new_ones(image.shape[0], 1, *image.shape[-2:]),
                    "audio_mask": ones if sample_mask is None else sample_mask.to(wave.dtype),
                    "pos_mask": ones}
        audio = split_heads(self.audio_features(prep["wave"]), self.heads)  # [B,K,C,T]
        vis = split_heads(self.image_features(prep["image"]), self.heads)  # [B,K,C,h,w]
        t, (h, w) = audio.shape[-1], vis.shape[-2:]
        return {"audio": audio, "image": vis,
                "audio_mask": self.token_mask(prep["audio_mask"], t, discrete=True),
                "pos_mask": self.token_mask(prep["pos_mask"], t, discrete=False),
                "image_mask": F.adaptive_avg_pool2d(prep["image_mask"], (h, w))}

    def regularisers(self, f: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The reference's regularisers (unweighted) on the local batch's features ``f``."""
        audio, image, amask = f["audio"], f["image"], f["audio_mask"]
        b, k, _, t = audio.shape
        h, w = image.shape[-2:]
        paired = paired_volume(audio, image, amask)  # [B,K,h,w,T]
        zero = paired.new_zeros(())
        out: dict[str, torch.Tensor] = {}

        n = self.nonneg_samples
        rb, rt = torch.randint(0, b, (n,)), torch.randint(0, t, (n,))
        ry, rx = torch.randint(0, h, (n,)), torch.randint(0, w, (n,))
        sims = torch.einsum("nkc,mkc->nmk", audio[rb, :, :, rt], image[rb, :, :, ry, rx])
        out["nonneg"] = sims.clamp_max(0).square().mean()

        sb, st = torch.where(~amask)
        if len(sb) > self.silence_samples:
            keep = torch.randperm(len(sb))[:self.silence_samples]
            sb, st = sb[keep], st[keep]
        if len(sb) == self.silence_samples and len(sb) > 0:
            silent = audio[sb, :, :, st]  # [n, K, C]
            out["silence"] = torch.einsum("bkchw,nkc->bknhw", image, silent).abs().mean()
        else:
            out["silence"] = zero

        neg = ((1 - f["pos_mask"]) * amask.to(paired.dtype))[:, None, None, None, :]
        neg = neg.expand_as(paired)
        out["neg_audio"] = ((paired.square() * neg).sum() / neg.sum().clamp_min(0.1)
                            if neg.sum() > 0 else zero)
        out["tv"] = (paired[..., 1:] - paired[..., :-1]).square().mean() if t > 1 else zero
        w_inv = self.inverse_temperature()
        out["cal_balance"] = (math.log(self.cal_init) - torch.log(w_inv.clamp_min(1e-8))
                              ).clamp_min(0).square()
        if k > 1:
            pairs = list(itertools.combinations(range(k), 2))
            out["specialize"] = sum((paired[:, i].abs() * paired[:, j].abs()).mean()
                                    for i, j in pairs) / len(pairs)
        else:
            out["specialize"] = zero
        outside = (1 - f["image_mask"].to(paired.dtype)).reshape(b, 1, h, w, 1).expand_as(paired)
        out["mixup"] = (paired.square() * outside).sum() / outside.sum().clamp_min(0.1)
        return out

    def contrastive(self, f: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        """Symmetric InfoNCE on ``w * s`` with negatives from every rank; ``(loss, stats)``."""
        audio, image, amask = f["audio"], f["image"], f["audio_mask"]
        if self.gather_negatives:
            audio_all, offset = gather_with_offset(audio)
            image_all, _ = gather_with_offset(image)
            mask_all = all_gather_no_grad(amask.float())
        else:
            audio_all, image_all, mask_all, offset = audio, image, amask, 0
        w_inv = self.inverse_temperature()
        a2v = w_inv * self.training_scores(audio, image_all, amask)
        if audio_all.shape[0] == audio.shape[0]:  # one process: the same matrix, transposed
            v2a = a2v.t()
        else:  # the gathered audios against the local images
            v2a = w_inv * self.training_scores(audio_all, image, mask_all).t()
        loss = 0.5 * (info_nce_logits(a2v, offset) + info_nce_logits(v2a, offset))
        return loss, {"inv_temperature": w_inv.detach()}

    def training_scores(self, audio: torch.Tensor, image: torch.Tensor,
                        audio_mask: torch.Tensor) -> torch.Tensor:
        """The training score ``[A, V]`` of head-split ``audio [A,K,C,T]`` and ``image
        [V,K,C,h,w]``: heads max-combined, ``image_agg`` over image tokens, ``time_agg`` over
        the non-silent audio tokens (default: the reference's "max image, mean audio")."""
        return aggregate_similarity(audio, image, audio_mask, image_reduce=self.image_agg,
                                    time_reduce=self.time_agg, chunk_size=self.chunk_size)

    def head_scores(self, audio: torch.Tensor, image: torch.Tensor, audio_mask: torch.Tensor,
                    per_head: bool = False) -> torch.Tensor:
        """The evaluation score (reference ``calc_recalls``): per head, ``image_agg`` over image
        tokens and ``time_agg`` over non-silent time, summed over heads ``[A, V]`` (or ``[A, V,
        K]`` with ``per_head``)."""
        scores = aggregate_similarity(audio, image, audio_mask, image_reduce=self.image_agg,
                                      time_reduce=self.time_agg, max_heads=False,
                                      chunk_size=self.chunk_size)
        return scores if per_head else scores.sum(-1)

    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """``{"total", "nce", "nonneg", "silence", "neg_audio", "tv", "cal_balance",
        "specialize", "mixup"}``; total = nce + sum of weight * term (reference weights)."""
        f = self.features(batch, train=self.training)
        nce, _ = self.contrastive(f)
        regs = self.regularisers(f)
        total = nce + sum(self.weights[name] * value for name, value in regs.items())
        return {"total": total, "nce": nce, **regs}

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.compute_losses(batch)
        self.log_losses(losses, "train", batch["image"].shape[0])
        self.log("train/inv_temperature", self.inverse_temperature().detach(),
                 batch_size=batch["image"].shape[0])
        return losses["total"]

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.compute_losses(batch)
        self.log_losses(losses, "val", batch["image"].shape[0])
        return losses["total"]

    # --- training recipe ------------------------------------------------------
    def aligner_prefixes(self) -> tuple[str, ...]:
        """Parameter prefixes of the first stage: aligners, temperature, audio CLS."""
        names = ["image_aligner", "audio_aligner", "log_inv_temperature"]
        return tuple(names + (["audio_cls"] if self.audio_cls is not None else []))

    def lora_prefixes(self) -> tuple[str, ...]:
        """Prefixes of the image LoRA parameters (``image_model....qkv.lora_A`` / ``lora_B``)."""
        return tuple(sorted({n.rsplit(".", 2)[0] for n, _ in self.named_parameters()
                             if ".lora_A." in n or ".lora_B." in n}))

    def configure_fit_stages(self) -> Sequence[FitStage]:
        """``aligners`` (``aligner_steps``, lr ``aligner_lr``) then ``full`` (+ HuBERT + LoRA)."""
        return [FitStage(name="aligners", max_steps=self.aligner_steps,
                         trainable=self.aligner_prefixes(), lr=self.aligner_lr),
                FitStage(name="full",
                         trainable=(*self.aligner_prefixes(), "audio_model", *self.lora_prefixes()),
                         lr=self.lr)]

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """The paper's precision when set (``16-mixed``); clipping is per parameter (below)."""
        return {"precision": self.precision} if self.precision else {}

    def configure_optimizers(self) -> Any:
        """Adam (eps ``adam_eps``) over the trainable parameters, linear warm-up per step."""
        opt = super().configure_optimizers()
        for group in opt.param_groups:
            group["eps"] = self.adam_eps
        warm = max(self.warmup_steps, 0)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: min(step / warm, 1.0) if warm > 0 else 1.0)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer,
                                    gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """Clip each parameter tensor's gradient norm to ``grad_clip`` (reference
        ``on_before_optimizer_step``), then any clipping the Trainer was given."""
        if self.grad_clip is not None:
            for p in self.parameters():
                if p.grad is not None:
                    torch.nn.utils.clip_grad_norm_(p, self.grad_clip)
        if gradient_clip_val is not None:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    # --- capabilities --------------------------------------------------------------
    def _eval_features(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        return self.features(batch, train=False)

    def embed(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Global L2-normalised embeddings ``[B, dim]``: audio = masked mean over time of the
        aligned tokens, visual = mean over image tokens (for the cosine-retrieval protocol;
        DenseAV's own retrieval score is :meth:`retrieval_scores`)."""
        f = self._eval_features(batch)
        audio = masked_time_mean(f["audio"].flatten(1, 2), f["audio_mask"])
        visual = f["image"].flatten(1, 2).mean(dim=(-2, -1))
        return {"audio": F.normalize(audio, dim=-1), "visual": F.normalize(visual, dim=-1)}

    def retrieval_scores(self, batch: Mapping[str, Any], per_head: bool = False) -> torch.Tensor:
        """DenseAV's retrieval score of every audio against every image of the batch, ``[B, B]``
        (rows audio; per-head scores summed), or ``[B, B, K]`` with ``per_head``."""
        f = self._eval_features(batch)
        return self.head_scores(f["audio"], f["image"], f["audio_mask"], per_head)

    def pairwise_features(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Capability ``pairwise_score``, part 1: the evaluation features of a batch,
        ``{"audio": [B,K,C,T], "audio_mask": [B,T] (float, 1 = non-silent), "visual":
        [B,K,C,h,w]}`` (the retrieval task keeps them for the whole gallery)."""
        f = self._eval_features(batch)
        return {"audio": f["audio"], "audio_mask": f["audio_mask"].float(), "visual": f["image"]}

    def pairwise_score(self, audio_features: Mapping[str, torch.Tensor],
                       visual_features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Capability ``pairwise_score``, part 2: DenseAV's retrieval score (:meth:`head_scores`,
        summed over heads) of every audio of ``audio_features`` against every image of
        ``visual_features`` (dicts of :meth:`pairwise_features`, rows concatenated over
        batches), ``[A, V]``, rows audio. Chunked over images (``chunk_size``)."""
        return self.head_scores(audio_features["audio"], visual_features["visual"],
                                audio_features["audio_mask"] > 0.5)

    def localize(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """``[B, h, w]``: own-pair similarity, heads max-combined, masked mean over the clip."""
        f = self._eval_features(batch)
        paired = paired_volume(f["audio"], f["image"])  # [B,K,h,w,T]
        return masked_time_mean(paired.max(1).values, f["audio_mask"])

    def _paired_head_scores(self, paired: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, K]`` from the paired volume ``[B,K,h,w,T]``: the diagonal of
        :meth:`head_scores` ``(per_head=True)`` (``image_agg`` then masked ``time_agg``)."""
        flat = paired.flatten(2, 3)
        red = flat.max(2).values if self.image_agg == "max" else flat.mean(2)
        if self.time_agg == "mean":
            return masked_time_mean(red, mask)
        return aggregate_volume(red[:, None, :, None, None, :], mask, image_reduce="max",
                                time_reduce="max", max_heads=False)[:, 0]

    def prompted_heatmap(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Per-head, per-audio-token heat maps of each image prompted by its own audio.

        Batch: ``image [B,3,H,W]`` in [0, 1] and the prompt ``audio [B,1,L]`` at
        ``sample_rate`` (optional ``audio_mask [B,L]``, 1 = real audio).

        Returns:
            ``heatmap [B, K, T, h, w]``: ``<a_k(t), v_k(y, x)>`` at feature resolution
            (``h = H / patch``; not normalised, not upsampled); ``time_s [T]``: each audio
            token's centre in seconds (to average over a word's timing);
            ``audio_mask [B, T]`` (bool, non-silent tokens); ``head_scores [B, K]``: each
            head's score of the clip with its own image, max over image tokens and masked
            mean over time at the default ``image_agg`` / ``time_agg`` (the reference's
            ``get_pairwise_sims(agg_sim=True, agg_heads=False)``; the diagonal of
            ``retrieval_scores(per_head=True)``), the per-head activation of the
            disentanglement task.
        """
        f = self._eval_features(batch)
        paired = paired_volume(f["audio"], f["image"])  # [B,K,h,w,T]
        heat = paired.permute(0, 1, 4, 2, 3)
        head_scores = self._paired_head_scores(paired, f["audio_mask"])
        return {"heatmap": heat, "time_s": self.token_times(heat.shape[2]).to(heat.device),
                "audio_mask": f["audio_mask"], "head_scores": head_scores}
