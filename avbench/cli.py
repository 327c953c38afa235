"""The ``avbench`` command.

``avbench fit|validate|test|predict --config ...`` is Lightning's
``LightningCLI`` (jsonargparse configs, ``--print_config``; ``fit`` runs the
model's fit stages and every Trainer takes the model's ``trainer_arguments``:
:mod:`avbench.runner.lightning_cli`), with any
:class:`~avbench.models.AVModel` as model and any :class:`~avbench.data.datamodules.AVDataModule`
as data (``class_path`` + ``init_args`` in the configs). Suite-level commands
are dispatched here too:

- ``avbench synth DATASET --root DIR [--preset tiny|small|default] [--seed N]``
  writes a synthetic dataset in its real layout.
- ``avbench benchmark --suite SUITE.yaml --results DIR`` runs a suite into the
  result store; ``avbench leaderboard --results DIR --out DIR`` writes tables
  (:mod:`avbench.runner`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from avbench.runner.assignments import parse_assignments

SUITE_COMMANDS = ("synth", "benchmark", "leaderboard")


def _synth(argv: Sequence[str]) -> int:
    from avbench.data.synthetic import DATASETS, PRESETS, generate

    parser = argparse.ArgumentParser(
        prog="avbench synth",
        description="Write a synthetic dataset in its real published layout.",
    )
    parser.add_argument("dataset", choices=list(DATASETS) + ["all"])
    parser.add_argument("--root", required=True,
                        help="output directory (with 'all': one sub-folder per dataset)")
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--world", action="append", default=[], metavar="KEY=VALUE",
                        help="override a WorldConfig field, e.g. offscreen_rate=0.0 (repeatable)")
    args = parser.parse_args(list(argv))
    world = parse_assignments(args.world, "--world")
    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    for name in names:
        root = f"{args.root}/{name}" if args.dataset == "all" else args.root
        summary = generate(name, root, args.preset, args.seed, progress=not args.no_progress,
                           world=world or None)
        brief = {k: summary[k] for k in ("dataset", "root", "preset", "seed", "counts", "seconds")
                 if k in summary}
        print(json.dumps(brief, default=str))
    return 0


def _lightning_cli(argv: Sequence[str] | None) -> int:
    from avbench.data.datamodules import AVDataModule
    from avbench.models import AVModel
    from avbench.runner.lightning_cli import AVBenchCLI

    AVBenchCLI(
        AVModel,
        AVDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=None if argv is None else list(argv),
        save_config_kwargs={"overwrite": True},
        parser_kwargs={
            "description": "avbench: train/evaluate audio-visual models (LightningCLI). "
            "Also: `avbench synth DATASET --root DIR` writes a synthetic dataset.",
        },
        auto_configure_optimizers=False,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SUITE_COMMANDS:
        from avbench.runner.cli import benchmark_main, leaderboard_main

        commands = {"synth": _synth, "benchmark": benchmark_main, "leaderboard": leaderboard_main}
        return commands[args[0]](args[1:])
    return _lightning_cli(argv)


__all__ = ["SUITE_COMMANDS", "main", "parse_assignments"]


if __name__ == "__main__":
    sys.exit(main())
