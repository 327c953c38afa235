"""Synthetic speech- and sound-prompted ADE20K (DenseAV's evaluation layout) from the world.

Writes what :mod:`avbench.data.datasets.ade20k_prompted` reads (layout and sources
documented there)::

    <root>/
      ADE20KSpeechPrompted/
        prompted_segmentation.csv    image_location,ade_class_id,speech_prompt_file,timing
        frames/ADE_val_<k:08d>.jpg
        annotations/ADE_val_<k:08d>_seg.png   full-format RGB class map
        audio/<image stem>_<class>.wav        the spoken word, timing = its [start, end]
      ADE20KSoundPrompted/
        prompted_segmentation.csv    image_location,ade_class_id,vggsound_file
        frames/, annotations/        the same images and maps
        audio/<VGGSound clip id>.wav          a VGGSound-style clip of the class
      synthetic_classes.json         SYNTHETIC ONLY: {"<ade_class_id>": category name}
      synthetic_scenes.jsonl         per image: the planted scene, pixels per class
      cooccurrence_graph.json        the planted graph (co-occurring objects are labelled too)
      avbench_synthetic.json         preset, seed, world config, counts

An image is a multi-object scene of the world (2-3 annotated categories, 0-2 silent
distractors) at t = 0; its class map gives every visible pixel its object's category
(``ade_class_id = category + 1``; 0 = background, ADE20K's "unlabelled"). Every
distinct annotated category visible in the image is prompted once in each folder:

* speech: the category's spoken word by one of the world's voices, with a silent lead
  and tail over faint noise (:func:`avbench.data.synthetic.speech.concatenate_words`);
  ``timing`` is the word's audible ``[start, end]`` in seconds (JSON);
* sound: the audio of a fresh one-source scene of that category (a synthetic VGGSound
  clip: off-screen and co-occurring sources and background noise as the world's
  VGGSound), ``preset.clip_seconds`` long.

Every fifth image also has one row with ``ade_class_id`` 0 in each csv (the loader
drops them, as the reference does). Rows are in image order.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avbench.atomic_io import atomic_write_text
from avbench.data.datasets.ade20k_prompted import (
    CLASSES_FILE,
    CSV_NAME,
    FOLDERS,
    REQUIRED_COLUMNS,
    encode_class_map,
    seg_file_name,
)
from avbench.data.synthetic.media import write_image, write_wav
from avbench.data.synthetic.parallel import map_progress
from avbench.data.synthetic.presets import Preset
from avbench.data.synthetic.speech import concatenate_words
from avbench.data.synthetic.writers.spoken_captions import speaker_seed
from avbench.data.synthetic.writers.ssl_layout import (
    Summary,
    get_world,
    world_config_kwargs,
    write_json,
    write_jsonl,
    youtube_ids,
)

DATASET = "ade20k_prompted"
#: voices of the speech prompts
NUM_SPEAKERS = 8


@dataclass(frozen=True)
class ImageSpec:
    """A planned image: its file name, annotated categories, seeds and sound-clip ids."""

    image_location: str
    categories: tuple[int, ...]
    scene_seed: int
    clip_ids: tuple[str, ...]  # one VGGSound id per category (its sound prompt)
    class0_row: bool


@dataclass(frozen=True)
class PromptContext:
    """What a worker needs to render images and prompts (picklable)."""

    root: str
    world_seed: int
    world_config: tuple[tuple[str, Any], ...]
    sample_rate: int
    image_size: int
    clip_seconds: float


def plan(preset: Preset, seed: int, num_categories: int) -> list[ImageSpec]:
    """The images of a (preset, seed), deterministic and independent of rendering."""
    rng = np.random.default_rng([seed, 0xADE20])
    taken: set[str] = set()
    specs = []
    for k in range(preset.count(DATASET, "images")):
        n = int(rng.integers(2, 4))
        cats = tuple(int(c) for c in rng.choice(num_categories, size=n, replace=False))
        specs.append(ImageSpec(f"ADE_val_{k + 1:08d}.jpg", cats, int(rng.integers(2**62)),
                               tuple(youtube_ids(rng, n, taken)), k % 5 == 4))
    return specs


def render_image(ctx: PromptContext, spec: ImageSpec) -> dict[str, Any]:
    """Write one image (both folders), its class map and its prompts; return its csv rows."""
    world = get_world(ctx.world_config, ctx.world_seed)
    rng = np.random.default_rng(spec.scene_seed)
    scene = world.sample_scene(rng, list(spec.categories), offscreen=False,
                               n_distractors=int(rng.integers(0, 3)))
    size, sr = ctx.image_size, ctx.sample_rate
    frame = np.ascontiguousarray(world.render_frame(scene, 0.0, size))
    classes = np.zeros((size, size), np.int64)
    for i, obj in enumerate(scene.objects):
        classes[world.object_mask(scene, i, 0.0, size)] = obj.category + 1
    seg = encode_class_map(classes)
    root = Path(ctx.root)
    stem = Path(spec.image_location).stem
    for folder in FOLDERS.values():
        write_image(root / folder / "frames" / spec.image_location, frame)
        write_image(root / folder / "annotations" / seg_file_name(spec.image_location), seg)
    speech_rows, sound_rows = [], []
    for cat, clip_id in zip(spec.categories, spec.clip_ids):
        cls = cat + 1
        if not (classes == cls).any():  # hidden behind a distractor: nothing to segment
            continue
        voice = int(rng.integers(NUM_SPEAKERS))
        word = world.render_speech(cat, speaker_seed(ctx.world_seed, voice), sr)
        wave, [(start, end)] = concatenate_words([word], sr, rng, lead_s=(0.2, 0.8),
                                                 tail_s=(0.2, 0.6))
        speech_file = f"audio/{stem}_{cls}.wav"
        write_wav(root / FOLDERS["speech"] / speech_file, wave, sr)
        speech_rows.append({"image_location": spec.image_location, "ade_class_id": cls,
                             "speech_prompt_file": speech_file,
                             "timing": json.dumps([round(start, 4), round(end, 4)])})
        clip_scene = world.sample_scene(np.random.default_rng([spec.scene_seed, cls]), [cat])
        sound_file = f"VGGSound/audio/{clip_id}.wav"
        write_wav(root / FOLDERS["sound"] / "audio" / f"{clip_id}.wav",
                  world.render_audio(clip_scene, ctx.clip_seconds, sr), sr)
        sound_rows.append({"image_location": spec.image_location, "ade_class_id": cls,
                           "vggsound_file": sound_file})
    if spec.class0_row and speech_rows:
        speech_rows.append({**speech_rows[0], "ade_class_id": 0})
        sound_rows.append({**sound_rows[0], "ade_class_id": 0})
    counts = np.bincount(classes.ravel(), minlength=len(world.categories) + 1)
    truth = {"image_location": spec.image_location, "labels": [int(c) for c in scene.labels],
             "scene_seed": spec.scene_seed,
             "pixels": {str(c): int(n) for c, n in enumerate(counts) if n and c},
             "objects": [[int(o.category), o.role] for o in scene.objects]}
    return {"speech": speech_rows, "sound": sound_rows, "truth": truth}


def _csv_text(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write(root: Path, preset: Preset, seed: int, *, progress: bool = True) -> dict[str, Any]:
    """Write synthetic speech- and sound-prompted ADE20K for ``preset`` and ``seed``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config = world_config_kwargs(preset)
    world = get_world(config, seed)
    specs = plan(preset, seed, len(world.categories))
    ctx = PromptContext(str(root), seed, tuple(sorted(config.items())), preset.sample_rate,
                        preset.image_size, preset.clip_seconds)
    items = map_progress(functools.partial(render_image, ctx), specs,
                         desc=f"{DATASET}/{preset.name}", progress=progress)
    for kind, folder in FOLDERS.items():
        rows = [r for item in items for r in item[kind]]
        atomic_write_text(root / folder / CSV_NAME, _csv_text(rows, REQUIRED_COLUMNS[kind]))
    write_json(root / CLASSES_FILE, {str(c.index + 1): c.name for c in world.categories})
    write_jsonl(root / "synthetic_scenes.jsonl", [i["truth"] for i in items])
    world.graph.save(root / "cooccurrence_graph.json")
    n_rows = sum(len(i["speech"]) for i in items)
    n_class0 = sum(any(r["ade_class_id"] == 0 for r in i["speech"]) for i in items)
    summary = Summary(
        DATASET, str(root), preset.name, seed,
        counts={"images": len(specs), "speech_rows": n_rows - n_class0,
                "sound_rows": n_rows - n_class0, "class0_rows": n_class0,
                "classes": len(world.categories)},
        extra={"world_config": world.config.to_dict(), "image_size": preset.image_size,
               "sample_rate": preset.sample_rate, "clip_seconds": preset.clip_seconds,
               "class_names": f"{CLASSES_FILE} (synthetic only)"},
    )
    write_json(root / "avbench_synthetic.json",
               {k: v for k, v in summary.as_dict().items() if k != "root"})
    return summary.as_dict()


__all__ = ["DATASET", "ImageSpec", "plan", "render_image", "write"]
