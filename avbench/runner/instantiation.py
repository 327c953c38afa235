"""Configs to objects: ``{class_path, init_args}`` resolved (defaults filled in) and built.

:class:`SuiteConfigs` caches, for one suite, the resolved configs, the data
fingerprints and the evaluation datamodules, so that a datamodule serving
several benchmarks or jobs is built once per process.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from avbench.runner.results import data_fingerprint, sha256_of
from avbench.runner.suite import Job, Suite, component_config


def import_object(path: str) -> Any:
    """The object at dotted ``path`` (``package.module.Name``).

    Raises:
        ImportError: naming ``path`` when the module or the name does not exist.
    """
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ImportError(f"cannot import {path!r}: {err}") from err


def _parser(base: type) -> Any:
    from jsonargparse import ArgumentParser

    p = ArgumentParser(exit_on_error=False)
    p.add_subclass_arguments(base, "obj", required=True)
    return p


def resolve(cfg: dict[str, Any], base: type) -> dict[str, Any]:
    """The config with every default filled in (jsonargparse), validated against ``base``.

    Raises:
        jsonargparse's ``ArgumentError``: unknown class, unknown or ill-typed argument.
    """
    ns = _parser(base).parse_object({"obj": cfg})
    return _plain(ns.obj.as_dict())


def instantiate(cfg: dict[str, Any], base: type) -> Any:
    """Build the ``{class_path, init_args}`` object, a subclass of ``base`` (errors as :func:`resolve`)."""
    p = _parser(base)
    ns = p.parse_object({"obj": cfg})
    make = getattr(p, "instantiate", None) or p.instantiate_classes
    return make(ns).obj


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def model_and_data_bases() -> tuple[type, type]:
    """``(AVModel, LightningDataModule)``: what model and data configs must build."""
    import lightning as L

    from avbench.models import AVModel

    return AVModel, L.LightningDataModule


class SuiteConfigs:
    """Resolved configs, data fingerprints and evaluation datamodules of one suite, cached."""

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self._resolved: dict[str, dict[str, Any]] = {}
        self._eval_dms: dict[str, Any] = {}
        self._data_fp: dict[str, dict[str, Any]] = {}

    def resolved(self, cfg: dict[str, Any], base: type) -> dict[str, Any]:
        """:func:`resolve`, once per distinct (config, base)."""
        key = sha256_of([cfg, base.__name__])
        if key not in self._resolved:
            self._resolved[key] = resolve(cfg, base)
        return self._resolved[key]

    def model_cfg(self, job: Job) -> dict[str, Any]:
        """The job's resolved model config."""
        return self.resolved(component_config(job.model, "model", self.suite.source),
                             model_and_data_bases()[0])

    def train_data_cfg(self, job: Job) -> dict[str, Any]:
        """The job's resolved training datamodule config."""
        return self.resolved(component_config(job.dataset, "data", self.suite.source),
                             model_and_data_bases()[1])

    def eval_data_cfg(self, benchmark: str) -> dict[str, Any]:
        """The resolved config of the datamodule serving ``benchmark``'s split."""
        ev = self.suite.benchmarks[benchmark]
        if ev.dataset is not None:
            entry = next(d for d in self.suite.datasets if d.name == ev.dataset)
            cfg = component_config(entry, "data", self.suite.source)
        else:
            cfg = component_config(ev, "data", self.suite.source)
        return self.resolved(cfg, model_and_data_bases()[1])

    def data_fp(self, data_cfg: dict[str, Any]) -> dict[str, Any]:
        """:func:`~avbench.runner.results.data_fingerprint` of the config's ``root``, once per root."""
        key = str(data_cfg.get("init_args", {}).get("root"))
        if key not in self._data_fp:
            self._data_fp[key] = data_fingerprint(data_cfg.get("init_args", {}).get("root"))
        return self._data_fp[key]

    def eval_datamodule(self, data_cfg: dict[str, Any]) -> Any:
        """The datamodule of ``data_cfg``, built once per distinct config."""
        key = sha256_of(data_cfg)
        if key not in self._eval_dms:
            self._eval_dms[key] = instantiate(data_cfg, model_and_data_bases()[1])
        return self._eval_dms[key]


__all__ = ["SuiteConfigs", "import_object", "instantiate", "model_and_data_bases", "resolve"]
