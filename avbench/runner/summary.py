"""What a suite run did: ok, not scorable, failed, up-to-date, skipped, corrupt and stale
results, and whether a signal interrupted it (jobs in flight) or cancelled it (jobs not
started)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass
class RunSummary:
    """Labels ``<benchmark>/<job id>`` of a run's results, by outcome."""

    ok: list[str] = field(default_factory=list)
    not_scorable: list[tuple[str, str]] = field(default_factory=list)  # (pair, reason)
    failed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (pair, reason)
    corrupt: list[str] = field(default_factory=list)
    stale_kept: list[str] = field(default_factory=list)
    #: jobs a signal stopped before all their results were written (rerun to complete them)
    interrupted: list[str] = field(default_factory=list)
    #: jobs a signal stopped before they started (rerun to run them)
    cancelled: list[str] = field(default_factory=list)
    #: jobs found interrupted by an earlier run, resumed by this one
    resumed: list[str] = field(default_factory=list)
    #: the signal that stopped the run (e.g. ``"SIGTERM"``), None when it ran to its end
    interrupted_by: str | None = None
    signal_number: int | None = None

    def merge(self, other: RunSummary) -> None:
        """Add ``other``'s entries (a worker's jobs) to this summary."""
        for f in fields(self):
            if isinstance(getattr(self, f.name), list):
                getattr(self, f.name).extend(getattr(other, f.name))

    @property
    def exit_code(self) -> int:
        """128 + the signal number when a signal stopped the run, else 1 when any result
        failed, else 0 (not-scorable results are valid outcomes)."""
        if self.signal_number is not None:
            return 128 + self.signal_number
        return 1 if self.failed else 0

    def text(self) -> str:
        """A human-readable report: counts, then the interrupted/failed/not-scorable/corrupt/
        stale/skipped pairs."""
        lines = []
        if self.interrupted_by:
            lines.append(f"INTERRUPTED by {self.interrupted_by}: rerun the same command to "
                         "complete the missing results")
        lines.append(
            f"ok: {len(self.ok)}  failed: {len(self.failed)}  skipped: {len(self.skipped)}  "
            f"not scorable: {len(self.not_scorable)}  up-to-date: {len(self.cached)}  corrupt (recomputed): {len(self.corrupt)}"
        )
        lines += [f"  INTERRUPTED {x}" for x in self.interrupted]
        lines += [f"  CANCELLED (not started) {x}" for x in self.cancelled]
        lines += [f"  resumed (interrupted before) {x}" for x in self.resumed]
        lines += [f"  FAILED  {x}" for x in self.failed]
        lines += [f"  NOT SCORABLE {p}: {r}" for p, r in self.not_scorable]
        lines += [f"  CORRUPT {x}" for x in self.corrupt]
        lines += [f"  STALE (kept, --overwrite never) {x}" for x in self.stale_kept]
        lines += [f"  skipped {p}: {r}" for p, r in self.skipped]
        return "\n".join(lines)


__all__ = ["RunSummary"]
