"""SIGTERM and SIGINT during ``avbench benchmark``: stop cleanly, record the job in flight.

:func:`interrupt_on_signals` makes both signals raise :class:`RunInterrupted` in the main
thread. It is a ``BaseException`` (not ``KeyboardInterrupt``, on which Lightning calls
``sys.exit(1)``; not ``Exception``, which a job's error handling would record as a
failed result): Lightning re-raises it after its teardown, the runner marks the job in
flight as interrupted (``<work>/interrupted.json``), finishes its W&B run as failed,
lets every atomic write in progress discard its temporary file, and returns a summary
whose ``exit_code`` is 128 + the signal number. Lightning's own SIGTERM handler, set
during ``Trainer.fit``, calls the handler installed here after its notification.

A second signal while the run is cleaning up is ignored (the cleanup is short).

:func:`record_signals` only notes the signals (no exception): the process pool's main loop
uses it so that a signal never lands in the middle of its bookkeeping.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from avbench.atomic_io import atomic_write_text

#: the marker a signal leaves in a job's work directory; removed when the job completes
INTERRUPTED_MARKER = "interrupted.json"
HANDLED = (signal.SIGTERM, signal.SIGINT)


class RunInterrupted(BaseException):  # noqa: N818 - a signal, not an error
    """A signal stopped the run; ``signum`` is its number, ``name`` e.g. ``"SIGTERM"``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)
        self.name = signal.Signals(self.signum).name

    def __str__(self) -> str:
        return f"interrupted by {self.name}"


@contextlib.contextmanager
def interrupt_on_signals(signums: tuple[signal.Signals, ...] = HANDLED) -> Iterator[None]:
    """Within the block, ``signums`` raise :class:`RunInterrupted` (once; later ones are
    ignored); the previous handlers are restored on exit. A no-op outside the main thread
    (Python delivers signals to the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if fired:
            return  # already stopping
        fired.append(signum)
        raise RunInterrupted(signum)

    previous = {s: signal.getsignal(s) for s in signums}
    for s in signums:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


@contextlib.contextmanager
def record_signals(signums: tuple[signal.Signals, ...] = HANDLED) -> Iterator[list[int]]:
    """Within the block, ``signums`` append their number to the yielded list (nothing is
    raised; the caller polls the list); the previous handlers are restored on exit. Yields
    a list that stays empty outside the main thread (no handler can be installed there)."""
    fired: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield fired
        return

    def handler(signum: int, frame: object) -> None:
        fired.append(signum)

    previous = {s: signal.getsignal(s) for s in signums}
    for s in signums:
        signal.signal(s, handler)
    try:
        yield fired
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def mark_interrupted(work: Path, err: RunInterrupted, job_id: str) -> Path:
    """Write ``<work>/interrupted.json`` (signal, job id), atomically; returns its path."""
    path = work / INTERRUPTED_MARKER
    atomic_write_text(path, json.dumps({"job_id": job_id, "signal": err.name,
                                        "signum": err.signum}) + "\n")
    return path


def was_interrupted(work: Path) -> bool:
    """Whether an earlier run left an interrupted marker in ``work``."""
    return (work / INTERRUPTED_MARKER).is_file()


def clear_interrupted(work: Path) -> None:
    """Remove the marker (the job completed)."""
    (work / INTERRUPTED_MARKER).unlink(missing_ok=True)


__all__ = ["HANDLED", "INTERRUPTED_MARKER", "RunInterrupted", "clear_interrupted",
           "interrupt_on_signals", "mark_interrupted", "record_signals", "was_interrupted"]
