"""The synthetic audio-visual world and its writers in the real dataset layouts.

``generate(dataset, root, preset, seed)`` writes one dataset; the world itself
lives in :mod:`avbench.data.synthetic.world` (see docs/synthetic_world.md).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import time
from pathlib import Path
from typing import Any

from avbench.data.synthetic.presets import PRESETS, Preset, get_preset

#: dataset name -> writer module (each exposes ``write(root, preset, seed, progress=)``;
#: writers of feature files also take ``standins=``)
WRITERS: dict[str, str] = {
    "vggsound": "avbench.data.synthetic.writers.vggsound",
    "flickr": "avbench.data.synthetic.writers.flickr",
    "avsbench": "avbench.data.synthetic.writers.avsbench",
    "ave": "avbench.data.synthetic.writers.ave",
    "vegas": "avbench.data.synthetic.writers.vegas",
    "ego4d": "avbench.data.synthetic.writers.ego4d",
    "epic_sounds": "avbench.data.synthetic.writers.epic_sounds",
    "spoken_captions": "avbench.data.synthetic.writers.spoken_captions",
    "ade20k_prompted": "avbench.data.synthetic.writers.ade20k_prompted",
}

DATASETS = tuple(WRITERS)


def generate(
    dataset: str,
    root: str | Path,
    preset: str | Preset = "tiny",
    seed: int = 0,
    *,
    progress: bool = True,
    world: dict[str, Any] | None = None,
    standins: str | Path | None = None,
) -> dict[str, Any]:
    """Write ``dataset`` in its real published layout under ``root``.

    Deterministic: the same (dataset, preset, seed, world) writes identical
    files. ``world`` overrides :class:`WorldConfig` fields (ablations such as
    ``{"offscreen_rate": 0.0}``); the writer records the resolved world config
    in ``avbench_synthetic.json``. ``standins`` is the directory of the
    pretrained stand-ins that writers with pre-extracted features read (AVE,
    VEGAS: ``standins/image-resnet18`` and ``standins/audio-resnet18``; default
    ``standins/`` or ``$AVBENCH_STANDINS``, see
    :mod:`avbench.data.synthetic.writers.features`); other writers ignore it.
    Returns the writer's summary plus the wall time in seconds.

    Raises:
        StandinNotReadyError: AVE/VEGAS and a stand-in is missing or stale (the
            message gives the ``avbench pretrain`` command that builds it).
    """
    if dataset not in WRITERS:
        raise KeyError(f"unknown dataset {dataset!r}; choose one of {list(WRITERS)}")
    preset_obj = preset if isinstance(preset, Preset) else get_preset(preset)
    if world:
        preset_obj = dataclasses.replace(preset_obj, world={**preset_obj.world, **world})
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    writer = importlib.import_module(WRITERS[dataset])
    start = time.perf_counter()
    kwargs: dict[str, Any] = {"progress": progress}
    if "standins" in inspect.signature(writer.write).parameters:
        kwargs["standins"] = standins
    summary = dict(writer.write(root, preset_obj, seed, **kwargs))
    summary.setdefault("dataset", dataset)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    return summary


__all__ = ["DATASETS", "PRESETS", "Preset", "WRITERS", "generate", "get_preset"]
