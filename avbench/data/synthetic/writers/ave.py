"""Synthetic AVE (audio-visual event localization) in the published layout, plus features.

Writes exactly what :mod:`avbench.data.datasets.ave` reads (layout and sources
documented there)::

    <root>/                              (= AVE_Dataset/)
      Annotations.txt                    header + every row: Category&VideoID&Quality&StartTime&EndTime
      trainSet.txt  valSet.txt  testSet.txt   same format, no header line
      AVE/<VideoID>.mp4                  10 s at the preset fps, H.264 + AAC mono
      ave_feature.h5                     pooled per-video features, train/val/test + ids +
                                         class_names (see writers.features)
      cooccurrence_graph.json            the planted graph (world.graph.save)
      synthetic_scenes.jsonl             per video: id, split, category, event_start, event_end,
                                         event_labels, labels, offscreen, cooccurring, snr_db,
                                         boxes (at the event centre), objects
      avbench_synthetic.json             preset, seed, world config, counts, class map

Synthetic choices: the 28 AVE category names map onto world categories ``0..27``
(``class_map``); each video has one event, whole seconds ``[start, end)`` with
length 2-10 s. The event's category is the scene's annotated source: it is
visible and audible only inside ``[start, end)`` (and heard in the event's
central 2 s: :func:`make_scene` redraws a sparse source that stays silent
there). Outside, frames are rendered from the same scene without its
annotated objects (background, distractors and visual co-occurrence stay),
and the audio is the scene's mix with the annotated
sources gated off (20 ms raised-cosine edges) while off-screen sounds,
co-occurring sounds and noise continue - :func:`event_mix` mirrors the world's
``render_mix`` with that gate, normalised by the ungated mix so the event is as
loud as in any other dataset. Videos are 10 s as in the real release; fps and
size come from the preset. The header line is written in ``Annotations.txt``
but not in the split files (real copies differ; the loader accepts both).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avbench.data.datasets.ave import (
    ANNOTATIONS_FILE,
    AVE_CATEGORIES,
    FEATURES_FILE,
    SPLIT_FILES,
    VIDEO_DIR,
    VIDEO_SECONDS,
)
from avbench.data.synthetic.media import write_mp4
from avbench.data.synthetic.parallel import map_progress
from avbench.data.synthetic.presets import Preset
from avbench.data.synthetic.scene import render_frames
from avbench.data.synthetic.sound import (
    CONTROL_RATE,
    colored_noise,
    event_envelope,
    render_sound,
)
from avbench.data.synthetic.writers.features import (
    check_standins,
    default_standins,
    pooled_features,
    write_pooled_feature_file,
)
from avbench.data.synthetic.writers.ssl_layout import (
    Summary,
    balanced_categories,
    get_world,
    scene_truth,
    world_config_kwargs,
    write_json,
    write_jsonl,
    write_lines,
    youtube_ids,
)

DATASET = "ave"
SPLITS = ("train", "val", "test")
HEADER = "Category&VideoID&Quality&StartTime&EndTime"
RAMP_S = 0.02  # gate edge
#: the event's central window in which its source must be heard (the shortest event)
AUDIBLE_WINDOW_S = 2.0
#: least mean envelope of the source there: silent draws sit below 0.002, audible ones above 0.03
MIN_SOURCE_ACTIVITY = 0.01
MAX_SCENE_DRAWS = 20


@dataclass(frozen=True)
class AVEClip:
    video_id: str
    split: str
    category: int  # world category = index into AVE_CATEGORIES
    start: int
    end: int
    scene_seed: int

    def row(self) -> str:
        return f"{AVE_CATEGORIES[self.category]}&{self.video_id}&good&{self.start}&{self.end}"


@dataclass(frozen=True)
class AVEContext:
    root: str
    world_seed: int
    world_config: tuple[tuple[str, Any], ...]
    fps: int
    image_size: int
    sample_rate: int
    standins: str  # stand-in directory of the feature extractors (writers.features)


def plan(preset: Preset, seed: int) -> list[AVEClip]:
    """Videos of a (preset, seed): ids, splits, categories, events, scene seeds."""
    rng = np.random.default_rng([seed, 0xA7E])
    taken: set[str] = set()
    clips: list[AVEClip] = []
    for split in SPLITS:
        n = preset.count(DATASET, split)
        ids = [i.rsplit("_", 1)[0] for i in youtube_ids(rng, n, taken)]
        cats = balanced_categories(rng, n, range(len(AVE_CATEGORIES)))
        for vid, cat in zip(ids, cats):
            length = int(rng.integers(2, VIDEO_SECONDS + 1))
            start = int(rng.integers(0, VIDEO_SECONDS - length + 1))
            clips.append(AVEClip(vid, split, cat, start, start + length, int(rng.integers(0, 2**62))))
    return clips


def source_activity(world: Any, scene: Any, start: float, end: float) -> float:
    """Mean envelope (0-1) of the scene's annotated source over the central
    ``AUDIBLE_WINDOW_S`` of the event ``[start, end)`` (seconds)."""
    src = next(s for s in scene.sources if s.role == "source")
    env = event_envelope(world.categories[src.category].sound.onset, src.seed, VIDEO_SECONDS)
    mid = (start + end) / 2
    lo, hi = max(start, mid - AUDIBLE_WINDOW_S / 2), min(end, mid + AUDIBLE_WINDOW_S / 2)
    return float(env[int(lo * CONTROL_RATE):int(hi * CONTROL_RATE)].mean())


def make_scene(world: Any, clip: AVEClip) -> Any:
    """The clip's scene: the first of up to ``MAX_SCENE_DRAWS`` draws from
    ``default_rng(clip.scene_seed)`` whose source sounds in the event's centre.

    A sparse source (pulses about once a second, slow AM tones) can otherwise be
    silent through a whole short event - a labelled event nobody hears; such
    draws (~5 % of clips) are redrawn, every other clip keeps its first draw.
    """
    rng = np.random.default_rng(clip.scene_seed)
    for _ in range(MAX_SCENE_DRAWS):
        scene = world.sample_scene(rng, [clip.category])
        if source_activity(world, scene, clip.start, clip.end) >= MIN_SOURCE_ACTIVITY:
            break
    return scene


def event_gate(start: float, end: float, n: int, sample_rate: int) -> np.ndarray:
    """float32 [n]: 1 inside ``[start, end)``, 0 outside, raised-cosine edges of ``RAMP_S``."""
    t = np.arange(n) / sample_rate
    ramp = RAMP_S
    up = np.clip((t - start) / ramp + 0.5, 0.0, 1.0) if start > 0 else np.ones(n)
    down = np.clip((end - t) / ramp + 0.5, 0.0, 1.0) if end < n / sample_rate else np.ones(n)
    lin = np.minimum(up, down)
    return (0.5 - 0.5 * np.cos(np.pi * lin)).astype(np.float32)


def event_mix(world: Any, scene: Any, start: float, end: float, duration: float,
              sample_rate: int) -> np.ndarray:
    """The scene's mix with its annotated sources audible only in ``[start, end)``.

    Same sources, gains, noise colour/seed and SNR as the world's ``render_mix``
    (noise level and final scale are computed from the ungated mix, so inside the
    event the clip is exactly the world's mix; outside only the nuisances remain).
    """
    cfg, cats = world.config, world.categories
    n = int(round(duration * sample_rate))
    gate = event_gate(start, end, n, sample_rate)
    full = np.zeros(n, np.float32)
    gated = np.zeros(n, np.float32)
    for src in scene.sources:
        cat = cats[src.category]
        gain = np.float32(10 ** ((src.gain_db + cat.sound.loudness_db) / 20))
        s = gain * render_sound(cat.sound, src.seed, duration, sample_rate)
        full += s
        gated += s * gate if src.role == "source" else s
    sig_rms = float(np.sqrt(np.mean(np.square(full, dtype=np.float64)))) if n else 0.0
    noise = colored_noise(n, scene.noise_color, np.random.default_rng([scene.seed, 0x2015E]))
    noise = np.float32(sig_rms / 10 ** (scene.snr_db / 20) if sig_rms > 0 else 0.1) * noise
    full, gated = full + noise, gated + noise
    rms = float(np.sqrt(np.mean(np.square(full, dtype=np.float64)))) if n else 0.0
    peak = max(float(np.abs(full).max()), float(np.abs(gated).max())) if n else 0.0
    scale = min(cfg.mix_rms / max(rms, 1e-12), 0.95 / max(peak, 1e-12))
    return (gated * np.float32(scale)).astype(np.float32)


def event_video(world: Any, scene: Any, start: float, end: float, duration: float, fps: int,
                size: int) -> np.ndarray:
    """uint8 [T,H,W,3]: the scene inside ``[start, end)``, the scene minus its sources outside."""
    video = world.render_video(scene, duration, fps, size)
    times = np.arange(video.shape[0]) / fps
    outside = (times < start) | (times >= end)
    if outside.any():
        empty = dataclasses.replace(scene, objects=[o for o in scene.objects if not o.annotated])
        video[outside] = render_frames(empty, world.categories, times[outside], size)
    return np.ascontiguousarray(video)


def render_clip(ctx: AVEContext, clip: AVEClip) -> dict[str, Any]:
    """Write ``AVE/<VideoID>.mp4``; return the truth record and the pooled features."""
    world = get_world(ctx.world_config, ctx.world_seed)
    scene = make_scene(world, clip)
    audio = event_mix(world, scene, clip.start, clip.end, VIDEO_SECONDS, ctx.sample_rate)
    video = event_video(world, scene, clip.start, clip.end, VIDEO_SECONDS, ctx.fps, ctx.image_size)
    write_mp4(Path(ctx.root) / VIDEO_DIR / f"{clip.video_id}.mp4", video, ctx.fps, audio, ctx.sample_rate)
    idx = [min(int((s + 0.5) * ctx.fps), video.shape[0] - 1) for s in range(VIDEO_SECONDS)]
    a_feat, v_feat = pooled_features(video[idx], audio, ctx.sample_rate,
                                     ctx.standins)
    labels = [1 if clip.start <= s < clip.end else 0 for s in range(VIDEO_SECONDS)]
    truth = {
        "id": clip.video_id, "split": clip.split, "category": AVE_CATEGORIES[clip.category],
        "event_start": clip.start, "event_end": clip.end, "event_labels": labels,
        **scene_truth(world, scene, (clip.start + clip.end) / 2),
    }
    return {"truth": truth, "audio_feat": a_feat, "visual_feat": v_feat}


def write(root: Path, preset: Preset, seed: int, *, progress: bool = True,
          standins: str | Path | None = None) -> dict[str, Any]:
    """Write synthetic AVE (videos, list files, ``ave_feature.h5``) under ``root``.

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
    if len(world.categories) < len(AVE_CATEGORIES):
        raise ValueError(
            f"the world has {len(world.categories)} categories; AVE needs {len(AVE_CATEGORIES)}"
        )
    clips = plan(preset, seed)
    ctx = AVEContext(
        root=str(root), world_seed=seed, world_config=tuple(sorted(config.items())),
        fps=preset.fps, image_size=preset.image_size, sample_rate=preset.sample_rate,
        standins=str(standins),
    )
    out = map_progress(functools.partial(render_clip, ctx), clips,
                       desc=f"ave/{preset.name}", progress=progress)

    for split in SPLITS:
        write_lines(root / SPLIT_FILES[split], [c.row() for c in clips if c.split == split])
    order = np.random.default_rng([seed, 0xA77]).permutation(len(clips))
    write_lines(root / ANNOTATIONS_FILE, [HEADER] + [clips[i].row() for i in order])

    label = {name: i for i, name in enumerate(AVE_CATEGORIES)}
    write_pooled_feature_file(
        root / FEATURES_FILE,
        {split: [(c.video_id, label[AVE_CATEGORIES[c.category]], o)
                 for c, o in zip(clips, out) if c.split == split] for split in SPLITS},
        AVE_CATEGORIES, extractors)

    world.graph.save(root / "cooccurrence_graph.json")
    write_jsonl(root / "synthetic_scenes.jsonl", [o["truth"] for o in out])
    counts = {s: sum(c.split == s for c in clips) for s in SPLITS}
    summary = Summary(
        DATASET, str(root), preset.name, seed, counts=counts,
        extra={"world_config": config, "class_map": {n: i for i, n in enumerate(AVE_CATEGORIES)},
               "world_category_names": [world.categories[i].name for i in range(len(AVE_CATEGORIES))],
               "features_file": FEATURES_FILE, "feature_extractors": extractors,
               "video_seconds": VIDEO_SECONDS, "fps": preset.fps,
               "image_size": preset.image_size, "sample_rate": preset.sample_rate},
    )
    write_json(root / "avbench_synthetic.json", summary.as_dict())
    return summary.as_dict()


__all__ = ["write", "plan", "make_scene", "source_activity", "event_mix", "event_video", "event_gate",
           "DATASET"]
