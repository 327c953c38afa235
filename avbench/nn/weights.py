"""Strict loading of local weights files: all of a network's weights or a clear error.

Real weights (timm ImageNet ResNet-18, ...) and the synthetic world's
stand-ins (``avbench pretrain``) load through :func:`load_state_dict_strict`:
the file is read (``.safetensors``, or a ``torch.save`` state dict as
``.pth``/``.pt``/``.bin``/``.ckpt``, possibly wrapped as ``{"state_dict": ...}``
or ``{"model": ...}``, ``module.`` prefixes of DDP stripped), the keys of a
classifier head (``ignore_prefixes``) are dropped, and then every parameter
and buffer of the module must be in the file with the module's shape and the
file may hold no other key. Anything else raises :class:`WeightsError` naming
the file and the offending keys (at most :data:`MAX_LISTED` of each kind, with
counts): a missing, truncated or unreadable file, a file of another
architecture or width. There is never a silent partial load.

Where the stand-ins live: configs name them relative to the working directory
(``standins/image-resnet18/model.safetensors``, built by ``make standins``).
:func:`resolve_weights_path` maps a relative path whose first part is
``standins`` under ``$AVBENCH_STANDINS`` when that is set (tests point it at
tiny stand-ins; a user can keep one shared copy), so one config serves both.

A weights file with a stand-in card beside it (``card.json`` of ``avbench
pretrain``) must have the sha256 the card records: a replaced or half-copied
stand-in fails with :class:`WeightsError` instead of loading other weights.

BatchNorm's ``num_batches_tracked`` counters may be absent (timm's published
files omit them; PyTorch fills them in).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

__all__ = ["DEFAULT_STANDINS", "MAX_LISTED", "STANDINS_ENV", "WeightsError", "WeightsNotFoundError",
           "check_against_card", "default_standins", "load_state_dict_strict", "read_state_dict", "resolve_weights_path"]

#: where ``make standins`` writes the stand-ins (relative to the working directory)
DEFAULT_STANDINS = "standins"
#: environment variable naming another stand-ins directory
STANDINS_ENV = "AVBENCH_STANDINS"

#: how many keys of each kind an error message lists
MAX_LISTED = 10
_TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


class WeightsError(ValueError):
    """A weights file that cannot be loaded completely (the message names the file and keys)."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """The weights file does not exist (also a ``FileNotFoundError``)."""


def default_standins() -> Path:
    """``$AVBENCH_STANDINS`` if set, else ``standins`` (relative to the working directory)."""
    return Path(os.environ.get(STANDINS_ENV) or DEFAULT_STANDINS)


def resolve_weights_path(path: str | Path) -> Path:
    """``path`` with ``~`` expanded; a relative ``standins/...`` path is taken under
    :func:`default_standins` (so ``$AVBENCH_STANDINS`` relocates every config's stand-ins)."""
    p = Path(path).expanduser()
    if not p.is_absolute() and p.parts and p.parts[0] == DEFAULT_STANDINS:
        return default_standins().joinpath(*p.parts[1:])
    return p


def _listed(keys: Sequence[str]) -> str:
    keys = sorted(keys)
    more = f", ... ({len(keys) - MAX_LISTED} more)" if len(keys) > MAX_LISTED else ""
    return f"{len(keys)}: " + ", ".join(keys[:MAX_LISTED]) + more


def check_against_card(path: Path) -> None:
    """Compare ``path`` with the sha256 its stand-in card records, if a card lists it.

    Raises:
        WeightsError: the card beside ``path`` lists the file with another sha256, or
            the card cannot be read.
    """
    from avbench.pretrain.card import CARD_FILE, CardError, read_card, sha256_file

    if not (path.parent / CARD_FILE).is_file():
        return
    try:
        card = read_card(path.parent)
    except CardError as err:
        raise WeightsError(f"weights file {str(path)!r}: {err}") from err
    want = card.sha256.get(path.name)
    if want is None:
        return
    got = sha256_file(path)
    if got != want:
        raise WeightsError(
            f"weights file {str(path)!r} has sha256 {got[:12]}..., its card "
            f"{str(path.parent / CARD_FILE)!r} says {want[:12]}...: the file was replaced or "
            f"copied incompletely; rebuild it (`avbench pretrain {card.name} --out {path.parent}`)")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file (see the module docstring for formats).

    Raises:
        WeightsNotFoundError: no file at ``path`` (avbench never downloads weights).
        WeightsError: unreadable, truncated or not a state dict; a sha256 that differs
            from the stand-in card beside it.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"weights file {str(path)!r} not found: avbench never downloads weights; give the "
            "path of a local state-dict file (stand-ins: `avbench pretrain NAME --out DIR`)")
    check_against_card(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # safetensors / pickle / zip errors of a torn or foreign file
        raise WeightsError(f"cannot read weights file {str(path)!r} (truncated or not a "
                           f"state dict?): {type(err).__name__}: {err}") from err
    if isinstance(state, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(state.get(wrapper), dict):
                state = state[wrapper]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"weights file {str(path)!r} holds no state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def load_state_dict_strict(
    module: nn.Module,
    path: str | Path,
    *,
    ignore_prefixes: Sequence[str] = ("fc.", "head.", "classifier."),
    what: str = "",
    adapt: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> None:
    """Load every parameter and buffer of ``module`` from the file ``path``, or raise.

    Args:
        module: the network (its ``state_dict()`` keys and shapes are the contract).
        path: weights file (module docstring).
        ignore_prefixes: file keys dropped before comparing (classifier heads).
        what: names the network in messages (e.g. ``"image encoder resnet18"``).
        adapt: optional ``state -> state`` applied after reading (e.g. summing a 3-channel
            stem to the module's 1 input channel).

    Raises:
        WeightsNotFoundError: no such file.
        WeightsError: unreadable file, or missing / unexpected keys or shape mismatches
            (listed with counts).
    """
    label = f" for {what}" if what else ""
    state = read_state_dict(path)
    state = {k: v for k, v in state.items() if not k.startswith(tuple(ignore_prefixes))}
    if adapt is not None:
        state = adapt(state)
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} (file {tuple(state[k].shape)}, model {tuple(own[k].shape)})"
              for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_listed(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches {_listed(shapes)}")
    if problems:
        raise WeightsError(
            f"weights file {str(Path(path))!r} does not fit the network{label} (another "
            f"architecture or width?): " + "; ".join(problems))
    result = module.load_state_dict(state, strict=False)
    left = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if left or result.unexpected_keys:  # pragma: no cover - checked above
        raise WeightsError(f"weights file {str(Path(path))!r}: partial load{label}: {left}, "
                           f"{result.unexpected_keys}")
