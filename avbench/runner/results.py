"""The result store: one validated JSON file per (job, benchmark).

A :class:`ResultRecord` is model-agnostic: metrics are a ``{name: value}``
mapping (whatever the benchmark's tasks produce), so DenseAV, MC3, ILI or
AV-LDM results need no schema change; ``lower_is_better`` names the metrics
where lower is better (from the benchmark's tasks: the one source of metric
direction). Files are written atomically (:mod:`avbench.atomic_io`): a crash
loses at most the job in flight and never leaves a half-written result under
the real name.

Reading is strict: a file that is not valid JSON or does not validate against
the schema is reported as :class:`CorruptResult` (never silently used); the
runner moves it aside (``*.corrupt``) and recomputes it.

Fingerprint = sha256 of (resolved config + data fingerprint + code version).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from avbench.atomic_io import atomic_write_text

SCHEMA_VERSION = 1
RESULT_SUFFIX = ".json"

#: ``not-scorable``: the benchmark's main metric is undefined on the evaluated data (one class
#: only, a single item); ``reason`` says why. A valid outcome: kept by ``only-missing``.
Status = Literal["ok", "error", "not-scorable"]
Kind = Literal["model", "baseline"]

# --- schema ------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorInfo(_Strict):
    """Why a job or an evaluation failed."""

    stage: Literal["config", "fit", "select", "eval"]
    type: str
    message: str
    traceback: str = ""
    log: str = Field("", description="tail of the job's log")


class SelectedCheckpoint(_Strict):
    """How the evaluated checkpoint was chosen (always on VAL, never on test).

    The outcome of selection; what to select on is the suite's
    :class:`~avbench.runner.suite.SelectionConfig`.
    """

    split: Literal["val"] = "val"
    monitor: str | None = None
    mode: Literal["min", "max"] = "min"
    best_score: float | None = None
    best_epoch: int | None = None
    best_step: int | None = None
    checkpoint: str | None = None
    stage: str | None = Field(None, description="the fit stage selected in (the final one)")
    rule: str = Field("", description="e.g. 'best val/loss', 'last (no val metric logged)'")
    warnings: list[str] = Field(default_factory=list, description=(
        "fit checks that make the selection doubtful ('<code>: <message>', "
        "avbench.runner.fit_checks): val too small, constant monitor, stuck at the first epoch"))


class Timings(_Strict):
    fit_seconds: float | None = None
    eval_seconds: float | None = None
    train_samples: int | None = None
    train_samples_per_second: float | None = None
    eval_samples: int | None = None
    eval_samples_per_second: float | None = None
    fit_reused: bool = Field(False, description="fit restored from a finished job's checkpoint")
    train_batch: dict[str, int | str] | None = Field(
        None, description="how the training batch was formed: global_batch_size, "
        "per_device_batch_size, world_size, batch_size_source (AVDataModule.batch_plan)")


class WandbInfo(_Strict):
    run_id: str | None = None
    project: str | None = None
    group: str | None = None
    mode: str | None = None
    dir: str | None = None


class Environment(_Strict):
    python: str
    platform: str
    packages: dict[str, str]
    git_commit: str | None = None
    git_dirty: bool | None = None
    hostname: str | None = None
    devices: int | None = None
    accelerator: str | None = None


class ResultRecord(_Strict):
    """One (job, benchmark) result; ``job`` is (model, training dataset, seed) or a baseline."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(description="'<benchmark>/<job_id>', the file's path under the suite folder")
    suite: str
    kind: Kind
    job_id: str
    model: str = Field(description="name of the suite entry (or the baseline)")
    model_class: str | None = None
    paper: str | None = None
    train_dataset: str | None = None
    seed: int | None = None
    benchmark: str
    dataset: str
    subset: str | None = None
    split: str
    status: Status
    error: ErrorInfo | None = None
    reason: str | None = Field(None, description="why the result is not scorable")
    warnings: list[str] = Field(default_factory=list, description=(
        "doubts about an ok result, shown in the leaderboard notes: the fit checks of "
        "selection.warnings ('<code>: <message>')"))
    fingerprint: str
    fingerprint_parts: dict[str, str] = Field(default_factory=dict)
    config: dict[str, Any] = Field(description="resolved model/data/trainer/seed/selection config")
    data: dict[str, Any] = Field(default_factory=dict, description="data roots, preset, hashes")
    metrics: dict[str, float | None] = Field(default_factory=dict)
    main_score: str
    main_value: float | None = None
    higher_is_better: bool = True
    lower_is_better: list[str] = Field(
        default_factory=list, description="metrics of this result where lower is better")
    protocol: dict[str, Any] = Field(default_factory=dict)
    tasks: list[dict[str, Any]] = Field(default_factory=list)
    leak: dict[str, Any] | None = None
    selection: SelectedCheckpoint | None = None
    timings: Timings = Field(default_factory=Timings)
    environment: Environment
    wandb: WandbInfo | None = None
    created_at: datetime

    @field_validator("metrics", mode="before")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        # JSON has no NaN: non-finite numbers are stored as null
        if isinstance(v, dict):
            return {k: _finite_or_none(x) for k, x in v.items()}
        return v

    @field_validator("main_value", mode="before")
    @classmethod
    def _finite_main(cls, v: Any) -> Any:
        return _finite_or_none(v)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _finite_or_none(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# --- hashing -------------------------------------------------------------------------
def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def sha256_of(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


_DATA_META_MAX = 16 * 1024 * 1024  # files read in full for the data fingerprint


def data_fingerprint(root: str | Path | None) -> dict[str, Any]:
    """Hash of a dataset root's list/annotation files (not the media).

    Reads every regular file directly in ``root`` and in ``root/metadata`` up to
    16 MB (id lists, csv/json annotations, the synthetic world's description);
    larger files and sub-folders contribute their names and sizes only. The
    synthetic ``avbench_synthetic.json`` also gives the preset and seed.
    """
    if root is None:
        return {"root": None, "sha256": sha256_of(None)}
    root = Path(root)
    info: dict[str, Any] = {"root": str(root)}
    if not root.exists():
        info.update(sha256=sha256_of("missing"), missing=True)
        return info
    h = hashlib.sha256()
    for folder in (root, root / "metadata"):
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            rel = str(p.relative_to(root))
            if p.is_file():
                size = p.stat().st_size
                h.update(f"{rel}\0{size}\0".encode())
                if size <= _DATA_META_MAX:
                    h.update(p.read_bytes())
            elif p.is_dir():
                h.update(f"{rel}/\0".encode())
    info["sha256"] = h.hexdigest()
    synth = root / "avbench_synthetic.json"
    if synth.is_file():
        try:
            meta = json.loads(synth.read_text())
            info["synthetic"] = {k: meta.get(k) for k in ("dataset", "preset", "seed", "image_size")}
        except (OSError, ValueError):
            pass
    return info


_CODE_PACKAGES = ("models", "nn", "benchmarks", "metrics", "data")


@lru_cache(maxsize=1)
def code_version() -> dict[str, str]:
    """avbench version + sha256 of the sources that decide a number.

    The runner, CLI and leaderboard writer are excluded: changing how results
    are stored or displayed does not invalidate them.
    """
    import avbench

    pkg = Path(avbench.__file__).parent
    h = hashlib.sha256()
    for sub in _CODE_PACKAGES:
        for p in sorted((pkg / sub).rglob("*.py")):
            h.update(str(p.relative_to(pkg)).encode() + b"\0" + p.read_bytes())
    return {"avbench": avbench.__version__, "source_sha256": h.hexdigest()}


def fingerprint(config: dict[str, Any], data: dict[str, Any], code: dict[str, str]) -> tuple[str, dict[str, str]]:
    parts = {"config": sha256_of(config), "data": sha256_of(data), "code": sha256_of(code)}
    return sha256_of(parts), parts


# --- environment ---------------------------------------------------------------------
_PACKAGES = ("avbench", "torch", "torchvision", "torchaudio", "lightning", "torchmetrics",
             "timm", "numpy", "pandas", "pydantic", "wandb", "jsonargparse")


@lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=root, capture_output=True, text=True, timeout=10,
                                    check=True).stdout.strip())
        return commit or None, dirty
    except (OSError, subprocess.SubprocessError):
        return None, None


def environment(devices: int | None = None, accelerator: str | None = None) -> Environment:
    pkgs = {}
    for name in _PACKAGES:
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    commit, dirty = git_state()
    return Environment(
        python=sys.version.split()[0],
        platform=platform.platform(),
        packages=pkgs,
        git_commit=commit,
        git_dirty=dirty,
        hostname=platform.node() or None,
        devices=devices,
        accelerator=accelerator,
    )


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- the store -----------------------------------------------------------------------
class CorruptResult(Exception):
    """A result file that cannot be parsed or does not match the schema."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: corrupt result file ({problem})")
        self.path = path
        self.problem = problem


def read_result(path: str | Path) -> ResultRecord:
    """Parse and validate one result file; raise :class:`CorruptResult` on any problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise CorruptResult(path, f"unreadable: {err}") from err
    if not text.strip():
        raise CorruptResult(path, "empty file")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise CorruptResult(path, f"invalid JSON (truncated?): {err}") from err
    try:
        return ResultRecord.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise CorruptResult(
            path, f"schema: {err.error_count()} error(s), e.g. {where}: {first['msg']}"
        ) from err


class ResultStore:
    """``<root>/<suite>/<benchmark>/<job_id>.json``; work files under ``<root>/_work``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, suite: str, benchmark: str, job_id: str) -> Path:
        return self.root / suite / benchmark / f"{job_id}{RESULT_SUFFIX}"

    def work_dir(self, suite: str, job_id: str) -> Path:
        return self.root / "_work" / suite / job_id

    def write(self, record: ResultRecord) -> Path:
        path = self.path(record.suite, record.benchmark, record.job_id)
        ResultRecord.model_validate(record.model_dump())  # re-validate before it hits disk
        atomic_write_text(path, record.model_dump_json(indent=1) + "\n")
        return path

    def read(self, suite: str, benchmark: str, job_id: str) -> ResultRecord | None:
        """The stored result, None when absent; :class:`CorruptResult` when unusable."""
        path = self.path(suite, benchmark, job_id)
        if not path.exists():
            return None
        return read_result(path)

    def quarantine(self, path: Path) -> Path:
        """Move a corrupt file aside (kept for inspection, never read again)."""
        stamp = utcnow().strftime("%Y%m%dT%H%M%S")
        dest = path.with_name(f"{path.name}.corrupt-{stamp}")
        os.replace(path, dest)
        return dest

    def files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return iter(())
        # exactly <suite>/<benchmark>/<job>.json; not _work/, wandb/ or hidden temp files
        return (
            p
            for p in sorted(self.root.glob(f"*/*/*{RESULT_SUFFIX}"))
            if p.relative_to(self.root).parts[0] not in ("_work", "wandb")
            and not any(part.startswith((".", "_")) for part in p.relative_to(self.root).parts)
        )

    def load_all(self) -> tuple[list[ResultRecord], list[CorruptResult]]:
        """Every valid result, and the corrupt files (reported, not used)."""
        good, bad = [], []
        for p in self.files():
            try:
                good.append(read_result(p))
            except CorruptResult as err:
                bad.append(err)
        return good, bad


__all__ = [
    "SCHEMA_VERSION",
    "CorruptResult",
    "Environment",
    "ErrorInfo",
    "ResultRecord",
    "ResultStore",
    "SelectedCheckpoint",
    "Timings",
    "WandbInfo",
    "code_version",
    "data_fingerprint",
    "environment",
    "fingerprint",
    "read_result",
    "sha256_of",
]
