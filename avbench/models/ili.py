"""ILI: "Learning Audio-Visual Embeddings with Inferred Latent Interaction Graphs".

Partial reference code: https://github.com/ZenzenDatabase/causalCMR (README: teacher-student
schedule, AV-SAL, GRaSP, a graph regulariser, "proxy-based triplet loss"); facts in
REFERENCE.md C "ILI", A3 (MAP protocol), A6 (graph recovery). Setting: the AVE-15 and
VEGAS pre-extracted feature files (VGGish 128-d audio, Inception-v3 1024-d visual,
mean-pooled per video; batch keys ``audio_feat``, ``visual_feat``, ``label``).

Three steps, as fit stages (``configure_fit_stages``):

1. ``teacher`` (AV-SAL). Per-modality classifiers ``f_a``, ``f_v`` (LayerNorm ->
   Linear -> ReLU -> Linear to C logits). ``teacher_output="sigmoid"`` (default):
   independent heads, ``s = sigmoid(logits)``; ``"softmax"``: ``s = softmax(logits)``.
   Loss terms (each logged): ``cls_audio`` / ``cls_visual`` = BCE against the
   one-hot annotated label (sigmoid) or CE (softmax); ``align`` = symmetric KL
   between the two modalities' soft labels (per-class Bernoulli KL averaged over
   classes for sigmoid; categorical KL for softmax), weight ``align_weight``:
   each modality is pulled toward what the other sees, so a class present but
   unannotated in one modality gets non-zero probability.
   Sigmoid is the default because softmax outputs sum to 1 and are exactly
   collinear for GRaSP's regressions (handled anyway, see below).
2. ``graph`` (ILI): the teacher stage's ``end_hook`` :meth:`ILIEmbedding.fit_graph`
   runs :func:`avbench.nn.class_graph.infer_class_graph` (GRaSP, causal-learn) on the
   teacher's soft labels of the TRAINING split, nodes ``audio_<class>`` then
   ``visual_<class>`` (softmax: log-probabilities, ``graph_input="auto"``). Seeding,
   collinear/constant columns, CPDAG undirected edges (kept in both orientations by
   default), ``top_k`` and weight normalisation (weights sum to 1 by default), the
   causal-learn version and the meaning of ``lambda_value`` are documented in
   :mod:`avbench.nn.class_graph` and recorded in :attr:`ILIEmbedding.graph_info`.
   The weighted adjacency is the persistent buffer ``graph`` [2C, 2C] (in every
   later checkpoint); node names and provenance go in ``checkpoint["ili_graph"]``.
3. ``student`` (LIR). Encoders ``g_a``, ``g_v`` (LayerNorm -> Linear -> ReLU ->
   Dropout -> Linear to ``embed_dim``, L2-normalised) and C class proxies ``P``
   shared by both modalities. Loss terms:

   - ``metric_audio`` / ``metric_visual``: the proxy triplet loss (the metric
     loss named in the causalCMR README, "proxy-based triplet loss"; proxies as in
     Movshovitz-Attias et al., ICCV 2017, "No Fuss Distance Metric Learning using
     Proxies"; the triplet form continues the triplet networks of the same
     authors' AVE/VEGAS retrieval work, TNN-C-CCA, Zeng et al. TOMM 2020):
     ``mean_{c != y} relu(margin + D(z, P_y) - D(z, P_c))`` per embedding, with
     ``D(x, y) = 1 - cos(x, y)``;
   - ``lir``: ``sum_{i->j} A_ij * mean_{n,m} s_n[i] s_m[j] D(z_audio_n, z_visual_m)``
     over all in-batch pairs (n, m) including n = m, where ``s_n`` is the frozen
     teacher's soft-label vector of sample n over the 2C nodes (audio heads, then
     visual heads). Computed as ``mean((S A S^T) * D)`` with ``S`` [B, 2C].
     Weight ``lir_weight`` (the paper's lambda).

   ``total = metric_audio + metric_visual + lir_weight * lir``.

Baselines through the same code (``graph_source``): ``"inferred"`` (ILI),
``"random"`` (as many entries as the inferred graph, at random node pairs, same
weights: equal density), ``"oracle"`` (the synthetic world's planted graph mapped onto
the dataset's classes, :func:`avbench.nn.class_graph.planted_class_graph`),
``"none"`` (no LIR: the student with the metric loss only; ``lir`` is logged as 0).

Capabilities: ``embed`` (student embeddings) and ``class_graph`` (the graph, nodes
named ``audio_<class name>``/``visual_<class name>``; weights in ``"weights"``; with
``graph_bootstrap > 0`` also ``"bootstrap"``, the entry lists of GRaSP re-run on
bootstrap resamples of the same training soft labels, for edge stability).

Class count: ``num_classes=None`` (the default) takes C from the data. The
class-sized parts (the teachers' last layers, the proxies, the graph buffer) are
then zero-sized placeholders until :meth:`ILIEmbedding.setup` (Lightning's hook,
before the optimiser is built) resizes them in place from
``trainer.datamodule.classes``, keeping each parameter object and its
``requires_grad`` flag (the fit-stage runner set them by name before the fit).
:meth:`ILIEmbedding.fit_graph` and :meth:`ILIEmbedding.on_load_checkpoint` (from
the stored proxies) do the same, so a checkpoint of a model built either way loads
with ``num_classes=None``. An explicit ``num_classes`` builds everything in
``__init__`` (as before) and must match the data.

Bad input (issue 15): non-finite soft labels raise ``ValueError`` in the graph step
and ``FloatingPointError`` in the student loss (never a silent NaN); a class with no
training positive is excluded from the search (its nodes isolated, warned, recorded
in ``graph_info["dropped"]``); constant columns are dropped the same way; an empty
graph warns and the student trains without LIR (``empty_graph="warn"``, recorded as
``graph_info["empty"]``) or raises (``"error"``).

Defaults and deviations, with reasons
    The reference code is partial: no training script, architecture or
    hyperparameters are published. Chosen here (all in the paper config): hidden
    512, embedding 128, Adam lr 1e-3, batch 64, teacher 20 epochs, student 40,
    align_weight 1, margin 0.2 (FaceNet's on normalised embeddings), lir_weight 1.
    GRaSP: ``lambda_value`` 2 (grasp's own default, which the reference script
    used by not passing parameters), depth 3; the reference's graphs were dense
    (218-260 of 435 pairs) because it ran causal-learn 0.1.3.8 with the old sign
    convention; here the current convention is used and recorded.
    - The reference regulariser (``causal_loss.py``) multiplies own-pair distances
      by fixed factors (0.1 / 0.4) read from hard labels; the issue's formulation
      (soft-label weighted pairs over the whole batch) is implemented instead.
    - Edge weights are |Pearson r| of the two nodes' soft labels and negative
      dependencies are dropped (``positive_only``): GRaSP gives a binary graph and
      the pull is meant for co-occurrence only.
    - The teacher has no BatchNorm/Dropout: its parameters are frozen in the
      student stage while modules stay in train mode, so its soft labels must not
      change there.

Raw clips (``inputs="clips"``)
    The same three steps on the raw-clip batches of the AVE / VEGAS datamodules
    (``source: video``; keys ``audio`` [B,1,L] waveform, ``image`` [B,3,H,W] in
    [0,1], optional ``frames`` [B,T,3,H,W]). A front, :class:`ClipFeatureFront`,
    turns each clip into the two feature vectors the heads above take: the
    ``audio-resnet18`` stand-in's 128-d embedding layer (VGGish's role) on each
    whole second of the waveform, mean-pooled, and the ``image-resnet18`` stand-in's
    1024-d layer (Inception-v3 pool's role) of the frame (or of every frame of
    ``frames``), mean-pooled: exactly the extractors and pooling that wrote the
    feature files (:mod:`avbench.data.synthetic.writers.features`), read from the
    stand-in directory ``standins`` (``standins/...`` resolves under
    ``$AVBENCH_STANDINS``; weights checked against each stand-in's card).
    Difference from the feature files: the data config's window (3 s of audio
    around the event, one frame) instead of the whole video, and decoded (codec)
    frames instead of the rendered ones.

    Frozen by default (``finetune_encoders=False``): the papers' setting is
    fixed pretrained features; the teacher's soft labels (and the graph inferred
    from them) must not move while the student trains, which they would if the
    teacher's inputs came from an encoder updated in the student stage; and a
    frozen front costs no backward pass on 2 CPU cores. The frozen front stays in
    eval mode (BatchNorm statistics fixed). ``finetune_encoders=True`` gives the
    student its own copy of the front (``student_front``, initialised from the
    same stand-ins) trained in the student stage (BatchNorm in train mode), while
    the teacher keeps reading the frozen one.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from avbench.models.base import AVModel, FitStage, ModelMeta, register
from avbench.nn.class_graph import (
    ClassGraph,
    bootstrap_class_graphs,
    class_graph_nodes,
    infer_class_graph,
    planted_class_graph,
    random_graph_like,
)
from avbench.nn.weights import resolve_weights_path

__all__ = ["ClipFeatureFront", "ILIEmbedding", "lir_loss", "proxy_triplet_loss", "soft_label_alignment"]

GraphSource = Literal["inferred", "random", "oracle", "none"]
Inputs = Literal["features", "clips"]
CHECKPOINT_KEY = "ili_graph"
AUDIO_STANDIN, VISUAL_STANDIN = "audio-resnet18", "image-resnet18"


def _mlp(d_in: int, hidden: int, d_out: int, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = [nn.LayerNorm(d_in), nn.Linear(d_in, hidden), nn.ReLU()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden, d_out))
    return nn.Sequential(*layers)


def cosine_distance(x: Tensor, y: Tensor) -> Tensor:
    """``1 - cos`` between every row of ``x`` [N,D] and every row of ``y`` [M,D]: [N,M] in [0, 2]."""
    return 1.0 - F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).t()


def proxy_triplet_loss(z: Tensor, labels: Tensor, proxies: Tensor, margin: float) -> Tensor:
    """Proxy triplet loss: ``mean_{n, c != y_n} relu(margin + D(z_n, P_{y_n}) - D(z_n, P_c))``.

    Args:
        z: embeddings [B, D]; labels: int [B] in [0, C); proxies: [C, D] (C >= 2);
        margin: in cosine-distance units.
    Returns:
        Scalar loss.
    """
    d = cosine_distance(z, proxies)  # [B, C]
    pos = d.gather(1, labels[:, None])  # [B, 1]
    hinge = F.relu(margin + pos - d)
    neg = torch.ones_like(d, dtype=torch.bool).scatter_(1, labels[:, None], False)
    return hinge[neg].mean()


def soft_label_alignment(logits_a: Tensor, logits_v: Tensor, output: str) -> Tensor:
    """Symmetric KL between the two modalities' soft labels (AV-SAL's alignment term).

    ``output="softmax"``: categorical ``KL(p_a||p_v) + KL(p_v||p_a)``, mean over the
    batch; ``"sigmoid"``: per-class Bernoulli KL in both directions, mean over batch
    and classes. Inputs are logits [B, C].
    """
    if output == "softmax":
        la, lv = F.log_softmax(logits_a, -1), F.log_softmax(logits_v, -1)
        kl = (la.exp() * (la - lv)).sum(-1) + (lv.exp() * (lv - la)).sum(-1)
        return kl.mean()
    pa, pv = torch.sigmoid(logits_a), torch.sigmoid(logits_v)
    la1, la0 = F.logsigmoid(logits_a), F.logsigmoid(-logits_a)
    lv1, lv0 = F.logsigmoid(logits_v), F.logsigmoid(-logits_v)
    kl_av = pa * (la1 - lv1) + (1 - pa) * (la0 - lv0)
    kl_va = pv * (lv1 - la1) + (1 - pv) * (lv0 - la0)
    return (kl_av + kl_va).mean()


def lir_loss(soft: Tensor, graph: Tensor, z_audio: Tensor, z_visual: Tensor) -> Tensor:
    """LIR: ``sum_{i,j} A_ij mean_{n,m} s_n[i] s_m[j] D(z_audio_n, z_visual_m)``.

    Args:
        soft: soft labels [B, N] over the graph's nodes; graph: weights [N, N];
        z_audio, z_visual: embeddings [B, D].
    Returns:
        Scalar ``mean_{n,m} (S A S^T)[n,m] * (1 - cos(z_audio_n, z_visual_m))``.
    """
    w = soft @ graph @ soft.t()  # [B, B]: sum_ij A_ij s_n[i] s_m[j]
    return (w * cosine_distance(z_audio, z_visual)).mean()


class ClipFeatureFront(nn.Module):
    """Raw clip -> ``(audio [B,128], visual [B,1024])`` through the AVE/VEGAS feature stand-ins.

    Audio: ``batch["audio"]`` [B,L] or [B,C,L] (channels averaged) at ``sample_rate``
    (resampled to the stand-in's 16 kHz when different; shorter than 1 s: zero-padded
    to 1 s), one 128-d embedding per whole second
    (:class:`avbench.pretrain.extractors.AudioFeatureExtractor`), mean over seconds.
    Visual: ``batch["frames"]`` [B,T,3,H,W] when present, else ``batch["image"]``
    [B,3,H,W], RGB in [0,1]; 1024-d per frame
    (:class:`avbench.pretrain.extractors.VisualFeatureExtractor`), mean over frames.

    Args:
        standins: directory holding ``audio-resnet18/`` and ``image-resnet18/``
            (``avbench pretrain NAME --out DIR/NAME``; ``standins/...`` resolves under
            ``$AVBENCH_STANDINS``).
        sample_rate: rate of the batches' waveforms (the data config's).
        trainable: False (default): parameters frozen and the module kept in eval mode.

    Raises:
        WeightsError: a stand-in is missing, does not match its card or its weights do
            not fit (the message names the directory and the build command).
    """

    def __init__(self, standins: str, sample_rate: int = 16000, trainable: bool = False) -> None:
        super().__init__()
        from avbench.pretrain.extractors import AudioFeatureExtractor, VisualFeatureExtractor

        root = resolve_weights_path(standins)
        self.audio = AudioFeatureExtractor.from_dir(root / AUDIO_STANDIN)
        self.visual = VisualFeatureExtractor.from_dir(root / VISUAL_STANDIN)
        self.sample_rate, self.trainable = int(sample_rate), trainable
        self.requires_grad_(trainable)
        self.train(trainable)

    @property
    def dims(self) -> tuple[int, int]:
        """``(audio, visual)`` feature sizes (128, 1024 for the stand-ins)."""
        return self.audio.dim, self.visual.dim

    def train(self, mode: bool = True) -> ClipFeatureFront:
        """As ``nn.Module.train``; a frozen front stays in eval mode."""
        return super().train(mode and self.trainable)

    def forward(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        """``(audio [B,Da], visual [B,Dv])`` pooled features of a raw-clip batch.

        Raises:
            KeyError: the batch has no ``audio`` waveform or no ``image``/``frames``.
        """
        from avbench.pretrain.audio import SAMPLE_RATE

        wave, frames = batch.get("audio"), batch.get("frames", batch.get("image"))
        if not isinstance(wave, Tensor) or not isinstance(frames, Tensor):
            raise KeyError("ILI inputs='clips' needs batch['audio'] (waveform) and batch['image'] or "
                           f"batch['frames']; got keys {sorted(batch)} (a features batch needs "
                           "inputs='features')")
        wave = wave.float()
        if wave.ndim == 3:
            wave = wave.mean(dim=1)
        if self.sample_rate != SAMPLE_RATE:
            import torchaudio

            wave = torchaudio.functional.resample(wave, self.sample_rate, SAMPLE_RATE)
        if wave.shape[-1] < SAMPLE_RATE:
            wave = F.pad(wave, (0, SAMPLE_RATE - wave.shape[-1]))
        audio = self.audio(wave).mean(dim=1)
        if frames.ndim == 4:
            frames = frames[:, None]
        b, t = frames.shape[:2]
        visual = self.visual(frames.flatten(0, 1).float()).view(b, t, -1).mean(dim=1)
        return audio, visual


@register("ili")
class ILIEmbedding(AVModel):
    """ILI (see the module docstring for equations, defaults and deviations).

    Args:
        num_classes: C (15 for AVE-15, 10 for VEGAS); must equal the datamodule's.
            None (default): from the data (module docstring, "Class count").
        audio_dim, visual_dim: feature sizes (VGGish 128, Inception-v3 1024).
        hidden_dim: hidden width of the teacher and student MLPs.
        embed_dim: student embedding size.
        dropout: student dropout.
        teacher_output: ``"sigmoid"`` (default) or ``"softmax"``.
        align_weight: weight of the teacher's ``align`` term.
        teacher_epochs, student_epochs: stage lengths.
        teacher_lr, student_lr: stage learning rates (None: ``lr``).
        graph_source: ``"inferred"``, ``"random"``, ``"oracle"`` or ``"none"``.
        graph_input: GRaSP input: ``"auto"`` (sigmoid: probabilities; softmax:
            log-probabilities), ``"probs"`` or ``"logits"``.
        grasp_lambda, grasp_depth, graph_seed: GRaSP's ``lambda_value``, depth, seed.
        undirected: CPDAG undirected edges ``"both"`` or ``"drop"``.
        positive_only, top_k, weight_norm: edge weighting (avbench.nn.class_graph).
        empty_graph: ``"warn"`` (train without LIR) or ``"error"``.
        graph_bootstrap: B > 0 re-runs GRaSP on B bootstrap resamples (rows drawn with
            replacement, seeded ``graph_seed + 1 + b``) of the training soft labels
            after the graph step, for edge stability; recorded only, never used in
            training. 0 (default): none.
        lir_weight: lambda of the LIR term.
        margin: proxy triplet margin.
        inputs: ``"features"`` (default: batches of pooled features ``audio_feat`` /
            ``visual_feat``) or ``"clips"`` (raw-clip batches through
            :class:`ClipFeatureFront`; module docstring, "Raw clips").
        standins: clips only: the stand-in directory of the front.
        sample_rate: clips only: the waveforms' rate (must equal the datamodule's).
        finetune_encoders: clips only: False (default) keeps the front frozen; True
            trains a student copy of it in the student stage.
        **kwargs: optimiser arguments of :class:`AVModel`.

    Raises:
        ValueError: an invalid option; with ``inputs="clips"``, ``audio_dim`` /
            ``visual_dim`` other than the stand-ins' feature sizes.
        WeightsError: ``inputs="clips"`` and a stand-in is missing or does not match its card.
    """

    meta = ModelMeta(
        name="ili",
        paper="Learning Audio-Visual Embeddings with Inferred Latent Interaction Graphs",
        year=2025,
        capabilities=frozenset({"embed", "class_graph"}),
        reference_code="https://github.com/ZenzenDatabase/causalCMR",
    )

    def __init__(
        self,
        num_classes: int | None = None,
        audio_dim: int = 128,
        visual_dim: int = 1024,
        hidden_dim: int = 512,
        embed_dim: int = 128,
        dropout: float = 0.1,
        teacher_output: Literal["sigmoid", "softmax"] = "sigmoid",
        align_weight: float = 1.0,
        teacher_epochs: int = 20,
        student_epochs: int = 40,
        teacher_lr: float | None = None,
        student_lr: float | None = None,
        graph_source: GraphSource = "inferred",
        graph_input: Literal["auto", "probs", "logits"] = "auto",
        grasp_lambda: float = 2.0,
        grasp_depth: int = 3,
        graph_seed: int = 0,
        undirected: Literal["both", "drop"] = "both",
        positive_only: bool = True,
        top_k: int | None = None,
        weight_norm: Literal["sum", "max", "none"] = "sum",
        empty_graph: Literal["warn", "error"] = "warn",
        graph_bootstrap: int = 0,
        lir_weight: float = 1.0,
        margin: float = 0.2,
        inputs: Inputs = "features",
        standins: str = "standins",
        sample_rate: int = 16000,
        finetune_encoders: bool = False,
        lr: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        super().__init__(lr=lr, **kwargs)
        self.save_hyperparameters()
        if num_classes is not None and num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 or None (from the data), got {num_classes}")
        if graph_bootstrap < 0:
            raise ValueError(f"graph_bootstrap must be >= 0, got {graph_bootstrap}")
        if teacher_output not in ("sigmoid", "softmax"):
            raise ValueError(f"teacher_output must be 'sigmoid' or 'softmax', got {teacher_output!r}")
        if graph_source not in ("inferred", "random", "oracle", "none"):
            raise ValueError(f"unknown graph_source {graph_source!r}")
        if empty_graph not in ("warn", "error"):
            raise ValueError(f"empty_graph must be 'warn' or 'error', got {empty_graph!r}")
        if inputs not in ("features", "clips"):
            raise ValueError(f"inputs must be 'features' or 'clips', got {inputs!r}")
        self.inputs, self.sample_rate, self.finetune_encoders = inputs, sample_rate, finetune_encoders
        #: clips: the frozen front (teacher; also the student's unless finetune_encoders)
        self.clip_front: ClipFeatureFront | None = None
        #: clips with finetune_encoders: the student's own, trainable front
        self.student_front: ClipFeatureFront | None = None
        if inputs == "clips":
            self.clip_front = ClipFeatureFront(standins, sample_rate)
            if (audio_dim, visual_dim) != self.clip_front.dims:
                raise ValueError(f"ILI inputs='clips': audio_dim/visual_dim ({audio_dim}, {visual_dim}) "
                                 f"must be the stand-ins' feature sizes {self.clip_front.dims}")
            if finetune_encoders:
                self.student_front = ClipFeatureFront(standins, sample_rate, trainable=True)
        #: C; None until known (``num_classes=None``: from the data, see :meth:`build_classes`)
        self.num_classes: int | None = num_classes
        self.graph_bootstrap = graph_bootstrap
        self.teacher_output = teacher_output
        self.align_weight, self.lir_weight, self.margin = align_weight, lir_weight, margin
        self.teacher_epochs, self.student_epochs = teacher_epochs, student_epochs
        self.teacher_lr, self.student_lr = teacher_lr, student_lr
        self.graph_source, self.graph_input = graph_source, graph_input
        self.grasp_lambda, self.grasp_depth, self.graph_seed = grasp_lambda, grasp_depth, graph_seed
        self.undirected, self.positive_only = undirected, positive_only
        self.top_k, self.weight_norm, self.empty_graph = top_k, weight_norm, empty_graph

        c = num_classes or 0  # 0: zero-sized placeholders until the data say C
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            self.teacher_audio = _mlp(audio_dim, hidden_dim, c)
            self.teacher_visual = _mlp(visual_dim, hidden_dim, c)
        self.student_audio = _mlp(audio_dim, hidden_dim, embed_dim, dropout)
        self.student_visual = _mlp(visual_dim, hidden_dim, embed_dim, dropout)
        self.proxies = nn.Parameter(torch.randn(c, embed_dim) / embed_dim**0.5)
        self.register_buffer("graph", torch.zeros(2 * c, 2 * c))
        self.register_buffer("graph_fitted", torch.tensor(False))
        #: node names of ``graph`` (set by :meth:`fit_graph`, saved in the checkpoint)
        self.graph_nodes: list[str] = [f"{m}_{k}" for m in ("audio", "visual") for k in range(c)]
        #: provenance of the graph (GRaSP settings, causal-learn version, dropped nodes, ...)
        self.graph_info: dict[str, Any] = {}

    # --- stages ---------------------------------------------------------------
    def configure_fit_stages(self) -> Sequence[FitStage]:
        """``teacher`` (then the ``fit_graph`` hook: the ILI graph step), ``student``."""
        return [
            FitStage(name="teacher", max_epochs=self.teacher_epochs, lr=self.teacher_lr,
                     trainable=("teacher_audio", "teacher_visual"), end_hook="fit_graph"),
            FitStage(name="student", max_epochs=self.student_epochs, lr=self.student_lr,
                     trainable=("student_audio", "student_visual", "proxies")
                     + (("student_front",) if self.student_front is not None else ())),
        ]

    def _stage(self) -> str:
        return self.fit_stage.name if self.fit_stage is not None else "student"

    # --- class count --------------------------------------------------------------
    def build_classes(self, num_classes: int) -> None:
        """Size the class-sized parts for C = ``num_classes`` (no-op when already so).

        With ``num_classes=None`` at construction the teachers' last layers, the
        proxies and the graph are zero-sized placeholders; they are resized here in
        place (the same ``nn.Parameter`` objects, ``requires_grad`` kept, freshly
        initialised as ``nn.Linear`` / ``__init__`` would).

        Raises:
            ValueError: C < 2, or C differs from a class count already set.
        """
        if self.num_classes is not None:
            if num_classes != self.num_classes:
                raise ValueError(f"ILI: num_classes={self.num_classes} but the data has {num_classes} "
                                 f"classes; set model num_classes: {num_classes} (or null: from the data)")
            return
        if num_classes < 2:
            raise ValueError(f"ILI needs at least 2 classes, the data has {num_classes}")
        with torch.no_grad():
            for head in (self.teacher_audio[-1], self.teacher_visual[-1]):
                fresh = nn.Linear(head.in_features, num_classes).to(head.weight.device)
                head.weight.data, head.bias.data = fresh.weight.data, fresh.bias.data
                head.out_features = num_classes
            d = self.proxies.shape[1]
            self.proxies.data = torch.randn(num_classes, d, device=self.proxies.device) / d**0.5
        self.graph = torch.zeros(2 * num_classes, 2 * num_classes, device=self.graph.device)
        self.graph_nodes = [f"{m}_{k}" for m in ("audio", "visual") for k in range(num_classes)]
        self.num_classes = num_classes

    def _classes_known(self) -> int:
        if self.num_classes is None:
            raise RuntimeError("ILI: the class count is not known yet (num_classes=None): fit with a "
                               "datamodule (setup sizes the heads from its classes) or pass num_classes")
        return self.num_classes

    # --- teacher ----------------------------------------------------------------
    def input_features(self, batch: Mapping[str, Any], student: bool = False) -> tuple[Tensor, Tensor]:
        """The heads' inputs ``(audio [B,Da], visual [B,Dv])``: the batch's pooled features
        (``inputs="features"``) or the clip front's (``"clips"``; ``student=True`` with
        ``finetune_encoders``: the student's trainable front)."""
        if self.clip_front is None:
            return batch["audio_feat"].float(), batch["visual_feat"].float()
        if student and self.student_front is not None:
            return self.student_front(batch)
        with torch.no_grad():
            return self.clip_front(batch)

    def teacher_logits(self, batch: Mapping[str, Any],
                       feats: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Teacher logits ``(audio [B,C], visual [B,C])`` (``feats``: precomputed
        :meth:`input_features`).

        Raises:
            RuntimeError: the class count is not known yet (``num_classes=None`` before setup).
        """
        self._classes_known()
        a, v = self.input_features(batch) if feats is None else feats
        return self.teacher_audio(a), self.teacher_visual(v)

    def soft_labels(self, batch: Mapping[str, Any],
                    feats: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Teacher soft labels over the 2C graph nodes [B, 2C] (audio heads, then visual)."""
        la, lv = self.teacher_logits(batch, feats)
        act = torch.sigmoid if self.teacher_output == "sigmoid" else (lambda x: F.softmax(x, -1))
        return torch.cat([act(la), act(lv)], dim=1)

    def teacher_losses(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        la, lv = self.teacher_logits(batch)
        y = batch["label"].long()
        if self.teacher_output == "sigmoid":
            target = F.one_hot(y, self._classes_known()).float()
            cls_a = F.binary_cross_entropy_with_logits(la, target)
            cls_v = F.binary_cross_entropy_with_logits(lv, target)
        else:
            cls_a, cls_v = F.cross_entropy(la, y), F.cross_entropy(lv, y)
        align = soft_label_alignment(la, lv, self.teacher_output)
        return {"total": cls_a + cls_v + self.align_weight * align,
                "cls_audio": cls_a, "cls_visual": cls_v, "align": align}

    # --- student ----------------------------------------------------------------
    def student_embeddings(self, batch: Mapping[str, Any],
                           feats: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """L2-normalised student embeddings ``(audio [B,D], visual [B,D])``."""
        a, v = self.input_features(batch, student=True) if feats is None else feats
        za = F.normalize(self.student_audio(a), dim=-1)
        zv = F.normalize(self.student_visual(v), dim=-1)
        return za, zv

    def student_losses(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        self._classes_known()
        feats = self.input_features(batch, student=True)
        za, zv = self.student_embeddings(batch, feats)
        y = batch["label"].long()
        m_a = proxy_triplet_loss(za, y, self.proxies, self.margin)
        m_v = proxy_triplet_loss(zv, y, self.proxies, self.margin)
        if self.graph_source == "none" or self.lir_weight == 0 or not bool(self.graph.any()):
            lir = za.new_zeros(())
        else:
            with torch.no_grad():
                shared = self.student_front is None  # the student reads the frozen front too
                soft = self.soft_labels(batch, feats if shared else None)
            if not torch.isfinite(soft).all():
                raise FloatingPointError("ILI student: the frozen teacher's soft labels are not finite")
            lir = lir_loss(soft, self.graph, za, zv)
        return {"total": m_a + m_v + self.lir_weight * lir,
                "metric_audio": m_a, "metric_visual": m_v, "lir": lir}

    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """The running stage's loss terms (no stage set: the student's)."""
        return self.teacher_losses(batch) if self._stage() == "teacher" else self.student_losses(batch)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        losses = self.compute_losses(batch)
        self.log_losses(losses, "train", len(batch["label"]))
        return losses["total"]

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        losses = self.compute_losses(batch)
        self.log_losses(losses, "val", len(batch["label"]))
        return losses["total"]

    # --- graph step -----------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Size the class-sized parts from ``trainer.datamodule.classes`` (or check them).

        Lightning calls it before building the optimiser, on every ``Trainer.fit``.

        Raises:
            ValueError: the datamodule's class count differs from ``num_classes``, or
                ``num_classes=None`` and the datamodule has no ``classes``.
        """
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        classes = getattr(dm, "classes", None) if dm is not None else None
        rate = getattr(dm, "sample_rate", None)
        if self.clip_front is not None and rate is not None and int(rate) != self.sample_rate:
            raise ValueError(f"ILI inputs='clips': model sample_rate {self.sample_rate} but the data's "
                             f"waveforms are at {rate} Hz: set model sample_rate: {rate}")
        if classes is not None:
            self.build_classes(len(classes))
        elif self.num_classes is None:
            raise ValueError("ILI: num_classes=None takes the class count from the datamodule's "
                             "'classes', and there is none: set model num_classes")

    @torch.no_grad()
    def training_soft_labels(self, datamodule: Any, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Teacher outputs on the TRAINING split: ``(graph input [n, 2C], labels [n])``.

        The graph input is probabilities, or log-probabilities (``graph_input``).
        ``batch_size`` default: 512 feature rows, 32 raw clips.
        """
        ds = datamodule.dataset("train")
        batch_size = batch_size or (512 if self.clip_front is None else 32)
        was_training = self.training
        self.eval()
        xs, ys = [], []
        try:
            for batch in DataLoader(ds, batch_size=batch_size, shuffle=False):
                batch = {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in batch.items()}
                la, lv = self.teacher_logits(batch)
                use_logits = self.graph_input == "logits" or (
                    self.graph_input == "auto" and self.teacher_output == "softmax")
                if self.teacher_output == "softmax":
                    la, lv = F.log_softmax(la, -1), F.log_softmax(lv, -1)
                    pa, pv = (la, lv) if use_logits else (la.exp(), lv.exp())
                else:
                    pa, pv = (la, lv) if use_logits else (torch.sigmoid(la), torch.sigmoid(lv))
                xs.append(torch.cat([pa, pv], 1).double().cpu())
                ys.append(batch["label"].cpu())
        finally:
            self.train(was_training)
        return torch.cat(xs).numpy(), torch.cat(ys).numpy()

    def fit_graph(self, datamodule: Any) -> None:
        """End hook of the teacher stage: infer (or draw) the graph and store it in ``graph``.

        Raises:
            ValueError: class count mismatch, non-finite soft labels, or an empty
                graph with ``empty_graph="error"``.
        """
        classes = list(getattr(datamodule, "classes", None) or datamodule.dataset("train").classes)
        self.build_classes(len(classes))
        assert self.num_classes is not None
        nodes = class_graph_nodes(classes)
        x, y = self.training_soft_labels(datamodule)
        counts = np.bincount(y, minlength=self.num_classes)
        no_pos = [c for c in range(self.num_classes) if counts[c] == 0]
        if no_pos:
            warnings.warn(f"ILI graph: classes without a training positive {[classes[c] for c in no_pos]}: "
                          "their nodes are left out of GRaSP (isolated)", stacklevel=2)
        exclude = [c + k * self.num_classes for k in (0, 1) for c in no_pos]
        grasp_kw = dict(lambda_value=self.grasp_lambda, depth=self.grasp_depth,
                        undirected=self.undirected, positive_only=self.positive_only,
                        top_k=self.top_k, normalize=self.weight_norm, exclude=exclude)
        inferred = infer_class_graph(x, nodes, seed=self.graph_seed, **grasp_kw)
        graph: ClassGraph
        if self.graph_source == "inferred":
            graph = inferred
        elif self.graph_source == "random":
            graph = random_graph_like(inferred, seed=self.graph_seed)
        elif self.graph_source == "oracle":
            graph = planted_class_graph(datamodule.root, classes, normalize=self.weight_norm)
        else:
            graph = ClassGraph(np.zeros_like(inferred.adjacency), nodes, {"source": "none"})
        info = dict(graph.info)
        info.setdefault("source", self.graph_source)
        info["train_positives"] = {classes[c]: int(counts[c]) for c in range(self.num_classes)}
        if self.graph_bootstrap > 0 and self.graph_source == "inferred":
            info["bootstrap"] = bootstrap_class_graphs(
                x, nodes, self.graph_bootstrap, seed=self.graph_seed + 1, **grasp_kw)
        info["empty"] = graph.n_entries == 0
        if info["empty"] and self.graph_source != "none":
            msg = (f"ILI graph ({self.graph_source}) has no edge: the student trains without LIR "
                   f"(dropped nodes: {inferred.info.get('dropped')})")
            if self.empty_graph == "error":
                raise ValueError(msg)
            warnings.warn(msg, stacklevel=2)
        self.graph.copy_(torch.as_tensor(graph.adjacency, dtype=self.graph.dtype))
        self.graph_fitted.fill_(True)
        self.graph_nodes, self.graph_info = list(nodes), info

    # --- checkpoint -----------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {"nodes": list(self.graph_nodes), "info": self.graph_info}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore node names and provenance; size the class parts (``num_classes=None``)
        and ``graph`` from the stored shapes."""
        state = checkpoint.get("state_dict", {})
        proxies = state.get("proxies")
        if self.num_classes is None and proxies is not None:
            self.build_classes(int(proxies.shape[0]))
        saved = checkpoint.get(CHECKPOINT_KEY)
        if saved is not None:
            self.graph_nodes, self.graph_info = list(saved["nodes"]), dict(saved["info"])
        stored = state.get("graph")
        if stored is not None and stored.shape != self.graph.shape:
            self.graph = torch.zeros_like(stored)

    # --- capabilities ---------------------------------------------------------------
    def embed(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Student embeddings ``audio`` [B,D], ``visual`` [B,D], L2-normalised."""
        za, zv = self.student_embeddings(batch)
        return {"audio": za, "visual": zv}

    def class_graph(self) -> dict[str, Any]:
        """The graph: ``adjacency`` (0/1 [2C,2C], avbench's convention), ``weights``, ``nodes``, ``info``.

        With ``graph_bootstrap > 0`` also ``bootstrap``: one ``[[src, dst], ...]``
        entry list per bootstrap resample (same nodes).

        Raises:
            RuntimeError: before the graph step ran.
        """
        if not bool(self.graph_fitted):
            raise RuntimeError("ILI: no graph yet (the teacher stage's fit_graph hook has not run)")
        w = self.graph.detach().cpu().numpy().astype(np.float64)
        out = {"adjacency": (w > 0).astype(np.int64), "weights": w,
               "nodes": list(self.graph_nodes), "info": self.graph_info}
        if "bootstrap" in self.graph_info:
            out["bootstrap"] = self.graph_info["bootstrap"]["entries"]
        return out
