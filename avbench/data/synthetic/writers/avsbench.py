"""Synthetic AVSBench (S4 + MS3) in the published layout.

Writes exactly what :mod:`avbench.data.datasets.avsbench` reads from a real copy
(layout and sources documented there)::

    <root>/
      Single-source/
        s4_meta_data.csv                 name,start,category,split
        s4_data/visual_frames/{split}/{category}/{name}/{name}_{k}.png   k = 1..5
        s4_data/gt_masks/{split}/{category}/{name}/{name}_{k}.png        train: k = 1
        s4_data/audio_wav/{split}/{category}/{name}.wav                  5 s, 16 kHz
      Multi-sources/
        ms3_meta_data.csv                video_id,split
        ms3_data/visual_frames/{video_id}/{video_id}.mp4_{k}.png
        ms3_data/gt_masks/{split}/{video_id}/{video_id}_{k}.png          k = 1..5
        ms3_data/audio_wav/{split}/{video_id}.wav
      cooccurrence_graph.json            the planted graph (world.graph.save)
      synthetic_scenes.jsonl             per clip: id, subset, split, labels, category,
                                         offscreen, cooccurring, snr_db, frame_times,
                                         boxes (frame 1), objects
      avbench_synthetic.json             preset, seed, world config, counts, class map

Synthetic choices: each clip is ONE scene of the world rendered at the 5 frame
times ``t_k = k - 1/16`` s (k = 1..5: the reference preprocessing keeps the last of
16 samples of each second) and its 5-s mix; masks are ``world.sounding_mask`` at
those times (pixels of the annotated sounding objects). Object sizes follow
each subset's calibrated layout (:func:`subset_config`; ``subset_world_config``
in ``avbench_synthetic.json``), so the S4 and MS3 test GT areas match the real
ones (docs/synthetic_world.md "Calibration"). S4 scenes have one
annotated source whose category is the row's ``category``: the 23 real S4
category names map onto world categories ``0..22`` (``class_map`` in
``avbench_synthetic.json``). MS3 scenes have 2-3 annotated sources of distinct
categories drawn from the same 23. Clip lengths stay 5 s whatever the preset
(the layout fixes 5 frames at 1 fps); ``image_size`` comes from the preset.
Names are random YouTube-style 11-character ids, unique across both subsets.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avbench.atomic_io import atomic_write_text
from avbench.data.datasets.avsbench import CLIP_SECONDS, NUM_FRAMES, S4_CATEGORIES
from avbench.data.synthetic.media import write_image, write_mask, write_wav
from avbench.data.synthetic.parallel import map_progress
from avbench.data.synthetic.presets import Preset
from avbench.data.synthetic.writers.ssl_layout import (
    Summary,
    balanced_categories,
    get_world,
    scene_truth,
    world_config_kwargs,
    write_json,
    write_jsonl,
    youtube_ids,
)

DATASET = "avsbench"
SPLITS = ("train", "val", "test")


def frame_times() -> list[float]:
    """Times (s) of the 5 AVSBench frames: near the end of each second."""
    return [k - 1.0 / 16.0 for k in range(1, NUM_FRAMES + 1)]


@dataclass(frozen=True)
class AVSClip:
    """A planned AVSBench clip."""

    subset: str  # "s4" | "ms3"
    name: str
    split: str
    start: int
    categories: tuple[int, ...]  # world categories of the annotated sources
    scene_seed: int


@dataclass(frozen=True)
class AVSContext:
    root: str
    world_seed: int
    #: subset ("s4" | "ms3") -> its world config (each subset has its calibrated object sizes)
    world_configs: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]
    image_size: int
    sample_rate: int
    class_names: tuple[str, ...]  # S4 category name of world category i


def plan(preset: Preset, seed: int, num_categories: int = len(S4_CATEGORIES)) -> list[AVSClip]:
    """The clips of a (preset, seed), deterministic and independent of rendering."""
    rng = np.random.default_rng([seed, 0xA75])
    taken: set[str] = set()
    clips: list[AVSClip] = []
    for subset in ("s4", "ms3"):
        for split in SPLITS:
            n = preset.count(f"avsbench_{subset}", split)
            names = [i.rsplit("_", 1)[0] for i in youtube_ids(rng, n, taken)]
            firsts = balanced_categories(rng, n, range(num_categories))
            for name, first in zip(names, firsts):
                if subset == "s4":
                    cats: tuple[int, ...] = (first,)
                else:
                    k = int(rng.integers(2, 4))  # 2-3 sounding sources
                    others = rng.permutation([c for c in range(num_categories) if c != first])
                    cats = (first, *(int(c) for c in others[: k - 1]))
                start = int(rng.integers(0, 6))
                clips.append(AVSClip(subset, name, split, start, cats, int(rng.integers(0, 2**62))))
    return clips


def subset_config(preset: Preset, subset: str) -> dict[str, Any]:
    """The world config of an AVSBench subset: its calibrated layout (``DATASET_LAYOUTS
    ["avsbench_<subset>"]``: object sizes like the real S4 / MS3 test GT), the preset's size
    and rate, then the preset's overrides. Categories, sounds and graph do not depend on the
    layout, so both subsets share them."""
    return world_config_kwargs(preset, f"avsbench_{subset}")


def make_scene(world: Any, clip: AVSClip) -> Any:
    """The scene of ``clip`` (rebuildable by tests from the clip's scene seed)."""
    return world.sample_scene(np.random.default_rng(clip.scene_seed), list(clip.categories))


def _paths(root: Path, clip: AVSClip, category: str | None) -> tuple[list[Path], list[Path], Path]:
    if clip.subset == "s4":
        d = root / "Single-source" / "s4_data"
        assert category is not None
        fdir = d / "visual_frames" / clip.split / category / clip.name
        mdir = d / "gt_masks" / clip.split / category / clip.name
        frames = [fdir / f"{clip.name}_{k}.png" for k in range(1, NUM_FRAMES + 1)]
        n_masks = 1 if clip.split == "train" else NUM_FRAMES
        audio = d / "audio_wav" / clip.split / category / f"{clip.name}.wav"
    else:
        d = root / "Multi-sources" / "ms3_data"
        fdir = d / "visual_frames" / clip.name
        mdir = d / "gt_masks" / clip.split / clip.name
        frames = [fdir / f"{clip.name}.mp4_{k}.png" for k in range(1, NUM_FRAMES + 1)]
        n_masks = NUM_FRAMES
        audio = d / "audio_wav" / clip.split / f"{clip.name}.wav"
    masks = [mdir / f"{clip.name}_{k}.png" for k in range(1, n_masks + 1)]
    return frames, masks, audio


def render_clip(ctx: AVSContext, clip: AVSClip) -> dict[str, Any]:
    """Write one clip's 5 frames, its masks and its wav; return its truth record."""
    world = get_world(dict(ctx.world_configs)[clip.subset], ctx.world_seed)
    scene = make_scene(world, clip)
    category = ctx.class_names[clip.categories[0]] if clip.subset == "s4" else None
    frames, masks, audio_path = _paths(Path(ctx.root), clip, category)
    times = frame_times()
    for path, t in zip(frames, times):
        write_image(path, np.ascontiguousarray(world.render_frame(scene, t, ctx.image_size)))
    for path, t in zip(masks, times):
        write_mask(path, world.sounding_mask(scene, t, ctx.image_size))
    audio = np.asarray(world.render_audio(scene, CLIP_SECONDS, ctx.sample_rate), np.float32)
    write_wav(audio_path, audio, ctx.sample_rate)
    return {
        "id": clip.name,
        "subset": clip.subset,
        "split": clip.split,
        "category": category,
        "frame_times": times,
        **scene_truth(world, scene, times[0]),
    }


def write(root: Path, preset: Preset, seed: int, *, progress: bool = True) -> dict[str, Any]:
    """Write synthetic AVSBench S4 and MS3 for ``preset`` and ``seed`` under ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config = world_config_kwargs(preset)
    configs = {sub: subset_config(preset, sub) for sub in ("s4", "ms3")}
    world = get_world(config, seed)
    if len(world.categories) < len(S4_CATEGORIES):
        raise ValueError(
            f"the world has {len(world.categories)} categories; AVSBench S4 needs {len(S4_CATEGORIES)}"
        )
    clips = plan(preset, seed)
    ctx = AVSContext(
        root=str(root), world_seed=seed,
        world_configs=tuple((sub, tuple(sorted(c.items()))) for sub, c in configs.items()),
        image_size=preset.image_size, sample_rate=preset.sample_rate,
        class_names=S4_CATEGORIES,
    )
    truths = map_progress(functools.partial(render_clip, ctx), clips,
                          desc=f"avsbench/{preset.name}", progress=progress)

    s4 = [c for c in clips if c.subset == "s4"]
    lines = ["name,start,category,split"]
    lines += [f"{c.name},{c.start},{S4_CATEGORIES[c.categories[0]]},{c.split}" for c in s4]
    atomic_write_text(root / "Single-source" / "s4_meta_data.csv", "\n".join(lines) + "\n")
    ms3 = [c for c in clips if c.subset == "ms3"]
    lines = ["video_id,split"] + [f"{c.name},{c.split}" for c in ms3]
    atomic_write_text(root / "Multi-sources" / "ms3_meta_data.csv", "\n".join(lines) + "\n")

    world.graph.save(root / "cooccurrence_graph.json")
    write_jsonl(root / "synthetic_scenes.jsonl", truths)
    counts = {f"{sub}_{split}": sum(c.subset == sub and c.split == split for c in clips)
              for sub in ("s4", "ms3") for split in SPLITS}
    summary = Summary(
        DATASET, str(root), preset.name, seed, counts=counts,
        extra={"world_config": config, "subset_world_config": configs, "class_map": {n: i for i, n in enumerate(S4_CATEGORIES)},
               "world_category_names": [world.categories[i].name for i in range(len(S4_CATEGORIES))],
               "clip_seconds": CLIP_SECONDS, "frame_times": frame_times(),
               "image_size": preset.image_size, "sample_rate": preset.sample_rate},
    )
    write_json(root / "avbench_synthetic.json", summary.as_dict())
    return summary.as_dict()


__all__ = ["write", "plan", "make_scene", "subset_config", "frame_times", "DATASET"]
