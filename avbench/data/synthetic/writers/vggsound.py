"""Synthetic VGGSound + VGG-SS (+ heard/unheard) in the published layout.

Writes exactly what :mod:`avbench.data.datasets.vggsound` reads from a real
copy (layout and sources documented there)::

    <root>/
      vggsound.csv                 no header: youtube_id,start_seconds,label,split
      metadata/
        vggsound_10k.txt           a subset of the training ids (real 10k/144k ratio, >= 8)
        vggsound_144k.txt          every training id
        vggss.json                 [{"file", "class", "bbox": [[x0,y0,x1,y1], ...]}] of the test clips
        vggss_test.csv             VGG-SS ids, one per line
        vggss_heard.txt            training ids of the heard classes
        vggss_heard_test.csv       VGG-SS ids of heard classes (EZ-VSL format: id per line)
        vggss_unheard_test.csv     VGG-SS ids of unheard classes
      video/<id>.mp4               clip_seconds at preset fps, H.264 + AAC mono
      frames/<id>.jpg              the middle frame (t_eval, see ssl_layout)
      audio/<id>.wav               mono, preset sample rate (16 kHz)
      cooccurrence_graph.json      the planted graph (world.graph.save)
      synthetic_scenes.jsonl       per clip: id, split, labels, offscreen, cooccurring,
                                   snr_db, boxes, objects, heard
      avbench_synthetic.json       preset, seed, world config, counts

Synthetic choices: class labels are the world's category names; every test
clip is a VGG-SS clip (boxes = the world's tight boxes of the annotated
sounding objects at ``t_eval``, normalised); heard/unheard split the
categories in two halves (seeded permutation) so their class sets are
disjoint; clip ids are random YouTube-style ids, unique across splits. The
writer plants no garbage boxes (the loader's repair of those is tested on
planted fixtures instead), so the synthetic GT is exact.
"""

from __future__ import annotations

import csv
import functools
import io
from pathlib import Path
from typing import Any

import numpy as np

from avbench.atomic_io import atomic_write_text
from avbench.data.synthetic.parallel import map_progress
from avbench.data.synthetic.presets import Preset
from avbench.data.synthetic.writers.ssl_layout import (
    ClipSpec,
    RenderContext,
    Summary,
    get_world,
    plan_clips,
    render_clip,
    subset_size,
    world_config_kwargs,
    write_json,
    write_jsonl,
    write_lines,
    youtube_ids,
)

DATASET = "vggsound"


def heard_split(num_categories: int, seed: int) -> tuple[list[int], list[int]]:
    """Disjoint (heard, unheard) category halves, from a seeded permutation."""
    perm = np.random.default_rng([seed, 0x4EA2D]).permutation(num_categories)
    half = (num_categories + 1) // 2
    return sorted(int(c) for c in perm[:half]), sorted(int(c) for c in perm[half:])


def plan(preset: Preset, seed: int, num_categories: int) -> list[ClipSpec]:
    """The clips of a (preset, seed): ids, splits, categories and scene seeds.

    Deterministic and independent of rendering, so tests can rebuild scenes.
    """
    rng = np.random.default_rng([seed, 0x76557])
    return plan_clips(preset, DATASET, rng, youtube_ids, num_categories)


def _csv_text(rows: list[tuple[str, int, str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for r in rows:
        writer.writerow(r)
    return buf.getvalue()


def write(root: Path, preset: Preset, seed: int, *, progress: bool = True) -> dict[str, Any]:
    """Write synthetic VGGSound/VGG-SS for ``preset`` and ``seed`` under ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config = world_config_kwargs(preset, "vggss")  # calibrated object sizes
    world = get_world(config, seed)
    names = [c.name for c in world.categories]
    specs = plan(preset, seed, len(names))
    ctx = RenderContext(
        root=str(root), world_seed=seed, world_config=tuple(sorted(config.items())),
        clip_seconds=preset.clip_seconds, fps=preset.fps, sample_rate=preset.sample_rate,
        image_size=preset.image_size, write_video=True,
    )
    truths = map_progress(functools.partial(render_clip, ctx), specs,
                          desc=f"vggsound/{preset.name}", progress=progress)
    heard, unheard = heard_split(len(names), seed)
    heard_set = set(heard)
    for t in truths:
        t["heard"] = t["labels"][0] in heard_set

    train = [s for s in specs if s.split == "train"]
    test = [s for s in specs if s.split == "test"]
    # vggsound.csv: rows in a seeded order (the real file is not sorted by split)
    rows = [(s.id.rsplit("_", 1)[0], int(s.id.rsplit("_", 1)[1]), names[s.categories[0]], s.split)
            for s in specs]
    order = np.random.default_rng([seed, 0xC5F]).permutation(len(rows))
    atomic_write_text(root / "vggsound.csv", _csv_text([rows[i] for i in order]))

    meta = root / "metadata"
    sub_rng = np.random.default_rng([seed, 0x10C])
    n10k = subset_size(len(train))
    ten_k = sorted(sub_rng.choice([s.id for s in train], size=n10k, replace=False).tolist())
    write_lines(meta / "vggsound_10k.txt", ten_k)
    write_lines(meta / "vggsound_144k.txt", [s.id for s in train])
    by_id = {t["id"]: t for t in truths}
    vggss = [{"file": s.id, "class": names[s.categories[0]], "bbox": by_id[s.id]["boxes"]}
             for s in test]
    write_json(meta / "vggss.json", vggss)
    write_lines(meta / "vggss_test.csv", [s.id for s in test])
    write_lines(meta / "vggss_heard.txt", [s.id for s in train if s.categories[0] in heard_set])
    write_lines(meta / "vggss_heard_test.csv",
                [s.id for s in test if s.categories[0] in heard_set])
    write_lines(meta / "vggss_unheard_test.csv",
                [s.id for s in test if s.categories[0] not in heard_set])

    world.graph.save(root / "cooccurrence_graph.json")
    write_jsonl(root / "synthetic_scenes.jsonl", truths)
    summary = Summary(
        DATASET, str(root), preset.name, seed,
        counts={"train": len(train), "test": len(test), "vggss": len(test),
                "vggsound_10k": n10k, "heard_classes": len(heard),
                "unheard_classes": len(unheard), "classes": len(names)},
        extra={"world_config": world.config.to_dict(), "heard_classes": [names[c] for c in heard],
               "unheard_classes": [names[c] for c in unheard],
               "clip_seconds": preset.clip_seconds, "fps": preset.fps,
               "image_size": preset.image_size, "sample_rate": preset.sample_rate},
    )
    # no absolute root in the file: copies of a dataset stay byte-identical
    write_json(root / "avbench_synthetic.json",
               {k: v for k, v in summary.as_dict().items() if k != "root"})
    return summary.as_dict()


__all__ = ["write", "plan", "heard_split", "DATASET"]
