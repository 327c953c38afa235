"""``avbench synth``, ``avbench benchmark`` and ``avbench leaderboard`` (dispatched from :mod:`avbench.cli`).

Each is a jsonargparse ``ArgumentParser`` like the Lightning subcommands:
``--config FILE`` (YAML with the options as keys; ``--config`` paths and
``--suite`` resolve through :func:`avbench.configs.resolve_config`, so the shipped
ones work from any directory) and ``--print_config``. ``--set`` / ``--world``
take ``KEY=VALUE`` items (:mod:`avbench.runner.assignments`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence

from jsonargparse import ActionConfigFile, ArgumentParser
from jsonargparse.typing import NonNegativeInt

#: one line per suite-level subcommand (``avbench --help``)
SUMMARIES = {
    "synth": "Write a synthetic dataset in its real published layout.",
    "benchmark": "Run a suite: fit every job, select on val, score every applicable benchmark.",
    "leaderboard": "Write Markdown/CSV leaderboards and figures from a result store.",
    "pretrain": "Train a pretrained stand-in (weights + card) on the world's disjoint pretraining corpus.",
}


def _parser(prog: str, description: str) -> ArgumentParser:
    p = ArgumentParser(prog=f"avbench {prog}", description=description)
    p.add_argument("-c", "--config", action=ActionConfigFile,
                   help="YAML file with any of the options below as keys")
    return p


def synth_parser() -> ArgumentParser:
    """The parser of ``avbench synth`` (options, defaults and help)."""
    from avbench.data.synthetic import DATASETS, PRESETS

    p = _parser("synth", SUMMARIES["synth"])
    p.add_argument("dataset", choices=list(DATASETS) + ["all"],
                   help="dataset family, or 'all' for every one")
    p.add_argument("--root", required=True,
                   help="output directory (with 'all': one sub-folder per dataset)")
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                   help="size: tiny (unit tests), small (CI smoke), default (the leaderboard)")
    p.add_argument("--seed", type=NonNegativeInt, default=0,
                   help="world seed, >= 0 (it seeds the world's random streams)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--world", action="append", default=[], metavar="KEY=VALUE",
                   help="override a WorldConfig field, e.g. offscreen_rate=0.0 (repeatable)")
    p.add_argument("--standins", default=None,
                   help="directory of the pretrained stand-ins whose features AVE/VEGAS store "
                        "(image-resnet18/, audio-resnet18/; default: $AVBENCH_STANDINS or "
                        "standins/; build with `avbench pretrain NAME --out standins/NAME`)")
    return p


def synth_main(argv: Sequence[str]) -> int:
    """``avbench synth``: write a synthetic dataset; prints one JSON summary line per dataset."""
    from avbench.data.synthetic import DATASETS, generate
    from avbench.data.synthetic.writers.features import StandinNotReadyError
    from avbench.runner.assignments import parse_assignments

    args = synth_parser().parse_args(list(argv))
    world = parse_assignments(args.world, "--world")
    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    for name in names:
        root = f"{args.root}/{name}" if args.dataset == "all" else args.root
        try:
            summary = generate(name, root, args.preset, args.seed, progress=not args.no_progress,
                               world=world or None, standins=args.standins)
        except StandinNotReadyError as err:  # names the command that builds the stand-in
            print(f"avbench synth: error: {err}", file=sys.stderr)
            return 1
        brief = {k: summary[k] for k in ("dataset", "root", "preset", "seed", "counts", "seconds")
                 if k in summary}
        print(json.dumps(brief, default=str))
    return 0


def benchmark_parser() -> ArgumentParser:
    """The parser of ``avbench benchmark``."""
    from avbench.runner.runner import OVERWRITE_MODES

    p = _parser("benchmark", SUMMARIES["benchmark"] + " Stores one JSON result per (job, "
                "benchmark). Exit code 1 when any job failed.")
    p.add_argument("--suite", required=True,
                   help="suite YAML, or the name of a shipped suite (synthetic, paper)")
    p.add_argument("--results", default="results", help="result store directory")
    p.add_argument("--overwrite", default="only-missing", choices=list(OVERWRITE_MODES),
                   help="only-missing: recompute missing, corrupt, stale (fingerprint changed) "
                   "and failed results; never: keep any valid stored result; always: recompute all")
    p.add_argument("--set", action="append", default=[], metavar="KEY=YAML",
                   help="override a suite field, e.g. --set seeds=[0] "
                   "--set trainer_overrides.max_epochs=1 (dotted keys)")
    p.add_argument("--wandb", choices=["offline", "online", "disabled"], default=None,
                   help="W&B mode (default: $WANDB_MODE, else the suite's, else offline)")
    p.add_argument("--no-progress", action="store_true")
    return p


def benchmark_main(argv: Sequence[str]) -> int:
    """``avbench benchmark``: run a suite into a result store; returns the exit code."""
    from avbench.runner.assignments import parse_assignments
    from avbench.runner.runner import run_suite
    from avbench.runner.suite import load_suite

    args = benchmark_parser().parse_args(list(argv))
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)  # job logs (INFO) go to <results>/_work/<suite>/<job>/job.log
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(console)
    try:
        suite = load_suite(args.suite, parse_assignments(args.set, "--set"))
    except FileNotFoundError as err:
        print(f"avbench benchmark: error: {err}", file=sys.stderr)
        return 2
    summary = run_suite(suite, args.results, overwrite=args.overwrite,
                        progress=not args.no_progress, wandb_mode=args.wandb)
    print(summary.text())
    return summary.exit_code


def leaderboard_parser() -> ArgumentParser:
    """The parser of ``avbench leaderboard``."""
    p = _parser("leaderboard", SUMMARIES["leaderboard"] + " Per benchmark and an overview of "
                "main scores; PNG figures in <out>/plots/ (success curves, heat-map galleries, "
                "seed bars).")
    p.add_argument("--results", default="results", help="result store directory")
    p.add_argument("--out", default="leaderboards", help="output directory")
    p.add_argument("--wandb", choices=["offline", "online", "disabled"], default=None,
                   help="log the tables as wandb.Table (default: $WANDB_MODE, else offline)")
    p.add_argument("--no-plots", action="store_true",
                   help="skip the figures in <out>/plots/ (faster; the tables are unchanged)")
    return p


def leaderboard_main(argv: Sequence[str]) -> int:
    """``avbench leaderboard``: write tables and figures from a result store; returns the exit code."""
    from avbench.runner.leaderboard import write_leaderboard

    args = leaderboard_parser().parse_args(list(argv))
    s = write_leaderboard(args.results, args.out, wandb_mode=args.wandb, plots=not args.no_plots)
    for c in s.corrupt:
        print(f"CORRUPT (ignored): {c}", file=sys.stderr)
    if not s.suites:
        print(f"no results under {args.results}", file=sys.stderr)
        return 1
    print(f"wrote {len(s.files)} files to {s.out} (suites: {', '.join(s.suites)})")
    return 0


#: the suite-level subcommands: name -> entry point
def pretrain_main(argv: Sequence[str]) -> int:
    """``avbench pretrain``: :func:`avbench.pretrain.cli.pretrain_main` (imported on use)."""
    from avbench.pretrain.cli import pretrain_main as main

    return main(argv)


COMMANDS = {"synth": synth_main, "benchmark": benchmark_main, "leaderboard": leaderboard_main,
            "pretrain": pretrain_main}

__all__ = ["COMMANDS", "SUMMARIES", "benchmark_main", "benchmark_parser", "leaderboard_main", "pretrain_main",
           "leaderboard_parser", "synth_main", "synth_parser"]
