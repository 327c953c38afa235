"""Synthetic EPIC-Sounds: long kitchen-like recordings with labelled, overlapping sound events.

Writes exactly what :mod:`avbench.data.datasets.epic_sounds` reads (layout facts and
their sources are in that module's docstring)::

    <root>/
      EPIC_Sounds_train.csv / .pkl                     10 published columns
      EPIC_Sounds_validation.csv / .pkl                10 published columns
      EPIC_Sounds_recognition_test_timestamps.csv / .pkl   7 columns, no labels
      EPIC_audio.hdf5                                  one float32 1-D dataset per video_id, 24 kHz
      synthetic_scenes.jsonl                           planted truth, one object per event
      avbench_synthetic.json                           preset, seed, sizes, class sounds

World: each of the 44 classes (:data:`~avbench.data.datasets.epic_sounds.CLASSES`)
gets a sound identity of the world's synthesis (:mod:`avbench.data.synthetic.sound`):
a kind chosen from its name (collisions, clicks, footsteps, cutting: struck
``pulses``; water, rustle, scrubbing, pouring, sizzling, hoover...: ``noise_band``;
beep, appliances: ``harmonic``; human, drink/eat, open/close: ``am_tone``) and a
characteristic frequency (log-spaced 150 Hz..6 kHz, shuffled by the seed). A
recording is the world's ambient bed (:func:`avbench.data.synthetic.actions.render_ambience`;
level -48..-30 dBFS, varying per video, optional mains hum) plus ``events_per_video``
events at random times (so events overlap, as in the real files), each 0.3..2 s on
the millisecond grid, class drawn from a long-tailed distribution, level -22..-8 dB,
its first sound onset at the annotated start and 5-ms fades at both ends, so the
annotated segment is the event plus whatever else sounds then.
``description`` is the class name. Splits are by video (train / validation /
recognition test); every ``video_id`` is ``P<participant>_<n>``.

Sizes: the preset's ``epic_sounds`` entry (:mod:`avbench.data.synthetic.presets`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avbench.atomic_io import atomic_path
from avbench.data.datasets.epic_sounds import (
    AUDIO_FILES,
    CLASSES,
    COLUMNS,
    NUM_CLASSES,
    SAMPLE_RATE,
    SPLIT_FILES,
    TEST_COLUMNS,
    format_timestamp,
    ms_to_sample,
)
from avbench.data.synthetic.actions import Ambience, render_ambience
from avbench.data.synthetic.parallel import map_progress
from avbench.data.synthetic.presets import Preset
from avbench.data.synthetic.sound import (
    SoundIdentity,
    onset_times,
    render_sound,
    sample_sound_identity,
)

DATASET = "epic_sounds"
AUDIO_FILE = AUDIO_FILES[0]
SCENES_FILE = "synthetic_scenes.jsonl"
EVENT_MS = (300, 2000)
EVENT_DB = (-22.0, -8.0)
AMBIENCE_DB = (-48.0, -30.0)
FADE_S = 0.005
_PULSES = ("collision", "click", "footstep", "cut")
_NOISE = ("water", "rustle", "scrub", "pour", "sizzl", "hoover", "background", "slide", "zip",
          "knead", "stir", "spray")
_HARMONIC = ("beep", "kettle")


def class_kind(name: str) -> str:
    """The synthesis kind of an EPIC-Sounds class name (module docstring)."""
    for keys, kind in ((_PULSES, "pulses"), (_NOISE, "noise_band"), (_HARMONIC, "harmonic")):
        if any(k in name for k in keys):
            return kind
    return "am_tone"


def class_sounds(seed: int) -> list[SoundIdentity]:
    """The 44 class identities of world ``seed`` (deterministic)."""
    rng = np.random.default_rng([seed, 0xE51C])
    pitches = np.geomspace(150.0, 6000.0, NUM_CLASSES)[rng.permutation(NUM_CLASSES)]
    return [sample_sound_identity(class_kind(c), float(p), rng) for c, p in zip(CLASSES, pitches)]


@dataclasses.dataclass(frozen=True)
class Event:
    class_id: int
    start_ms: int
    stop_ms: int
    level_db: float
    seed: int


@dataclasses.dataclass(frozen=True)
class VideoPlan:
    video_id: str
    participant_id: str
    split: str
    seconds: float
    ambience: Ambience
    events: tuple[Event, ...]  # sorted by start


def preset_counts(preset: Preset) -> dict[str, int]:
    """This writer's sizes for ``preset`` (its ``epic_sounds`` counts in :mod:`..presets`).

    Raises:
        KeyError: the preset has no ``epic_sounds`` entry.
    """
    if DATASET not in preset.counts:
        raise KeyError(f"preset {preset.name!r} has no epic_sounds sizes (presets.py)")
    return dict(preset.counts[DATASET])


def plan_videos(counts: dict[str, int], seed: int) -> list[VideoPlan]:
    """Every recording's ambience and events (deterministic in ``counts`` and ``seed``)."""
    rng = np.random.default_rng([seed, 0xE71C])
    weights = 1.0 / np.sqrt(1.0 + rng.permutation(NUM_CLASSES))  # long-tailed class frequencies
    weights /= weights.sum()
    seconds = float(counts["seconds"])
    dur_ms = int(seconds * 1000)
    plans: list[VideoPlan] = []
    v = 0
    for split in ("train", "val", "test"):
        for _ in range(int(counts[split])):
            r = np.random.default_rng([seed, 0xE71C, v])
            amb = Ambience(
                seed=int(r.integers(2**62)), level_db=float(r.uniform(*AMBIENCE_DB)),
                color=float(r.uniform(0.3, 0.95)),
                hum_hz=float(r.choice([0.0, 50.0, 60.0])), hum_db=float(r.uniform(-12.0, -4.0)),
                drift_hz=float(r.uniform(0.02, 0.1)), drift_depth=float(r.uniform(0.1, 0.5)))
            events = []
            for _ in range(int(counts["events_per_video"])):
                d = int(r.integers(EVENT_MS[0], EVENT_MS[1] + 1))
                s = int(r.integers(100, dur_ms - d - 100))
                events.append(Event(int(r.choice(NUM_CLASSES, p=weights)), s, s + d,
                                    float(r.uniform(*EVENT_DB)), int(r.integers(2**62))))
            events.sort(key=lambda e: (e.start_ms, e.stop_ms))
            participant = f"P{1 + v % 4:02d}"
            plans.append(VideoPlan(f"{participant}_{10 + v:02d}", participant, split, seconds,
                                   amb, tuple(events)))
            v += 1
    return plans


def event_waveform(event: Event, sounds: list[SoundIdentity], sample_rate: int) -> np.ndarray:
    """One event's samples, ``[stop_sample - start_sample]`` float32: its class sound from
    its first onset on, at ``level_db`` (RMS of a fully-on event), faded in and out."""
    sound = sounds[event.class_id]
    n = ms_to_sample(event.stop_ms, sample_rate) - ms_to_sample(event.start_ms, sample_rate)
    times, _ = onset_times(sound.onset, event.seed, 8.0)
    times = times[times >= 0]
    lead = float(times[0]) if times.size else 0.0
    i0 = int(round(lead * sample_rate))
    full = render_sound(sound, event.seed, (i0 + n) / sample_rate + 0.01, sample_rate)[i0:i0 + n]
    wave = np.zeros(n, np.float32)
    wave[:full.size] = full
    fade = min(int(FADE_S * sample_rate), n // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        wave[:fade] *= ramp
        wave[n - fade:] *= ramp[::-1]
    gain = np.float32(10 ** (event.level_db / 20) / 0.5)  # render_sound: fully-on RMS 0.5
    return wave * gain


def render_recording(plan: VideoPlan, sounds: list[SoundIdentity],
                     sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """``(mix, ambience)`` of one recording, float32 ``[seconds * sample_rate]`` each."""
    amb = render_ambience(plan.ambience, 0.0, plan.seconds, sample_rate)
    mix = amb.copy()
    for e in plan.events:
        s0 = ms_to_sample(e.start_ms, sample_rate)
        w = event_waveform(e, sounds, sample_rate)
        mix[s0:s0 + w.size] += w
    return mix, amb


def _render_job(job: tuple[VideoPlan, int]) -> np.ndarray:
    plan, seed = job
    return render_recording(plan, class_sounds(seed))[0]


def _rows(plan: VideoPlan) -> list[dict[str, Any]]:
    out = []
    for k, e in enumerate(plan.events):
        out.append({
            "annotation_id": f"{plan.video_id}_{k}",
            "participant_id": plan.participant_id,
            "video_id": plan.video_id,
            "start_timestamp": format_timestamp(e.start_ms),
            "stop_timestamp": format_timestamp(e.stop_ms),
            "start_sample": ms_to_sample(e.start_ms),
            "stop_sample": ms_to_sample(e.stop_ms),
            "description": CLASSES[e.class_id],
            "class": CLASSES[e.class_id],
            "class_id": e.class_id,
        })
    return out


def write(root: Path, preset: Preset, seed: int, *, progress: bool = True) -> dict[str, Any]:
    """Write the synthetic EPIC-Sounds layout under ``root``; return a summary."""
    import h5py

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    counts = preset_counts(preset)
    if min(int(counts[s]) for s in ("train", "val", "test")) < 1:
        raise ValueError(f"preset {preset.name!r}: epic_sounds needs >= 1 video per split")
    plans = plan_videos(counts, seed)
    sounds = class_sounds(seed)
    audio = map_progress(_render_job, [(p, seed) for p in plans], desc="epic_sounds recordings",
                         progress=progress, chunksize=1)
    with atomic_path(root / AUDIO_FILE) as tmp, h5py.File(tmp, "w") as f:
        for plan, wave in zip(plans, audio):
            f.create_dataset(plan.video_id, data=wave.astype(np.float32))

    scenes: list[dict[str, Any]] = []
    for split in ("train", "val", "test"):
        rows = [r for p in plans if p.split == split for r in _rows(p)]
        cols = list(TEST_COLUMNS if split == "test" else COLUMNS)
        frame = pd.DataFrame(rows, columns=list(COLUMNS))[cols]
        with atomic_path(root / SPLIT_FILES[split]) as tmp:
            frame.to_csv(tmp, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        with atomic_path((root / SPLIT_FILES[split]).with_suffix(".pkl")) as tmp:
            frame.to_pickle(tmp)
    for plan in plans:
        for k, e in enumerate(plan.events):
            others = [f"{plan.video_id}_{j}" for j, o in enumerate(plan.events)
                      if j != k and o.start_ms < e.stop_ms and e.start_ms < o.stop_ms]
            scenes.append({
                "id": f"{plan.video_id}_{k}", "split": plan.split, "video_id": plan.video_id,
                "labels": [e.class_id], "class": CLASSES[e.class_id], "start_ms": e.start_ms,
                "stop_ms": e.stop_ms, "level_db": e.level_db, "event_seed": e.seed,
                "overlaps": others, "ambience_db": plan.ambience.level_db,
                "kind": sounds[e.class_id].kind, "pitch_hz": sounds[e.class_id].pitch_hz,
            })
    with atomic_path(root / SCENES_FILE) as tmp:
        tmp.write_text("".join(json.dumps(s) + "\n" for s in scenes), encoding="utf-8")

    per_split = {s: sum(1 for x in scenes if x["split"] == s) for s in ("train", "val", "test")}
    summary: dict[str, Any] = {
        "dataset": DATASET, "preset": preset.name, "seed": seed, "videos": len(plans),
        "events": len(scenes), "events_per_split": per_split,
        "overlapping_events": sum(1 for x in scenes if x["overlaps"]),
        "sample_rate": SAMPLE_RATE, "seconds_per_video": float(counts["seconds"]),
    }
    meta = {**summary, "counts": counts,
            "classes": [{"class_id": i, "class": c, "kind": s.kind, "pitch_hz": s.pitch_hz}
                        for i, (c, s) in enumerate(zip(CLASSES, sounds))],
            "files": {**SPLIT_FILES, "audio": AUDIO_FILE, "scenes": SCENES_FILE}}
    with atomic_path(root / "avbench_synthetic.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return summary


__all__ = ["Event", "VideoPlan", "class_kind", "class_sounds", "event_waveform",
           "plan_videos", "preset_counts", "render_recording", "write"]
