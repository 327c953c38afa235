"""SoundingActions / MC3: "Learning How Actions Sound from Narrated Egocentric Videos"
(Chen et al., CVPR 2024; REFERENCE C and A5). No official code.

The public re-implementation whose recipe the defaults follow is the align + refine
stage of ``mengyu-yang/clink-chop-thud`` (``train.py``: ``contrastive_loss``,
``consensus_loss_with_anchor``, ``combined_loss``; ``train_utils.py``: ``sim_matrix``).
**Its defaults (consensus weight 0.5, video exponent 0.5, text exponent 1, temperature
0.2, 5 align epochs, Adam lr 5e-5, batch 32) are the re-implementation's, not checked
against the paper, which does not publish them (REFERENCE C).**

Encoders (one 256-d space, every embedding L2-normalised)
    video ``v``: each frame of ``batch["frames"]`` [B,T,3,H,W] (or ``batch["image"]`` as
    T = 1) through the image ResNet (the ``image-resnet18`` stand-in on the synthetic
    world), global average pool per frame -> [B,T,C]; temporal pooling: ``"attention"``
    (softmax over T of a learned linear score per frame, weights summing to 1) or
    ``"mean"``; then an MLP head (Linear-ReLU-Linear) to ``dim``.
    audio ``a``: the VGGish log-mel front-end of the ``audio-resnet18`` stand-in (16 kHz,
    64 HTK mels 125-7500 Hz, 25-ms window, 10-ms hop, ``log(mel + 0.01)``) over the WHOLE
    clip window (the stand-in is fully convolutional; it was trained on 0.96-s windows)
    -> audio ResNet -> global average pool (the stand-in's head pools the same way) ->
    MLP head. This front-end rather than the EZ-VSL spectrogram because the pretrained
    audio weights only mean something on the input they were trained on (same filter
    bank and log scale); the EZ-VSL front-end (linear 129/257 bins, ``/12``) would feed
    them a different image.
    text ``t``: the narration (``batch["text"]``, a list of strings) through a local
    tokenizer + transformer encoder (the ``text-encoder`` stand-in: WordPiece +
    ``BertModel``, loaded by ``avbench.pretrain.text.load_tokenizer`` /
    ``load_text_encoder``; any other ``transformers`` encoder directory loads through
    ``AutoTokenizer`` / ``AutoModel``), pooled by ``text_pool``: ``"cls"`` (default, the
    first token's last hidden state: EgoVLP's DistilBERT convention, and the token the
    stand-in's pooler was trained on), ``"mean"`` (masked mean over tokens) or
    ``"pooler"`` (BERT's pooler output) -> MLP head. Frozen by default
    (``freeze_text``; the re-implementation freezes its text tower).

Stage "align" (``align_epochs``, default 5)
    Cosine similarities scaled by the temperature ``tau`` (0.2). For each pair (x, y) of
    (video, audio), (video, text), (audio, text), local rows against the keys GATHERED
    from every rank (:func:`avbench.nn.distributed.gather_with_offset`, with gradient):

        L_xy = CE(x_i . y_all / tau -> i) + CE(y_i . x_all / tau -> i)       (both directions SUMMED)
        L_align = (L_va + L_vt + L_at) / 3

    (``va``, ``vt``, ``at`` are logged; as in the re-implementation the two directions
    are summed, the three pairs averaged.) A batch without ``text`` (VGGSound ...)
    trains ``va`` alone.

Stage "refine" (``refine_epochs``, default 5)
    Consensus with audio as the anchor. With ``S_av = a_i . v_all``, ``S_at = a_i . t_all``
    (cosines, [B, N]: local audios against every rank's videos / narrations)::

        c      = min( ((S_av + 1) / 2) ** gamma_v , ((S_at + 1) / 2) ** gamma_t )   in [0, 1]
        C      = 2 c - 1                                              (back to cosine units)
        L_cons = ||S_at - C||_F + ||S_av - C||_F                        (consensus_norm "frobenius")
        L      = L_align + w * L_cons                                   (w = consensus_weight 0.5)

    ``gamma_v = exponent_video`` (0.5), ``gamma_t = exponent_text`` (1). An element is
    kept where all three modalities agree (both similarities high) and pulled down where
    either pair disagrees: the larger of the two similarities moves towards the smaller
    one. The target is not detached (as in the re-implementation: the gradient flows
    through ``c`` too). ``||S - (2c - 1)||_F = 2 ||(S + 1)/2 - c||_F``, i.e. the regression in
    [0, 1] units up to a factor 2. ``consensus_norm="mse"`` uses the mean squared error
    instead (independent of the batch size). Logged terms: ``va``, ``vt``, ``at``,
    ``contrastive`` and ``consensus``.

Capabilities
    ``embed``: ``{"audio", "visual", "text"}`` (text only when the batch has it).
    ``sounding_score``: the consensus of the clip's OWN pair,
    ``min(((1 + a.v)/2) ** gamma_v, ((1 + a.t)/2) ** gamma_t)`` in [0, 1] (the diagonal of
    ``c``): high only when the sound agrees with both the video and the narration; without
    text, ``((1 + a.v)/2) ** gamma_v`` (a monotone map of the audio-visual cosine, so
    discovery by this score then equals discovery by ``embed``'s cosine).

Deviations, with reasons
    - Each stage is its own ``Trainer.fit`` (avbench fit stages), so Adam's moments restart
      at the refine stage; the re-implementation keeps one optimiser.
    - The re-implementation's epoch loop starts at 1 (``range(start_epoch + 1, epochs)``)
      with ``epoch < contrastive_align_epochs`` as the align test: 4 align and 5 refine
      epochs of its default 10. Here the knobs mean what they say: 5 and 5.
    - The consensus matrices are the local rows against the gathered columns ([B, N]);
      the re-implementation gathers everything and computes the global [N, N] matrix on
      every rank. On one device identical; under DDP the Frobenius norm is over each
      rank's rows (``"mse"`` makes the per-rank losses average to the global one).
    - Encoders: the paper's video / audio / text towers (video transformer, audio
      transformer, DistilBERT-style text encoder) are replaced by the stand-ins
      (docs/pretrained.md) on the synthetic world; the paper config names local paths
      for real weights. Audio uses the clip's full window (3 s in the Ego4D-Sounds
      clips), the re-implementation 1.5 s.
    - Negatives gathered across ranks with gradient (DESIGN 4.4), as the
      re-implementation's ``AllGather_multi`` does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from avbench.models.base import AVModel, FitStage, ModelMeta, register
from avbench.nn.distributed import gather_with_offset
from avbench.nn.encoders import AudioEncoder, ImageEncoder
from avbench.nn.frontends import LogMelSpectrogram
from avbench.nn.heads import MLPHead
from avbench.nn.losses import info_nce_logits
from avbench.nn.weights import resolve_weights_path

__all__ = ["VGGISH_LOGMEL", "SoundingActionsMC3", "consensus_target", "consensus_loss",
           "load_text_tower"]

#: the ``audio-resnet18`` stand-in's front-end (avbench.pretrain.audio.VGGishLogMel) as
#: :class:`LogMelSpectrogram` arguments, without the 0.96-s crop
VGGISH_LOGMEL: dict[str, Any] = {
    "sample_rate": 16000, "n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 64,
    "f_min": 125.0, "f_max": 7500.0, "power": 1.0, "center": False, "mel_scale": "htk",
    "norm": None, "eps": 0.01,
}
PAIRS: tuple[tuple[str, str, str], ...] = (("va", "visual", "audio"), ("vt", "visual", "text"),
                                           ("at", "audio", "text"))


def consensus_target(s_av: torch.Tensor, s_at: torch.Tensor | None, exponent_video: float = 0.5,
                     exponent_text: float = 1.0) -> torch.Tensor:
    """Consensus ``c = min(((s_av + 1)/2) ** g_v, ((s_at + 1)/2) ** g_t)`` in [0, 1].

    Args:
        s_av, s_at: cosine similarities (any equal shapes) of audio with video / text;
            ``s_at=None``: ``((s_av + 1)/2) ** g_v`` alone.
        exponent_video, exponent_text: ``g_v``, ``g_t`` (> 0).

    The base is clamped to [1e-6, 1] (a cosine of exactly -1 would give an infinite
    gradient of ``x ** 0.5``).
    """
    c = ((s_av + 1) / 2).clamp(1e-6, 1) ** exponent_video
    if s_at is not None:
        c = torch.minimum(c, ((s_at + 1) / 2).clamp(1e-6, 1) ** exponent_text)
    return c


def consensus_loss(s_av: torch.Tensor, s_at: torch.Tensor, exponent_video: float = 0.5,
                   exponent_text: float = 1.0,
                   norm: Literal["frobenius", "mse"] = "frobenius") -> torch.Tensor:
    """``||s_at - C|| + ||s_av - C||`` with ``C = 2 c - 1`` (:func:`consensus_target`).

    ``norm="frobenius"``: ``torch.linalg.norm`` of the whole matrix (the re-implementation);
    ``"mse"``: mean squared error per matrix. ``s_av``, ``s_at``: cosines [B, N].
    """
    target = 2 * consensus_target(s_av, s_at, exponent_video, exponent_text) - 1
    if norm == "frobenius":
        return torch.linalg.norm(s_at - target) + torch.linalg.norm(s_av - target)
    if norm == "mse":
        return F.mse_loss(s_at, target) + F.mse_loss(s_av, target)
    raise ValueError(f"consensus_norm must be 'frobenius' or 'mse', got {norm!r}")


def load_text_tower(directory: str | Path) -> tuple[Any, nn.Module]:
    """``(tokenizer, encoder)`` from a local directory (never downloaded).

    A BERT directory (``config.json`` ``model_type == "bert"``, the ``text-encoder``
    stand-in) loads through :func:`avbench.pretrain.text.load_tokenizer` /
    :func:`~avbench.pretrain.text.load_text_encoder`; any other model type
    (DistilBERT ...) through ``AutoTokenizer`` / ``AutoModel`` with ``local_files_only``.
    ``standins/...`` resolves under ``$AVBENCH_STANDINS`` (:func:`resolve_weights_path`).

    Raises:
        avbench.nn.weights.WeightsError: a file is missing, unreadable or does not fit
            (the message names the directory and the files).
    """
    from avbench.nn.weights import WeightsError
    from avbench.pretrain.local_pretrained import from_pretrained_checked
    from avbench.pretrain.text import load_text_encoder, load_tokenizer

    path = resolve_weights_path(directory)
    config = path / "config.json"
    if not config.is_file():
        raise WeightsError(f"text encoder directory {str(path)!r}: no config.json (build the "
                           f"stand-in with `avbench pretrain text-encoder --out {path}`, or give "
                           "a local copy of the paper's text encoder)")
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except json.JSONDecodeError as err:
        raise WeightsError(f"{config}: not JSON ({err})") from err
    if model_type == "bert":
        return load_tokenizer(path), load_text_encoder(path)
    from transformers import AutoModel, AutoTokenizer

    return (from_pretrained_checked(AutoTokenizer, path, ()),
            from_pretrained_checked(AutoModel, path, ("config.json",)))


class TemporalAttentionPool(nn.Module):
    """``[B,T,C] -> [B,C]``: weights ``softmax_T(w . x_t + b)``, output ``sum_t weight_t x_t``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.score = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.score(x).softmax(dim=1)  # [B,T,1]
        return (weights * x).sum(dim=1)


@register("mc3")
class SoundingActionsMC3(AVModel):
    """SoundingActions / MC3 (see the module docstring for equations, defaults and deviations).

    Args:
        text_encoder: local directory of the tokenizer + text encoder (required;
            ``standins/text-encoder`` on the synthetic world).
        dim: joint embedding dimension (256).
        image_arch, image_pretrained, image_width, image_layers: the frame ResNet
            (:class:`~avbench.nn.encoders.ImageEncoder`; ``image_pretrained`` a local file).
        temporal_pool: ``"attention"`` or ``"mean"`` over frames.
        audio_arch, audio_pretrained, audio_width, audio_layers: the audio ResNet on the
            log-mel (:class:`~avbench.nn.encoders.AudioEncoder`).
        audio_frontend: :class:`~avbench.nn.frontends.LogMelSpectrogram` arguments
            (``None``: :data:`VGGISH_LOGMEL`, the audio stand-in's).
        audio_pool: ``"mean"`` (the stand-in's pooling) or ``"max"`` over the audio map.
        text_pool: ``"cls"``, ``"mean"`` or ``"pooler"`` (module docstring).
        text_max_length: tokens per narration (truncated beyond).
        freeze_text: keep the text encoder frozen and in eval mode (its head trains).
        temperature: ``tau`` of the contrastive logits (0.2).
        align_epochs: length of stage "align" (5; 0 skips it).
        refine_epochs: length of stage "refine" (5; 0 skips it: the align-only ablation;
            ``None``: the trainer config's length).
        consensus_weight: ``w`` of the consensus term (0.5).
        exponent_video, exponent_text: ``gamma_v`` (0.5), ``gamma_t`` (1).
        consensus_norm: ``"frobenius"`` (re-implementation) or ``"mse"``.
        gather_negatives: contrast against every rank's samples under DDP.
        global_batch_size: the recipe's global batch (32); ``None``: the data config's.
        lr, weight_decay, optimizer, betas: see :class:`AVModel` (Adam 5e-5).

    Raises:
        ValueError: both stages of length 0, an unknown pooling or norm, or no
            ``text_encoder``.
        avbench.nn.weights.WeightsError: a local weights file or directory that does not load.
    """

    meta = ModelMeta(
        name="mc3",
        paper="SoundingActions: Learning How Actions Sound from Narrated Egocentric Videos "
              "(Chen et al., CVPR 2024)",
        year=2024,
        capabilities=frozenset({"embed", "sounding_score"}),
        reference_code="https://github.com/mengyu-yang/clink-chop-thud (third-party re-implementation)",
    )

    def __init__(
        self,
        text_encoder: str | None = None,
        dim: int = 256,
        image_arch: str = "resnet18",
        image_pretrained: str | None = None,
        image_width: int | None = None,
        image_layers: Sequence[int] | None = None,
        temporal_pool: Literal["attention", "mean"] = "attention",
        audio_arch: str = "resnet18",
        audio_pretrained: str | None = None,
        audio_width: int | None = None,
        audio_layers: Sequence[int] | None = None,
        audio_frontend: dict[str, Any] | None = None,
        audio_pool: Literal["mean", "max"] = "mean",
        text_pool: Literal["cls", "mean", "pooler"] = "cls",
        text_max_length: int = 32,
        freeze_text: bool = True,
        temperature: float = 0.2,
        align_epochs: int = 5,
        refine_epochs: int | None = 5,
        consensus_weight: float = 0.5,
        exponent_video: float = 0.5,
        exponent_text: float = 1.0,
        consensus_norm: Literal["frobenius", "mse"] = "frobenius",
        gather_negatives: bool = True,
        global_batch_size: int | None = None,
        lr: float = 5e-5,
        weight_decay: float = 0.0,
        optimizer: Literal["adam", "adamw"] = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay, optimizer=optimizer, betas=betas)
        self.save_hyperparameters()
        if text_encoder is None:
            raise ValueError("mc3 needs text_encoder: a local tokenizer + encoder directory "
                             "(standins/text-encoder on the synthetic world)")
        if align_epochs < 0 or (refine_epochs is not None and refine_epochs < 0):
            raise ValueError("align_epochs and refine_epochs must be >= 0")
        if align_epochs == 0 and refine_epochs == 0:
            raise ValueError("align_epochs and refine_epochs cannot both be 0")
        for name, value, allowed in (("temporal_pool", temporal_pool, ("attention", "mean")),
                                     ("audio_pool", audio_pool, ("mean", "max")),
                                     ("text_pool", text_pool, ("cls", "mean", "pooler")),
                                     ("consensus_norm", consensus_norm, ("frobenius", "mse"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if not temperature > 0 or not exponent_video > 0 or not exponent_text > 0:
            raise ValueError("temperature and the exponents must be > 0")
        self.dim = dim
        self.temporal_pool = temporal_pool
        self.audio_pool = audio_pool
        self.text_pool = text_pool
        self.text_max_length = text_max_length
        self.freeze_text = freeze_text
        self.temperature = temperature
        self.align_epochs = align_epochs
        self.refine_epochs = refine_epochs
        self.consensus_weight = consensus_weight
        self.exponent_video = exponent_video
        self.exponent_text = exponent_text
        self.consensus_norm = consensus_norm
        self.gather_negatives = gather_negatives
        self.global_batch_size = global_batch_size

        # video
        self.image_encoder = ImageEncoder(image_arch, image_pretrained, width=image_width,
                                          layers=image_layers)
        c_v = self.image_encoder.out_channels
        self.frame_attention = TemporalAttentionPool(c_v) if temporal_pool == "attention" else None
        self.video_head = MLPHead(c_v, dim, dim)
        # audio
        self.audio_frontend = LogMelSpectrogram(**(audio_frontend or VGGISH_LOGMEL))
        self.audio_encoder = AudioEncoder(audio_arch, 1, audio_pretrained, width=audio_width,
                                          layers=audio_layers)
        self.audio_head = MLPHead(self.audio_encoder.out_channels, dim, dim)
        # text
        self.tokenizer, self.text_encoder = load_text_tower(text_encoder)
        if freeze_text:
            self.text_encoder.requires_grad_(False)
            self.text_encoder.eval()
        self.text_head = MLPHead(int(self.text_encoder.config.hidden_size), dim, dim)

    def train(self, mode: bool = True) -> SoundingActionsMC3:
        """As ``nn.Module.train``; a frozen text encoder stays in eval mode (no dropout)."""
        super().train(mode)
        if self.freeze_text:
            self.text_encoder.eval()
        return self

    # --- stages -------------------------------------------------------------
    def configure_fit_stages(self) -> list[FitStage]:
        """``align`` (``align_epochs``) then ``refine`` (``refine_epochs``); a 0-length stage is left out."""
        stages = []
        if self.align_epochs > 0:
            stages.append(FitStage(name="align", max_epochs=self.align_epochs))
        if self.refine_epochs != 0:
            stages.append(FitStage(name="refine", max_epochs=self.refine_epochs))
        return stages

    @property
    def refining(self) -> bool:
        """Whether the running fit stage is ``refine`` (the consensus term is on)."""
        return self.fit_stage is not None and self.fit_stage.name == "refine"

    # --- encoders -------------------------------------------------------------
    def video_embedding(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """``batch["frames"]`` [B,T,3,H,W] (or ``batch["image"]`` [B,3,H,W]) -> ``v`` [B,dim]."""
        frames = batch.get("frames")
        if frames is None:
            frames = batch["image"][:, None]
        b, t = frames.shape[:2]
        feat = self.image_encoder(frames.flatten(0, 1)).mean(dim=(-2, -1)).view(b, t, -1)
        pooled = self.frame_attention(feat) if self.frame_attention is not None else feat.mean(1)
        return self.video_head(pooled)

    def audio_embedding(self, audio: torch.Tensor) -> torch.Tensor:
        """Waveform [B,1,L] or [B,L] at the front-end's rate -> ``a`` [B,dim]."""
        feat = self.audio_encoder(self.audio_frontend(audio)).flatten(2)
        pooled = feat.mean(-1) if self.audio_pool == "mean" else feat.max(-1).values
        return self.audio_head(pooled)

    def text_embedding(self, texts: Sequence[str]) -> torch.Tensor:
        """Narrations (B strings) -> ``t`` [B,dim]."""
        tokens = self.tokenizer(list(texts), padding=True, truncation=True,
                                max_length=self.text_max_length, return_tensors="pt")
        tokens = {k: v.to(self.device) for k, v in tokens.items()
                  if k in ("input_ids", "attention_mask")}
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_text):
            out = self.text_encoder(**tokens)
        if self.text_pool == "pooler":
            pooled = out.pooler_output
        elif self.text_pool == "cls":
            pooled = out.last_hidden_state[:, 0]
        else:
            mask = tokens["attention_mask"][..., None].to(out.last_hidden_state.dtype)
            pooled = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp_min(1)
        return self.text_head(pooled)

    def encode(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """``{"visual", "audio", "text"?}`` L2-normalised [B,dim]; text only if the batch has it."""
        out = {"visual": self.video_embedding(batch), "audio": self.audio_embedding(batch["audio"])}
        if batch.get("text") is not None:
            out["text"] = self.text_embedding(batch["text"])
        return out

    # --- losses -----------------------------------------------------------------
    def _gather(self, t: torch.Tensor) -> tuple[torch.Tensor, int]:
        return gather_with_offset(t) if self.gather_negatives else (t, 0)

    def compute_losses(self, batch: Mapping[str, Any],
                       refine: bool | None = None) -> dict[str, torch.Tensor]:
        """Named loss terms and ``"total"`` (module docstring).

        ``refine``: add the consensus term (``None``: whether the running stage is ``refine``).
        """
        emb = self.encode(batch)
        gathered = {k: self._gather(v) for k, v in emb.items()}
        losses: dict[str, torch.Tensor] = {}
        for name, x, y in PAIRS:
            if x not in emb or y not in emb:
                continue
            (x_all, offset), (y_all, _) = gathered[x], gathered[y]
            losses[name] = (info_nce_logits(emb[x] @ y_all.t() / self.temperature, offset)
                            + info_nce_logits(emb[y] @ x_all.t() / self.temperature, offset))
        contrastive = torch.stack(list(losses.values())).mean()
        losses["contrastive"] = contrastive
        total = contrastive
        if (self.refining if refine is None else refine) and "text" in emb:
            a = emb["audio"]
            s_av = a @ gathered["visual"][0].t()
            s_at = a @ gathered["text"][0].t()
            losses["consensus"] = consensus_loss(s_av, s_at, self.exponent_video,
                                                 self.exponent_text, self.consensus_norm)
            total = contrastive + self.consensus_weight * losses["consensus"]
        losses["total"] = total
        return losses

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.compute_losses(batch)
        self.log_losses(losses, "train", batch["audio"].shape[0])
        return losses["total"]

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.compute_losses(batch)
        self.log_losses(losses, "val", batch["audio"].shape[0])
        return losses["total"]

    # --- capabilities ---------------------------------------------------------------
    def embed(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """``{"audio", "visual", "text"?}``: L2-normalised [B,dim] (text when the batch has it)."""
        return self.encode(batch)

    def sounding_score(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Own-pair consensus ``min(((1+a.v)/2)^g_v, ((1+a.t)/2)^g_t)`` [B] in [0, 1]
        (without text: ``((1+a.v)/2)^g_v``)."""
        emb = self.encode(batch)
        s_av = (emb["audio"] * emb["visual"]).sum(-1)
        s_at = (emb["audio"] * emb["text"]).sum(-1) if "text" in emb else None
        return consensus_target(s_av, s_at, self.exponent_video, self.exponent_text)
