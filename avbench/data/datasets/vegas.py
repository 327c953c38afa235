"""VEGAS (Zhou et al. CVPR 2018, "Visual to Sound"): 10 sound classes, raw clips or features.

The original release is offline (the TNN-C-CCA README, ZenzenDatabase/CMR: "The Raw
dataset ... now is not available"); VEGAS is used today through two forms:

Raw clips, per-class folders as seen in public loaders (e.g. a federated
``VEGASDataset`` that reads ``<root>/<class>/audios/*.wav``,
``<root>/<class>/videos/*.mp4``, optional ``<class>/img/*.jpg`` and
``<class>/video_info.csv`` with ``YTID,start_second,end_second``)::

    VEGAS/
      baby_cry/videos/video_00000.mp4      clips up to 10 s
      baby_cry/audios/video_00000.wav      the clip's audio track
      chainsaw/...  dog/  drum/  fireworks/  helicopter/  printer/
      rail_transport/  snoring/  water_flowing/

Classes (REFERENCE.md B): baby cry, chainsaw, dog, drum, fireworks, helicopter,
printer, rail transport, snoring, water flowing; folder names use underscores.
``dataset.classes`` is the sorted list of class folders found.

Features: ``vegas_feature.h5`` (CMR README; VGGish 128-d audio, Inception-v3
1024-d visual, mean-pooled per video; keys ``audio_train``, ``visual_train``,
``lab_train``, ``audio_test``, ...) read by :class:`VEGASFeatures` through
:mod:`avbench.data.datasets.features`. The retrieval papers' train/test split is
the one stored in that file.

Split of the raw clips (avbench's, documented because the release has none): an
item's split is fixed by ``u = stable_unit("<class>/<stem>", HOLDOUT_SALT)`` (sha1 of
the salted id, :mod:`avbench.data.splits`):
``test`` if ``u < test_fraction`` (0.2), ``val`` if
``u < test_fraction + val_fraction`` (0.05), else ``train``. Deterministic,
independent of which other files exist, never selects on test.

Item ids: ``<class>/<stem>`` (unique: one file per stem and class folder).

Samples of :class:`VEGAS`: ``id`` = ``<class>/<stem>``, ``image`` = middle frame,
``audio`` = centre ``clip_seconds`` window (tiled when short) from the wav (or the
mp4's own track with ``audio_source="mp4"``), ``label``/``class_name``, and
``frames`` when ``num_frames`` is set. Tolerated: class folders without
``audios/`` when ``audio_source="mp4"``; extra files and folders (``img/``,
csvs) are ignored; stems present in only one of ``videos/``/``audios/`` count as
items with a missing file (the ``missing`` policy decides).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from avbench.data import io
from avbench.data.datasets.base import AVDataset, MissingPolicy
from avbench.data.datasets.features import FeatureDataset
from avbench.data.errors import AnnotationError
from avbench.data.splits import HOLDOUT_SALT, stable_unit

SPLITS = ("train", "val", "test")
FEATURES_FILE = "vegas_feature.h5"
VEGAS_CLASSES: tuple[str, ...] = (
    "baby_cry", "chainsaw", "dog", "drum", "fireworks", "helicopter", "printer",
    "rail_transport", "snoring", "water_flowing",
)

AudioSource = Literal["wav", "mp4"]


def vegas_split(item_id: str, test_fraction: float = 0.2, val_fraction: float = 0.05) -> str:
    """The deterministic split of a raw VEGAS item id ``<class>/<stem>``."""
    u = stable_unit(item_id, HOLDOUT_SALT)
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


@dataclass(frozen=True)
class VEGASRecord:
    id: str
    class_name: str
    video: Path
    audio: Path


class VEGAS(AVDataset):
    """VEGAS raw clips (see module docstring).

    Args:
        root: the folder holding the 10 class folders.
        split: ``train``/``val``/``test`` of the hash split above.
        sample_rate, clip_seconds, image_size: audio rate, window, frame size.
        audio_source: ``"wav"`` (``audios/<stem>.wav``) or ``"mp4"`` (the video's track).
        num_frames: also return ``frames`` [T,3,H,W] spread over the clip.
        test_fraction, val_fraction: the hash split's fractions.
        missing: ``"error"`` or ``"skip"`` for items with a missing file.
    """

    name = "vegas"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        sample_rate: int = 16000,
        clip_seconds: float = 3.0,
        image_size: int = 224,
        audio_source: AudioSource = "wav",
        num_frames: int | None = None,
        test_fraction: float = 0.2,
        val_fraction: float = 0.05,
        missing: MissingPolicy = "error",
    ) -> None:
        super().__init__(root, missing=missing)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if audio_source not in ("wav", "mp4"):
            raise ValueError(f"audio_source must be 'wav' or 'mp4', got {audio_source!r}")
        if not (0 <= test_fraction and 0 <= val_fraction and test_fraction + val_fraction < 1):
            raise ValueError("need 0 <= test_fraction, val_fraction and their sum < 1")
        self.split, self.audio_source, self.num_frames = split, audio_source, num_frames
        self.sample_rate, self.clip_seconds, self.image_size = sample_rate, clip_seconds, image_size
        self.test_fraction, self.val_fraction = test_fraction, val_fraction
        class_dirs = sorted(
            d for d in self.root.iterdir()
            if d.is_dir() and ((d / "videos").is_dir() or (d / "audios").is_dir())
        )
        if not class_dirs:
            raise AnnotationError(
                self.root, "no VEGAS class folders (<class>/videos/*.mp4, <class>/audios/*.wav)"
            )
        self.classes: list[str] = [d.name for d in class_dirs]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        for d in class_dirs:
            stems = {p.stem for p in (d / "videos").glob("*.mp4")}
            if audio_source == "wav":
                stems |= {p.stem for p in (d / "audios").glob("*.wav")}
            for stem in sorted(stems):
                item_id = f"{d.name}/{stem}"
                if vegas_split(item_id, test_fraction, val_fraction) != split:
                    continue
                video = d / "videos" / f"{stem}.mp4"
                audio = d / "audios" / f"{stem}.wav" if audio_source == "wav" else video
                self.records.append(VEGASRecord(item_id, d.name, video, audio))
        self._finalize_records()

    def required_files(self, record: VEGASRecord) -> list[Path]:
        return [record.video, record.audio] if record.audio != record.video else [record.video]

    def load(self, record: VEGASRecord) -> dict[str, Any]:
        wave = io.read_audio(record.audio, self.sample_rate)
        audio = io.fit_length(wave, int(round(self.clip_seconds * self.sample_rate)), mode="center")
        sample: dict[str, Any] = {
            "id": record.id,
            "image": io.read_video_frame(record.video, t=None, size=self.image_size,
                                         interpolation=self.frame_interpolation),
            "audio": audio,
            "label": self.class_to_idx[record.class_name],
            "class_name": record.class_name,
        }
        if self.num_frames:
            # spread num_frames over the whole clip (VEGAS clips vary in length)
            seconds = io.probe(record.video).duration or self.clip_seconds
            sample["frames"] = io.read_video_frames(
                record.video, fps=self.num_frames / seconds, num_frames=self.num_frames,
                size=self.image_size, interpolation=self.frame_interpolation,
            )
        return sample

    def describe(self) -> str:
        return f"VEGAS[{self.split}]({self.root})"


class VEGASFeatures(FeatureDataset):
    """VEGAS retrieval features (HDF5); names default to :data:`VEGAS_CLASSES`."""

    name = "vegas_features"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        file: str | Path = FEATURES_FILE,
        val_fraction: float = 0.05,
        missing: MissingPolicy = "error",
    ) -> None:
        super().__init__(
            root, file, split, val_fraction=val_fraction,
            default_class_names=VEGAS_CLASSES, missing=missing,
        )
