"""Stand-in ``text-encoder``: a WordPiece tokenizer and a small BERT over Ego4D-style narrations.

MC3 (and AV-LDM's text-free cousins) encode narrations such as ``"#C C cuts the
carrot"`` with a pretrained language model (DistilBERT-style; REFERENCE.md C).
The stand-in, both in one directory:

- tokenizer: ``tokenizers`` WordPiece (BERT normaliser with lower-casing, BERT
  pre-tokenizer, ``[CLS] $A [SEP]`` post-processor, specials ``[PAD] [UNK]
  [CLS] [SEP] [MASK]``, vocabulary up to 400: the lower-case alphabet and digits
  as word starts and ``##`` continuations, so an unseen word - every benchmark
  noun - splits into known pieces rather than ``[UNK]``, then the training
  sentences' most frequent whole words; chosen by :func:`build_tokenizer`, not by
  the library's WordPiece trainer, whose tie-breaking differs between processes),
  wrapped as ``transformers.PreTrainedTokenizerFast``;
- encoder: ``transformers.BertModel`` (:data:`BERT_CONFIG`: hidden 64, 2
  layers, 4 heads, FFN 128, 64 positions), sentence embedding = its pooler
  output (``[CLS]`` -> dense -> tanh).

Both load as real ones do::

    PreTrainedTokenizerFast.from_pretrained(DIR, local_files_only=True)   # or AutoTokenizer
    BertModel.from_pretrained(DIR, local_files_only=True)

Corpus: :class:`~avbench.pretrain.corpus.SentenceCorpus` of the pretraining
world (its categories, nouns and names are disjoint from every benchmark's; the
verbs, synonyms and templates are the world's: ``actions.VERBS`` /
``TEMPLATES``, as English is shared by ImageNet and Ego4D).

Training objective: supervised two-way classification, no masked-LM: from the
pooler output, a category head (which object: noun or name) and a verb head
(the canonical verb of the sentence's synonym, parsed from the sentence by
:func:`verb_of`, so synonyms must map together). Their logits are summed into a
joint ``[C x V]`` softmax (``logits[c * V + v] = cat[c] + verb[v]``), whose
cross-entropy equals the sum of the two heads' cross-entropies, so the shared
:func:`~avbench.pretrain.training.fit_classifier` trains it; held-out accuracy
is the joint one (both right). The heads are saved in ``head.safetensors``
(``category.weight/bias``, ``verb.weight/bias``), not in the BERT directory.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from avbench.data.synthetic.actions import VERBS, third_person
from avbench.pretrain.card import StandinCard
from avbench.pretrain.corpus import SentenceCorpus
from avbench.pretrain.local_pretrained import from_pretrained_checked
from avbench.pretrain.registry import StandinSpec, register_standin
from avbench.pretrain.training import StandinRun, fit_classifier, save_safetensors, seed_everything

__all__ = ["BERT_CONFIG", "MAX_LENGTH", "NAME", "build_tokenizer", "encode_corpus", "load_text_encoder",
           "load_tokenizer", "train", "verb_of"]

NAME = "text-encoder"
MAX_LENGTH = 24  # tokens incl. [CLS]/[SEP]; the longest corpus narration is 15
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
VOCAB_SIZE = 400
ALPHABET = list("abcdefghijklmnopqrstuvwxyz0123456789#")
CONFIG_FILE, WEIGHTS_FILE, HEAD_FILE = "config.json", "model.safetensors", "head.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
#: BertConfig of the encoder (vocab_size comes from the trained tokenizer)
BERT_CONFIG: dict[str, Any] = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                               "intermediate_size": 128, "max_position_embeddings": 64,
                               "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"n_train": 256, "n_heldout": 64, "steps": 10, "batch_size": 32, "lr": 2e-3},
    "default": {"n_train": 8192, "n_heldout": 1024, "steps": 1200, "batch_size": 64, "lr": 1e-3},
}
#: third-person synonym phrase -> canonical verb index (synonyms are unique across verbs)
_SYNONYMS = sorted(((third_person(s), k) for k, v in enumerate(VERBS) for s in v.synonyms),
                   key=lambda p: -len(p[0]))


def verb_of(sentence: str) -> int:
    """Index into ``actions.VERBS`` of a narration ``"#C C <verb phrase> ..."``.

    Raises:
        ValueError: the sentence does not start with ``"#C C "`` followed by a known synonym.
    """
    prefix = "#C C "
    if sentence.startswith(prefix):
        rest = sentence[len(prefix):]
        for phrase, k in _SYNONYMS:  # longest first: "picks up" before a shorter match
            if rest.startswith(phrase + " "):
                return k
    raise ValueError(f"not a narration with a known verb: {sentence!r}")


def build_tokenizer(sentences: list[str]) -> Any:
    """A WordPiece tokenizer trained on ``sentences``, as ``PreTrainedTokenizerFast`` (module doc)."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    # The vocabulary is chosen here, not by trainers.WordPieceTrainer: that trainer breaks
    # ties between equally frequent merges in a per-process random order, so the same
    # sentences gave a different vocabulary (and weights) in every run. Vocabulary:
    # specials, the alphabet as word starts and "##" continuations (an unseen word - every
    # benchmark noun - splits into known pieces), then the most frequent whole words
    # (ties by spelling), ids in that fixed order.
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts = Counter(word for sentence in sentences for word, _ in
                     pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(sentence)))
    base = [*SPECIAL_TOKENS, *ALPHABET, *("##" + c for c in ALPHABET)]
    known = set(base)
    words = sorted((w for w in counts if w not in known), key=lambda w: (-counts[w], w))
    tokens = base + words[:max(0, VOCAB_SIZE - len(base))]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(tokens)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=MAX_LENGTH)


class _Classifier(nn.Module):
    """token ids ``[B, T]`` (``[PAD]``-padded) -> joint category x verb logits ``[B, C * V]``."""

    def __init__(self, vocab_size: int, pad_id: int, n_classes: int, n_verbs: int) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        self.bert = BertModel(BertConfig(vocab_size=vocab_size, pad_token_id=pad_id, **BERT_CONFIG))
        self.pad_id = pad_id
        self.category = nn.Linear(BERT_CONFIG["hidden_size"], n_classes)
        self.verb = nn.Linear(BERT_CONFIG["hidden_size"], n_verbs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pooled = self.bert(input_ids=ids, attention_mask=(ids != self.pad_id).long()).pooler_output
        joint = self.category(pooled)[:, :, None] + self.verb(pooled)[:, None, :]
        return joint.flatten(1)


def encode_corpus(tokenizer: Any, corpus: SentenceCorpus) -> TensorDataset:
    """``(ids long [N, MAX_LENGTH], joint label long [N])`` of every sentence of ``corpus``."""
    items = [corpus[i] for i in range(len(corpus))]
    ids = tokenizer([s for s, _ in items], padding="max_length", truncation=True,
                    max_length=MAX_LENGTH, return_tensors="pt")["input_ids"]
    labels = torch.tensor([c * len(VERBS) + verb_of(s) for s, c in items], dtype=torch.long)
    return TensorDataset(ids, labels)


def load_tokenizer(out_dir: str | Path) -> Any:
    """``PreTrainedTokenizerFast.from_pretrained(out_dir, local_files_only=True)``.

    Raises:
        avbench.nn.weights.WeightsError: a tokenizer file is missing or unreadable (named).
    """
    from transformers import PreTrainedTokenizerFast

    return from_pretrained_checked(PreTrainedTokenizerFast, out_dir, TOKENIZER_FILES)


def load_text_encoder(out_dir: str | Path) -> nn.Module:
    """``BertModel.from_pretrained(out_dir, local_files_only=True)`` in eval mode.

    Raises:
        avbench.nn.weights.WeightsError: ``config.json`` / ``model.safetensors`` missing,
            truncated or mismatched (the message names the directory and files).
    """
    from transformers import BertModel

    return from_pretrained_checked(BertModel, out_dir, (CONFIG_FILE, WEIGHTS_FILE)).eval()


def train(out_dir: Path, seed: int = 0, size: str = "default", progress: bool = True) -> StandinCard:
    """Train tokenizer + encoder into ``out_dir`` (``tokenizer.json`` ..., ``config.json``,
    ``model.safetensors``, ``head.safetensors``, ``card.json``). Deterministic in ``(seed, size)``."""
    cfg = SIZES[size]
    run = StandinRun.start(NAME, out_dir, seed, size)
    world = run.world
    corpora = {split: SentenceCorpus(world, cfg[f"n_{split}"], seed, split)
               for split in ("train", "heldout")}
    tokenizer = build_tokenizer([corpora["train"][i][0] for i in range(len(corpora["train"]))])
    data = {split: encode_corpus(tokenizer, c) for split, c in corpora.items()}
    seed_everything(seed)
    model = _Classifier(len(tokenizer), tokenizer.pad_token_id, len(world.categories), len(VERBS))
    stats = fit_classifier(model, data["train"], data["heldout"], steps=cfg["steps"],
                           batch_size=cfg["batch_size"], lr=cfg["lr"], seed=seed,
                           desc=f"pretrain {NAME}", progress=progress, weight_decay=0.01)
    tokenizer.save_pretrained(run.out_dir)
    model.bert.save_pretrained(run.out_dir, safe_serialization=True)
    save_safetensors(run.out_dir / HEAD_FILE,
                     {f"{name}.{k}": v for name in ("category", "verb")
                      for k, v in getattr(model, name).state_dict().items()})
    return run.finish(
        architecture={"library": "transformers", "class": "BertModel",
                      "config": {**BERT_CONFIG, "vocab_size": len(tokenizer)},
                      "tokenizer": {"class": "PreTrainedTokenizerFast", "model": "WordPiece",
                                    "vocab_size": len(tokenizer), "lowercase": True,
                                    "max_length": MAX_LENGTH, "special_tokens": list(SPECIAL_TOKENS)},
                      "load": "PreTrainedTokenizerFast / BertModel .from_pretrained(DIR, "
                              "local_files_only=True)",
                      "embedding": "pooler_output (CLS -> dense -> tanh), 64-d",
                      "head": "category and verb linear heads on the pooler output, summed into a "
                              "joint softmax; saved in head.safetensors",
                      "training": "supervised category + verb classification (no masked LM)",
                      "role": "DistilBERT-style narration encoder (MC3)"},
        files={"config": CONFIG_FILE, "weights": WEIGHTS_FILE, "head": HEAD_FILE,
               **{f.split(".")[0]: f for f in TOKENIZER_FILES}},
        corpus={"kind": "SentenceCorpus", "n_train": cfg["n_train"], "n_heldout": cfg["n_heldout"],
                "verbs": [v.name for v in VERBS], "batch_size": cfg["batch_size"], "lr": cfg["lr"]},
        steps=int(stats["steps"]),
        heldout={"accuracy": stats["heldout_accuracy"], "loss": stats["heldout_loss"]})


register_standin(StandinSpec(
    name=NAME,
    description="WordPiece tokenizer + small BertModel (2 layers, dim 64) on Ego4D-style world "
                "narrations: the narration encoder's role (MC3)",
    train=train,
))
