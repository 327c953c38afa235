"""A job's log file: the root, Lightning and avbench loggers captured while the job runs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

#: characters of a job's log (and of a traceback) kept in an error record
LOG_TAIL = 8000


@contextlib.contextmanager
def job_log(path: Path) -> Iterator[Path]:
    """Capture the root, lightning and avbench loggers (INFO and up) into ``path`` (appended)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    # the root logger, plus any logger that does not propagate to it (Lightning's own)
    loggers = [logging.getLogger()] + [
        lg for lg in map(logging.getLogger, ("lightning", "lightning.pytorch", "lightning.fabric",
                                             "avbench"))
        if not lg.propagate
    ]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        yield path
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
        handler.close()


def log_tail(path: Path, n: int = LOG_TAIL) -> str:
    """The last ``n`` characters of the log at ``path`` ("" when unreadable)."""
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


__all__ = ["LOG_TAIL", "job_log", "log_tail"]
