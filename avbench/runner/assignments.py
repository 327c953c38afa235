"""``KEY=YAML`` command-line assignments (``--set``, ``--world``, the learning scripts' overrides).

Its own module so that :mod:`avbench.cli` and :mod:`avbench.runner.cli` both
import it without importing each other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_EXPONENT_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def parse_assignments(items: Sequence[str], option: str = "--set") -> dict[str, Any]:
    """``["a.b=1", "c=[0, 1]"]`` -> ``{"a": {"b": 1}, "c": [0, 1]}`` (values parsed as YAML).

    Dotted keys nest. A value that reads as an exponent number (``lr=3e-4``)
    is a float, not the string PyYAML (YAML 1.1) makes of it.

    Raises:
        SystemExit: an item without ``=`` or with an empty key (named with ``option``).
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"{option} expects KEY=VALUE, got {item!r}")
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _scalar(yaml.safe_load(value))
    return out


def _scalar(value: Any) -> Any:
    """YAML 1.1 reads ``3e-4`` (no dot) as a string; take it as the float it means."""
    if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


__all__ = ["parse_assignments"]
