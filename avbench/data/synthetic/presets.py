"""Sizes of the synthetic datasets per preset.

``tiny`` writes a few items per split in seconds (unit tests), ``small`` is the
CI smoke size, ``default`` is what ``make leaderboard`` trains on: large enough
that method differences are real, small enough for a 2-core machine. Counts are
per split; clip lengths are shorter than the real datasets' (10 s) to keep
synthesis and training on CPU fast, while the on-disk layout is the real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    image_size: int  # rendered frame size in pixels (square)
    clip_seconds: float  # length of VGGSound/Flickr/AVE/VEGAS-style clips
    fps: int  # frame rate of written videos
    sample_rate: int = 16000
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    #: WorldConfig overrides (e.g. ``{"offscreen_rate": 0.0}`` for an ablation)
    world: dict[str, Any] = field(default_factory=dict)

    def count(self, dataset: str, split: str) -> int:
        try:
            return self.counts[dataset][split]
        except KeyError as err:
            raise KeyError(f"preset {self.name!r} has no count for {dataset}/{split}") from err


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny", image_size=64, clip_seconds=2.0, fps=4,
        counts={
            "vggsound": {"train": 24, "test": 12},
            "flickr": {"train": 16, "test": 8},
            "avsbench_s4": {"train": 6, "val": 3, "test": 3},
            "avsbench_ms3": {"train": 4, "val": 2, "test": 2},
            "ave": {"train": 16, "val": 6, "test": 6},
            "vegas": {"train": 20, "test": 10},
            "ego4d": {"videos": 4, "clips_per_video": 4},
            "epic_sounds": {"train": 3, "val": 2, "test": 2, "seconds": 20, "events_per_video": 8},
            "spoken_captions": {"train": 24, "val": 8},
            "ade20k_prompted": {"images": 8},
        },
    ),
    "small": Preset(
        name="small", image_size=96, clip_seconds=3.0, fps=8,
        counts={
            "vggsound": {"train": 400, "test": 100},
            "flickr": {"train": 200, "test": 50},
            "avsbench_s4": {"train": 60, "val": 20, "test": 20},
            "avsbench_ms3": {"train": 30, "val": 10, "test": 10},
            "ave": {"train": 150, "val": 30, "test": 30},
            "vegas": {"train": 200, "test": 60},
            "ego4d": {"videos": 12, "clips_per_video": 10},
            "epic_sounds": {"train": 8, "val": 3, "test": 3, "seconds": 40, "events_per_video": 20},
            "spoken_captions": {"train": 200, "val": 50},
            "ade20k_prompted": {"images": 40},
        },
    ),
    "default": Preset(
        name="default", image_size=128, clip_seconds=3.0, fps=8,
        counts={
            "vggsound": {"train": 2000, "test": 500},
            "flickr": {"train": 2000, "test": 250},
            "avsbench_s4": {"train": 400, "val": 100, "test": 100},
            "avsbench_ms3": {"train": 120, "val": 30, "test": 30},
            "ave": {"train": 320, "val": 50, "test": 80},
            "vegas": {"train": 600, "test": 150},
            "ego4d": {"videos": 40, "clips_per_video": 25},
            # videos per split, seconds per recording, events per recording
            "epic_sounds": {"train": 16, "val": 4, "test": 4, "seconds": 40,
                            "events_per_video": 20},
            # spoken captions: images per metadata file; ADE20K prompted: images (2-3 rows each)
            "spoken_captions": {"train": 400, "val": 100},
            "ade20k_prompted": {"images": 100},
        },
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]
