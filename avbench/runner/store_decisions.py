"""Which (job, benchmark) results to (re)compute, under the run's overwrite mode.

- ``only-missing`` (default): recompute missing, corrupt, stale (fingerprint
  changed) and failed results; keep the rest (``ok`` and ``not-scorable``: a
  metric undefined on the data is a valid outcome);
- ``never``: keep any valid stored result (a stale one is reported as kept);
- ``always``: recompute everything.

A corrupt file is moved aside (``*.corrupt-<time>``, never read again) and
recomputed in every mode.
"""

from __future__ import annotations

import logging
from typing import Literal

from avbench.runner.results import CorruptResult, ResultStore
from avbench.runner.summary import RunSummary

log = logging.getLogger(__name__)

Overwrite = Literal["never", "only-missing", "always"]
OVERWRITE_MODES: tuple[str, ...] = ("never", "only-missing", "always")


class StoreDecisions:
    """Decides per result whether to compute it; notes cached/stale/corrupt ones in ``summary``.

    Raises:
        ValueError: an unknown overwrite mode.
    """

    def __init__(self, store: ResultStore, suite: str, overwrite: Overwrite,
                 summary: RunSummary) -> None:
        if overwrite not in OVERWRITE_MODES:
            raise ValueError(f"overwrite must be one of {OVERWRITE_MODES}, got {overwrite!r}")
        self.store, self.suite, self.overwrite, self.summary = store, suite, overwrite, summary

    def needs(self, benchmark: str, jid: str, fp: str) -> bool:
        """Whether (job ``jid``, ``benchmark``) with fingerprint ``fp`` must be (re)computed."""
        label = f"{benchmark}/{jid}"
        path = self.store.path(self.suite, benchmark, jid)
        try:
            rec = self.store.read(self.suite, benchmark, jid)
        except CorruptResult as err:
            moved = self.store.quarantine(path)
            log.warning("%s; moved to %s and recomputing", err, moved.name)
            self.summary.corrupt.append(f"{label} ({err.problem})")
            return True
        if rec is None or self.overwrite == "always":
            return True
        if self.overwrite == "never":
            if rec.fingerprint != fp:
                self.summary.stale_kept.append(label)
            self.summary.cached.append(label)
            return False
        if rec.fingerprint == fp and rec.status in ("ok", "not-scorable"):
            self.summary.cached.append(label)
            return False
        return True  # stale fingerprint or a failed attempt: recompute


__all__ = ["OVERWRITE_MODES", "Overwrite", "StoreDecisions"]
