"""Stand-ins image-vit, audio-transformer, text-encoder and mel-autoencoder (issue 11).

Each trains at size "tiny", writes weights + card, loads back offline the way real
weights load (timm ``pretrained_cfg_overlay`` / ``from_pretrained(DIR,
local_files_only=True)``) with the trained weights (held-out figures recomputed from
the loaded files equal the card's), and a truncated file raises ``WeightsError``
naming it. Retraining with the same seed gives bit-identical files (slow).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from avbench.nn.weights import WeightsError
from avbench.pretrain import audio_transformer, autoencoder, text, vit
from avbench.pretrain.card import is_current, read_card, sha256_file
from avbench.pretrain.corpus import (
    SentenceCorpus,
    SoundCorpus,
    SpeechCorpus,
    benchmark_categories,
    pretraining_vocabulary,
    pretraining_world,
)
from avbench.pretrain.registry import STANDINS, pretrain

NAMES = ("image-vit", "audio-transformer", "text-encoder", "mel-autoencoder")


class _Built(dict):
    """name -> directory of the tiny stand-in, trained on first access (each test pays only
    for the stand-ins it reads)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def __missing__(self, name: str) -> Path:
        pretrain(name, self.root / name, seed=0, size="tiny", progress=False)
        self[name] = self.root / name
        return self[name]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> _Built:
    return _Built(tmp_path_factory.mktemp("h2_standins"))


@pytest.mark.slow
def test_registered_with_cards_that_are_current(built) -> None:
    for name in NAMES:
        d = built[name]
        assert name in STANDINS
        card = read_card(d)
        assert card.name == name and card.corpus["size"] == "tiny" and card.steps > 0
        assert card.categories == [c.name for c in pretraining_world(0).categories]
        assert all(sha256_file(d / f) == card.sha256[f] for f in card.files.values())
        assert is_current(d, name, 0, "tiny")
        # current: pretrain returns the card without retraining
        assert pretrain(name, d, seed=0, size="tiny", progress=False).created == card.created


def test_vit_loads_through_timm_overlay(built) -> None:
    import timm
    from safetensors.torch import load_file

    card = read_card(built["image-vit"])
    arch = card.architecture
    path = built["image-vit"] / card.files["weights"]
    loaded = timm.create_model(arch["timm_name"], pretrained=True,
                               pretrained_cfg_overlay={"file": str(path)}, **arch["kwargs"]).eval()
    ref = timm.create_model(arch["timm_name"], pretrained=False, **arch["kwargs"]).eval()
    ref.load_state_dict(load_file(str(path)), strict=True)  # the timm key layout, nothing else
    x = vit.normalize(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        tokens = loaded.forward_features(x)
        assert tokens.shape == (2, 1 + 8 * 8, 192)  # CLS + patch-8 tokens of 64 px
        assert torch.equal(tokens, ref.forward_features(x))
        assert torch.equal(vit.load_vit(path).forward_features(x), tokens)
        # another input size: timm resamples the position embedding
        assert vit.load_vit(path, img_size=96).forward_features(
            torch.zeros(1, 3, 96, 96)).shape == (1, 1 + 12 * 12, 192)


def test_hubert_from_pretrained_reproduces_heldout_accuracy(built) -> None:
    from safetensors.torch import load_file
    from transformers import AutoFeatureExtractor, HubertModel

    d = built["audio-transformer"]
    card = read_card(d)
    model = HubertModel.from_pretrained(d, local_files_only=True).eval()
    assert model.config.hidden_size == 96 and model.config.num_hidden_layers == 3
    assert AutoFeatureExtractor.from_pretrained(d, local_files_only=True).do_normalize
    n_sounds, n_words = card.corpus["n_sounds"], card.corpus["n_words"]
    assert n_sounds == len(card.categories)
    head = torch.nn.Linear(96, n_sounds + n_words)
    head.load_state_dict(load_file(str(d / card.files["head"])))
    sounds = SoundCorpus(pretraining_world(0), card.corpus["n_heldout"], 0, "heldout")
    vocabulary = pretraining_vocabulary(0, n_words=n_words)
    assert [w.word for w in vocabulary] == card.corpus["words"]
    words = SpeechCorpus(vocabulary, card.corpus["n_heldout_words"], 0, "heldout")
    items = [sounds[i] for i in range(len(sounds))] + [(x, y + n_sounds) for x, y in words]
    waves = torch.stack([x for x, _ in items])
    labels = torch.tensor([y for _, y in items])
    with torch.no_grad():
        hidden = model(audio_transformer.normalize_wave(waves)).last_hidden_state
        assert hidden.shape[1] == 49  # 1 s at 50 frames/s
        acc = (head(hidden.mean(1)).argmax(1) == labels).float().mean().item()
        assert torch.equal(audio_transformer.load_hubert(d)(waves[:2]).last_hidden_state,
                           model(waves[:2]).last_hidden_state)
    assert acc == pytest.approx(card.heldout["accuracy"])


def test_text_tokenizer_and_encoder_reproduce_heldout_accuracy(built) -> None:
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, BertModel

    d = built["text-encoder"]
    card = read_card(d)
    tok = AutoTokenizer.from_pretrained(d, local_files_only=True)
    assert tok("#C C picks up the saw")["input_ids"] == text.load_tokenizer(d)("#C C picks up the saw")["input_ids"]
    # benchmark nouns were never seen: they split into known pieces, not [UNK]
    for cat in benchmark_categories(0)[:8]:
        ids = tok(f"#C C cuts the {cat.noun}")["input_ids"]
        assert tok.unk_token_id not in ids
    bert = BertModel.from_pretrained(d, local_files_only=True).eval()
    heads = load_file(str(d / card.files["head"]))
    data = text.encode_corpus(tok, SentenceCorpus(pretraining_world(0), card.corpus["n_heldout"], 0,
                                                  "heldout"))
    ids, labels = data.tensors
    with torch.no_grad():
        pooled = bert(input_ids=ids, attention_mask=(ids != tok.pad_token_id).long()).pooler_output
    cat = pooled @ heads["category.weight"].T + heads["category.bias"]
    verb = pooled @ heads["verb.weight"].T + heads["verb.bias"]
    joint = (cat[:, :, None] + verb[:, None, :]).flatten(1)
    assert (joint.argmax(1) == labels).float().mean().item() == pytest.approx(card.heldout["accuracy"])


def test_verb_of_maps_synonyms_to_the_canonical_verb() -> None:
    from avbench.data.synthetic.actions import VERBS

    names = [v.name for v in VERBS]
    assert names[text.verb_of("#C C picks up the hammer")] == "lift"
    assert names[text.verb_of("#C C hammers the hammer")] == "hammer"
    assert names[text.verb_of("#C C taps on a plank on the table")] == "knock"
    with pytest.raises(ValueError, match="known verb"):
        text.verb_of("#C C juggles the pear")


@pytest.mark.slow
def test_mel_autoencoder_from_pretrained_reproduces_heldout_l1(built) -> None:
    from diffusers import AutoencoderKL

    d = built["mel-autoencoder"]
    card = read_card(d)
    ae = AutoencoderKL.from_pretrained(d, local_files_only=True).eval()
    assert ae.config.scaling_factor == pytest.approx(card.architecture["scaling_factor"])
    front = autoencoder.MelFrontEnd()
    corpus = SoundCorpus(pretraining_world(0), card.corpus["n_heldout"], 0, "heldout")
    with torch.no_grad():
        mels = front(torch.stack([corpus[i][0] for i in range(len(corpus))]))
        rec = ae.decode(ae.encode(mels).latent_dist.mode()).sample
        assert (rec - mels).abs().mean().item() == pytest.approx(card.heldout["l1"], rel=1e-4)
        three_s = front(torch.zeros(1, 48000))
        assert three_s.shape == (1, 1, 128, 188)  # AV-LDM's 3 s
        assert ae.encode(three_s).latent_dist.mode().shape == (1, 4, 32, 47)


@pytest.mark.parametrize(("name", "role"), [("image-vit", "weights"), ("audio-transformer", "weights"),
                                            ("text-encoder", "weights"), ("text-encoder", "tokenizer"),
                                            pytest.param("mel-autoencoder", "weights",
                                                         marks=pytest.mark.slow)])
def test_truncated_file_raises_weights_error_naming_it(built, tmp_path, name, role) -> None:
    d = tmp_path / name
    shutil.copytree(built[name], d)
    fname = read_card(d).files[role]
    data = (d / fname).read_bytes()
    (d / fname).write_bytes(data[: len(data) // 2])
    loaders = {"image-vit": lambda: vit.load_vit(d / fname),
               "audio-transformer": lambda: audio_transformer.load_hubert(d),
               "text-encoder": (lambda: text.load_tokenizer(d)) if role == "tokenizer"
               else (lambda: text.load_text_encoder(d)),
               "mel-autoencoder": lambda: autoencoder.load_autoencoder(d)}
    with pytest.raises(WeightsError, match=fname.replace(".", r"\.")):
        loaders[name]()
    assert not is_current(d, name, 0, "tiny")  # sha256 no longer matches the card


def test_missing_directory_raises_weights_error(tmp_path) -> None:
    with pytest.raises(WeightsError, match="config.json"):
        audio_transformer.load_hubert(tmp_path / "nothing")
    with pytest.raises(WeightsError, match="does not exist"):
        vit.load_vit(tmp_path / "nothing" / "model.safetensors")


@pytest.mark.slow
def test_same_seed_gives_identical_files(built, tmp_path) -> None:
    for name in NAMES:
        card = read_card(built[name])
        again = pretrain(name, tmp_path / name, seed=0, size="tiny", progress=False)
        assert again.sha256 == card.sha256, name


def test_tokenizer_vocabulary_is_the_same_in_every_process() -> None:
    # the library's WordPiece trainer broke ties in a per-process random order; the vocabulary
    # of build_tokenizer must not depend on the process
    import subprocess
    import sys

    code = ("import json; from avbench.pretrain import text; "
            "from avbench.pretrain.corpus import SentenceCorpus, pretraining_world; "
            "c = SentenceCorpus(pretraining_world(0), 300, 0); "
            "print(json.dumps(text.build_tokenizer([c[i][0] for i in range(len(c))]).get_vocab(), "
            "sort_keys=True))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           timeout=120).stdout for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) > 100


def test_pretraining_vocabulary_is_disjoint_from_every_spoken_category_word() -> None:
    vocabulary = pretraining_vocabulary(0, n_words=64)
    words = [w.word for w in vocabulary]
    assert len(words) == 64 == len(set(words))
    taken = {c.speech.word for c in benchmark_categories(0)}
    taken |= {c.speech.word for c in pretraining_world(0).categories}
    assert taken and not set(words) & taken
    assert words == [w.word for w in pretraining_vocabulary(0, n_words=64)]
    assert words != [w.word for w in pretraining_vocabulary(1, n_words=64)]


def test_speech_corpus_items_hold_their_word_and_are_seeded() -> None:
    vocabulary = pretraining_vocabulary(0, n_words=4)
    corpus = SpeechCorpus(vocabulary, 8, seed=3)
    wave, label = corpus[5]
    assert wave.shape == (16000,) and label == 5 % 4
    assert torch.equal(wave, SpeechCorpus(vocabulary, 8, seed=3)[5][0])
    assert not torch.equal(wave, SpeechCorpus(vocabulary, 8, seed=3, split="heldout")[5][0])
    assert 0.45 < float(wave.abs().max()) < 0.6  # the word (peak 0.5) over faint noise
    assert float(wave[:200].abs().max()) < 0.1 or float(wave[-200:].abs().max()) < 0.1
    with pytest.raises(ValueError, match="vocabulary"):
        SpeechCorpus([], 4, seed=0)


def test_phone_targets_spell_the_syllables() -> None:
    word = pretraining_vocabulary(0, n_words=8)[0]
    targets = audio_transformer.phone_targets(word)
    spelled = [audio_transformer.PHONES[i - 1] for i in targets]
    assert spelled == [p for s in word.syllables for p in (s.consonant, s.vowel) if p]
    assert min(targets) >= 1  # 0 is the CTC blank


def test_ctc_term_trains_the_frame_head_on_words_only() -> None:
    torch.manual_seed(0)
    model = audio_transformer._Classifier(6)
    vocabulary = pretraining_vocabulary(0, n_words=2)
    phones = [audio_transformer.phone_targets(w) for w in vocabulary]
    words = SpeechCorpus(vocabulary, 2, seed=0)
    waves = torch.stack([words[0][0], words[1][0], torch.zeros(16000)])
    labels = torch.tensor([4, 5, 0])  # two words (n_sounds 4), one sound
    plain = model.loss(waves, labels, 4, phones, ctc_weight=0.0)
    with_ctc = model.loss(waves, labels, 4, phones, ctc_weight=1.0)
    assert float(with_ctc) > float(plain) > 0
    with_ctc.backward()
    assert model.ctc_head.weight.grad.abs().sum() > 0
    model.zero_grad()
    model.loss(waves[2:], labels[2:], 4, phones, ctc_weight=1.0).backward()  # no word items
    assert model.ctc_head.weight.grad is None or model.ctc_head.weight.grad.abs().sum() == 0
