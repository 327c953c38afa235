"""The configs shipped with avbench: ``model/``, ``data/``, ``trainer/`` (LightningCLI
``class_path``/``init_args`` files) and ``suites/`` (benchmark grids).

They are package data, so they resolve from any working directory:
:func:`resolve_config` accepts a path as the user wrote it and looks, in order,

1. as given (absolute, or relative to the working directory);
2. relative to ``relative_to`` (e.g. the suite file that names it);
3. inside this package: ``configs/model/ezvsl.yaml``, ``model/ezvsl.yaml`` or the
   repository spelling of earlier versions, ``benchmarks/configs/model/ezvsl.yaml``
   and ``benchmarks/suites/synthetic.yaml``;
4. for a bare suite name (``synthetic``), ``suites/<name>.yaml``.
"""

from __future__ import annotations

from pathlib import Path

#: the folder of the shipped configs
CONFIG_DIR = Path(__file__).resolve().parent

_PREFIXES = ("avbench/configs/", "configs/", "benchmarks/configs/", "benchmarks/")


def _packaged(path: str) -> Path | None:
    text = path.replace("\\", "/")
    candidates = [text]
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            candidates.append(text[len(prefix):])
    if "/" not in text:
        candidates.append(f"suites/{text}" if text.endswith(".yaml") else f"suites/{text}.yaml")
    for c in candidates:
        p = CONFIG_DIR / c
        if p.is_file():
            return p
    return None


def resolve_config(path: str | Path, relative_to: str | Path | None = None) -> Path:
    """The config file ``path`` names (see the module docstring for the search order).

    Raises:
        FileNotFoundError: naming the path, the working directory and the places searched.
    """
    p = Path(path)
    if p.is_absolute() or p.is_file():
        return p
    if relative_to is not None:
        near = Path(relative_to).parent / p
        if near.is_file():
            return near
    packaged = _packaged(str(path))
    if packaged is not None:
        return packaged
    where = f"{Path.cwd()}" + (f", beside {relative_to}" if relative_to else "")
    raise FileNotFoundError(
        f"config file {str(path)!r} not found (looked in {where} and in the shipped configs "
        f"{CONFIG_DIR}: {', '.join(sorted(d.name for d in CONFIG_DIR.iterdir() if d.is_dir()))})")


def shipped(kind: str) -> list[str]:
    """Names of the shipped configs of ``kind`` (``model``, ``data``, ``trainer``, ``suites``)."""
    return sorted(p.stem for p in (CONFIG_DIR / kind).glob("*.yaml"))


__all__ = ["CONFIG_DIR", "resolve_config", "shipped"]
