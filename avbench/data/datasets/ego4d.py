"""Ego4D narrated action clips in the Ego4D-Sounds layout (SoundingActions/MC3, Action2Sound).

Real layout
-----------
Sources: the Ego4D-Sounds release repository (``Ego4DSounds/Ego4DSounds``:
``README.md``, ``test_clips_11k.csv``, ``extract_ego4d_clips.py``, ``dataset.py``),
the Action2Sound reference code (``ChanganVR/action2sound``:
``ldm/datasets/ego4dsounds_dataset.py``, ``configs/ldm/ego4dsounds.yaml``), the
EgoClip loader that the first ten columns come from (``showlab/EgoVLP``:
``data_loader/EgoClip_EgoMCQ_dataset.py``) and REFERENCE.md B::

    <root>/
      narration.json                 Ego4D v1 narrations (optional for this loader)
      train_clips_1.2m.csv           clip table, TAB-separated despite the .csv name
      test_clips_11k.csv             clip table (11k test clips)
      ego4dsounds_224p/<video_uid>/<video_uid>_<narration_source>_<narration_ind>.mp4
      ego4dsounds_224p_test/...      (optional: Action2Sound's config keeps test clips apart)

* ``narration.json``: :mod:`avbench.data.datasets.ego4d_narrations`; the clip
  tables (columns, their meaning, ``positive``): :mod:`avbench.data.datasets.ego4d_tables`.
* The media: ``extract_ego4d_clips.py`` cuts ``narration_time +- 1.5 s`` (shifted to
  stay inside the video) with ``ffmpeg -vf scale=224:224 -ar 16000 -ac 1`` - 3 s,
  224 x 224, 16 kHz mono mp4.
* Splits: the release has train and test tables only, split by ``video_uid``.
  Action2Sound holds out 5% of the training videos as validation (a seeded shuffle of
  ``video_uid``); avbench holds out ``val_fraction`` of the training ``video_uid``\\ s
  chosen by a stable hash of the uid (:func:`val_videos`, :mod:`avbench.data.splits`),
  so the val set does not depend on the table order or on other videos, and never
  selects on test.

Samples
-------
Item ids: ``<video_uid>_<narration_source>_<narration_ind>`` (the reference
``get_id``; a clip id repeated in a table raises, :mod:`~avbench.data.datasets.ego4d_tables`).
Audio and frames are placed on the clip file's container clock (:mod:`avbench.data.io`).

``id`` (the clip id above), ``frames`` [T,3,H,W] (``fps`` frames per second over the
centre ``clip_seconds`` of the clip file, or ``num_frames`` at the centres of equal
segments of it, so ``num_frames=1`` is the window centre: :meth:`Ego4DClips.frame_times`),
``image`` (the middle frame of ``frames``), ``audio`` [1,L] (the clip's audio at
``sample_rate``, centre ``clip_seconds``, tiled when short), ``text`` (the narration;
with ``strip_prefix=True`` the ``#C C`` camera-wearer tag is removed -
``"#C C cuts the carrot"`` -> ``"cuts the carrot"``; for ``#O`` narrations only the
``#O`` tag is removed: ``"Woman X puts the card"``; whitespace is collapsed;
``#unsure`` tokens are kept), ``sounding`` (bool, ``positive >= 0.5``, see :mod:`~avbench.data.datasets.ego4d_tables`), ``label`` /
``class_name`` (the narration's verb, e.g. ``"cuts"``, as an index into
``dataset.classes``: the sorted verbs of every clip table under ``root``, so the
indices agree across splits), ``video_uid`` and ``narration_time``.

With ``with_cond_audio=True`` (Action2Sound's ambient condition) a sample also has
``cond_audio`` [1,L] and ``cond_id``: the audio of another clip of the SAME long
video. The reference picks uniformly at random among the 3 table neighbours on each
side (``left_nearest_k``/``right_nearest_k``) with an unseeded RNG; avbench takes,
among the clips of the same video whose narration time is at least ``clip_seconds``
away (so the condition never contains the target action itself), the
``cond_neighbors`` nearest before and after in time, and picks one by a stable hash
of ``(cond_seed, clip id)`` - the same choice in every epoch, worker and run. A video
with no such clip gives a zero waveform and ``cond_id = ""`` (the reference's zero
spectrogram).

Tolerated
---------
Table quirks: :mod:`avbench.data.datasets.ego4d_tables`. Test clips under
``ego4dsounds_224p`` or ``ego4dsounds_224p_test``; clips of any length and size
(centre window, resized to ``image_size``). Training videos that also occur in the
test table are dropped from train/val and counted.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from avbench.data import io
from avbench.data.datasets.base import AVDataset, MissingPolicy
from avbench.data.datasets.ego4d_narrations import clean_narration, narration_verb
from avbench.data.datasets.ego4d_tables import (
    TEST_TABLE_NAMES,
    TRAIN_TABLE_NAMES,
    BadRowPolicy,
    ClipRow,
    find_table,
    read_clip_table,
)
from avbench.data.errors import MissingFileError
from avbench.data.splits import EGO4D_COND_KEY, EGO4D_VAL_KEY, holdout_mask, joined_key, stable_unit

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
#: clip directories: ``extract_ego4d_clips.py`` output / Action2Sound's test data_dir
CLIPS_DIR = "ego4dsounds_224p"
TEST_CLIPS_DIR = "ego4dsounds_224p_test"


# ----------------------------------------------------------------------------
# splits and the ambient condition
# ----------------------------------------------------------------------------
def val_videos(video_uids: Sequence[str], val_fraction: float) -> set[str]:
    """The training videos held out for validation: ``sha1(uid) < val_fraction``.

    Each video's membership depends on its uid alone, so adding or removing other
    videos does not move it. If that selects nothing while there are at least two
    videos and ``val_fraction > 0``, the video with the smallest hash is taken so a
    small copy still has a validation split.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    uids = sorted(set(video_uids))
    if val_fraction == 0.0 or len(uids) < 2:
        return set()
    held = holdout_mask([joined_key(EGO4D_VAL_KEY, u) for u in uids], val_fraction)
    return {u for u, h in zip(uids, held) if h}


def condition_map(
    rows: Sequence[ClipRow], min_gap: float, neighbors: int, seed: int
) -> list[int | None]:
    """For each row, the index of its ambient-condition clip in ``rows`` (or None).

    Candidates for a clip: the other clips of its video whose narration time is at
    least ``min_gap`` seconds away, the ``neighbors`` nearest before and the
    ``neighbors`` nearest after it in time; one is picked by a stable hash of
    ``(seed, clip id)``. Per video the clips are sorted once and searched with
    bisection, so this is O(n log n) on the 1.2M-row table.
    """
    by_video: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_video[r.video_uid].append(i)
    out: list[int | None] = [None] * len(rows)
    for idx in by_video.values():
        idx.sort(key=lambda j: (rows[j].narration_time, rows[j].clip_id))
        times = [rows[j].narration_time for j in idx]
        for j in idx:
            t = rows[j].narration_time
            lo = bisect.bisect_right(times, t - min_gap)  # idx[:lo] are early enough
            hi = bisect.bisect_left(times, t + min_gap)  # idx[hi:] are late enough
            cands = [k for k in idx[max(lo - neighbors, 0):lo] + idx[hi:hi + neighbors] if k != j]
            if cands:
                cands.sort(key=lambda k: rows[k].clip_id)
                pick = int(stable_unit(joined_key(EGO4D_COND_KEY, seed, rows[j].clip_id)) * len(cands))
                out[j] = cands[min(pick, len(cands) - 1)]
    return out


# ----------------------------------------------------------------------------
# the dataset
# ----------------------------------------------------------------------------
class Ego4DClips(AVDataset):
    """Ego4D-Sounds narrated clips of one split (``train``, ``val`` or ``test``).

    Args:
        root: directory with the clip tables and clip folders (module docstring).
        split: ``"train"`` / ``"val"`` (held out from the training table by video,
            ``val_fraction``) or ``"test"`` (the test table).
        sample_rate: audio rate in Hz.
        clip_seconds: audio/video window, the centre of each clip file (3 s in the
            papers; tiled when the clip is shorter).
        image_size: frames are resized to ``image_size`` x ``image_size``.
        fps: frames per second sampled from the window (``T = ceil(fps * clip_seconds)``).
        num_frames: if given, exactly this many frames at the centres of equal segments
            of the window (1: the centre; Action2Sound uses 16); overrides ``fps``.
        strip_prefix: remove the ``#C C`` tag from ``text`` (see :func:`clean_narration`).
        val_fraction: share of training videos held out as ``val``.
        with_cond_audio: add ``cond_audio``/``cond_id`` (same-video ambient condition).
        cond_neighbors, cond_seed: candidates per side and seed of that choice.
        train_table, test_table: table file names/paths overriding the search.
        clips_dir: clip directory (relative to ``root``) overriding the search.
        bad_rows: ``"error"`` or ``"skip"`` rows with the wrong number of columns.
        exclude_test_videos: drop training/val clips whose video is in the test table.
        classes: the verb list to index ``label`` into (default: the sorted verbs of
            every clip table under ``root``); a verb missing from a given list gets
            ``label = -1`` (its ``class_name`` is still the verb).
        missing: ``"error"`` / ``"skip"`` for missing clip files (DESIGN 4.2).
    """

    name = "ego4d"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        sample_rate: int = 16000,
        clip_seconds: float = 3.0,
        image_size: int = 224,
        fps: float = 8.0,
        num_frames: int | None = None,
        strip_prefix: bool = True,
        val_fraction: float = 0.05,
        with_cond_audio: bool = False,
        cond_neighbors: int = 3,
        cond_seed: int = 0,
        train_table: str | Path | None = None,
        test_table: str | Path | None = None,
        clips_dir: str | Path | None = None,
        bad_rows: BadRowPolicy = "error",
        exclude_test_videos: bool = True,
        classes: Sequence[str] | None = None,
        missing: MissingPolicy = "error",
    ) -> None:
        super().__init__(root, missing=missing)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if bad_rows not in ("error", "skip"):
            raise ValueError(f"bad_rows must be 'error' or 'skip', got {bad_rows!r}")
        if clip_seconds <= 0 or fps <= 0 or (num_frames is not None and num_frames <= 0):
            raise ValueError("clip_seconds, fps and num_frames must be positive")
        self.split = split
        self.sample_rate = int(sample_rate)
        self.clip_seconds = float(clip_seconds)
        self.image_size = int(image_size)
        self.fps = float(fps)
        self.num_frames = num_frames
        self.strip_prefix = strip_prefix
        self.val_fraction = float(val_fraction)
        self.with_cond_audio = with_cond_audio
        self.cond_neighbors = int(cond_neighbors)
        self.cond_seed = int(cond_seed)
        self.bad_rows = bad_rows

        train_path = find_table(self.root, "train", train_table)
        test_path = find_table(self.root, "test", test_table)
        self.table_path = train_path if split in ("train", "val") else test_path
        if self.table_path is None:
            wanted = TRAIN_TABLE_NAMES if split in ("train", "val") else TEST_TABLE_NAMES
            raise MissingFileError(
                self.root / wanted[0],
                f"no {'training' if split != 'test' else 'test'} clip table under {self.root} "
                f"(looked for {', '.join(wanted)} and "
                f"{'train' if split != 'test' else 'test'}_clips*.csv)",
            )
        table = read_clip_table(self.table_path, bad_rows)
        if table.bad_rows:
            self.skipped["malformed table row"] += table.bad_rows
        rows = list(table.rows)
        other = None
        other_path = test_path if split in ("train", "val") else train_path
        if other_path is not None and other_path.is_file():
            other = read_clip_table(other_path, bad_rows)

        if split in ("train", "val"):
            if exclude_test_videos and other is not None:
                test_uids = {r.video_uid for r in other.rows}
                leaked = [r for r in rows if r.video_uid in test_uids]
                if leaked:
                    n_vid = len({r.video_uid for r in leaked})
                    log.warning("%s: %d training clips from %d test videos dropped",
                                self.table_path, len(leaked), n_vid)
                    self.skipped["video in test table"] += len(leaked)
                    rows = [r for r in rows if r.video_uid not in test_uids]
            held = val_videos([r.video_uid for r in rows], self.val_fraction)
            rows = [r for r in rows if (r.video_uid in held) == (split == "val")]
        self.video_uids: list[str] = sorted({r.video_uid for r in rows})

        if classes is None:
            verbs = {narration_verb(r.clip_text) for r in table.rows}
            if other is not None:
                verbs |= {narration_verb(r.clip_text) for r in other.rows}
            classes = sorted(verbs)
        self.classes: list[str] = list(classes)
        self._class_index = {c: i for i, c in enumerate(self.classes)}

        self.clips_dir = self._resolve_clips_dir(clips_dir)
        self.annotation_file = self.table_path
        self.records = rows
        self._finalize_records()
        self._cond_index: dict[str, int | None] = {}
        if with_cond_audio:
            cond = condition_map(self.records, self.clip_seconds, self.cond_neighbors, self.cond_seed)
            self._cond_index = {r.clip_id: c for r, c in zip(self.records, cond)}

    # --- layout -------------------------------------------------------
    def _resolve_clips_dir(self, clips_dir: str | Path | None) -> Path:
        if clips_dir is not None:
            p = Path(clips_dir)
            return p if p.is_absolute() else self.root / p
        names = (TEST_CLIPS_DIR, CLIPS_DIR) if self.split == "test" else (CLIPS_DIR,)
        for n in names:
            if (self.root / n).is_dir():
                return self.root / n
        return self.root

    def clip_path(self, record: ClipRow) -> Path:
        return self.clips_dir / record.clip_file

    def required_files(self, record: ClipRow) -> Sequence[Path]:
        return [self.clip_path(record)]

    def describe(self) -> str:
        return f"Ego4DClips({self.root}, split={self.split!r})"

    # --- loading ------------------------------------------------------
    @property
    def audio_num_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    def _audio_window(self, path: Path) -> tuple[torch.Tensor, float]:
        """The centre ``clip_seconds`` of the clip's audio and the window start (s)."""
        wave = io.read_audio(path, self.sample_rate)
        n = self.audio_num_samples
        start = max(wave.shape[-1] - n, 0) // 2 / self.sample_rate
        return io.fit_length(wave, n, "center"), start

    def frame_times(self, start: float) -> tuple[float, float, int]:
        """Where the frames of a window starting at ``start`` (s) are sampled.

        Returns ``(first, fps, n)``: frame ``k`` is the one displayed at
        ``first + k / fps``. With ``fps``: ``first = start``, ``n = ceil(fps *
        clip_seconds)``, so the middle frame ``n // 2`` is the window centre for even
        ``n``. With ``num_frames``: the centres of ``n`` equal segments of the window,
        ``start + (k + 0.5) * clip_seconds / n``; one frame is the window centre (the
        narration time), the action's moment. (Before, ``num_frames`` started at
        ``start``: ``num_frames: 1`` gave the window's FIRST frame, 1.5 s before the
        narration, when the synthetic hand is still at rest - every clip of a video
        then had the same image; see ``docs/models.md``, Ego4D discovery and retrieval.)
        """
        if self.num_frames is not None:
            n = int(self.num_frames)
            fps = n / self.clip_seconds
            return start + 0.5 / fps, fps, n
        return start, self.fps, max(1, math.ceil(self.fps * self.clip_seconds - 1e-6))

    def label_of(self, record: ClipRow) -> tuple[int, str]:
        verb = narration_verb(record.clip_text)
        return self._class_index.get(verb, -1), verb

    def load(self, record: ClipRow) -> dict[str, Any]:
        path = self.clip_path(record)
        audio, start = self._audio_window(path)
        first, fps, n = self.frame_times(start)
        frames = io.read_video_frames(path, fps, start=first, num_frames=n, size=self.image_size,
                                      interpolation=self.frame_interpolation)
        label, verb = self.label_of(record)
        sample: dict[str, Any] = {
            "id": record.clip_id,
            "frames": frames,
            "image": frames[frames.shape[0] // 2],
            "audio": audio,
            "text": clean_narration(record.clip_text, self.strip_prefix),
            "sounding": record.sounding,
            "label": label,
            "class_name": verb,
            "video_uid": record.video_uid,
            "narration_time": float(record.narration_time),
        }
        if self.with_cond_audio:
            j = self._cond_index.get(record.clip_id)
            if j is None:
                sample["cond_audio"] = torch.zeros(1, self.audio_num_samples)
                sample["cond_id"] = ""
            else:
                other = self.records[j]
                sample["cond_audio"] = self._audio_window(self.clip_path(other))[0]
                sample["cond_id"] = other.clip_id
        return sample

    # --- introspection --------------------------------------------------
    def clips_by_video(self) -> dict[str, list[ClipRow]]:
        out: dict[str, list[ClipRow]] = defaultdict(list)
        for r in self.records:
            out[r.video_uid].append(r)
        return dict(out)


__all__ = [
    "CLIPS_DIR",
    "SPLITS",
    "TEST_CLIPS_DIR",
    "Ego4DClips",
    "condition_map",
    "val_videos",
]
