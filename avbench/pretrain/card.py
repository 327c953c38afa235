"""The card of a stand-in: what was trained, on what, how well, and the files' checksums.

Every stand-in directory holds its weights file(s) and ``card.json`` (a
:class:`StandinCard`, written atomically last, so a directory with a card is
complete). :func:`is_current` decides whether ``avbench pretrain`` may skip a
directory: the card parses, names the same stand-in and seed, carries the
current :func:`code_version` for the size, and every file's sha256 matches
(a truncated or replaced weights file is never accepted).

``code_version`` fingerprints what the weights depend on: the sources of
``avbench/pretrain/*.py`` (corpus, training, architectures), the synthetic
world's modules (``avbench/data/synthetic/*.py``: the corpus is rendered by
them), the encoders and front-ends (``avbench/nn/encoders.py``,
``frontends.py``, ``weights.py``), the :class:`WorldConfig` dict and the size
preset's name. Any change there retrains on the next ``avbench pretrain``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pydantic

from avbench.atomic_io import atomic_write_text
from avbench.data.synthetic.config import WorldConfig

__all__ = ["CARD_FILE", "SIZES", "CardError", "StandinCard", "code_version", "is_current", "make_card",
           "read_card", "sha256_file", "stale_reasons", "verify_files", "write_card"]

CARD_FILE = "card.json"
#: the size presets every stand-in knows: "tiny" (seconds, tests), "default" (the leaderboard)
SIZES: tuple[str, ...] = ("tiny", "default")
_PACKAGE = Path(__file__).resolve().parents[1]  # avbench/
_FINGERPRINTED = ("pretrain/*.py", "data/synthetic/*.py", "nn/encoders.py", "nn/frontends.py",
                  "nn/weights.py")


class CardError(ValueError):
    """A card that is missing, unreadable or invalid (the message names the file)."""


class StandinCard(pydantic.BaseModel):
    """``card.json`` of a stand-in (see the module docstring)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    name: str
    architecture: dict[str, Any]  # e.g. {"arch": "resnet18", "width": 16, "layers": [1,1,1,1], ...}
    files: dict[str, str]  # role ("weights", "tokenizer", ...) -> file name in the directory
    sha256: dict[str, str]  # file name -> sha256 hex digest
    seed: int
    world_seed: int
    categories: list[str]  # corpus category names, in label order
    corpus: dict[str, Any]  # sizes, image size / seconds / sample rate, size preset ...
    steps: int
    heldout: dict[str, float]  # e.g. {"accuracy": 0.93, "loss": 0.21}
    code_version: str
    seconds: float  # wall time of the training
    created: str  # ISO 8601, UTC
    avbench_version: str


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes. Raises ``FileNotFoundError``/``OSError`` as ``open`` does."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def code_version(size: str, config: WorldConfig | None = None) -> str:
    """Fingerprint of the code, world config and size preset a stand-in depends on (module doc).

    Raises:
        ValueError: ``size`` is not one of :data:`SIZES`.
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; one of {SIZES}")
    h = hashlib.sha256()
    files = sorted({p for pattern in _FINGERPRINTED for p in _PACKAGE.glob(pattern)})
    for p in files:
        h.update(p.relative_to(_PACKAGE).as_posix().encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    cfg = (config if config is not None else WorldConfig()).to_dict()
    h.update(json.dumps(cfg, sort_keys=True).encode())
    h.update(f"\0size={size}".encode())
    return h.hexdigest()[:16]


def _avbench_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("avbench")
    except PackageNotFoundError:
        return "unknown"


def make_card(out_dir: str | Path, *, name: str, architecture: dict[str, Any],
              files: dict[str, str], seed: int, world_seed: int, categories: list[str],
              corpus: dict[str, Any], steps: int, heldout: dict[str, float], size: str,
              started: float, config: WorldConfig | None = None) -> StandinCard:
    """A card for the files already written in ``out_dir``: sha256 of each, the code version of
    ``size``, ``seconds`` since ``started`` (a ``time.time()``), creation time and version.

    Raises:
        FileNotFoundError: a file named in ``files`` is not in ``out_dir``.
    """
    out_dir = Path(out_dir)
    return StandinCard(
        name=name, architecture=architecture, files=dict(files),
        sha256={f: sha256_file(out_dir / f) for f in files.values()},
        seed=int(seed), world_seed=int(world_seed), categories=list(categories),
        corpus={**corpus, "size": size}, steps=int(steps),
        heldout={k: float(v) for k, v in heldout.items()},
        code_version=code_version(size, config), seconds=round(time.time() - started, 2),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        avbench_version=_avbench_version(),
    )


def write_card(out_dir: str | Path, card: StandinCard) -> Path:
    """Write ``out_dir/card.json`` atomically (:mod:`avbench.atomic_io`); returns its path."""
    path = Path(out_dir) / CARD_FILE
    atomic_write_text(path, card.model_dump_json(indent=2) + "\n")
    return path


def read_card(out_dir: str | Path) -> StandinCard:
    """The card of ``out_dir``.

    Raises:
        CardError: no ``card.json``, unreadable JSON or fields that do not validate
            (the message names the file).
    """
    path = Path(out_dir) / CARD_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise CardError(f"no stand-in card at {path}") from err
    except OSError as err:
        raise CardError(f"cannot read stand-in card {path}: {err}") from err
    try:
        return StandinCard.model_validate_json(text)
    except pydantic.ValidationError as err:
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": str(err)}
        where = ".".join(str(x) for x in first["loc"]) or "file"
        raise CardError(f"invalid stand-in card {path} ({err.error_count()} error(s); {where}: "
                        f"{first['msg']})") from err


def verify_files(out_dir: str | Path, card: StandinCard) -> list[str]:
    """Problems with the files of ``card`` in ``out_dir`` (missing, or sha256 differs); [] = all fine."""
    problems = []
    for fname in card.files.values():
        path = Path(out_dir) / fname
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        digest = sha256_file(path)
        if digest != card.sha256.get(fname):
            problems.append(f"{path} has sha256 {digest[:12]}..., the card says "
                            f"{str(card.sha256.get(fname))[:12]}...")
    return problems


def stale_reasons(out_dir: str | Path, name: str, seed: int, size: str,
                  config: WorldConfig | None = None) -> list[str]:
    """Why ``out_dir`` does not hold a current ``(name, seed, size)`` stand-in; [] = current.

    Reasons: no valid card (its :class:`CardError` message), another stand-in or seed, another
    code version than the current one of ``size``, or a file whose sha256 differs from the card.
    """
    try:
        card = read_card(out_dir)
    except CardError as err:
        return [str(err)]
    card_file = Path(out_dir) / CARD_FILE
    if card.name != name:
        return [f"{card_file} names {card.name!r}, not {name!r}"]
    if card.seed != int(seed):
        return [f"{card_file} has seed {card.seed}, not {int(seed)}"]
    current = code_version(size, config)
    if card.code_version != current:
        return [f"{card_file} has code version {card.code_version}, the current code {current}"]
    return verify_files(out_dir, card)


def is_current(out_dir: str | Path, name: str, seed: int, size: str,
               config: WorldConfig | None = None) -> bool:
    """``out_dir`` holds a valid card for ``(name, seed)`` with the current code version of
    ``size`` and every file's sha256 matches: retraining would reproduce it
    (:func:`stale_reasons` says why not)."""
    return not stale_reasons(out_dir, name, seed, size, config)
