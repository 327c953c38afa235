"""Typed errors for reading datasets.

Real copies of the audio-visual datasets are always incomplete or partly
corrupt, so every failure names the file and what is wrong with it; datasets
catch :class:`MediaError` when built with ``missing="skip"`` and count the
reasons instead of dying mid-epoch.
"""

from __future__ import annotations

from pathlib import Path


class MediaError(Exception):
    """A media or annotation file cannot be used. ``path`` names the file."""

    reason = "unreadable"

    def __init__(self, path: str | Path, problem: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem or self.reason
        super().__init__(f"{self.path}: {self.problem}")


class MissingFileError(MediaError, FileNotFoundError):
    reason = "file does not exist"


class NoAudioStreamError(MediaError):
    reason = "no audio stream"


class NoVideoStreamError(MediaError):
    reason = "no video stream"


class CorruptMediaError(MediaError):
    reason = "corrupt or truncated media"


class EmptyAudioError(MediaError):
    reason = "zero-length audio"


class AnnotationError(MediaError, ValueError):
    """An annotation/list file is malformed (bad row, bad box, unknown id)."""

    reason = "malformed annotation"


class DuplicateIdError(AnnotationError):
    """Two items of one dataset got the same id (ids key every per-sample result)."""

    reason = "duplicate item ids"


class CacheDirError(MediaError, OSError):
    """The decoded-sample cache directory cannot be created or written (``$AVBENCH_CACHE_DIR``)."""
