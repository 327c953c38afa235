"""Rendering one clip of the SSL layouts (VGGSound, Flickr-SoundNet) from the synthetic world.

Both layouts store, per clip id, the middle frame ``frames/<id>.jpg`` and the
mono 16 kHz track ``audio/<id>.wav`` that the EZ-VSL/SLAVC/ACL-SSL repos
pre-extract; VGGSound also has the clip itself, ``video/<id>.mp4``. This
module renders a planned clip (:class:`ClipSpec`) into those files and returns
the planted truth for ``synthetic_scenes.jsonl``. It is shared by
:mod:`~avbench.data.synthetic.writers.vggsound` and
:mod:`~avbench.data.synthetic.writers.flickr`; the world API is
``docs/synthetic_world.md``.

Determinism: a clip is a function of (world config, world seed, spec) only -
the scene is drawn from ``np.random.default_rng(spec.scene_seed)`` - so
clips can be rendered in any process and order (``map_progress``), and tests
can rebuild the exact scene with :func:`make_scene`.

The evaluation time is the frame at the middle of the clip, ``t_eval =
(T // 2) / fps`` with ``T = round(clip_seconds * fps)`` frames: a frame
timestamp of the mp4, half its duration (what
:func:`avbench.data.io.read_video_frame` picks by default), and the time at
which the jpg is rendered and the GT boxes are measured.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avbench.atomic_io import atomic_write_text
from avbench.data.synthetic.media import write_image, write_mp4, write_wav
from avbench.data.synthetic.presets import Preset

#: alphabet of YouTube ids (VGGSound clip ids are ``<11 chars>_<start:06d>``)
YOUTUBE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass(frozen=True)
class ClipSpec:
    """A planned clip: its id, split and the annotated categories of its scene."""

    id: str
    split: str
    categories: tuple[int, ...]
    scene_seed: int


@dataclass(frozen=True)
class RenderContext:
    """Everything a worker process needs to render clips (picklable)."""

    root: str
    world_seed: int
    world_config: tuple[tuple[str, Any], ...]
    clip_seconds: float
    fps: int
    sample_rate: int
    image_size: int
    write_video: bool
    #: split -> folder under root holding frames/ audio/ (video/) of that split
    split_dirs: tuple[tuple[str, str], ...] = (("train", "."), ("val", "."), ("test", "."))
    video_dir: str = "video"

    def split_dir(self, split: str) -> Path:
        return Path(self.root) / dict(self.split_dirs)[split]


def world_config_kwargs(preset: Preset, layout: str | None = None) -> dict[str, Any]:
    """The WorldConfig fields a writer sets: the dataset's calibrated layout
    (``DATASET_LAYOUTS[layout]``, e.g. ``"avsbench_s4"``; none for the defaults,
    which are VGG-SS's), then the preset's size and rate, then its overrides
    (``--world`` wins over the calibrated layout)."""
    from avbench.data.synthetic.config import DATASET_LAYOUTS
    from avbench.data.synthetic.world import WorldConfig

    fields = set(WorldConfig.__dataclass_fields__)
    unknown = sorted(set(preset.world) - fields)
    if unknown:
        raise ValueError(
            f"unknown world setting(s) {unknown} in preset {preset.name!r}; "
            f"WorldConfig fields: {sorted(fields)}"
        )
    if layout is not None and layout not in DATASET_LAYOUTS:
        raise KeyError(f"unknown layout {layout!r}; one of {sorted(DATASET_LAYOUTS)}")
    base = dict(DATASET_LAYOUTS[layout]) if layout is not None else {}
    return {**base, "image_size": preset.image_size, "sample_rate": preset.sample_rate,
            **preset.world}


def eval_time(clip_seconds: float, fps: float) -> float:
    """The middle frame's timestamp: ``(T // 2) / fps`` with ``T = round(clip_seconds * fps)``."""
    frames = max(1, round(clip_seconds * fps))
    return (frames // 2) / fps


@functools.lru_cache(maxsize=4)
def _world(config: tuple[tuple[str, Any], ...], seed: int):
    from avbench.data.synthetic.world import World, WorldConfig

    return World(WorldConfig.from_dict(dict(config)), seed=seed)


def _config_key(config: dict[str, Any] | tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    items = config.items() if isinstance(config, dict) else config
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in items))


def get_world(config: dict[str, Any] | tuple[tuple[str, Any], ...], seed: int):
    """The world for ``(config, seed)``, built once per process.

    ``config`` is a (partial) ``WorldConfig`` dict, e.g. the ``world_config``
    a writer stores in ``avbench_synthetic.json``.
    """
    return _world(_config_key(config), int(seed))


def make_scene(world: Any, spec: ClipSpec):
    """The scene of ``spec`` (deterministic: the spec's own generator)."""
    rng = np.random.default_rng(spec.scene_seed)
    return world.sample_scene(rng, list(spec.categories))


def youtube_ids(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    """``n`` new unique VGGSound-style clip ids ``<11-char id>_<start:06d>``."""
    out: list[str] = []
    alphabet = np.array(list(YOUTUBE_ALPHABET))
    while len(out) < n:
        ytid = "".join(alphabet[rng.integers(0, len(alphabet), 11)])
        start = int(rng.integers(0, 600))
        ident = f"{ytid}_{start:06d}"
        if ident not in taken:
            taken.add(ident)
            out.append(ident)
    return out


def flickr_ids(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    """``n`` new unique Flickr-style numeric ids (10-11 digits, like ``10004743663``)."""
    out: list[str] = []
    while len(out) < n:
        ident = str(int(rng.integers(2_000_000_000, 21_000_000_000)))
        if ident not in taken:
            taken.add(ident)
            out.append(ident)
    return out


def balanced_categories(
    rng: np.random.Generator, n: int, categories: Sequence[int]
) -> list[int]:
    """``n`` category draws, each category (nearly) equally often, in random order."""
    cats = list(categories)
    reps = -(-n // max(1, len(cats)))
    pool = np.array(cats * reps)[:n] if cats else np.array([], dtype=int)
    return [int(c) for c in rng.permutation(pool)]


def plan_clips(
    preset: Preset,
    dataset: str,
    rng: np.random.Generator,
    make_ids: Callable[[np.random.Generator, int, set[str]], list[str]],
    num_categories: int,
) -> list[ClipSpec]:
    """Train then test clips of ``dataset``: fresh ids, balanced categories, scene seeds.

    Deterministic given ``rng`` and independent of rendering, so tests can
    rebuild every scene.
    """
    taken: set[str] = set()
    specs: list[ClipSpec] = []
    for split in ("train", "test"):
        n = preset.count(dataset, split)
        ids = make_ids(rng, n, taken)
        cats = balanced_categories(rng, n, range(num_categories))
        seeds = rng.integers(0, 2**62, size=n)
        specs += [ClipSpec(i, split, (c,), int(s)) for i, c, s in zip(ids, cats, seeds)]
    return specs


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def scene_truth(world: Any, scene: Any, t_eval: float) -> dict[str, Any]:
    """The planted truth of a scene for ``synthetic_scenes.jsonl``."""
    objects = []
    for obj in scene.objects:
        d = _jsonable(obj)
        objects.append(d if isinstance(d, dict) else {"repr": d})
    return {
        "labels": [int(c) for c in scene.labels],
        "label_names": [world.categories[int(c)].name for c in scene.labels],
        "offscreen": [int(c) for c in scene.offscreen],
        "cooccurring": [[int(c), str(m)] for c, m in scene.cooccurring],
        "snr_db": float(scene.snr_db),
        "scene_seed": int(scene.seed),
        "t_eval": float(t_eval),
        "boxes": [[float(v) for v in b] for b in world.sounding_boxes(scene, t_eval)],
        "objects": objects,
    }


def render_clip(ctx: RenderContext, spec: ClipSpec) -> dict[str, Any]:
    """Write one clip's files; return its truth record.

    The record is ``id``, ``split``, ``rng_seed`` (the spec's seed: ``make_scene``
    with ``ClipSpec(id, split, labels, rng_seed)`` rebuilds the scene) and
    :func:`scene_truth`.

    Files: ``<split dir>/frames/<id>.jpg`` (frame at ``t_eval``),
    ``<split dir>/audio/<id>.wav`` (the mix, mono, ``sample_rate``) and, with
    ``write_video``, ``<split dir>/<video_dir>/<id>.mp4`` (all frames at
    ``fps`` + the same audio as AAC).
    """
    world = get_world(ctx.world_config, ctx.world_seed)
    scene = make_scene(world, spec)
    t_eval = eval_time(ctx.clip_seconds, ctx.fps)
    base = ctx.split_dir(spec.split)
    audio = np.asarray(world.render_audio(scene, ctx.clip_seconds, ctx.sample_rate), np.float32)
    if ctx.write_video:
        video = world.render_video(scene, ctx.clip_seconds, ctx.fps, ctx.image_size)
        frames_total = video.shape[0]
        frame = video[min(round(t_eval * ctx.fps), frames_total - 1)]
        write_mp4(base / ctx.video_dir / f"{spec.id}.mp4", video, ctx.fps, audio, ctx.sample_rate)
    else:
        frame = world.render_frame(scene, t_eval, ctx.image_size)
    write_image(base / "frames" / f"{spec.id}.jpg", np.ascontiguousarray(frame))
    write_wav(base / "audio" / f"{spec.id}.wav", audio, ctx.sample_rate)
    return {"id": spec.id, "split": spec.split, "rng_seed": spec.scene_seed,
            **scene_truth(world, scene, t_eval)}


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    """Write ``lines`` to ``path`` atomically, each followed by ``\\n``."""
    atomic_write_text(path, "".join(f"{line}\n" for line in lines))
    return path


def write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    """Write one JSON object per line (keys sorted) to ``path`` atomically."""
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    return path


def write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` (dataclasses and numpy values made JSON-able) to ``path`` atomically."""
    atomic_write_text(path, json.dumps(_jsonable(obj), indent=1, sort_keys=True) + "\n")
    return path


def subset_size(n: int, ratio: float = 10 / 144, minimum: int = 8) -> int:
    """Size of a "10k"-style subset of ``n`` training ids: the real 10k/144k ratio, at least ``minimum``."""
    return min(n, max(minimum, round(n * ratio)))


@dataclass
class Summary:
    """Counts a writer returns (and stores in ``avbench_synthetic.json``)."""

    dataset: str
    root: str
    preset: str
    seed: int
    counts: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "root": self.root, "preset": self.preset,
                "seed": self.seed, "counts": dict(self.counts), **self.extra}


__all__ = [
    "ClipSpec",
    "RenderContext",
    "world_config_kwargs",
    "eval_time",
    "get_world",
    "make_scene",
    "youtube_ids",
    "flickr_ids",
    "balanced_categories",
    "scene_truth",
    "render_clip",
    "write_lines",
    "write_jsonl",
    "write_json",
    "subset_size",
    "Summary",
]
