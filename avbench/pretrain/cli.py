"""``avbench pretrain NAME --out DIR``: train a stand-in (or see that it is current).

``avbench pretrain all --out ROOT`` trains every registered stand-in into
``ROOT/NAME``. A directory whose card is current (same name, seed and code
version, files intact) is skipped unless ``--force``. One line per stand-in:
its directory, the held-out figure of its card and whether it was trained.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

__all__ = ["pretrain_main", "pretrain_parser", "summary_line"]

SUMMARY = "Train a pretrained stand-in (weights + card) on the world's disjoint pretraining corpus."


def pretrain_parser() -> ArgumentParser:
    """The parser of ``avbench pretrain`` (options, defaults and help)."""
    from avbench.pretrain.card import SIZES
    from avbench.pretrain.registry import STANDINS

    listed = "; ".join(f"{n}: {s.description}" for n, s in STANDINS.items())
    p = ArgumentParser(prog="avbench pretrain", exit_on_error=False,
                       description=f"{SUMMARY} Stand-ins: {listed}.")
    p.add_argument("-c", "--config", action=ActionConfigFile,
                   help="YAML file with any of the options below as keys")
    p.add_argument("name", choices=list(STANDINS) + ["all"],
                   help="stand-in, or 'all' for every one (each into OUT/NAME)")
    p.add_argument("--out", required=True, help="output directory (with 'all': the root)")
    p.add_argument("--seed", type=int, default=0,
                   help="benchmark world seed whose categories the corpus avoids; also the corpus "
                   "and initialisation seed")
    p.add_argument("--size", default="default", choices=list(SIZES),
                   help="tiny (seconds, tests) or default (what `make leaderboard` uses)")
    p.add_argument("--force", action="store_true", help="retrain even when the card is current")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def summary_line(name: str, out: Path, card, trained: bool) -> str:
    """``NAME: DIR held-out accuracy 0.912 (chance 0.031), 48.2 s [trained|current]``."""
    h = card.heldout
    if "accuracy" in h:
        figure = f"held-out accuracy {h['accuracy']:.3f}"
        if "chance" in h:
            figure += f" (chance {h['chance']:.3f})"
    else:
        figure = ", ".join(f"held-out {k} {v:.4g}" for k, v in h.items())
    state = "trained" if trained else "current, not retrained"
    return f"{name}: {out} {figure}, {card.seconds:.1f} s [{state}]"


def pretrain_main(argv: Sequence[str]) -> int:
    """``avbench pretrain``: returns the exit code (0 when every stand-in is in place)."""
    from avbench.pretrain.card import is_current, read_card
    from avbench.pretrain.registry import STANDINS, pretrain

    args = pretrain_parser().parse_args(list(argv))
    names = list(STANDINS) if args.name == "all" else [args.name]
    for name in names:
        out = Path(args.out) / name if args.name == "all" else Path(args.out)
        # one currency check (it hashes every file): train when stale, else read the card
        trained = args.force or not is_current(out, name, args.seed, args.size)
        try:
            card = (pretrain(name, out, seed=args.seed, size=args.size, force=True,
                             progress=not args.no_progress) if trained else read_card(out))
        except (ValueError, OSError) as err:  # negative seed, --out under a file: one line, exit 1
            print(f"avbench pretrain: error: {err}", file=sys.stderr)
            return 1
        print(summary_line(name, out, card, trained), flush=True)
    return 0
