"""``avbench benchmark`` and ``avbench leaderboard`` (dispatched from :mod:`avbench.cli`)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def benchmark_main(argv: Sequence[str]) -> int:
    """``avbench benchmark``: run a suite into a result store; returns the exit code."""
    from avbench.runner.assignments import parse_assignments
    from avbench.runner.runner import OVERWRITE_MODES, run_suite
    from avbench.runner.suite import load_suite

    p = argparse.ArgumentParser(
        prog="avbench benchmark",
        description="Fit every job of a suite (models x training datasets x seeds), select on "
        "val, evaluate on every applicable benchmark and store one JSON result per "
        "(job, benchmark). Exit code 1 when any job failed.",
    )
    p.add_argument("--suite", required=True, help="suite YAML (avbench/configs/suites/*.yaml)")
    p.add_argument("--results", default="results", help="result store directory")
    p.add_argument("--overwrite", default="only-missing", choices=OVERWRITE_MODES,
                   help="only-missing: recompute missing, corrupt, stale (fingerprint changed) "
                   "and failed results; never: keep any valid stored result; always: recompute all")
    p.add_argument("--set", action="append", default=[], metavar="KEY=YAML",
                   help="override a suite field, e.g. --set seeds=[0] "
                   "--set trainer_overrides.max_epochs=1 (dotted keys)")
    p.add_argument("--wandb", choices=["offline", "online", "disabled"], default=None,
                   help="W&B mode (default: $WANDB_MODE, else the suite's, else offline)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(list(argv))
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)  # job logs (INFO) go to <results>/_work/<suite>/<job>/job.log
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(console)
    suite = load_suite(args.suite, parse_assignments(args.set, "--set"))
    summary = run_suite(suite, args.results, overwrite=args.overwrite,
                        progress=not args.no_progress, wandb_mode=args.wandb)
    print(summary.text())
    return summary.exit_code


def leaderboard_main(argv: Sequence[str]) -> int:
    """``avbench leaderboard``: write tables and figures from a result store; returns the exit code."""
    from avbench.runner.leaderboard import write_leaderboard

    p = argparse.ArgumentParser(
        prog="avbench leaderboard",
        description="Turn a result store into Markdown + CSV leaderboards (per benchmark and an "
        "overview of main scores) and PNG figures in plots/ (success curves, heat-map "
        "galleries, seed bars).",
    )
    p.add_argument("--results", default="results")
    p.add_argument("--out", default="leaderboards")
    p.add_argument("--wandb", choices=["offline", "online", "disabled"], default=None,
                   help="log the tables as wandb.Table (default: $WANDB_MODE, else offline)")
    p.add_argument("--no-plots", action="store_true",
                   help="skip the figures in <out>/plots/ (faster; the tables are unchanged)")
    args = p.parse_args(list(argv))
    s = write_leaderboard(args.results, args.out, wandb_mode=args.wandb, plots=not args.no_plots)
    for c in s.corrupt:
        print(f"CORRUPT (ignored): {c}", file=sys.stderr)
    if not s.suites:
        print(f"no results under {args.results}", file=sys.stderr)
        return 1
    print(f"wrote {len(s.files)} files to {s.out} (suites: {', '.join(s.suites)})")
    return 0
