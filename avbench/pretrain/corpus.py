"""The pretraining corpus: the synthetic world with categories no benchmark uses.

The papers start from networks trained on other data with other labels
(ImageNet for VGGSound/Flickr models, AudioSet for VGGish, ...). Here the
stand-ins learn from :func:`pretraining_world`: the same physics and
:class:`~avbench.data.synthetic.config.WorldConfig` as the benchmark world of
``world_seed`` (the one every synthetic writer builds with
``World(config, world_seed)``), over categories DISJOINT from it:

- no shared look: the key is ``(base colour, shape, texture)``, where the base
  colour drops the ``"dark"``/``"light"`` of a visually confusable twin, so no
  pretraining category is even a near-twin of a benchmark one; hence no
  shared name either (a name spells its look);
- no shared spoken word;
- no sound of the same kind within :data:`PITCH_TOLERANCE` (5 %) in pitch of a
  benchmark sound (nor of another pretraining sound);
- no shared narration noun (:data:`PRETRAIN_NOUNS` is disjoint from
  :data:`~avbench.data.synthetic.categories.NOUNS`).

Candidates come from :func:`~avbench.data.synthetic.categories.make_categories`
on an independent random stream (``[world_seed, 1, 7919, round]``), without
confusable pairs (pretraining classes are all distinguishable, as ImageNet's
are meant to be); the first ``n_categories`` that pass the rules, in draw
order, are kept.

The datasets render on demand; item ``i`` of split ``s`` draws everything
from ``numpy.random.default_rng([seed, SPLITS[s], i])``, so train and
held-out scenes come from different seeds and the corpus is a pure function
of ``(world, seed, split, i)``:

- :class:`ImageCorpus`: ImageNet-like object-centric images: one labelled
  object at the world's usual scale and position ranges, the world's
  background, the world's silent distractors (drawn from the pretraining
  categories only), no co-occurring objects;
- :class:`SoundCorpus`: one category's scene mix (its sound, background noise
  at the scene SNR; no off-screen or co-occurring source), the loudest
  ``seconds`` window of a longer render (so a window is never silent);
- :class:`SentenceCorpus`: narration-like sentences naming a category by its
  noun or its name;
- :class:`SpeechCorpus`: single spoken words of :func:`pretraining_vocabulary`
  (words no benchmark category speaks) by random speakers over faint noise:
  the speech that HuBERT's pretraining data (LibriSpeech) is to the benchmarks'
  spoken captions.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.utils.data import Dataset

from avbench.data.synthetic.actions import TEMPLATES, VERBS, third_person
from avbench.data.synthetic.categories import NOUNS, Category, make_categories
from avbench.data.synthetic.config import WorldConfig
from avbench.data.synthetic.speech import SpeechIdentity, render_speech, sample_speech_identities
from avbench.data.synthetic.world import World

__all__ = [
    "PITCH_TOLERANCE", "PRETRAIN_NOUNS", "SPLITS", "ImageCorpus", "SentenceCorpus", "SoundCorpus",
    "SpeechCorpus", "benchmark_categories", "look_key", "pretraining_vocabulary", "pretraining_world",
    "sounds_clash",
]

#: two sounds of one kind clash when their pitches are within this relative distance
PITCH_TOLERANCE = 0.05
#: split name -> the second entry of every item's random-stream key
SPLITS: dict[str, int] = {"train": 0, "heldout": 1}
#: narration nouns of the pretraining categories (none is a benchmark noun)
PRETRAIN_NOUNS: tuple[str, ...] = (
    "hammer", "saw", "ladle", "whisk", "plank", "bolt", "nail", "screw", "rope", "chain",
    "candle", "vase", "pillow", "blanket", "shoe", "sock", "hat", "glove", "coin", "button",
    "comb", "mirror", "stool", "chair", "crate", "shovel", "rake", "broom", "funnel", "sieve",
    "grater", "peeler", "teapot", "saucer", "napkin", "ribbon", "marble", "pebble", "shell",
    "feather", "leaf", "acorn", "pear", "plum", "melon", "pumpkin", "radish", "garlic",
)
_STREAM = 7919  # marks the pretraining candidates' random stream
_SPEECH_STREAM = 7927  # marks the pretraining vocabulary's random stream
_MAX_ROUNDS = 16


def benchmark_categories(world_seed: int = 0, config: WorldConfig | None = None) -> list[Category]:
    """The categories of the benchmark world ``World(config, world_seed)`` (what the writers use)."""
    return World(config, seed=world_seed).categories


def look_key(category: Category) -> tuple[str, str, str]:
    """``(base colour, shape, texture)``: equal keys look alike (twins share their base colour)."""
    v = category.visual
    return v.color_name.split()[-1], v.shape, v.texture


def sounds_clash(a: Category, b: Category, tolerance: float = PITCH_TOLERANCE) -> bool:
    """Same sound kind and pitches within ``tolerance`` (relative to the lower one)."""
    pa, pb = a.sound.pitch_hz, b.sound.pitch_hz
    return a.sound.kind == b.sound.kind and max(pa, pb) <= (1 + tolerance) * min(pa, pb)


def pretraining_world(world_seed: int = 0, config: WorldConfig | None = None,
                      n_categories: int = 32) -> World:
    """A :class:`World` whose categories are disjoint from ``World(config, world_seed)``'s.

    Disjoint means (module docstring): no shared name, look ``(colour, shape,
    texture)``, spoken word or narration noun, and no sound of the same kind
    within 5 % in pitch. Physics and config are the benchmark world's
    (``n_categories`` aside); the world's own seed (graph, actions) is
    ``world_seed``. Deterministic in ``(world_seed, config, n_categories)``.

    Raises:
        ValueError: ``n_categories < 2``, or the rules leave fewer than
            ``n_categories`` candidates (only for worlds far larger than the default).
    """
    config = config if config is not None else WorldConfig()
    if n_categories < 2:
        raise ValueError("n_categories must be >= 2")
    bench = benchmark_categories(world_seed, config)
    looks = {look_key(c) for c in bench}
    words = {c.speech.word for c in bench}
    taken: list[Category] = list(bench)  # sounds to keep clear of
    cand_config = dataclasses.replace(config, n_categories=4 * n_categories,
                                      n_confusable_visual=0, n_confusable_audio=0)
    kept: list[Category] = []
    for round_ in range(_MAX_ROUNDS):
        cands, _ = make_categories(cand_config, np.random.default_rng([world_seed, 1, _STREAM, round_]))
        for c in cands:
            if (look_key(c) in looks or c.speech.word in words
                    or any(sounds_clash(c, t) for t in taken)):
                continue
            looks.add(look_key(c))
            words.add(c.speech.word)
            taken.append(c)
            kept.append(c)
            if len(kept) == n_categories:
                break
        if len(kept) == n_categories:
            break
    else:
        raise ValueError(f"only {len(kept)} pretraining categories fit beside world seed "
                         f"{world_seed}'s {len(bench)}; ask for fewer than {n_categories}")
    out = []
    for k, c in enumerate(kept):
        base = PRETRAIN_NOUNS[k % len(PRETRAIN_NOUNS)]
        noun = base if k < len(PRETRAIN_NOUNS) else f"{base}{k // len(PRETRAIN_NOUNS) + 1}"
        out.append(dataclasses.replace(c, index=k, noun=noun))
    assert not set(PRETRAIN_NOUNS) & set(NOUNS)
    return World.from_categories(out, config, seed=world_seed)


class _Corpus(Dataset):
    """Shared part: ``n`` items of one split, item ``i`` seeded by ``[seed, SPLITS[split], i]``;
    labels cycle through the categories (balanced classes)."""

    def __init__(self, world: World, n: int, seed: int, split: str = "train") -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; one of {sorted(SPLITS)}")
        if n < 1:
            raise ValueError(f"a corpus needs n >= 1 items, got {n}")
        self.world, self.n, self.seed, self.split = world, int(n), int(seed), split
        self.n_classes = len(world.categories)

    def __len__(self) -> int:
        return self.n

    def rng(self, i: int) -> np.random.Generator:
        """The random stream of item ``i``."""
        if not 0 <= i < self.n:
            raise IndexError(f"item {i} outside [0, {self.n})")
        return np.random.default_rng([self.seed, SPLITS[self.split], int(i)])

    def label(self, i: int) -> int:
        """Category index of item ``i``."""
        return int(i) % self.n_classes

    @property
    def category_names(self) -> list[str]:
        return [c.name for c in self.world.categories]


class ImageCorpus(_Corpus):
    """Object-centric world images: ``dataset[i] = (image float [3,S,S] in [0,1], label)``.

    One labelled object (the world's scale/position ranges), background and
    silent distractors of the pretraining categories, seen at a random time in
    ``[0, 3)`` s (motion pulses); ``S = image_size``.
    """

    def __init__(self, world: World, n: int, seed: int, split: str = "train",
                 image_size: int = 128) -> None:
        super().__init__(world, n, seed, split)
        self.image_size = int(image_size)

    def scene(self, i: int):
        """``(Scene, t seconds, label)`` of item ``i``."""
        r = self.rng(i)
        label = self.label(i)
        scene = self.world.sample_scene(r, label, offscreen=False, cooccurrence=False)
        return scene, float(r.uniform(0.0, 3.0)), label

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        scene, t, label = self.scene(i)
        frame = self.world.render_frame(scene, t, self.image_size)
        return torch.from_numpy(frame).permute(2, 0, 1).float().div_(255.0), label


class SoundCorpus(_Corpus):
    """One category's scene mix: ``dataset[i] = (wave float [L], label)``, ``L = seconds * sample_rate``.

    The mix (the category's sound + background noise at the scene SNR,
    normalised to the world's ``mix_rms``) is rendered for ``seconds + 2`` s and
    the loudest ``seconds`` window (0.1-s steps) is kept, so every item holds
    at least part of an event.
    """

    def __init__(self, world: World, n: int, seed: int, split: str = "train",
                 seconds: float = 1.0, sample_rate: int = 16000) -> None:
        super().__init__(world, n, seed, split)
        self.seconds, self.sample_rate = float(seconds), int(sample_rate)

    def scene(self, i: int):
        """``(Scene, label)`` of item ``i``."""
        r = self.rng(i)
        label = self.label(i)
        return self.world.sample_scene(r, label, offscreen=False, n_distractors=0,
                                       cooccurrence=False), label

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        scene, label = self.scene(i)
        sr = self.sample_rate
        wave = self.world.render_audio(scene, self.seconds + 2.0, sr)
        n, hop = int(round(self.seconds * sr)), sr // 10
        energy = np.cumsum(np.concatenate([[0.0], wave.astype(np.float64) ** 2]))
        starts = np.arange(0, len(wave) - n + 1, hop)
        best = int(starts[np.argmax(energy[starts + n] - energy[starts])])
        return torch.from_numpy(np.ascontiguousarray(wave[best:best + n], np.float32)), label


class SentenceCorpus(_Corpus):
    """Narration-like sentences: ``dataset[i] = (sentence str, label)``.

    Ego4D-style narrations (``"#C C picks up the hammer"``: the world's verbs
    and templates) naming the category by its noun, or by its name
    (``"#C C lifts the red striped disk"``), half of the time each.
    """

    def __getitem__(self, i: int) -> tuple[str, int]:
        r = self.rng(i)
        label = self.label(i)
        cat = self.world.categories[label]
        verb = VERBS[int(r.integers(len(VERBS)))]
        syn = verb.synonyms[int(r.integers(len(verb.synonyms)))]
        template = TEMPLATES[int(r.integers(len(TEMPLATES)))]
        what = cat.noun if r.random() < 0.5 else cat.name
        return template.format(verb=third_person(syn), noun=what), label


def pretraining_vocabulary(world_seed: int = 0, config: WorldConfig | None = None,
                           n_words: int = 128) -> list[SpeechIdentity]:
    """``n_words`` spoken words (1-3 syllables of the world's phone set) that no category of
    the benchmark world ``World(config, world_seed)`` speaks, nor any category of
    :func:`pretraining_world` (so word and sound labels never name the same thing).

    Drawn by :func:`~avbench.data.synthetic.speech.sample_speech_identities` from an
    independent stream ``[world_seed, 2, 7927]``; deterministic in its arguments.

    Raises:
        ValueError: ``n_words < 2``.
    """
    if n_words < 2:
        raise ValueError("n_words must be >= 2")
    taken = {c.speech.word for c in benchmark_categories(world_seed, config)}
    taken |= {c.speech.word for c in pretraining_world(world_seed, config).categories}
    draw = sample_speech_identities(n_words + len(taken),
                                    np.random.default_rng([world_seed, 2, _SPEECH_STREAM]))
    return [w for w in draw if w.word not in taken][:n_words]


class SpeechCorpus(Dataset):
    """Single spoken words: ``dataset[i] = (wave float [L], word index)``, ``L = seconds * sample_rate``.

    Item ``i`` (random stream ``[seed, SPLITS[split], i, 2]``): word ``i % len(vocabulary)``
    spoken by a speaker drawn from the stream (:func:`~avbench.data.synthetic.speech.render_speech`:
    f0, vocal-tract length, tempo), placed at a random offset in the window (a word longer than
    the window is cut to it), over white noise of RMS uniform in ``noise_rms`` (the word peaks
    at 0.5).

    Raises:
        ValueError: an empty vocabulary, ``n < 1`` or an unknown split.
    """

    def __init__(self, vocabulary: list[SpeechIdentity], n: int, seed: int, split: str = "train",
                 seconds: float = 1.0, sample_rate: int = 16000,
                 noise_rms: tuple[float, float] = (0.001, 0.02)) -> None:
        if not vocabulary:
            raise ValueError("SpeechCorpus needs a non-empty vocabulary")
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; one of {sorted(SPLITS)}")
        if n < 1:
            raise ValueError(f"a corpus needs n >= 1 items, got {n}")
        self.vocabulary, self.n, self.seed, self.split = list(vocabulary), int(n), int(seed), split
        self.seconds, self.sample_rate, self.noise_rms = float(seconds), int(sample_rate), noise_rms
        self.n_classes = len(self.vocabulary)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if not 0 <= i < self.n:
            raise IndexError(f"item {i} outside [0, {self.n})")
        r = np.random.default_rng([self.seed, SPLITS[self.split], int(i), 2])
        label = int(i) % self.n_classes
        word = render_speech(self.vocabulary[label], int(r.integers(2**31)), self.sample_rate)
        n = int(round(self.seconds * self.sample_rate))
        wave = (r.standard_normal(n) * r.uniform(*self.noise_rms)).astype(np.float32)
        if len(word) > n:
            start = (len(word) - n) // 2
            word = word[start:start + n]
        at = int(r.integers(0, n - len(word) + 1))
        wave[at:at + len(word)] += word
        return torch.from_numpy(wave), label
