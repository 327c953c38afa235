"""Run per-item synthesis work over processes with one progress bar."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def default_workers() -> int:
    """Worker processes for synthesis: all cores, overridable by AVBENCH_SYNTH_WORKERS."""
    env = os.environ.get("AVBENCH_SYNTH_WORKERS")
    return int(env) if env else (os.cpu_count() or 1)


def map_progress(
    fn: Callable[[T], Any],
    items: Sequence[T] | Iterable[T],
    *,
    desc: str,
    workers: int | None = None,
    chunksize: int = 8,
    progress: bool = True,
) -> list[Any]:
    """``[fn(x) for x in items]`` in item order, over ``workers`` processes.

    ``fn`` must be picklable (a module-level function or a functools.partial of
    one). Results are returned in input order so output is deterministic
    whatever the scheduling. Small jobs run in-process (no pool start-up cost).
    """
    items = list(items)
    workers = default_workers() if workers is None else workers
    bar = tqdm(total=len(items), desc=desc, disable=not progress, unit="item", leave=False)
    try:
        if workers <= 1 or len(items) < 4 * chunksize:
            out = []
            for x in items:
                out.append(fn(x))
                bar.update()
            return out
        with ProcessPoolExecutor(max_workers=workers) as pool:
            out = []
            for r in pool.map(fn, items, chunksize=chunksize):
                out.append(r)
                bar.update()
            return out
    finally:
        bar.close()
