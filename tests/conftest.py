"""Shared test fixtures.

``_private_decode_cache`` (autouse): ``$AVBENCH_CACHE_DIR`` points at a session temporary
directory, so the decoded-sample cache of the tests stays out of ``~/.cache``.

``tiny_standins``: the ``image-resnet18`` and ``audio-resnet18`` stand-ins at size
"tiny", built once per session into a temporary directory. The synthetic AVE and
VEGAS writers store features through them (avbench.data.synthetic.writers.features),
and the CPU model configs load ``image-resnet18``; every test session gets
``$AVBENCH_STANDINS`` pointing there (session-scoped and autouse, so it is set
before any data fixture runs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Lightning adds a StreamHandler on sys.stderr when first imported. Imported inside a test
# that captures stderr (capsys), the handler would keep that test's stream, closed after
# it, and every later log line prints "--- Logging error --- Traceback" into other tests'
# stderr. Importing it here binds the handler to the session's stream.
import lightning.pytorch  # noqa: F401
import pytest

FEATURE_STANDINS = ("image-resnet18", "audio-resnet18")


@pytest.fixture(scope="session", autouse=True)
def _private_decode_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test session decodes into its own ``$AVBENCH_CACHE_DIR`` (avbench.data.cache), so
    tests never fill or read the user's shared cache (subprocesses inherit it)."""
    before = os.environ.get("AVBENCH_CACHE_DIR")
    os.environ["AVBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("decoded-cache"))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("AVBENCH_CACHE_DIR", None)
        else:
            os.environ["AVBENCH_CACHE_DIR"] = before


@pytest.fixture(scope="session")
def tiny_standins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory with tiny ``image-resnet18/`` and ``audio-resnet18/`` stand-ins (seed 0)."""
    from avbench.pretrain.registry import pretrain

    root = tmp_path_factory.mktemp("standins")
    for name in FEATURE_STANDINS:
        pretrain(name, root / name, seed=0, size="tiny", progress=False)
    return root


@pytest.fixture(scope="session")
def ensure_standins(tiny_standins: Path):
    """``ensure_standins(*names)``: build more tiny stand-ins (``image-vit``, ``text-encoder``,
    ...) into the session's ``$AVBENCH_STANDINS`` on first use; returns that directory."""
    from avbench.pretrain.registry import pretrain

    def ensure(*names: str) -> Path:
        for name in names:
            if not (tiny_standins / name / "card.json").exists():
                pretrain(name, tiny_standins / name, seed=0, size="tiny", progress=False)
        return tiny_standins

    return ensure


@pytest.fixture(scope="session", autouse=True)
def _standins_env(tiny_standins: Path) -> Iterator[None]:
    """Point ``$AVBENCH_STANDINS`` at :func:`tiny_standins` for the whole session: the CPU model
    configs' ``standins/image-resnet18/...`` and the AVE/VEGAS feature writers resolve there
    (``avbench.nn.weights.resolve_weights_path``); subprocesses inherit it."""
    from avbench.nn.weights import STANDINS_ENV

    before = os.environ.get(STANDINS_ENV)
    os.environ[STANDINS_ENV] = str(tiny_standins)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(STANDINS_ENV, None)
        else:
            os.environ[STANDINS_ENV] = before
