"""What a suite run did: ok, failed, up-to-date, skipped, corrupt and stale results."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass
class RunSummary:
    """Labels ``<benchmark>/<job id>`` of a run's results, by outcome."""

    ok: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (pair, reason)
    corrupt: list[str] = field(default_factory=list)
    stale_kept: list[str] = field(default_factory=list)

    def merge(self, other: RunSummary) -> None:
        """Add ``other``'s entries (a worker's jobs) to this summary."""
        for f in fields(self):
            getattr(self, f.name).extend(getattr(other, f.name))

    @property
    def exit_code(self) -> int:
        """1 when any result failed, else 0."""
        return 1 if self.failed else 0

    def text(self) -> str:
        """A human-readable report: counts, then the failed/corrupt/stale/skipped pairs."""
        lines = [
            f"ok: {len(self.ok)}  failed: {len(self.failed)}  skipped: {len(self.skipped)}  "
            f"up-to-date: {len(self.cached)}  corrupt (recomputed): {len(self.corrupt)}"
        ]
        lines += [f"  FAILED  {x}" for x in self.failed]
        lines += [f"  CORRUPT {x}" for x in self.corrupt]
        lines += [f"  STALE (kept, --overwrite never) {x}" for x in self.stale_kept]
        lines += [f"  skipped {p}: {r}" for p, r in self.skipped]
        return "\n".join(lines)


__all__ = ["RunSummary"]
