"""Synthetic Ego4D-Sounds: narrated long videos cut into 3-s action clips, in the real layout.

Writes exactly what :mod:`avbench.data.datasets.ego4d` reads (layout facts and their
sources are in that module's docstring)::

    <root>/
      narration.json                 Ego4D narrations of every long video
      train_clips_1.2m.csv           tab-separated clip table (16 release columns)
      test_clips_11k.csv             tab-separated clip table
      ego4dsounds_224p/<video_uid>/<video_uid>_<narration_source>_<narration_ind>.mp4
      cooccurrence_graph.json        the world's planted graph (unused by action clips)
      avbench_synthetic.json         preset, seed, world config, counts
      synthetic_scenes.jsonl         planted truth, one object per clip

World: each long video comes from ``world.sample_long_video`` (a persistent ambient
sound for the whole video, off-screen events and ``clips_per_video`` narrated actions,
at the levels of ``actions.LEVELS``; :func:`plan` samples them all, without media, for
the writer and for ``calibration.ego4d_energy_auc``); each clip is
``world.render_action_clip`` over ``narration_time +- clip_seconds / 2`` shifted to stay
inside the video - the rule of ``extract_ego4d_clips.py`` - at the preset's size, fps
and clip length, written as one mp4 (H.264 + AAC mono at the preset's sample rate).

Table values (synthetic truth where the real column is a measurement):

* ``video_dur``: the long video's duration (the public test table has ``-1``);
* ``narration_source``/``narration_ind``: the pass the narration is in and its index
  in that pass's ``narrations`` list of ``narration.json``. Videos alternate between
  ``narration_pass_1`` and ``narration_pass_2`` (the other pass is present, empty), so
  both id forms occur;
* ``clip_start``/``clip_end``: ``narration_time - 0.5`` / ``+ 1.0``, the EgoClip window
  seen in every row of the public test table (NOT the media window, which is in
  ``synthetic_scenes.jsonl`` as ``media_start``/``media_end``);
* ``clip_text``: the world's narration (``"#C C cuts the carrot"`` with synonyms);
* ``tag_verb``/``tag_noun``: ``[index]`` into ``world.actions.verbs`` / ``.nouns``
  (the real columns index Ego4D's taxonomy);
* ``positive``: ``1.0`` for a sounding verb, ``0.0`` for a silent one (see the
  dataset docstring for why);
* ``speech``, ``background_music``, ``traffic_noise``, ``wind_noise``: the world
  renders none of these, so ``0.0`` (the real columns are tagger probabilities).

``synthetic_scenes.jsonl`` also records per clip the action's ``snr_db`` over the bed
(sounding verbs), the overlapping off-screen events (``offscreen``: their categories;
``offscreen_events``: kind, times, level) and three levels of the media window:
``audio_rms`` (the clip), ``ambience_rms`` (the bed alone) and ``background_rms`` (bed +
off-screen events: the clip without its visible action).

Splits are by long video: ``test_fraction`` of the videos (at least one) go to the
test table, the rest to the training table, from which the loader holds out its val
videos by hash (:func:`avbench.data.datasets.ego4d.val_videos`); the split each
clip's video lands in is recorded in ``synthetic_scenes.jsonl``.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from avbench.atomic_io import atomic_path
from avbench.data.datasets.ego4d import CLIPS_DIR, val_videos
from avbench.data.datasets.ego4d_narrations import EGO4D_FPS, NARRATION_FILE
from avbench.data.datasets.ego4d_tables import COLUMNS, TEST_TABLE_NAMES, TRAIN_TABLE_NAMES, clip_id
from avbench.data.synthetic.actions import levels_of, render_background_audio
from avbench.data.synthetic.media import write_mp4
from avbench.data.synthetic.parallel import map_progress
from avbench.data.synthetic.presets import Preset

DATASET = "ego4d"
TRAIN_TABLE = TRAIN_TABLE_NAMES[0]
TEST_TABLE = TEST_TABLE_NAMES[0]
SCENES_FILE = "synthetic_scenes.jsonl"
#: share of long videos in the test table (at least one)
TEST_FRACTION = 0.25
#: the loader's default val hold-out, used to label clips in synthetic_scenes.jsonl
VAL_FRACTION = 0.05
#: seconds of video per narration (clips of neighbouring narrations may touch, not overlap much)
SECONDS_PER_NARRATION = 4.0
#: EgoClip narration window seen in the public test table
EGOCLIP_BEFORE, EGOCLIP_AFTER = 0.5, 1.0


@functools.lru_cache(maxsize=2)
def _world(seed: int, image_size: int, sample_rate: int) -> Any:
    """One World per process (workers rebuild it from (config, seed) - deterministic)."""
    from avbench.data.synthetic.world import World, WorldConfig

    return World(WorldConfig(image_size=image_size, sample_rate=sample_rate), seed)


def _video_uid(rng: np.random.Generator) -> str:
    """A uuid4-shaped id like Ego4D's ``video_uid`` (from the rng: deterministic)."""
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def media_window(t: float, clip_seconds: float, duration: float) -> tuple[float, float]:
    """``t +- clip/2`` moved inside ``[0, duration]`` (``extract_ego4d_clips.py``)."""
    start, end = t - clip_seconds / 2, t + clip_seconds / 2
    if start < 0:
        start, end = 0.0, clip_seconds
    if end > duration:
        end = duration
        start = max(end - clip_seconds, 0.0)
    return start, end


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


@dataclasses.dataclass(frozen=True)
class _ClipJob:
    seed: int
    image_size: int
    sample_rate: int
    fps: int
    video: Any  # LongVideo
    start: float
    duration: float
    path: str


def _render_clip(job: _ClipJob) -> dict[str, float]:
    """Render and write one clip; return its audio level, the level of the same window's
    ambient bed alone and of the bed + off-screen events (the clip without its action)."""
    world = _world(job.seed, job.image_size, job.sample_rate)
    frames, audio = world.render_action_clip(
        job.video, job.start, job.duration, job.fps, job.image_size, job.sample_rate
    )
    write_mp4(job.path, frames, job.fps, audio, job.sample_rate)
    ambience = world.render_ambience(job.video, job.start, job.duration, job.sample_rate)
    background = render_background_audio(job.video, world.categories, job.start, job.duration,
                                         job.sample_rate)
    return {"audio_rms": _rms(audio), "ambience_rms": _rms(ambience),
            "background_rms": _rms(background)}


def _fmt(x: float) -> str:
    return repr(float(x))


@dataclasses.dataclass(frozen=True)
class PlannedVideo:
    """One long video of the plan: its content and where it goes."""

    index: int
    video: Any  # LongVideo
    table: str  # "train" | "test"
    split: str  # "train" | "val" | "test" (the loader's val hold-out by hash)


def plan(preset: Preset, seed: int) -> tuple[Any, list[PlannedVideo]]:
    """``(world, videos)``: every long video of ``preset`` for world ``seed``, sampled and
    assigned to its table and split exactly as :func:`write` writes them (no media).

    Raises:
        ValueError: the preset has fewer than 3 Ego4D videos.
    """
    counts = preset.counts[DATASET]
    n_videos, per_video = int(counts["videos"]), int(counts["clips_per_video"])
    if n_videos < 3:
        raise ValueError(f"preset {preset.name!r}: ego4d needs >= 3 videos (train, val, test)")
    world = _world(seed, preset.image_size, preset.sample_rate)
    rng = np.random.default_rng([seed, 0xE604D])
    uids = [_video_uid(rng) for _ in range(n_videos)]
    n_test = max(1, int(round(n_videos * TEST_FRACTION)))
    order = rng.permutation(n_videos)
    test_set = {uids[i] for i in order[:n_test]}
    val_set = val_videos([u for u in uids if u not in test_set], VAL_FRACTION)
    duration = per_video * SECONDS_PER_NARRATION + float(preset.clip_seconds)
    out = []
    for v, uid in enumerate(uids):
        video = world.sample_long_video(np.random.default_rng([seed, 0xE604D, v]),
                                        duration, per_video, uid)
        table = "test" if uid in test_set else "train"
        split = "test" if table == "test" else ("val" if uid in val_set else "train")
        out.append(PlannedVideo(v, video, table, split))
    return world, out


def write(root: Path, preset: Preset, seed: int, *, progress: bool = True) -> dict[str, Any]:
    """Write the synthetic Ego4D-Sounds layout under ``root``; return a summary."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    counts = preset.counts[DATASET]
    clip_seconds = float(preset.clip_seconds)
    world, planned = plan(preset, seed)
    vocab = world.actions
    verb_index = {v.name: i for i, v in enumerate(vocab.verbs)}
    noun_index = {n: i for i, n in enumerate(vocab.nouns)}

    narrations: dict[str, Any] = {}
    rows: dict[str, list[dict[str, str]]] = {"train": [], "test": []}
    scenes: list[dict[str, Any]] = []
    jobs: list[_ClipJob] = []
    for pv in planned:
        v, video, uid = pv.index, pv.video, pv.video.uid
        source = f"narration_pass_{1 + v % 2}"
        other = f"narration_pass_{2 - v % 2}"
        listed = sorted(video.narrations, key=lambda n: n.time)
        narrations[uid] = {
            source: {
                "narrations": [
                    {
                        "timestamp_sec": float(n.time),
                        "timestamp_frame": int(round(n.time * EGO4D_FPS)),
                        "narration_text": n.text,
                        "annotation_uid": n.uid,
                    }
                    for n in listed
                ],
                "summaries": [],
            },
            other: {"narrations": [], "summaries": []},
        }
        table, split = pv.table, pv.split
        for ind, n in enumerate(listed):
            cid = clip_id(uid, source, ind)
            rel = f"{uid}/{cid}.mp4"
            m0, m1 = media_window(float(n.time), clip_seconds, float(video.duration))
            events = [e for e in video.offscreen if e.end > m0 and e.start < m1]
            jobs.append(_ClipJob(seed, preset.image_size, preset.sample_rate, int(preset.fps),
                                 video, m0, m1 - m0, str(root / CLIPS_DIR / rel)))
            v_idx = verb_index.get(n.verb)
            n_idx = noun_index.get(n.noun)
            rows[table].append({
                "video_uid": uid,
                "video_dur": _fmt(video.duration),
                "narration_source": source,
                "narration_ind": str(ind),
                "narration_time": _fmt(n.time),
                "clip_start": _fmt(n.time - EGOCLIP_BEFORE),
                "clip_end": _fmt(n.time + EGOCLIP_AFTER),
                "clip_text": n.text,
                "tag_verb": "[]" if v_idx is None else f"[{v_idx}]",
                "tag_noun": "[]" if n_idx is None else f"[{n_idx}]",
                "positive": "1.0" if n.sounding else "0.0",
                "clip_file": rel,
                "speech": "0.0",
                "background_music": "0.0",
                "traffic_noise": "0.0",
                "wind_noise": "0.0",
            })
            scenes.append({
                "id": cid,
                "split": split,
                "table": table,
                "labels": [] if v_idx is None else [v_idx],
                "offscreen": sorted({e.category for e in events}),
                "offscreen_events": [
                    {"category": e.category, "kind": e.kind, "start": e.start, "end": e.end,
                     "level_db": e.level_db} for e in events],
                "cooccurring": [],
                "snr_db": float(n.snr_db) if n.sounding else None,
                "video_uid": uid,
                "narration_source": source,
                "narration_ind": ind,
                "narration_time": float(n.time),
                "media_start": m0,
                "media_end": m1,
                "verb": n.verb,
                "noun": n.noun,
                "text": n.text,
                "sounding": bool(n.sounding),
                "sound_kind": vocab.verb(n.verb).sound_kind,
                "category": int(n.category),
                "pitch_hz": float(world.categories[n.category].sound.pitch_hz),
                "action_start": float(n.start),
                "action_end": float(n.end),
                "action_db": float(n.level_db),
                "ambience_db": float(video.ambience.level_db),
                "annotation_uid": n.uid,
            })

    levels = map_progress(_render_clip, jobs, desc="ego4d clips", progress=progress,
                          chunksize=max(1, min(8, len(jobs) // 8)))
    for scene, level in zip(scenes, levels):
        scene.update(level)

    for table, name in (("train", TRAIN_TABLE), ("test", TEST_TABLE)):
        with atomic_path(root / name) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(COLUMNS), delimiter="\t",
                               lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
            w.writeheader()
            w.writerows(rows[table])
    with atomic_path(root / NARRATION_FILE) as tmp:
        tmp.write_text(json.dumps(narrations, indent=1), encoding="utf-8")
    with atomic_path(root / SCENES_FILE) as tmp:
        tmp.write_text("".join(json.dumps(s) + "\n" for s in scenes), encoding="utf-8")
    world.graph.save(root / "cooccurrence_graph.json")

    n_by_split = {s: sum(1 for x in scenes if x["split"] == s) for s in ("train", "val", "test")}
    summary: dict[str, Any] = {
        "dataset": DATASET,
        "preset": preset.name,
        "seed": seed,
        "videos": len(planned),
        "clips": len(scenes),
        "clips_per_split": n_by_split,
        "videos_per_split": {
            sp: sum(1 for pv in planned if pv.split == sp) for sp in ("train", "val", "test")
        },
        "sounding_clips": sum(1 for x in scenes if x["sounding"]),
        "clip_seconds": clip_seconds,
        "fps": preset.fps,
        "image_size": preset.image_size,
        "sample_rate": preset.sample_rate,
    }
    meta = {
        **summary,
        "world_config": world.config.to_dict(),
        "action_sound_levels": levels_of(world.config).to_dict(),
        "counts": dict(counts),
        "files": {"train_table": TRAIN_TABLE, "test_table": TEST_TABLE,
                  "narrations": NARRATION_FILE, "clips_dir": CLIPS_DIR, "scenes": SCENES_FILE},
    }
    with atomic_path(root / "avbench_synthetic.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return summary


__all__ = ["write", "media_window"]
