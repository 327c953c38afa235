"""Train/test leak check (REFERENCE.md B: the public VGGSound-144k training list
contains about 3.7k of the 5,158 VGG-SS test clips).

:func:`check_leak` compares any training id list with any test set after
normalising ids, so that ``frames/abc_000030.jpg``, ``abc_000030.wav`` and
``abc_30`` (VGGSound ``<youtube_id>_<start>`` with an unpadded start) are the
same clip. Id list files are read by :func:`avbench.data.id_lists.read_ids`
(re-exported here as ``read_id_list``). The evaluator attaches the report to
every result when it is given the model's training ids, and the leaderboard
shows it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import PurePosixPath

from pydantic import BaseModel, ConfigDict, computed_field

# The one id-list reader (format and errors there); re-exported for avbench.benchmarks.
from avbench.data.id_lists import read_ids as read_id_list

_MEDIA_EXT = {
    ".mp4", ".mkv", ".webm", ".avi", ".wav", ".flac", ".mp3", ".jpg", ".jpeg",
    ".png", ".npy", ".npz", ".pkl", ".pt", ".h5", ".json", ".xml", ".txt",
}  # fmt: skip
#: folders that hold media files rather than name a class (dropped from a path)
_MEDIA_DIRS = {"frames", "frame", "video", "videos", "audio", "audios", "image", "images",
               "wav", "mp4", "clips", "features"}
_VGGSOUND = re.compile(r"^(?P<yt>[A-Za-z0-9_-]{11})_(?P<start>\d{1,6})$")
_N_EXAMPLES = 10


def normalize_id(raw: str) -> str:
    """Canonical clip id for overlap checks.

    A path to a media file loses its media folder and everything before it
    (``frames/<id>.jpg``, ``/data/vggsound/video/<id>.mp4`` -> ``<id>``); a folder
    that is part of the id stays (VEGAS ``baby_cry/video_00001``: the numbers
    restart in every class folder); a media extension is removed; a VGGSound
    start is padded to 6 digits.
    """
    s = str(raw).strip().replace("\\", "/")
    if "/" in s:
        parent = PurePosixPath(s).parent.name.lower()
        if parent in _MEDIA_DIRS or s.startswith("/"):
            s = PurePosixPath(s).name
    stem, dot, ext = s.rpartition(".")
    if dot and f".{ext.lower()}" in _MEDIA_EXT:
        s = stem
    m = _VGGSOUND.match(s)
    if m:
        s = f"{m['yt']}_{int(m['start']):06d}"
    return s


class LeakReport(BaseModel):
    """Overlap between a training id list and a test set."""

    model_config = ConfigDict(frozen=True)

    n_train: int
    n_test: int
    n_overlap: int
    examples: list[str]
    train_source: str | None = None
    test_source: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def overlap_fraction(self) -> float:
        """Fraction of the test set that is also in the training list."""
        return self.n_overlap / self.n_test if self.n_test else 0.0

    @property
    def has_leak(self) -> bool:
        return self.n_overlap > 0

    def summary(self) -> str:
        if not self.has_leak:
            return f"no overlap ({self.n_train} train ids, {self.n_test} test ids)"
        return (
            f"LEAK: {self.n_overlap} of {self.n_test} test ids "
            f"({100 * self.overlap_fraction:.1f}%) are in the training list "
            f"({self.n_train} ids), e.g. {', '.join(self.examples[:3])}"
        )


def check_leak(
    train_ids: Iterable[str],
    test_ids: Iterable[str],
    *,
    normalize: Callable[[str], str] | None = normalize_id,
    train_source: str | None = None,
    test_source: str | None = None,
) -> LeakReport:
    """Report how many test ids also appear in the training ids (after ``normalize``).

    Counts are over unique normalised ids; ``examples`` lists up to 10
    overlapping ids, sorted.
    """
    norm = normalize or (lambda s: str(s))
    train = {norm(i) for i in train_ids if str(i).strip()}
    test = {norm(i) for i in test_ids if str(i).strip()}
    overlap = train & test
    return LeakReport(
        n_train=len(train),
        n_test=len(test),
        n_overlap=len(overlap),
        examples=sorted(overlap)[:_N_EXAMPLES],
        train_source=train_source,
        test_source=test_source,
    )


__all__ = ["LeakReport", "check_leak", "normalize_id", "read_id_list"]
