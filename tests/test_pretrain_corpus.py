"""The pretraining corpus: categories disjoint from every benchmark world's, deterministic items."""

from __future__ import annotations

import pytest
import torch

from avbench.data.synthetic.categories import NOUNS
from avbench.data.synthetic.config import WorldConfig
from avbench.data.synthetic.world import World
from avbench.pretrain.corpus import (
    PITCH_TOLERANCE,
    ImageCorpus,
    SentenceCorpus,
    SoundCorpus,
    benchmark_categories,
    look_key,
    pretraining_world,
    sounds_clash,
)

SEEDS = [0, 1, 2, 3, 7, 123]


@pytest.mark.parametrize("world_seed", SEEDS)
def test_pretraining_categories_are_disjoint_from_the_benchmark_world(world_seed):
    bench = benchmark_categories(world_seed)
    # the benchmark world is exactly what the writers build (ssl_layout.get_world, ego4d)
    from avbench.data.synthetic.writers.ssl_layout import get_world

    assert [c.name for c in bench] == [c.name for c in get_world({}, world_seed).categories]
    assert [c.name for c in bench] == [
        c.name for c in World(WorldConfig(image_size=64, sample_rate=16000), world_seed).categories]
    pre = pretraining_world(world_seed).categories
    assert len(pre) == 32 and [c.index for c in pre] == list(range(32))
    assert not {c.name for c in pre} & {c.name for c in bench}
    assert not {look_key(c) for c in pre} & {look_key(c) for c in bench}
    assert not {c.speech.word for c in pre} & {c.speech.word for c in bench}
    assert not {c.noun for c in pre} & set(NOUNS)
    for p in pre:
        for b in bench:
            if p.sound.kind == b.sound.kind:
                ratio = max(p.pitch_hz, b.pitch_hz) / min(p.pitch_hz, b.pitch_hz)
                assert ratio > 1 + PITCH_TOLERANCE, (p.name, b.name)
    # the pretraining classes are distinct among themselves too
    assert len({look_key(c) for c in pre}) == len(pre)
    assert len({c.speech.word for c in pre}) == len(pre)
    assert not any(sounds_clash(a, b) for i, a in enumerate(pre) for b in pre[i + 1:])
    # every sound kind is represented
    assert {c.sound.kind for c in pre} == {c.sound.kind for c in bench}


def test_disjointness_follows_the_world_config():
    cfg = WorldConfig(n_categories=40, pitch_range_hz=(300.0, 3000.0))
    bench = benchmark_categories(5, cfg)
    pre = pretraining_world(5, cfg, n_categories=20)
    assert len(bench) == 40 and len(pre.categories) == 20
    assert not {look_key(c) for c in pre.categories} & {look_key(c) for c in bench}
    assert all(300.0 * (1 - 1e-9) <= c.pitch_hz <= 3000.0 * (1 + 1e-9) for c in pre.categories)
    assert pre.config.image_size == cfg.image_size and pre.config.n_categories == 20


def test_pretraining_world_is_deterministic_and_differs_by_seed():
    a, b = pretraining_world(3), pretraining_world(3)
    assert [c for c in a.categories] == [c for c in b.categories]
    assert [c.name for c in a.categories] != [c.name for c in pretraining_world(4).categories]


def test_image_corpus_items_are_deterministic_and_splits_use_other_scenes():
    world = pretraining_world(0)
    train = ImageCorpus(world, 40, seed=0, split="train", image_size=64)
    again = ImageCorpus(world, 40, seed=0, split="train", image_size=64)
    heldout = ImageCorpus(world, 40, seed=0, split="heldout", image_size=64)
    x, y = train[5]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
    assert y == 5 and train.label(37) == 5
    torch.testing.assert_close(x, again[5][0], rtol=0, atol=0)
    assert not torch.equal(x, ImageCorpus(world, 40, seed=1, image_size=64)[5][0])
    train_seeds = {train.scene(i)[0].seed for i in range(40)}
    held_seeds = {heldout.scene(i)[0].seed for i in range(40)}
    assert len(train_seeds) == 40 and not train_seeds & held_seeds
    # one labelled object of the pretraining categories; distractors are pretraining ones too
    scene = train.scene(3)[0]
    assert scene.labels == [3] and not scene.cooccurring and not scene.offscreen
    assert all(0 <= o.category < 32 for o in scene.objects)
    with pytest.raises(ValueError, match="split"):
        ImageCorpus(world, 4, seed=0, split="test")


def test_sound_and_sentence_corpora():
    world = pretraining_world(1)
    sounds = SoundCorpus(world, 8, seed=2, seconds=1.0, sample_rate=16000)
    wave, label = sounds[2]
    assert wave.shape == (16000,) and label == 2 and float(wave.abs().max()) > 0.05
    torch.testing.assert_close(wave, SoundCorpus(world, 8, seed=2)[2][0], rtol=0, atol=0)
    held = SoundCorpus(world, 8, seed=2, split="heldout")
    assert not {sounds.scene(i)[0].seed for i in range(8)} & {held.scene(i)[0].seed for i in range(8)}
    text = SentenceCorpus(world, 64, seed=0)
    sentences = [text[i] for i in range(64)]
    assert all(s.startswith("#C C ") for s, _ in sentences)
    for s, label in sentences:
        cat = world.categories[label]
        assert cat.noun in s or cat.name in s
    assert sentences == [SentenceCorpus(world, 64, seed=0)[i] for i in range(64)]
