"""The VGGish-128 / Inception-v3-1024 features of synthetic AVE and VEGAS, through the stand-ins.

The retrieval line on AVE/VEGAS (TNN-C-CCA, ILI) trains on per-second features of
pretrained extractors, mean-pooled per video (see
:mod:`avbench.data.datasets.features`). Here the extractors are the pretrained
stand-ins of :mod:`avbench.pretrain` (networks trained on the pretraining world,
whose categories no benchmark uses), with the same shapes and the same pooling:

* audio (128-d per second): :class:`avbench.pretrain.extractors.AudioFeatureExtractor`
  of the ``audio-resnet18`` stand-in - the 128-d embedding layer (VGGish's role) of
  one 0.96-s log-mel window per second of the 16 kHz mono mix (resampled first if
  the preset's rate differs; a clip shorter than 1 s is zero-padded to 1 s);
* visual (1024-d per second): :class:`avbench.pretrain.extractors.VisualFeatureExtractor`
  of the ``image-resnet18`` stand-in - its post-ReLU 1024-d layer (Inception-v3's
  pool feature) of the frame at the middle of each second (RGB in ``[0, 1]`` at the
  rendered size).

Off-screen sounds, co-occurring sources, silent distractors and noise leak in as
they do in the mix and the frames. Features are computed from the rendered arrays
before encoding (the mp4 codec would only add noise), single-threaded per worker
process (the writers parallelise over processes).

The stand-ins are read from a directory ``standins`` (``standins/`` by default, or
``$AVBENCH_STANDINS``) holding ``image-resnet18/`` and ``audio-resnet18/``, each
built by ``avbench pretrain NAME --out standins/NAME``. :func:`check_standins`
refuses a missing or stale one (its card's code version or file checksums do
not match: :func:`avbench.pretrain.card.is_current`) with the command that builds
it, and returns what produced the features (name, card sha256, weights sha256,
seed, size, held-out accuracy); the AVE/VEGAS writers store that in the feature
file's HDF5 attribute :data:`PROVENANCE_ATTR` and in ``avbench_synthetic.json``.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avbench.data.synthetic.writers.feature_file import write_feature_file
from avbench.nn.weights import DEFAULT_STANDINS, STANDINS_ENV, default_standins

AUDIO_DIM, VISUAL_DIM = 128, 1024
AUDIO_STANDIN, VISUAL_STANDIN = "audio-resnet18", "image-resnet18"
EXTRACTOR_RATE = 16000  # the audio stand-in's sample rate
#: HDF5 root attribute of a feature file: JSON of :func:`check_standins`'s result
PROVENANCE_ATTR = "avbench_feature_extractors"


class StandinNotReadyError(FileNotFoundError):
    """A stand-in the features need is missing or stale (the message gives the command that builds it)."""


def check_standins(standins: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Check that ``standins/audio-resnet18`` and ``standins/image-resnet18`` are built and current.

    Returns ``{name: {"dir", "card_sha256", "weights_sha256", "seed", "size", "code_version",
    "heldout"}}`` (the provenance the writers record).

    Raises:
        StandinNotReadyError: a stand-in directory has no valid card, its code version is
            not current or a file's sha256 differs from its card; the message names the
            directory, the reason and the ``avbench pretrain`` command that builds it.
    """
    from avbench.pretrain.card import CARD_FILE, CardError, read_card, sha256_file, stale_reasons

    root = default_standins() if standins is None else Path(standins)
    out: dict[str, dict[str, Any]] = {}
    for name in (AUDIO_STANDIN, VISUAL_STANDIN):
        d = root / name
        command = f"`avbench pretrain {name} --out {d}"
        try:
            card = read_card(d)
        except CardError as err:
            raise StandinNotReadyError(f"the AVE/VEGAS features need the {name} stand-in: {err}; "
                                       f"build it with {command}`") from err
        size = str(card.corpus.get("size", "default"))
        problems = stale_reasons(d, name, card.seed, size)
        if problems:
            raise StandinNotReadyError(f"the {name} stand-in in {d} is not current "
                                       f"({'; '.join(problems)}); rebuild it with {command} --size {size} --force`")
        out[name] = {"dir": str(d), "card_sha256": sha256_file(d / CARD_FILE),
                     "weights_sha256": card.sha256.get(card.files.get("weights", ""), ""),
                     "seed": card.seed, "size": size, "code_version": card.code_version,
                     "heldout": dict(card.heldout)}
    return out


@functools.lru_cache(maxsize=2)
def _extractors(standins: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(audio, visual) extractors of a stand-in directory, loaded once per process."""
    from avbench.pretrain.extractors import AudioFeatureExtractor, VisualFeatureExtractor

    root = Path(standins)
    audio = AudioFeatureExtractor.from_dir(root / AUDIO_STANDIN).eval()
    visual = VisualFeatureExtractor.from_dir(root / VISUAL_STANDIN).eval()
    return audio, visual


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    """Run torch single-threaded: the writers parallelise over processes, and on a
    loaded 2-core machine torch's intra-op threads spin against each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def audio_features(audio: np.ndarray, sample_rate: int, standins: str | Path) -> np.ndarray:
    """Per-second 128-d audio features ``[T, 128]`` (float32) of a mono float waveform ``[L]``,
    ``T = max(1, floor(L / sample_rate))``."""
    import torchaudio

    wave = torch.as_tensor(np.asarray(audio, dtype=np.float32)).reshape(1, -1)
    with _single_thread(), torch.no_grad():
        if sample_rate != EXTRACTOR_RATE:
            wave = torchaudio.functional.resample(wave, sample_rate, EXTRACTOR_RATE)
        if wave.shape[1] < EXTRACTOR_RATE:
            wave = torch.nn.functional.pad(wave, (0, EXTRACTOR_RATE - wave.shape[1]))
        feats = _extractors(str(standins))[0](wave)[0]  # [T, 128]
    return feats.numpy().astype(np.float32)


def visual_features(frames: np.ndarray, standins: str | Path) -> np.ndarray:
    """1024-d visual features ``[T, 1024]`` (float32) of uint8 RGB frames ``[T, H, W, 3]``."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
    with _single_thread(), torch.no_grad():
        feats = _extractors(str(standins))[1](x)
    return feats.numpy().astype(np.float32)


def pooled_features(frames_per_second: np.ndarray, audio: np.ndarray, sample_rate: int,
                    standins: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Video-level features: mean over seconds of the per-second features.

    ``frames_per_second`` is uint8 ``[T, H, W, 3]`` (one frame per second, at its
    middle); ``audio`` the clip's mono waveform; ``standins`` the stand-in directory
    (checked beforehand by :func:`check_standins`). Returns ``(audio [128], visual [1024])``.
    """
    a = audio_features(audio, sample_rate, standins).mean(axis=0)
    v = visual_features(frames_per_second, standins).mean(axis=0)
    return a.astype(np.float32), v.astype(np.float32)


def write_pooled_feature_file(path: Path, splits: Mapping[str, Sequence[tuple[str, int, dict[str, Any]]]],
                              class_names: Sequence[str],
                              extractors: dict[str, dict[str, Any]]) -> None:
    """Write the AVE/VEGAS feature file ``path`` from the writers' per-clip results.

    ``splits`` maps a feature-file split to its rows ``(id, label, result)``, ``result``
    holding ``"audio_feat" [128]`` and ``"visual_feat" [1024]`` (:func:`pooled_features`);
    ``extractors`` (:func:`check_standins`) goes to the :data:`PROVENANCE_ATTR` attribute.
    Layout: :func:`~avbench.data.synthetic.writers.feature_file.write_feature_file`.

    Raises:
        ValueError: a split has no rows (nothing to stack).
    """
    feats = {split: {"audio": np.stack([r["audio_feat"] for _, _, r in rows]),
                     "visual": np.stack([r["visual_feat"] for _, _, r in rows]),
                     "labels": np.array([label for _, label, _ in rows], np.int64),
                     "ids": [clip_id for clip_id, _, _ in rows]}
             for split, rows in splits.items()}
    write_feature_file(path, feats, class_names=class_names,
                       attrs={PROVENANCE_ATTR: json.dumps(extractors, sort_keys=True)})


__all__ = ["AUDIO_DIM", "AUDIO_STANDIN", "DEFAULT_STANDINS", "PROVENANCE_ATTR", "STANDINS_ENV",
           "VISUAL_DIM", "VISUAL_STANDIN", "StandinNotReadyError", "audio_features",
           "check_standins", "default_standins", "pooled_features", "visual_features",
           "write_pooled_feature_file"]
