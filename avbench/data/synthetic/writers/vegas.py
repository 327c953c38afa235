"""Synthetic VEGAS in the raw per-class layout, plus its retrieval feature file.

Writes exactly what :mod:`avbench.data.datasets.vegas` reads (layout and sources
documented there)::

    <root>/
      baby_cry/videos/video_00000.mp4    clip_seconds at preset fps, H.264 + AAC mono
      baby_cry/audios/video_00000.wav    the same mix, mono, preset rate
      chainsaw/ ... water_flowing/       (the 10 VEGAS classes)
      vegas_feature.h5                   pooled per-video features, train/test + ids +
                                         class_names (see writers.features)
      cooccurrence_graph.json            the planted graph (world.graph.save)
      synthetic_scenes.jsonl             per clip: id, split, class_name, labels, offscreen,
                                         cooccurring, snr_db, boxes, objects
      avbench_synthetic.json             preset, seed, world config, counts, class map

Synthetic choices: the 10 VEGAS class names map onto 10 world categories drawn
by a seeded permutation (``class_map``). Stems are ``video_<k:05d>`` per class;
the writer walks k = 0, 1, ... and keeps a stem only while the split the loader
assigns to it (:func:`avbench.data.datasets.vegas.vegas_split`, a hash of
``<class>/<stem>``) still needs items of that class, so the loader's split has
exactly the planned counts: the preset's train and test counts, and
``max(1, round(train * val_fraction / (1 - test_fraction)))`` val items, classes
balanced within each split. The feature file mimics the public one: a ``train``
split (raw train + val clips) and a ``test`` split (raw test clips), no val keys.
Clip length, size and fps come from the preset.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avbench.data.datasets.vegas import FEATURES_FILE, VEGAS_CLASSES, vegas_split
from avbench.data.synthetic.media import write_mp4, write_wav
from avbench.data.synthetic.parallel import map_progress
from avbench.data.synthetic.presets import Preset
from avbench.data.synthetic.writers.features import (
    check_standins,
    default_standins,
    pooled_features,
    write_pooled_feature_file,
)
from avbench.data.synthetic.writers.ssl_layout import (
    Summary,
    get_world,
    scene_truth,
    world_config_kwargs,
    write_json,
    write_jsonl,
)

DATASET = "vegas"
TEST_FRACTION, VAL_FRACTION = 0.2, 0.05


@dataclass(frozen=True)
class VegasClip:
    class_name: str
    stem: str
    split: str
    category: int  # world category
    scene_seed: int

    @property
    def id(self) -> str:
        return f"{self.class_name}/{self.stem}"


@dataclass(frozen=True)
class VegasContext:
    root: str
    world_seed: int
    world_config: tuple[tuple[str, Any], ...]
    clip_seconds: float
    fps: int
    image_size: int
    sample_rate: int
    standins: str  # stand-in directory of the feature extractors (writers.features)


def class_map(seed: int, num_categories: int) -> dict[str, int]:
    """VEGAS class name -> world category (a seeded choice of 10 distinct categories)."""
    cats = np.random.default_rng([seed, 0xE6A5]).permutation(num_categories)[: len(VEGAS_CLASSES)]
    return {name: int(c) for name, c in zip(VEGAS_CLASSES, cats)}


def _per_class(n: int, n_classes: int) -> list[int]:
    return [n // n_classes + (1 if i < n % n_classes else 0) for i in range(n_classes)]


def split_counts(preset: Preset) -> dict[str, int]:
    """Planned items per split (the loader's hash split reproduces them exactly)."""
    n_train, n_test = preset.count(DATASET, "train"), preset.count(DATASET, "test")
    n_val = max(1, round(n_train * VAL_FRACTION / (1 - TEST_FRACTION)))
    return {"train": n_train, "val": n_val, "test": n_test}


def plan(preset: Preset, seed: int, num_categories: int) -> list[VegasClip]:
    """Clips per class and split, with stems chosen so the loader's split matches."""
    cmap = class_map(seed, num_categories)
    counts = split_counts(preset)
    # rotate the remainder over classes per split so totals stay balanced
    quota = {
        s: _per_class(n, len(VEGAS_CLASSES))[i:] + _per_class(n, len(VEGAS_CLASSES))[:i]
        for i, (s, n) in enumerate(counts.items())
    }
    rng = np.random.default_rng([seed, 0x7E6A5])
    clips: list[VegasClip] = []
    for ci, name in enumerate(VEGAS_CLASSES):
        need = {s: quota[s][ci] for s in counts}
        k = 0
        while any(need.values()):
            stem = f"video_{k:05d}"
            split = vegas_split(f"{name}/{stem}", TEST_FRACTION, VAL_FRACTION)
            if need[split] > 0:
                need[split] -= 1
                clips.append(VegasClip(name, stem, split, cmap[name], int(rng.integers(0, 2**62))))
            k += 1
    return clips


def make_scene(world: Any, clip: VegasClip) -> Any:
    return world.sample_scene(np.random.default_rng(clip.scene_seed), [clip.category])


def second_frames(video: np.ndarray, fps: int) -> np.ndarray:
    """One frame per second, at the middle of each second (for the pooled features)."""
    seconds = max(1, int(round(video.shape[0] / fps)))
    idx = [min(int((s + 0.5) * fps), video.shape[0] - 1) for s in range(seconds)]
    return video[idx]


def render_clip(ctx: VegasContext, clip: VegasClip) -> dict[str, Any]:
    """Write ``videos/<stem>.mp4`` and ``audios/<stem>.wav``; return truth + features."""
    world = get_world(ctx.world_config, ctx.world_seed)
    scene = make_scene(world, clip)
    audio = np.asarray(world.render_audio(scene, ctx.clip_seconds, ctx.sample_rate), np.float32)
    video = np.ascontiguousarray(world.render_video(scene, ctx.clip_seconds, ctx.fps, ctx.image_size))
    base = Path(ctx.root) / clip.class_name
    write_mp4(base / "videos" / f"{clip.stem}.mp4", video, ctx.fps, audio, ctx.sample_rate)
    write_wav(base / "audios" / f"{clip.stem}.wav", audio, ctx.sample_rate)
    a_feat, v_feat = pooled_features(second_frames(video, ctx.fps), audio, ctx.sample_rate,
                                     ctx.standins)
    t_mid = (video.shape[0] // 2) / ctx.fps
    truth = {"id": clip.id, "split": clip.split, "class_name": clip.class_name,
             **scene_truth(world, scene, t_mid)}
    return {"truth": truth, "audio_feat": a_feat, "visual_feat": v_feat}


def write(root: Path, preset: Preset, seed: int, *, progress: bool = True,
          standins: str | Path | None = None) -> dict[str, Any]:
    """Write synthetic VEGAS (raw clips + ``vegas_feature.h5``) under ``root``.

    ``standins``: directory of the feature extractors' stand-ins (default
    :func:`~avbench.data.synthetic.writers.features.default_standins`).

    Raises:
        StandinNotReadyError: a stand-in is missing or stale (the message gives the
            ``avbench pretrain`` command that builds it); nothing is written then.
    """
    standins = default_standins() if standins is None else Path(standins)
    extractors = check_standins(standins)  # fail before writing anything
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config = world_config_kwargs(preset)
    world = get_world(config, seed)
    clips = plan(preset, seed, len(world.categories))
    ctx = VegasContext(
        root=str(root), world_seed=seed, world_config=tuple(sorted(config.items())),
        clip_seconds=preset.clip_seconds, fps=preset.fps, image_size=preset.image_size,
        sample_rate=preset.sample_rate, standins=str(standins),
    )
    out = map_progress(functools.partial(render_clip, ctx), clips,
                       desc=f"vegas/{preset.name}", progress=progress)

    label = {name: i for i, name in enumerate(VEGAS_CLASSES)}  # VEGAS_CLASSES is sorted
    write_pooled_feature_file(
        root / FEATURES_FILE,
        {fsplit: [(c.id, label[c.class_name], o) for c, o in zip(clips, out) if c.split in raw]
         for fsplit, raw in (("train", ("train", "val")), ("test", ("test",)))},
        VEGAS_CLASSES, extractors)

    world.graph.save(root / "cooccurrence_graph.json")
    write_jsonl(root / "synthetic_scenes.jsonl", [o["truth"] for o in out])
    cmap = class_map(seed, len(world.categories))
    counts = {s: sum(c.split == s for c in clips) for s in ("train", "val", "test")}
    summary = Summary(
        DATASET, str(root), preset.name, seed, counts=counts,
        extra={"world_config": config, "class_map": cmap,
               "world_category_names": {n: world.categories[c].name for n, c in cmap.items()},
               "features_file": FEATURES_FILE, "feature_extractors": extractors,
               "test_fraction": TEST_FRACTION,
               "val_fraction": VAL_FRACTION, "clip_seconds": preset.clip_seconds,
               "fps": preset.fps, "image_size": preset.image_size,
               "sample_rate": preset.sample_rate},
    )
    write_json(root / "avbench_synthetic.json", summary.as_dict())
    return summary.as_dict()


__all__ = ["write", "plan", "class_map", "make_scene", "split_counts", "DATASET"]
