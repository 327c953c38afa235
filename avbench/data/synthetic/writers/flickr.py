"""Synthetic Flickr-SoundNet in the published layout.

Writes exactly what :mod:`avbench.data.datasets.flickr` reads from a real copy
(layout and sources documented there)::

    <root>/
      metadata/
        flickr_10k.txt             a subset of the training ids (real 10k/144k ratio, >= 8)
        flickr_144k.txt            every training id
        flickr_test.csv            test ids, one per line (first column)
      frames/<id>.jpg              training frames (middle of the clip, t_eval)
      audio/<id>.wav               training audio, mono, preset sample rate
      test/
        frames/<id>.jpg
        audio/<id>.wav
        Annotations/<id>.xml       3 annotators' boxes, 256 x 256 pixel coordinates
      cooccurrence_graph.json      the planted graph (world.graph.save)
      synthetic_scenes.jsonl       per clip: id, split, labels, label_names, offscreen,
                                   cooccurring, snr_db, boxes (true, normalised),
                                   annotator_boxes (test, 256-px ints), objects
      avbench_synthetic.json       preset, seed, world config, counts

Annotation XML written here: ``<annotation>`` with a ``<filename>`` and one
``<object>`` per annotator holding one ``<bbox>`` per sounding object; a
``<bbox>`` has a first child ``<annotator>`` (every reference loader skips the
first child) then ``<xmin> <ymin> <xmax> <ymax>`` integers in 256-px
coordinates. Every grandchild of the root is a ``<bbox>``, which the
reference loaders require. Each annotator's box is the world's true box with
every edge moved independently by a small Gaussian (``ANNOTATOR_JITTER`` of
the box side, at least 1 px), so the consensus map has 0.5 bands around a
fully agreed core, as on the real test set.

Flickr-SoundNet publishes no class labels; the categories of the synthetic
clips are kept in ``synthetic_scenes.jsonl`` (for retrieval evaluation), not
in the layout.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
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
    flickr_ids,
    get_world,
    plan_clips,
    render_clip,
    subset_size,
    world_config_kwargs,
    write_json,
    write_jsonl,
    write_lines,
)

DATASET = "flickr"
ANNOTATORS = 3
FRAME = 256  #: annotation coordinate frame (pixels)
ANNOTATOR_JITTER = 0.06  #: std of each edge's shift, as a fraction of the box side


def plan(preset: Preset, seed: int, num_categories: int) -> list[ClipSpec]:
    """The clips of a (preset, seed): ids, splits, categories and scene seeds."""
    rng = np.random.default_rng([seed, 0xF11C4])
    return plan_clips(preset, DATASET, rng, flickr_ids, num_categories)


def annotator_boxes(
    boxes: list[list[float]], ident: str, seed: int
) -> list[list[list[int]]]:
    """Per annotator, the jittered true boxes in 256-px integer coordinates."""
    rng = np.random.default_rng([seed, 0xA770, int(ident) % (2**62)])
    out: list[list[list[int]]] = []
    for _ in range(ANNOTATORS):
        drawn = []
        for x0, y0, x1, y1 in boxes:
            w, h = (x1 - x0) * FRAME, (y1 - y0) * FRAME
            sx, sy = max(1.0, ANNOTATOR_JITTER * w), max(1.0, ANNOTATOR_JITTER * h)
            dx0, dx1 = rng.normal(0, sx, 2)
            dy0, dy1 = rng.normal(0, sy, 2)
            bx0 = int(np.clip(round(x0 * FRAME + dx0), 0, FRAME - 1))
            by0 = int(np.clip(round(y0 * FRAME + dy0), 0, FRAME - 1))
            bx1 = int(np.clip(round(x1 * FRAME + dx1), bx0 + 1, FRAME))
            by1 = int(np.clip(round(y1 * FRAME + dy1), by0 + 1, FRAME))
            drawn.append([bx0, by0, bx1, by1])
        out.append(drawn)
    return out


def annotation_xml(ident: str, per_annotator: list[list[list[int]]]) -> str:
    """The ``Annotations/<id>.xml`` text (see module doc for the structure)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = f"{ident}.jpg"
    for a, boxes in enumerate(per_annotator, start=1):
        obj = ET.SubElement(root, "object")
        for box in boxes:
            bbox = ET.SubElement(obj, "bbox")
            ET.SubElement(bbox, "annotator").text = str(a)
            for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), box):
                ET.SubElement(bbox, tag).text = str(int(v))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def write(root: Path, preset: Preset, seed: int, *, progress: bool = True) -> dict[str, Any]:
    """Write synthetic Flickr-SoundNet for ``preset`` and ``seed`` under ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config = world_config_kwargs(preset, "flickr")  # calibrated object sizes
    world = get_world(config, seed)
    specs = plan(preset, seed, len(world.categories))
    ctx = RenderContext(
        root=str(root), world_seed=seed, world_config=tuple(sorted(config.items())),
        clip_seconds=preset.clip_seconds, fps=preset.fps, sample_rate=preset.sample_rate,
        image_size=preset.image_size, write_video=False,
        split_dirs=(("train", "."), ("test", "test")),
    )
    truths = map_progress(functools.partial(render_clip, ctx), specs,
                          desc=f"flickr/{preset.name}", progress=progress)
    for t in truths:
        if t["split"] == "test":
            t["annotator_boxes"] = annotator_boxes(t["boxes"], t["id"], seed)
            atomic_write_text(root / "test" / "Annotations" / f"{t['id']}.xml",
                              annotation_xml(t["id"], t["annotator_boxes"]))

    train = [s.id for s in specs if s.split == "train"]
    test = [s.id for s in specs if s.split == "test"]
    meta = root / "metadata"
    n10k = subset_size(len(train))
    sub = np.random.default_rng([seed, 0x10C]).choice(train, size=n10k, replace=False)
    write_lines(meta / "flickr_10k.txt", sorted(sub.tolist()))
    write_lines(meta / "flickr_144k.txt", train)
    write_lines(meta / "flickr_test.csv", test)

    world.graph.save(root / "cooccurrence_graph.json")
    write_jsonl(root / "synthetic_scenes.jsonl", truths)
    summary = Summary(
        DATASET, str(root), preset.name, seed,
        counts={"train": len(train), "test": len(test), "flickr_10k": n10k,
                "categories": len(world.categories)},
        extra={"world_config": world.config.to_dict(), "annotators": ANNOTATORS,
               "annotator_jitter": ANNOTATOR_JITTER, "clip_seconds": preset.clip_seconds,
               "fps": preset.fps, "image_size": preset.image_size,
               "sample_rate": preset.sample_rate},
    )
    # no absolute root in the file: copies of a dataset stay byte-identical
    write_json(root / "avbench_synthetic.json",
               {k: v for k, v in summary.as_dict().items() if k != "root"})
    return summary.as_dict()


__all__ = ["write", "plan", "annotator_boxes", "annotation_xml", "DATASET"]
