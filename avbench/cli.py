"""The ``avbench`` command.

``avbench fit|validate|test|predict --config ...`` is Lightning's
``LightningCLI`` (jsonargparse configs, ``--print_config``) with any
:class:`~avbench.models.AVModel` as model and any
:class:`~avbench.data.datamodules.AVDataModule` as data; ``fit`` runs the
model's fit stages, ``test`` scores the weights on the benchmarks of the
datamodule's test split and ``predict`` writes the model's outputs to a file
(:mod:`avbench.runner.lightning_cli`). ``synth``, ``benchmark`` and
``leaderboard`` are jsonargparse commands too (:mod:`avbench.runner.cli`).

For every subcommand, before parsing:

- ``--config X`` resolves ``X`` through :func:`avbench.configs.resolve_config`:
  the shipped configs (``configs/model/ezvsl_cpu.yaml``) work from any directory;
- ``--model NAME`` takes a registry name (``ezvsl``) besides a class name
  (``EZVSL``) or path; ``--data`` a class name (``VGGSoundDataModule``): every
  model and datamodule module is imported, so jsonargparse knows them.

Errors of the command line (an unknown subcommand, with the closest one
suggested; a missing ``--data``; an unknown ``--model``/``--data`` class, with
the registered ones listed; an unknown option; a config file that is nowhere)
an out-of-range ``--seed_everything`` and ``--ckpt_path`` with a multi-stage fit end in a message and exit code 2. A
``--ckpt_path`` that is missing, truncated or for another model
(:class:`~avbench.runner.checkpointing.CheckpointFileError`), a weights file that is missing, truncated or
for another network (:class:`~avbench.nn.weights.WeightsError`), a fit that trained nothing and the data
layer's errors (:class:`~avbench.data.errors.MediaError`: a missing dataset
root or file, corrupt media, a bad annotation or id list) print one line
``avbench SUBCOMMAND: error: ...`` and exit with code 1.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
import warnings
from collections.abc import Sequence

from avbench.runner.assignments import parse_assignments
from avbench.runner.cli import SUMMARIES

#: the LightningCLI subcommands, one line each (``avbench --help``)
LIGHTNING_COMMANDS = {
    "fit": "Train a model from configs (its fit stages in order; logs to CSV by default).",
    "validate": "Run the validation loop (val losses) on a model.",
    "test": "Score a checkpoint on every benchmark of the datamodule's test split.",
    "predict": "Write the model's outputs (embeddings, heat maps) over the test split to .npz.",
}
SUITE_COMMANDS = tuple(SUMMARIES)


def overview_parser():
    """``avbench --help``: every subcommand with its one-line summary (a jsonargparse parser)."""
    from jsonargparse import ArgumentParser

    p = ArgumentParser(
        prog="avbench",
        description="avbench: benchmark audio-visual models. `avbench SUBCOMMAND --help` shows "
        "the options of one subcommand; every subcommand takes --config FILE (shipped configs "
        "resolve from any directory, e.g. configs/model/ezvsl_cpu.yaml) and --print_config.",
    )
    sub = p.add_subcommands(required=False, dest="subcommand")
    for name, line in (LIGHTNING_COMMANDS | SUMMARIES).items():
        sub.add_subcommand(name, ArgumentParser(description=line), help=line)
    return p


def _component_classes() -> tuple[dict[str, type], list[type]]:
    """Import every model and datamodule: ``(model REGISTRY, datamodule classes)``."""
    import avbench.data as data
    from avbench.models import REGISTRY

    datamodules = [getattr(data, n) for n in data.__all__
                   if n.endswith("DataModule") and n != "AVDataModule"]
    return dict(REGISTRY), datamodules


class UnknownComponentError(ValueError):
    """``--model``/``--data`` names no registered model, known class or importable class path."""


def _subclass_names(base: type) -> set[str]:
    """The ``__name__`` of every (imported) subclass of ``base``, recursively."""
    names, todo = set(), list(base.__subclasses__())
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def _importable(dotted: str) -> bool:
    module, _, attr = dotted.rpartition(".")
    try:
        return isinstance(getattr(importlib.import_module(module), attr, None), type)
    except (ImportError, ValueError):
        return False


def check_component(flag: str, value: str) -> None:
    """Refuse a ``--model``/``--data`` class that jsonargparse would only answer with a Union dump.

    ``value`` passes when it is a registry name or class name of an imported
    subclass (:class:`~avbench.models.AVModel` / ``AVDataModule``), an
    importable ``module.Class`` path, or anything that is not a bare class
    spelling (a config file, inline YAML/JSON: jsonargparse judges those).

    Raises:
        UnknownComponentError: the message lists the registered names and classes.
    """
    from avbench.data.datamodules import AVDataModule
    from avbench.models import AVModel

    if any(c in value for c in "{}:/\\ ") or value.endswith((".yaml", ".yml", ".json")):
        return
    registry, datamodules = _component_classes()
    if flag == "--model":
        known = set(registry) | _subclass_names(AVModel)
        listed = ", ".join(f"{n} ({c.__name__})" for n, c in sorted(registry.items()))
        what = "models (registry name and class)"
    else:
        known = _subclass_names(AVDataModule) - {"AVDataModule"}
        listed = ", ".join(sorted(c.__name__ for c in datamodules))
        what = "datamodule classes"
    if value in known or ("." in value and _importable(value)):
        return
    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.6)
    hint = f"Did you mean {close[0]!r}? " if close else ""
    raise UnknownComponentError(
        f"unknown {flag} {value!r}. {hint}Registered {what}: {listed}; "
        "or a full class path module.Class.")


def resolve_argv(args: Sequence[str]) -> list[str]:
    """``args`` with every ``--config``/``-c`` path resolved and registry ``--model`` names
    turned into class paths (module docstring).

    Raises:
        FileNotFoundError: a ``--config`` file that is neither given nor shipped.
        UnknownComponentError: ``--model``/``--data`` names no known class (:func:`check_component`).
    """
    from avbench.configs import resolve_config

    lightning = bool(args) and args[0] in LIGHTNING_COMMANDS
    registry = _component_classes()[0] if lightning else {}
    out: list[str] = []
    it = iter(args)
    for a in it:
        flag, eq, value = a.partition("=")
        if flag in ("--config", "-c", "--model", "--data"):
            if not eq:
                nxt = next(it, None)
                if nxt is None:
                    out.append(a)
                    break
                value = nxt
            if flag in ("--model", "--data") and lightning:
                check_component(flag, value)
            if flag == "--model":
                cls = registry.get(value)
                value = f"{cls.__module__}.{cls.__name__}" if cls is not None else value
            elif flag != "--data":
                value = str(resolve_config(value))
            out.extend([flag, value])
        else:
            out.append(a)
    return out


def unknown_command_message(name: str) -> str:
    """``avbench NAME`` for a NAME that is no subcommand: every subcommand and the closest one."""
    commands = [*LIGHTNING_COMMANDS, *SUITE_COMMANDS]
    close = difflib.get_close_matches(name, commands, n=1, cutoff=0.5)
    hint = f" Did you mean 'avbench {close[0]}'?" if close else ""
    return (f"avbench: error: unknown subcommand {name!r} (choose from "
            f"{', '.join(repr(c) for c in commands)}).{hint} `avbench --help` describes them.")


def _missing_data_message(subcommand: str) -> str:
    from avbench.configs import shipped

    classes = sorted(c.__name__ for c in _component_classes()[1])
    return (
        f"avbench {subcommand}: no datamodule given. Pass a data config, e.g. "
        "--config configs/data/vggsound_synthetic.yaml --data.root DIR (shipped data configs: "
        f"{', '.join(f'configs/data/{n}.yaml' for n in shipped('data'))}), or a class: "
        f"--data VGGSoundDataModule --data.root DIR (classes: {', '.join(classes)}).")


def _lightning_cli(argv: list[str]) -> int:
    from avbench.data.datamodules import AVDataModule
    from avbench.models import AVModel
    from avbench.runner.lightning_cli import AVBenchCLI

    _component_classes()  # jsonargparse finds subclasses among the imported classes
    # main() hands LightningCLI the resolved sys.argv[1:]: not the mistake this warns about
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    cli = AVBenchCLI(
        AVModel,
        AVDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=argv,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={
            "description": "avbench: train/evaluate audio-visual models (LightningCLI). "
            "`avbench --help` lists every subcommand.",
            "exit_on_error": False,
            **{name: {"description": line} for name, line in LIGHTNING_COMMANDS.items()},
        },
        auto_configure_optimizers=False,
    )
    return cli.exit_code


def _weights_error(err: BaseException) -> BaseException | None:
    """The :class:`~avbench.nn.weights.WeightsError` in ``err``'s cause/context chain, if any."""
    from avbench.nn.weights import WeightsError

    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        if isinstance(e, WeightsError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``avbench`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    from avbench.data.errors import MediaError
    from avbench.runner.checkpointing import CheckpointFileError
    from avbench.runner.fit_checks import FitCheckError
    from avbench.runner.lightning_cli import UsageError

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        overview_parser().print_help()
        return 0 if args else 2
    name = args[0]
    if not name.startswith("-") and name not in LIGHTNING_COMMANDS and name not in SUITE_COMMANDS:
        print(unknown_command_message(name), file=sys.stderr)
        return 2
    try:
        args = resolve_argv(args)
    except (FileNotFoundError, UnknownComponentError) as err:
        print(f"avbench {name}: error: {err}", file=sys.stderr)
        return 2
    try:
        if name in SUITE_COMMANDS:
            from avbench.runner.cli import COMMANDS

            return COMMANDS[name](args[1:])
        return _lightning_cli(args)
    except argparse.ArgumentError as err:
        msg = str(err)
        if "required" in msg and f"{name}.data" in msg:
            print(_missing_data_message(name), file=sys.stderr)
        else:
            print(f"avbench {name}: error: {msg}\ntip: avbench {name} --help", file=sys.stderr)
        return 2
    except UsageError as err:
        print(f"avbench {name}: error: {err}", file=sys.stderr)
        return 2
    except (FitCheckError, MediaError, CheckpointFileError) as err:
        # MediaError: the data layer's errors (missing root or file, corrupt media, bad
        # annotations or id lists) name the file: one line, no traceback
        print(f"avbench {name}: error: {err}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as err:
        weights = _weights_error(err)
        if weights is None:
            raise
        # a missing/truncated/mismatched weights file, however deep jsonargparse wrapped it
        print(f"avbench {name}: error: {weights}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C outside a run's own handler (imports, parsing, setup)
        print(f"avbench {name}: interrupted", file=sys.stderr)
        return 130


__all__ = ["LIGHTNING_COMMANDS", "SUITE_COMMANDS", "UnknownComponentError", "check_component", "main",
           "overview_parser", "parse_assignments", "resolve_argv", "unknown_command_message"]


if __name__ == "__main__":
    sys.exit(main())
