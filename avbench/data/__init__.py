"""Datasets, DataModules, IO and the synthetic world.

Classes are imported lazily so ``import avbench.data`` stays cheap (no PyAV,
h5py or matplotlib until a dataset is used).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # datasets (DESIGN 4.2)
    "VGGSound": "avbench.data.datasets.vggsound",
    "VGGSS": "avbench.data.datasets.vggss",
    "FlickrSoundNet": "avbench.data.datasets.flickr",
    "AVSBench": "avbench.data.datasets.avsbench",
    "AVE": "avbench.data.datasets.ave",
    "VEGAS": "avbench.data.datasets.vegas",
    "Ego4DClips": "avbench.data.datasets.ego4d",
    "EPICSounds": "avbench.data.datasets.epic_sounds",
    "SpokenCaptions": "avbench.data.datasets.spoken_captions",
    "ADE20KPrompted": "avbench.data.datasets.ade20k_prompted",
    # datamodules
    "AVDataModule": "avbench.data.datamodules.base",
    "VGGSoundDataModule": "avbench.data.datamodules.vggsound",
    "FlickrSoundNetDataModule": "avbench.data.datamodules.flickr",
    "AVSBenchDataModule": "avbench.data.datamodules.avsbench",
    "AVEDataModule": "avbench.data.datamodules.ave",
    "VEGASDataModule": "avbench.data.datamodules.vegas",
    "Ego4DClipsDataModule": "avbench.data.datamodules.ego4d",
    "EPICSoundsDataModule": "avbench.data.datamodules.epic_sounds",
    "SpokenCaptionsDataModule": "avbench.data.datamodules.spoken_captions",
    "ADE20KPromptedDataModule": "avbench.data.datamodules.ade20k_prompted",
    "MixedSpeechSoundDataModule": "avbench.data.datamodules.mixed_speech_sound",
    # contract
    "collate": "avbench.data.sample",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'avbench.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
