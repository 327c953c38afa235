"""Mixed speech + sound training data (DenseAV's ``mixed-full``): spoken captions and VGGSound.

The reference (``mhamilton723/DenseAV``, ``denseav/data/AVDatasets.py``,
``PlacesAndAudioSet``) draws each item from Places Audio or AudioSet with
probability 1/2 and records ``source`` (0 = Places speech, 1 = AudioSet sound). The
issue asks for VGGSound clips as the sound source (avbench has no AudioSet layout).
Here the draw is a deterministic plan instead of a coin per ``__getitem__``, so an
epoch has exactly ``speech_fraction`` speech items, the decoded-sample cache stays
valid and every run sees the same items:

* training: an epoch of ``epoch_size`` items (default: the smallest size at which every
  item of both sources appears at least once, the smaller source cycled), a seeded
  permutation of each source, positions assigned to sources by a seeded permutation;
* val / test: no repetition: ``min(len(speech), len(sound) * f / (1 - f))`` speech items
  and the matching number of sound items, seeded subsets.

Speech = :class:`~avbench.data.datasets.spoken_captions.SpokenCaptions` (train /
hold-out val / ``val.json`` test); sound = :class:`~avbench.data.datasets.vggsound.VGGSound`
(train list / hold-out val / the csv's test rows). Both are cut to the module's
``clip_seconds`` at ``sample_rate``, images to ``image_size``.

Samples (both sources, same keys): ``id`` str (``speech/<uttid>`` or
``sound/<clip id>``, ``#k`` appended to the k-th repeat), ``image`` FloatTensor[3,H,W],
``audio`` FloatTensor[1,L], ``audio_mask`` FloatTensor[L] (caption padding is 0;
all ones for VGGSound), ``source`` str (``"speech"`` / ``"sound"``). Everything else
of either source (labels, captions) is dropped so batches collate.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from avbench.data.datamodules.base import AVDataModule
from avbench.data.datasets.spoken_captions import TEST_JSON, TRAIN_JSON, SpokenCaptions
from avbench.data.datasets.vggsound import VGGSound

log = logging.getLogger(__name__)

SOURCES = ("speech", "sound")
#: the keys every mixed sample has
MIXED_KEYS = ("id", "image", "audio", "audio_mask", "source")


def plan_mix(n_speech: int, n_sound: int, speech_fraction: float, *, repeat: bool,
             epoch_size: int | None, seed: int) -> list[tuple[str, int, int]]:
    """The items of a mixed split: ``(source, index into the source, repeat number)``.

    ``repeat=True`` (training): ``epoch_size`` items (default
    ``ceil(max(n_speech / f, n_sound / (1 - f)))``), ``round(f * epoch_size)`` of them speech;
    each source visited in a seeded permutation, cycled when exhausted. ``repeat=False``
    (evaluation): each item at most once, ``round(f * n)`` speech of ``n`` items, as many
    as both sources allow.

    Raises:
        ValueError: ``speech_fraction`` outside (0, 1), an empty source, ``epoch_size < 2``.
    """
    f = float(speech_fraction)
    if not 0.0 < f < 1.0:
        raise ValueError(f"speech_fraction must be in (0, 1), got {speech_fraction}")
    if n_speech < 1 or n_sound < 1:
        raise ValueError(f"both sources need items (speech {n_speech}, sound {n_sound})")
    rng = np.random.default_rng([int(seed), 0x313ED])
    if repeat:
        n = epoch_size or int(np.ceil(max(n_speech / f, n_sound / (1.0 - f))))
        if n < 2:
            raise ValueError(f"epoch_size must be >= 2, got {n}")
        k_speech = min(max(round(f * n), 1), n - 1)
        k_sound = n - k_speech
    else:
        k_speech = max(1, min(n_speech, int(np.floor(n_sound * f / (1.0 - f)))))
        k_sound = max(1, min(n_sound, round(k_speech * (1.0 - f) / f)))
    perm = {"speech": rng.permutation(n_speech), "sound": rng.permutation(n_sound)}
    items: list[tuple[str, int, int]] = []
    for source, k in (("speech", k_speech), ("sound", k_sound)):
        order = perm[source]
        items += [(source, int(order[i % len(order)]), i // len(order)) for i in range(k)]
    return [items[i] for i in rng.permutation(len(items))]


class MixedSpeechSound(Dataset):
    """Speech and sound datasets interleaved by :func:`plan_mix` (module doc).

    ``records`` are ``(source, inner record, repeat)`` (for the cache key and the
    missing-file identity); ``required_files`` delegates to the source dataset.
    """

    name = "mixed_speech_sound"

    def __init__(self, speech: SpokenCaptions, sound: VGGSound, speech_fraction: float = 0.5,
                 *, repeat: bool, epoch_size: int | None = None, seed: int = 0) -> None:
        self.parts: dict[str, Any] = {"speech": speech, "sound": sound}
        self.plan = plan_mix(len(speech), len(sound), speech_fraction, repeat=repeat,
                             epoch_size=epoch_size, seed=seed)
        self.records = [(src, self.parts[src].records[i], k) for src, i, k in self.plan]
        self.root = speech.root
        self.annotation_file = speech.annotation_file

    @property
    def frame_interpolation(self) -> str:
        return self.parts["speech"].frame_interpolation

    @frame_interpolation.setter
    def frame_interpolation(self, value: str) -> None:
        for part in self.parts.values():
            part.frame_interpolation = value

    @property
    def image_size(self) -> int | None:
        return self.parts["speech"].image_size

    @image_size.setter
    def image_size(self, value: int | None) -> None:
        for part in self.parts.values():
            part.image_size = value

    def required_files(self, record: tuple[str, Any, int]) -> list[Path]:
        source, inner, _ = record
        return list(self.parts[source].required_files(inner))

    def source_counts(self) -> dict[str, int]:
        """Items per source in this split."""
        return {s: sum(r[0] == s for r in self.plan) for s in SOURCES}

    def describe(self) -> str:
        return (f"MixedSpeechSound(speech={self.parts['speech'].describe()}, "
                f"sound={self.parts['sound'].describe()})")

    def skip_report(self) -> str:
        return "; ".join(p.skip_report() for p in self.parts.values())

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int) -> dict[str, Any]:
        source, inner, repeat = self.plan[index]
        sample = self.parts[source][inner]
        audio = sample["audio"]
        mask = sample.get("audio_mask")
        out = {
            "id": f"{source}/{sample['id']}" + (f"#{repeat}" if repeat else ""),
            "image": sample["image"],
            "audio": audio,
            "audio_mask": mask if mask is not None else torch.ones(audio.shape[-1]),
            "source": source,
        }
        return out


class MixedSpeechSoundDataModule(AVDataModule):
    """50/50 spoken captions + VGGSound clips, each sample tagged with its ``source``.

    Args:
        speech_root: spoken-captions data root (``PlacesAudio_400k_distro/`` inside).
        sound_root: VGGSound root.
        speech_fraction: share of speech items (reference: 0.5).
        epoch_size: training items per epoch (default: module doc).
        seed: seed of the mixing plan.
        sound_train_list: VGGSound training id list (``None`` = every train row).
        train_json, test_json: spoken-captions metadata files.
        val_fraction: hash hold-out share of both training lists.
        **kwargs: :class:`AVDataModule` arguments (batch_size, sample_rate, clip_seconds,
            image_size, cache...).
    """

    dataset_name = "mixed_speech_sound"

    def __init__(
        self,
        speech_root: str | Path,
        sound_root: str | Path,
        speech_fraction: float = 0.5,
        epoch_size: int | None = None,
        seed: int = 0,
        sound_train_list: str | None = "vggsound_144k.txt",
        train_json: str = TRAIN_JSON,
        test_json: str = TEST_JSON,
        val_fraction: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__(speech_root, **kwargs)
        if not 0.0 < speech_fraction < 1.0:
            raise ValueError(f"speech_fraction must be in (0, 1), got {speech_fraction}")
        self.speech_root = Path(speech_root)
        self.sound_root = Path(sound_root)
        self.speech_fraction = speech_fraction
        self.epoch_size = epoch_size
        self.seed = seed
        self.sound_train_list = sound_train_list
        self.train_json = train_json
        self.test_json = test_json
        self.val_fraction = val_fraction

    def build_dataset(self, split: str) -> Any:
        if split not in ("train", "val", "test"):
            raise KeyError(f"unknown split {split!r}")
        media = dict(sample_rate=self.sample_rate, clip_seconds=self.clip_seconds,
                     image_size=self.image_size, missing=self.missing)
        speech = SpokenCaptions(self.speech_root, split, train_json=self.train_json,  # type: ignore[arg-type]
                                test_json=self.test_json, val_fraction=self.val_fraction, **media)
        sound = VGGSound(self.sound_root, split, train_list=self.sound_train_list,  # type: ignore[arg-type]
                         val_fraction=self.val_fraction, **media)
        mixed = MixedSpeechSound(speech, sound, self.speech_fraction, repeat=split == "train",
                                 epoch_size=self.epoch_size if split == "train" else None,
                                 seed=self.seed)
        log.info("%s/%s: %s", self.dataset_name, split, mixed.source_counts())
        return mixed


__all__ = ["MIXED_KEYS", "MixedSpeechSound", "MixedSpeechSoundDataModule", "SOURCES", "plan_mix"]
