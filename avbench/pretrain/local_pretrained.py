"""Checked ``from_pretrained`` for the ``transformers``/``diffusers``/``tokenizers`` stand-ins.

Real weights load by ``Cls.from_pretrained(local_dir, local_files_only=True)``; so do
the stand-ins. The libraries' own errors for a missing, truncated or mismatched file
(safetensors header errors, JSON decode errors, shape mismatches) often name neither
the directory nor the file: :func:`from_pretrained_checked` turns them into
:class:`avbench.nn.weights.WeightsError` naming both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["from_pretrained_checked"]

T = TypeVar("T")


def from_pretrained_checked(cls: type[T], out_dir: str | Path, files: Sequence[str],
                            **kwargs: Any) -> T:
    """``cls.from_pretrained(out_dir, local_files_only=True, **kwargs)``.

    Args:
        cls: a class with ``from_pretrained`` (``HubertModel``, ``BertModel``,
            ``PreTrainedTokenizerFast``, ``AutoencoderKL`` ...).
        out_dir: the local directory.
        files: the files the load reads (named in errors; checked to exist first).

    Raises:
        avbench.nn.weights.WeightsError: a file is missing, a ``.safetensors`` file's header does
            not cover its bytes (truncated), a ``.json`` file does not parse (both naming the
            file), or the library fails to load
            (truncated file, other architecture ...): the message names the directory,
            the files and the library's error.
    """
    from avbench.nn.weights import WeightsError

    out_dir = Path(out_dir)
    missing = [f for f in files if not (out_dir / f).is_file()]
    if missing:
        raise WeightsError(f"{out_dir}: missing {', '.join(missing)} (build the stand-in with "
                           f"`avbench pretrain NAME --out {out_dir}`)")
    for f in files:  # name the broken file when the library would not
        _check_readable(out_dir / f)
    try:
        return cls.from_pretrained(out_dir, local_files_only=True, **kwargs)  # type: ignore[attr-defined]
    except Exception as err:  # the libraries' errors rarely name the file
        raise WeightsError(f"{out_dir}: cannot load {cls.__name__} from {', '.join(files)}: "
                           f"{type(err).__name__}: {err}") from err


def _check_readable(path: Path) -> None:
    """Raise ``WeightsError`` naming ``path`` when a safetensors file is truncated/corrupt or a
    JSON file does not parse; other files are left to the library."""
    from avbench.nn.weights import WeightsError

    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as handle:
                handle.keys()
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
    except Exception as err:  # SafetensorError, JSONDecodeError, UnicodeDecodeError, OSError
        raise WeightsError(f"{path}: unreadable or truncated ({type(err).__name__}: {err})") from err
