"""Stand-in ``audio-transformer``: a small ``transformers`` HuBERT in the role of HuBERT-Large (DenseAV).

DenseAV's audio tower is HuBERT-Large on the 16 kHz waveform (REFERENCE.md C).
The stand-in is the same ``transformers.HubertModel`` class at CPU size
(:data:`HUBERT_CONFIG`): HuBERT-Large's layout choices (layer-norm conv feature
extractor, pre-LN "stable" transformer layers) with a 7-layer conv feature
extractor of 32 channels (strides 5,2,2,2,2,2,2: one frame per 20 ms, 50 Hz,
as HuBERT), hidden size 96, 3 layers, 4 heads, FFN 192, a 16-tap
convolutional position embedding. Loads as real HuBERT weights do::

    HubertModel.from_pretrained(DIR, local_files_only=True)

``DIR`` also holds a ``preprocessor_config.json`` (``Wav2Vec2FeatureExtractor``:
16 kHz, ``do_normalize=True``: zero-mean unit-variance per clip, as HuBERT-Large
expects), so ``AutoFeatureExtractor.from_pretrained(DIR)`` works too.

Training: supervised classification of 1-s clips, by HubertModel -> mean over
time of the last hidden state -> Linear(96, C + W), cross-entropy
(:func:`~avbench.pretrain.training.fit_classifier`), over two corpora:
:class:`~avbench.pretrain.corpus.SoundCorpus` clips of the C pretraining
categories (disjoint from every benchmark's) and
:class:`~avbench.pretrain.corpus.SpeechCorpus` single spoken words of a W-word
vocabulary that no benchmark category speaks (labels C..C+W-1), by random
speakers. HuBERT-Large is a speech model (LibriSpeech); without the words the
stand-in cannot tell the benchmark's spoken words apart (a linear probe of its
features for the first word of a synthetic spoken caption: 7 % with sounds
only, chance 3 %), and DenseAV's speech grounding has nothing to learn from.
The word items also carry a CTC loss over their phones (:data:`PHONES`, the
world's consonants and vowels; weight :data:`CTC_WEIGHT`) on a per-frame head
of the last hidden state, as DenseAV's HuBERT-Large (``hubert-large-ls960-ft``)
is fine-tuned with CTC on LibriSpeech: phones are shared by every word, so the
last layer keeps what a new vocabulary needs (word classification alone makes
it specific to the pretraining words). The CTC head is not saved.
No masked prediction (HuBERT's own objective). The classification head is saved
separately in ``head.safetensors`` (keys ``weight``, ``bias``; not part of the
HuBERT directory's model, the card lists it). :func:`load_hubert` is the
checked loader (a missing or truncated file -> ``WeightsError`` naming it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from avbench.data.synthetic.speech import CONSONANTS, VOWELS, SpeechIdentity
from avbench.pretrain.card import StandinCard
from avbench.pretrain.corpus import SoundCorpus, SpeechCorpus, pretraining_vocabulary
from avbench.pretrain.local_pretrained import from_pretrained_checked
from avbench.pretrain.registry import StandinSpec, register_standin
from avbench.pretrain.training import (
    StandinRun,
    fit_classifier,
    materialize,
    save_safetensors,
    seed_everything,
)

__all__ = ["HUBERT_CONFIG", "NAME", "PHONES", "SAMPLE_RATE", "load_hubert", "normalize_wave",
           "phone_targets", "train"]

NAME = "audio-transformer"
SAMPLE_RATE = 16000
WEIGHTS_FILE, CONFIG_FILE, HEAD_FILE = "model.safetensors", "config.json", "head.safetensors"
PREPROCESSOR_FILE = "preprocessor_config.json"
#: HubertConfig of the stand-in (HuBERT-Large's layout choices at CPU size)
HUBERT_CONFIG: dict[str, Any] = {
    "hidden_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 192,
    "conv_dim": [32] * 7, "conv_stride": [5, 2, 2, 2, 2, 2, 2], "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4,
    "feat_extract_norm": "layer", "do_stable_layer_norm": True,
    "hidden_dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0,
    "feat_proj_dropout": 0.0, "final_dropout": 0.0, "layerdrop": 0.0, "mask_time_prob": 0.0,
}
#: the world's phone set, the CTC alphabet (after the blank): consonants, then vowels
PHONES: tuple[str, ...] = tuple(c for c in CONSONANTS if c) + tuple(VOWELS)
#: weight of the phone CTC term (HuBERT-Large ls960-ft is a CTC-fine-tuned model)
CTC_WEIGHT = 1.0
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"n_train": 64, "n_heldout": 32, "n_words": 8, "n_train_words": 32,
             "n_heldout_words": 16, "steps": 6, "batch_size": 16, "lr": 1e-3},
    "default": {"n_train": 1536, "n_heldout": 256, "n_words": 512, "n_train_words": 4096,
                "n_heldout_words": 512, "steps": 600, "batch_size": 32, "lr": 1e-3},
}


def normalize_wave(wave: torch.Tensor) -> torch.Tensor:
    """Zero-mean, unit-variance per clip over the last axis (``Wav2Vec2FeatureExtractor``'s
    ``do_normalize``): ``[..., L] -> [..., L]``."""
    mean = wave.mean(dim=-1, keepdim=True)
    var = wave.var(dim=-1, keepdim=True, unbiased=False)
    return (wave - mean) / torch.sqrt(var + 1e-7)


def phone_targets(word: SpeechIdentity) -> list[int]:
    """The CTC target of a spoken word: its phones in order (consonant if any, then vowel, per
    syllable) as indices ``1..len(PHONES)`` into :data:`PHONES` (0 is the CTC blank)."""
    out: list[int] = []
    for syl in word.syllables:
        if syl.consonant:
            out.append(PHONES.index(syl.consonant) + 1)
        out.append(PHONES.index(syl.vowel) + 1)
    return out


class _Classifier(nn.Module):
    """Normalise -> HubertModel -> time mean -> Linear: wave ``[B, L]`` at 16 kHz -> logits
    ``[B, C]``; :meth:`phone_log_probs` is the per-frame CTC head over :data:`PHONES` + blank."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        from transformers import HubertConfig, HubertModel

        self.hubert = HubertModel(HubertConfig(**HUBERT_CONFIG))
        self.head = nn.Linear(HUBERT_CONFIG["hidden_size"], n_classes)
        self.ctc_head = nn.Linear(HUBERT_CONFIG["hidden_size"], len(PHONES) + 1)

    def hidden(self, wave: torch.Tensor) -> torch.Tensor:
        return self.hubert(normalize_wave(wave)).last_hidden_state  # [B, T, D]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(wave).mean(dim=1))

    def loss(self, wave: torch.Tensor, labels: torch.Tensor, n_sounds: int,
             phones: list[list[int]], ctc_weight: float) -> torch.Tensor:
        """Cross-entropy of the clip label + ``ctc_weight`` x CTC of the phones of the word
        items (labels ``>= n_sounds``; ``phones[w]`` is word ``w``'s target)."""
        hidden = self.hidden(wave)
        loss = F.cross_entropy(self.head(hidden.mean(dim=1)), labels)
        words = torch.where(labels >= n_sounds)[0]
        if ctc_weight > 0 and len(words):
            log_probs = self.ctc_head(hidden[words]).log_softmax(-1).transpose(0, 1)  # [T, b, P]
            targets = [phones[int(labels[i]) - n_sounds] for i in words]
            loss = loss + ctc_weight * F.ctc_loss(
                log_probs, torch.tensor([p for t in targets for p in t]),
                torch.full((len(words),), log_probs.shape[0], dtype=torch.long),
                torch.tensor([len(t) for t in targets]), blank=0, zero_infinity=True)
        return loss


def load_hubert(out_dir: str | Path) -> nn.Module:
    """``HubertModel.from_pretrained(out_dir, local_files_only=True)`` in eval mode.

    Raises:
        avbench.nn.weights.WeightsError: ``config.json`` or ``model.safetensors`` is missing,
            truncated or does not match (the message names the directory and file).
    """
    from transformers import HubertModel

    return from_pretrained_checked(HubertModel, out_dir, (CONFIG_FILE, WEIGHTS_FILE)).eval()


def train(out_dir: Path, seed: int = 0, size: str = "default", progress: bool = True) -> StandinCard:
    """Train the HuBERT stand-in into ``out_dir`` (``config.json``, ``model.safetensors``,
    ``preprocessor_config.json``, ``head.safetensors``, ``card.json``). Deterministic in ``(seed, size)``."""
    from transformers import Wav2Vec2FeatureExtractor

    cfg = SIZES[size]
    run = StandinRun.start(NAME, out_dir, seed, size)
    world = run.world
    vocabulary = pretraining_vocabulary(run.seed, n_words=cfg["n_words"])
    n_sounds = len(world.categories)
    data = {}
    for split in ("train", "heldout"):
        sounds = materialize(SoundCorpus(world, cfg[f"n_{split}"], seed, split, 1.0, SAMPLE_RATE),
                             desc=f"{NAME} {split} sounds", progress=progress)
        words = materialize(SpeechCorpus(vocabulary, cfg[f"n_{split}_words"], seed, split, 1.0,
                                         SAMPLE_RATE), desc=f"{NAME} {split} words", progress=progress)
        data[split] = TensorDataset(torch.cat([sounds.tensors[0], words.tensors[0]]),
                                    torch.cat([sounds.tensors[1], words.tensors[1] + n_sounds]))
    seed_everything(seed)
    model = _Classifier(n_sounds + len(vocabulary))
    phones = [phone_targets(w) for w in vocabulary]
    stats = fit_classifier(model, data["train"], data["heldout"], steps=cfg["steps"],
                           batch_size=cfg["batch_size"], lr=cfg["lr"], seed=seed,
                           desc=f"pretrain {NAME}", progress=progress, weight_decay=0.01,
                           loss_fn=lambda m, x, y: m.loss(x, y, n_sounds, phones, CTC_WEIGHT),
                           grad_clip=1.0)  # CTC's first gradients are ~100x the CE's
    model.hubert.save_pretrained(run.out_dir, safe_serialization=True)
    save_safetensors(run.out_dir / HEAD_FILE, model.head.state_dict())
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0,
                             do_normalize=True, return_attention_mask=True).save_pretrained(run.out_dir)
    return run.finish(
        architecture={"library": "transformers", "class": "HubertModel", "config": dict(HUBERT_CONFIG),
                      "load": "HubertModel.from_pretrained(DIR, local_files_only=True)",
                      "input": "mono wave at 16 kHz, zero-mean unit-variance per clip",
                      "frame_rate_hz": SAMPLE_RATE / 320,
                      "head": "mean over time -> Linear(96, n_sounds + n_words), saved in "
                              "head.safetensors",
                      "training": "supervised classification of SoundCorpus 1-s clips (labels "
                                  "0..n_sounds-1) and SpeechCorpus 1-s spoken words (labels "
                                  "n_sounds..; not HuBERT masked prediction)",
                      "role": "HuBERT-Large (DenseAV audio tower)"},
        files={"config": CONFIG_FILE, "weights": WEIGHTS_FILE, "preprocessor": PREPROCESSOR_FILE,
               "head": HEAD_FILE},
        corpus={"kind": "SoundCorpus + SpeechCorpus", "n_train": cfg["n_train"],
                "n_heldout": cfg["n_heldout"], "n_sounds": n_sounds, "n_words": len(vocabulary),
                "n_train_words": cfg["n_train_words"], "n_heldout_words": cfg["n_heldout_words"],
                "words": [w.word for w in vocabulary], "seconds": 1.0, "sample_rate": SAMPLE_RATE, "batch_size": cfg["batch_size"],
                "lr": cfg["lr"]},
        steps=int(stats["steps"]),
        heldout={"accuracy": stats["heldout_accuracy"], "loss": stats["heldout_loss"]})


register_standin(StandinSpec(
    name=NAME,
    description="transformers HubertModel (3 layers, dim 96, conv front-end on the 16 kHz wave), "
                "supervised on world sounds and spoken words: HuBERT-Large's role (DenseAV)",
    train=train,
))
