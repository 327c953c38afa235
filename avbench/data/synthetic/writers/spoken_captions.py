"""Synthetic spoken captions (Places Audio Captions layout) from the world.

Writes what :mod:`avbench.data.datasets.spoken_captions` reads (layout and
sources documented there)::

    <root>/
      PlacesAudio_400k_distro/
        metadata/train.json, val.json   {"image_base_path": "../places_subset",
                                         "audio_base_path": ".", "data": [{"image", "wav",
                                         "uttid", "speaker", "asr_text"}, ...]}
        wavs/<speaker>/<uttid>.wav      mono 16-bit, preset sample rate
      places_subset/<letter>/<scene>/<id>.jpg
      synthetic_word_timings.jsonl      SYNTHETIC ONLY: per utterance, each word's category
                                        and (start, end) seconds in its wav
      synthetic_scenes.jsonl            per image: the planted scene (categories, objects)
      cooccurrence_graph.json           the planted graph (visual co-occurrences are named too)
      avbench_synthetic.json            preset, seed, world config, counts

An item is a scene of the world (1-2 annotated categories, up to one silent
distractor, no off-screen source: the image is all there is) rendered as one
image, and a caption that names every distinct visible category in a random
order: the categories' spoken words (:meth:`World.render_speech`, one speaker
voice per utterance) joined with pauses by
:func:`avbench.data.synthetic.speech.concatenate_words`, which returns each
word's timing. Words that would push the caption past the preset's clip length
are not spoken (the sidecar lists only spoken words; ``unnamed`` in
``synthetic_scenes.jsonl`` counts the others). ``asr_text`` is the words'
phonetic spellings; speakers are a pool of ``num_speakers`` seeds whose id is
the ``speaker`` field.

Deviations from the real files, on purpose: base paths are relative (the real
ones are the authors' absolute paths; the loader resolves either); the
word-timing sidecar does not exist in the real dataset.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avbench.data.datasets.spoken_captions import (
    DISTRO_DIR,
    IMAGE_DIR,
    TEST_JSON,
    TRAIN_JSON,
    WORD_TIMINGS_FILE,
)
from avbench.data.synthetic.media import write_image, write_wav
from avbench.data.synthetic.parallel import map_progress
from avbench.data.synthetic.presets import Preset
from avbench.data.synthetic.speech import concatenate_words
from avbench.data.synthetic.writers.ssl_layout import (
    Summary,
    balanced_categories,
    get_world,
    world_config_kwargs,
    write_json,
    write_jsonl,
)

DATASET = "spoken_captions"
SPLIT_FILES = {"train": TRAIN_JSON, "val": TEST_JSON}
#: how many distinct voices speak the captions
NUM_SPEAKERS = 24
_SCENE_NAMES = ("field", "harbor", "kitchen", "market", "plaza", "studio", "yard", "beach")


@dataclass(frozen=True)
class CaptionSpec:
    """A planned item: ids, split, the scene's annotated categories and seeds."""

    uttid: str
    split: str
    categories: tuple[int, ...]
    scene_seed: int
    speaker: int

    @property
    def wav(self) -> str:
        return f"wavs/{self.speaker:03d}/{self.uttid}.wav"

    @property
    def image(self) -> str:
        name = _SCENE_NAMES[self.scene_seed % len(_SCENE_NAMES)]
        return f"{name[0]}/{name}/gsun_{self.scene_seed % 16**12:012x}.jpg"


@dataclass(frozen=True)
class CaptionContext:
    """What a worker needs to render items (picklable)."""

    root: str
    world_seed: int
    world_config: tuple[tuple[str, Any], ...]
    sample_rate: int
    image_size: int
    max_seconds: float


def plan(preset: Preset, seed: int, num_categories: int) -> list[CaptionSpec]:
    """Items of a (preset, seed), deterministic and independent of rendering."""
    rng = np.random.default_rng([seed, 0x5C4A7])
    specs: list[CaptionSpec] = []
    serial = 0
    for split in ("train", "val"):
        n = preset.count(DATASET, split)
        firsts = balanced_categories(rng, n, range(num_categories))
        for first in firsts:
            cats = [first]
            if rng.random() < 0.5:  # a second annotated category
                other = int(rng.integers(num_categories - 1))
                cats.append(other + (other >= first))
            speaker = int(rng.integers(NUM_SPEAKERS))
            specs.append(CaptionSpec(f"utterance_{serial:06d}", split, tuple(cats),
                                     int(rng.integers(2**62)), speaker))
            serial += 1
    return specs


def speaker_seed(world_seed: int, speaker: int) -> int:
    """The render seed of speaker ``speaker`` (a voice: f0, tract length, tempo)."""
    return int(np.random.default_rng([world_seed, 0x5BEA, speaker]).integers(2**31))


def render_item(ctx: CaptionContext, spec: CaptionSpec) -> dict[str, Any]:
    """Write one item's image and wav; return its truth (entry, words, scene)."""
    world = get_world(ctx.world_config, ctx.world_seed)
    rng = np.random.default_rng(spec.scene_seed)
    scene = world.sample_scene(rng, list(spec.categories), offscreen=False,
                               n_distractors=int(rng.integers(0, 2)))
    frame = world.render_frame(scene, 0.0, ctx.image_size)
    visible: list[int] = []
    for obj in scene.objects:
        if obj.category not in visible and world.object_mask(
                scene, scene.objects.index(obj), 0.0, ctx.image_size).any():
            visible.append(int(obj.category))
    if not visible:  # every annotated object hidden behind a distractor (rare)
        visible = [int(scene.labels[0])]
    order = [visible[i] for i in rng.permutation(len(visible))]
    voice = speaker_seed(ctx.world_seed, spec.speaker)
    words, spoken, length = [], [], 0.7  # worst-case lead + tail (concatenate_words)
    for c in order:
        w = world.render_speech(c, voice, ctx.sample_rate)
        extra = len(w) / ctx.sample_rate + (0.3 if words else 0.0)
        if words and length + extra > ctx.max_seconds:
            continue
        words.append(w)
        spoken.append(c)
        length += extra
    wave, timings = concatenate_words(words, ctx.sample_rate, rng)
    root = Path(ctx.root)
    write_image(root / IMAGE_DIR / spec.image, np.ascontiguousarray(frame))
    write_wav(root / DISTRO_DIR / spec.wav, wave, ctx.sample_rate)
    names = [world.categories[c].name for c in spoken]
    spellings = [world.categories[c].speech.word for c in spoken]
    return {
        "entry": {"image": spec.image, "wav": spec.wav, "uttid": spec.uttid,
                  "speaker": f"S{spec.speaker:03d}", "asr_text": " ".join(spellings)},
        "words": {"uttid": spec.uttid, "split": spec.split, "wav": spec.wav,
                  "synthetic_only": True, "seconds": len(wave) / ctx.sample_rate,
                  "words": [{"word": s, "category": c, "class_name": n, "start": a, "end": b}
                            for s, c, n, (a, b) in zip(spellings, spoken, names, timings)]},
        "scene": {"uttid": spec.uttid, "split": spec.split, "image": spec.image,
                  "labels": [int(c) for c in scene.labels], "visible": visible,
                  "unnamed": len(visible) - len(spoken), "scene_seed": spec.scene_seed,
                  "objects": [[int(o.category), o.role] for o in scene.objects]},
    }


def write(root: Path, preset: Preset, seed: int, *, progress: bool = True) -> dict[str, Any]:
    """Write synthetic spoken captions for ``preset`` and ``seed`` under ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config = world_config_kwargs(preset)
    world = get_world(config, seed)
    specs = plan(preset, seed, len(world.categories))
    ctx = CaptionContext(str(root), seed, tuple(sorted(config.items())), preset.sample_rate,
                         preset.image_size, preset.clip_seconds)
    items = map_progress(functools.partial(render_item, ctx), specs,
                         desc=f"{DATASET}/{preset.name}", progress=progress)
    meta = root / DISTRO_DIR / "metadata"
    for split, name in SPLIT_FILES.items():
        write_json(meta / name, {"image_base_path": f"../{IMAGE_DIR}", "audio_base_path": ".",
                                 "data": [i["entry"] for i, s in zip(items, specs)
                                          if s.split == split]})
    write_jsonl(root / WORD_TIMINGS_FILE, [i["words"] for i in items])
    world.graph.save(root / "cooccurrence_graph.json")
    write_jsonl(root / "synthetic_scenes.jsonl", [i["scene"] for i in items])
    counts = {s: sum(x.split == s for x in specs) for s in SPLIT_FILES}
    summary = Summary(
        DATASET, str(root), preset.name, seed,
        counts={**counts, "words": sum(len(i["words"]["words"]) for i in items),
                "classes": len(world.categories)},
        extra={"world_config": world.config.to_dict(), "image_size": preset.image_size,
               "sample_rate": preset.sample_rate, "max_caption_seconds": preset.clip_seconds,
               "speakers": NUM_SPEAKERS,
               "word_timings": f"{WORD_TIMINGS_FILE} (synthetic only; not in Places Audio)"},
    )
    write_json(root / "avbench_synthetic.json",
               {k: v for k, v in summary.as_dict().items() if k != "root"})
    return summary.as_dict()


__all__ = ["DATASET", "CaptionSpec", "plan", "render_item", "speaker_seed", "write"]
