"""Suites: a grid of models x (their) training datasets x seeds, the benchmarks to evaluate.

A suite YAML (``avbench/configs/suites/*.yaml``)::

    name: synthetic
    trainer: avbench/configs/trainer/cpu.yaml     # a LightningCLI trainer config
    trainer_overrides: {max_epochs: 10}              # for every job...
    seeds: [0, 1]
    select: {monitor: val/loss, mode: min}           # checkpoint selection on VAL
    models:
      - {name: ezvsl, config: avbench/configs/model/ezvsl_cpu.yaml,
         trainer_overrides: {max_epochs: 6},           # ...or for one model's jobs
         datasets: [vggsound]}                         # its training datasets (default: all)
    datasets:                                        # training datasets
      - name: vggsound
        config: avbench/configs/data/vggsound_synthetic.yaml
        overrides: {image_size: 64}                  # merged into init_args
        benchmarks: [vggss, flickr-test]             # default: every suite benchmark
    benchmarks:                                      # benchmark -> datamodule serving its split
      vggss: {dataset: vggsound}                     # the training datamodule's test split
      flickr-test: {config: avbench/configs/data/flickr_synthetic.yaml}
    baselines: [full-image, center-prior, random-embedding]
    define_benchmarks:                               # optional: benchmarks as data
      - {name: my-vggss, dataset: vggsound, split: test, main_score: ap50,
         tasks: [{task: localization}]}            # BenchmarkMeta fields

``define_benchmarks`` entries are validated as
:class:`~avbench.benchmarks.BenchmarkMeta` and registered
(:func:`avbench.benchmarks.register`: a no-op for an equal, already known
benchmark; an error for a different one under a known name) before the
``benchmarks:`` mapping is checked, so a suite can evaluate benchmarks that
no package module defines.

Model/data specs are a config path (LightningCLI format ``model:``/``data:``
with ``class_path`` + ``init_args``) or an inline ``{class_path, init_args}``;
``overrides`` are merged into ``init_args``. Relative paths resolve against
the current directory, then the suite file's repository root.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentSpec(_Strict):
    """A model or datamodule: a config file and/or an inline class, plus overrides."""

    config: str | None = None
    class_path: str | None = None
    init_args: dict[str, Any] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> ComponentSpec:
        if (self.config is None) == (self.class_path is None):
            raise ValueError("give exactly one of 'config' (a YAML path) or 'class_path'")
        return self


class ModelEntry(ComponentSpec):
    name: str = Field(pattern=_NAME)
    trainer_overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="merged over the suite's trainer config for this model's jobs "
        "(e.g. its own max_epochs)",
    )
    datasets: list[str] | None = Field(
        None, min_length=1,
        description="the suite's training datasets this model trains on (default: all), "
        "e.g. a feature-based model on the feature files only",
    )


class DatasetEntry(ComponentSpec):
    name: str = Field(pattern=_NAME)
    benchmarks: list[str] | None = Field(
        None, description="benchmarks evaluated for models trained here (default: all)"
    )


class EvalData(ComponentSpec):
    """Where a benchmark's split comes from: a training dataset of the suite or its own config."""

    dataset: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EvalData:  # type: ignore[override]
        given = sum(x is not None for x in (self.dataset, self.config, self.class_path))
        if given != 1:
            raise ValueError("give exactly one of 'dataset', 'config' or 'class_path'")
        return self


class SelectionConfig(_Strict):
    """What checkpoint selection (on VAL) optimises: the suite's ``select:``.

    The outcome is recorded as :class:`~avbench.runner.results.SelectedCheckpoint`.
    """

    monitor: str = "val/loss"
    mode: Literal["min", "max"] = "min"


class WandbSettings(_Strict):
    enabled: bool = True
    project: str = "avbench"
    mode: Literal["offline", "online", "disabled"] = "offline"


class Suite(_Strict):
    name: str = Field(pattern=_NAME)
    description: str = ""
    trainer: str | dict[str, Any] = Field(description="trainer config path or inline kwargs")
    trainer_overrides: dict[str, Any] = Field(default_factory=dict)
    seeds: list[int] = Field(min_length=1)
    select: SelectionConfig = Field(default_factory=SelectionConfig)
    models: list[ModelEntry] = Field(min_length=1)
    datasets: list[DatasetEntry] = Field(min_length=1)
    benchmarks: dict[str, EvalData] = Field(min_length=1)
    baselines: list[str] = Field(default_factory=list)
    wandb: WandbSettings = Field(default_factory=WandbSettings)
    parallel_jobs: int = Field(
        1, ge=1,
        description="jobs fitted at once, each in its own process with 1/N of the CPU threads "
        "(single-device jobs only; results do not depend on it)",
    )
    source: str | None = Field(None, description="the suite file (set by load_suite)")
    define_benchmarks: list[dict[str, Any]] = Field(
        default_factory=list,
        description="benchmarks declared as data (BenchmarkMeta mappings), registered before "
        "'benchmarks' is checked",
    )

    @model_validator(mode="before")
    @classmethod
    def _register_defined(cls, data: Any) -> Any:
        if isinstance(data, dict):
            register_benchmarks(data.get("define_benchmarks") or [])
        return data

    @model_validator(mode="after")
    def _check(self) -> Suite:
        from avbench.benchmarks import BASELINES, BENCHMARKS

        for kind, names in (("model", [m.name for m in self.models]),
                            ("dataset", [d.name for d in self.datasets])):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"duplicate {kind} names {sorted(dup)}")
        unknown = set(self.benchmarks) - set(BENCHMARKS)
        if unknown:
            raise ValueError(f"unknown benchmarks {sorted(unknown)}; known: {sorted(BENCHMARKS)}")
        ds_names = {d.name for d in self.datasets}
        for m in self.models:
            chosen = m.datasets or []
            unknown_ds = [d for d in chosen if d not in ds_names]
            if unknown_ds:
                raise ValueError(f"model {m.name}: datasets {unknown_ds} are not suite datasets; "
                                 f"known: {sorted(ds_names)}")
            if len(set(chosen)) != len(chosen):
                raise ValueError(f"model {m.name}: duplicate datasets {chosen}")
        for b, ev in self.benchmarks.items():
            if ev.dataset is not None and ev.dataset not in ds_names:
                raise ValueError(f"benchmark {b}: dataset {ev.dataset!r} is not a suite dataset")
        for d in self.datasets:
            extra = set(d.benchmarks or ()) - set(self.benchmarks)
            if extra:
                raise ValueError(
                    f"dataset {d.name}: benchmarks {sorted(extra)} are not in the suite's benchmarks"
                )
        bad = set(self.baselines) - set(BASELINES)
        if bad:
            raise ValueError(f"unknown baselines {sorted(bad)}; known: {sorted(BASELINES)}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("duplicate seeds")
        return self

    def benchmarks_for(self, dataset: DatasetEntry) -> list[str]:
        return list(dataset.benchmarks) if dataset.benchmarks is not None else list(self.benchmarks)

    def datasets_for(self, model: ModelEntry) -> list[DatasetEntry]:
        """The training datasets of ``model``'s jobs, in suite order (its ``datasets``, default all)."""
        if model.datasets is None:
            return list(self.datasets)
        return [d for d in self.datasets if d.name in set(model.datasets)]


class Job(BaseModel):
    """One training run: (model, training dataset, seed)."""

    model_config = ConfigDict(frozen=True)

    model: ModelEntry
    dataset: DatasetEntry
    seed: int
    benchmarks: tuple[str, ...]

    @property
    def id(self) -> str:
        return job_id(self.model.name, self.dataset.name, self.seed)


def register_benchmarks(entries: list[dict[str, Any]]) -> list[Any]:
    """Validate and register benchmark mappings (a suite's ``define_benchmarks``).

    Idempotent for equal benchmarks, so the runner (and each of its worker
    processes) may call it again for the same suite.

    Raises:
        pydantic.ValidationError: an entry is not a valid BenchmarkMeta;
        KeyError: a different benchmark is already registered under its name.
    """
    from avbench.benchmarks import BenchmarkMeta, register

    return [register(BenchmarkMeta.model_validate(e)) for e in entries]


def job_id(model: str, dataset: str | None, seed: int | None) -> str:
    if dataset is None:
        return f"baseline.{model}"
    return f"{model}.{dataset}.seed{seed}"


def expand(suite: Suite) -> list[Job]:
    """models x THEIR training datasets x seeds, in that nesting order.

    A model's datasets are its entry's ``datasets`` (default: every suite dataset),
    in the suite's dataset order. Applicability to benchmarks comes later.
    """
    return [
        Job(model=m, dataset=d, seed=s, benchmarks=tuple(suite.benchmarks_for(d)))
        for m in suite.models
        for d in suite.datasets_for(m)
        for s in suite.seeds
    ]


# --- configs ---------------------------------------------------------------------------
def resolve_path(path: str, source: str | None) -> Path:
    """A config file named in a suite: see :func:`avbench.configs.resolve_config`."""
    from avbench.configs import resolve_config

    return resolve_config(path, source)


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def component_config(spec: ComponentSpec, key: str, source: str | None) -> dict[str, Any]:
    """``{class_path, init_args}`` of a model (``key="model"``) or datamodule (``"data"``)."""
    if spec.config is not None:
        path = resolve_path(spec.config, source)
        raw = yaml.safe_load(path.read_text()) or {}
        if key not in raw or "class_path" not in (raw[key] or {}):
            raise ValueError(f"{path}: expected '{key}: {{class_path, init_args}}'")
        cfg = {"class_path": raw[key]["class_path"],
               "init_args": dict(raw[key].get("init_args") or {})}
    else:
        cfg = {"class_path": spec.class_path, "init_args": dict(spec.init_args)}
    cfg["init_args"] = _deep_merge(cfg["init_args"], spec.overrides)
    return cfg


def trainer_config(suite: Suite, model: ModelEntry | None = None) -> dict[str, Any]:
    """The suite's trainer kwargs, with ``model``'s own overrides on top when given."""
    if isinstance(suite.trainer, dict):
        cfg = dict(suite.trainer)
    else:
        raw = yaml.safe_load(resolve_path(suite.trainer, suite.source).read_text()) or {}
        cfg = dict(raw.get("trainer", raw))
    cfg = _deep_merge(cfg, suite.trainer_overrides)
    return _deep_merge(cfg, model.trainer_overrides) if model is not None else cfg


def load_suite(path: str | Path, overrides: dict[str, Any] | None = None) -> Suite:
    """Read a suite YAML, merge ``overrides`` (nested, e.g. from ``--set``) and validate it.

    Registers the suite's ``define_benchmarks`` first (see the module docstring).

    Raises:
        FileNotFoundError: no such suite file; pydantic.ValidationError: an invalid suite.
    """
    from avbench.configs import resolve_config

    try:
        path = resolve_config(path)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"suite file {str(path)!r} does not exist: {err}") from None
    raw = yaml.safe_load(path.read_text()) or {}
    raw = _deep_merge(raw, overrides or {})
    raw.setdefault("source", str(path))
    return Suite.model_validate(raw)


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


__all__ = [
    "ComponentSpec",
    "DatasetEntry",
    "EvalData",
    "Job",
    "ModelEntry",
    "SelectionConfig",
    "Suite",
    "WandbSettings",
    "component_config",
    "expand",
    "job_id",
    "load_suite",
    "register_benchmarks",
    "resolve_path",
    "trainer_config",
]
