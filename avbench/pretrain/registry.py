"""The stand-ins ``avbench pretrain`` knows, and :func:`pretrain`, which trains one or skips it.

A stand-in module registers a :class:`StandinSpec` with :func:`register_standin`
at import. :data:`STANDINS` imports every module of :data:`STANDIN_MODULES`
the first time it is read (a lazy mapping), so the registry is complete
without a central import list in each module.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from avbench.pretrain.card import SIZES, StandinCard, is_current, read_card

__all__ = ["STANDINS", "STANDIN_MODULES", "StandinSpec", "pretrain", "register_standin"]

log = logging.getLogger(__name__)

#: modules that register stand-ins (imported on first use of :data:`STANDINS`)
STANDIN_MODULES: tuple[str, ...] = (
    "avbench.pretrain.image",
    "avbench.pretrain.audio",
    "avbench.pretrain.vit",
    "avbench.pretrain.audio_transformer",
    "avbench.pretrain.text",
    "avbench.pretrain.autoencoder",
)


@dataclass(frozen=True)
class StandinSpec:
    """One stand-in: ``train(out_dir, seed, size, progress) -> card`` writes weights + card."""

    name: str
    description: str  # one line: what it is and which paper network it plays
    train: Callable[[Path, int, str, bool], StandinCard]


_REGISTRY: dict[str, StandinSpec] = {}


def register_standin(spec: StandinSpec) -> None:
    """Add ``spec`` to :data:`STANDINS` (re-registering the same name replaces it)."""
    _REGISTRY[spec.name] = spec


class _LazyRegistry(Mapping[str, StandinSpec]):
    """Read-only view of the registry that imports :data:`STANDIN_MODULES` on first access."""

    _loaded = False

    def _load(self) -> dict[str, StandinSpec]:
        if not self._loaded:
            type(self)._loaded = True
            for module in STANDIN_MODULES:
                importlib.import_module(module)
        return _REGISTRY

    def __getitem__(self, name: str) -> StandinSpec:
        reg = self._load()
        if name not in reg:
            raise KeyError(f"unknown stand-in {name!r}; known: {', '.join(sorted(reg))}")
        return reg[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._load()))

    def __len__(self) -> int:
        return len(self._load())


#: name -> spec of every stand-in (lazy: importing this module trains and imports nothing)
STANDINS: Mapping[str, StandinSpec] = _LazyRegistry()


def pretrain(name: str, out_dir: str | Path, seed: int = 0, size: str = "default",
             force: bool = False, progress: bool = True) -> StandinCard:
    """Train stand-in ``name`` into ``out_dir`` (weights + ``card.json``), or return the card
    already there when it is current (:func:`~avbench.pretrain.card.is_current`) and not ``force``.

    ``seed`` is both the benchmark world seed whose categories the corpus avoids and the
    corpus/initialisation seed.

    Raises:
        KeyError: unknown ``name`` (the message lists the known ones).
        ValueError: unknown ``size``, a negative ``seed``, or ``out_dir`` is an existing file.
    """
    spec = STANDINS[name]
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; one of {SIZES}")
    out = Path(out_dir)
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0 (it seeds the world's random streams), got {seed}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a directory: --out names the stand-in's folder")
    if not force and is_current(out, name, seed, size):
        log.info("%s: %s is current, not retrained", name, out)
        return read_card(out)
    out.mkdir(parents=True, exist_ok=True)
    return spec.train(out, int(seed), size, progress)
