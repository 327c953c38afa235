"""The benchmark runner: fit every job of a suite, select on VAL, evaluate, store.

For each job (model x training dataset x seed) the runner

1. plans the benchmarks from the model's declared capabilities (inapplicable
   pairs are skipped with the reason, no file written);
2. computes each (job, benchmark) fingerprint (resolved config + data
   fingerprint + code version) and keeps the stored results that match
   (``--overwrite only-missing``); corrupt files are reported, moved aside
   (``*.corrupt-<time>``) and recomputed;
3. fits the model with the Lightning Trainer (``ddp_spawn`` when the trainer
   config asks for several devices with ``strategy: ddp``), a
   :class:`~lightning.pytorch.callbacks.ModelCheckpoint` on the VAL monitor
   and a guard that fails the job on a non-finite loss; a finished fit is
   kept in ``<results>/_work`` so a rerun after a crash does not refit;
4. loads the best VAL checkpoint and evaluates it on every applicable
   benchmark through :func:`avbench.benchmarks.evaluate` (with the train/test
   leak check), writing one validated result per benchmark, atomically (plus,
   for localization benchmarks, ``<job>.gallery.npz``: the first 6 maps, for
   the leaderboard's heat-map gallery).

With ``parallel_jobs: N`` in the suite (single-device trainers only), jobs
run in N spawned worker processes, each with 1/N of the CPU threads. On the
2-core machine, two 1-thread training loops run 1.25-1.3x more samples per
second than one 2-thread loop for 4 of the 5 models, and the whole synthetic
suite takes 6% less time (``benchmarks/perf/README.md``, "Parallel jobs").
Baselines and the summary stay in the main process; each worker keeps its
datasets cached across its jobs.

A job that raises (config, fit, selection or evaluation) is written as
``status="error"`` with the traceback and the tail of its log; the run goes on
and :attr:`RunSummary.exit_code` is 1. Trivial baselines are evaluated once per
benchmark (no training) and stored like models (``kind="baseline"``).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import lightning as L

from avbench.runner.results import (
    CorruptResult,
    ErrorInfo,
    ResultRecord,
    ResultStore,
    Selection,
    Timings,
    WandbInfo,
    code_version,
    data_fingerprint,
    environment,
    fingerprint,
    sha256_of,
    utcnow,
)
from avbench.runner.suite import (
    Job,
    Suite,
    component_config,
    expand,
    job_id,
    trainer_config,
)

log = logging.getLogger(__name__)

Overwrite = Literal["never", "only-missing", "always"]
OVERWRITE_MODES = ("never", "only-missing", "always")
_LOG_TAIL = 8000


# --- summary -----------------------------------------------------------------------------
@dataclass
class RunSummary:
    ok: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (pair, reason)
    corrupt: list[str] = field(default_factory=list)
    stale_kept: list[str] = field(default_factory=list)

    def merge(self, other: RunSummary) -> None:
        """Add ``other``'s entries (a worker's jobs) to this summary."""
        for f in fields(self):
            getattr(self, f.name).extend(getattr(other, f.name))

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def text(self) -> str:
        lines = [
            f"ok: {len(self.ok)}  failed: {len(self.failed)}  skipped: {len(self.skipped)}  "
            f"up-to-date: {len(self.cached)}  corrupt (recomputed): {len(self.corrupt)}"
        ]
        lines += [f"  FAILED  {x}" for x in self.failed]
        lines += [f"  CORRUPT {x}" for x in self.corrupt]
        lines += [f"  STALE (kept, --overwrite never) {x}" for x in self.stale_kept]
        lines += [f"  skipped {p}: {r}" for p, r in self.skipped]
        return "\n".join(lines)


# --- instantiation --------------------------------------------------------------------------
def import_object(path: str) -> Any:
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
    """The config with every default filled in (jsonargparse), validated against ``base``."""
    ns = _parser(base).parse_object({"obj": cfg})
    return _plain(ns.obj.as_dict())


def instantiate(cfg: dict[str, Any], base: type) -> Any:
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


def _bases() -> tuple[type, type]:
    import lightning as L

    from avbench.models import AVModel

    return AVModel, L.LightningDataModule


# --- callbacks ---------------------------------------------------------------------------------
class FiniteLossGuard(L.Callback):
    """Fail the job on a non-finite training loss or VAL monitor; count training samples.

    Module-level (picklable) so that ``ddp_spawn`` can ship it to the workers.
    """

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.samples = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        import torch

        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not torch.isfinite(loss).all():
            raise FloatingPointError(
                f"non-finite training loss ({loss.detach().float().item()}) at step "
                f"{trainer.global_step}, batch {batch_idx}"
            )
        if isinstance(batch, dict) and "id" in batch:
            self.samples += len(batch["id"]) * max(trainer.world_size, 1)

    def on_validation_end(self, trainer, pl_module) -> None:
        import torch

        if trainer.sanity_checking:
            return
        v = trainer.callback_metrics.get(self.monitor)
        if isinstance(v, torch.Tensor) and not torch.isfinite(v).all():
            raise FloatingPointError(
                f"non-finite {self.monitor} ({v.item()}) at epoch {trainer.current_epoch}"
            )


@contextlib.contextmanager
def _job_log(path: Path) -> Iterator[Path]:
    """Capture the root, lightning and avbench loggers into ``path`` for the job."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    # the root logger, plus any logger that does not propagate to it (Lightning's own)
    loggers = [logging.getLogger()] + [
        lg for lg in map(logging.getLogger, ("lightning", "lightning.pytorch", "lightning.fabric",
                                             "avbench"))
        if not lg.propagate
    ]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        yield path
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
        handler.close()


def _tail(path: Path, n: int = _LOG_TAIL) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


# --- the runner --------------------------------------------------------------------------------
class Runner:
    def __init__(
        self,
        suite: Suite,
        results: str | Path,
        *,
        overwrite: Overwrite = "only-missing",
        progress: bool = True,
        wandb_mode: str | None = None,
        eval_progress: bool = False,
    ) -> None:
        if overwrite not in OVERWRITE_MODES:
            raise ValueError(f"overwrite must be one of {OVERWRITE_MODES}, got {overwrite!r}")
        self.suite = suite
        self.store = ResultStore(results)
        self.overwrite = overwrite
        self.progress = progress
        self.eval_progress = eval_progress
        self.wandb_mode = wandb_mode
        self.summary = RunSummary()
        self.code = code_version()
        self.trainer_cfg = trainer_config(suite)
        self._resolved: dict[str, dict[str, Any]] = {}
        self._eval_dms: dict[str, Any] = {}
        self._data_fp: dict[str, dict[str, Any]] = {}

    # --- configs ---------------------------------------------------------
    def _resolved_cfg(self, cfg: dict[str, Any], base: type) -> dict[str, Any]:
        key = sha256_of([cfg, base.__name__])
        if key not in self._resolved:
            self._resolved[key] = resolve(cfg, base)
        return self._resolved[key]

    def train_data_cfg(self, job: Job) -> dict[str, Any]:
        return self._resolved_cfg(
            component_config(job.dataset, "data", self.suite.source), _bases()[1]
        )

    def eval_data_cfg(self, benchmark: str, train_dataset: str | None) -> dict[str, Any]:
        ev = self.suite.benchmarks[benchmark]
        if ev.dataset is not None:
            entry = next(d for d in self.suite.datasets if d.name == ev.dataset)
            cfg = component_config(entry, "data", self.suite.source)
        else:
            cfg = component_config(ev, "data", self.suite.source)
        return self._resolved_cfg(cfg, _bases()[1])

    def data_fp(self, data_cfg: dict[str, Any]) -> dict[str, Any]:
        root = data_cfg.get("init_args", {}).get("root")
        key = str(root)
        if key not in self._data_fp:
            self._data_fp[key] = data_fingerprint(root)
        return self._data_fp[key]

    def eval_datamodule(self, data_cfg: dict[str, Any]) -> Any:
        key = sha256_of(data_cfg)
        if key not in self._eval_dms:
            self._eval_dms[key] = instantiate(data_cfg, _bases()[1])
        return self._eval_dms[key]

    # --- store decisions ---------------------------------------------------
    def _needs(self, benchmark: str, jid: str, fp: str) -> bool:
        """Whether (job, benchmark) must be (re)computed under the overwrite mode."""
        label = f"{benchmark}/{jid}"
        path = self.store.path(self.suite.name, benchmark, jid)
        try:
            rec = self.store.read(self.suite.name, benchmark, jid)
        except CorruptResult as err:
            moved = self.store.quarantine(path)
            log.warning("%s; moved to %s and recomputing", err, moved.name)
            self.summary.corrupt.append(f"{label} ({err.problem})")
            return True
        if rec is None or self.overwrite == "always":
            return True
        if self.overwrite == "never":
            if rec.fingerprint != fp:
                self.summary.stale_kept.append(label)
            self.summary.cached.append(label)
            return False
        if rec.fingerprint == fp and rec.status == "ok":
            self.summary.cached.append(label)
            return False
        return True  # stale fingerprint or a failed attempt: recompute

    # --- records -------------------------------------------------------------
    def _record(self, *, kind: str, jid: str, model: str, bench: Any, fp: tuple[str, dict],
                config: dict, data: dict, status: str, **kw: Any) -> ResultRecord:
        return ResultRecord(
            id=f"{bench.name}/{jid}",
            suite=self.suite.name,
            kind=kind,  # type: ignore[arg-type]
            job_id=jid,
            model=model,
            benchmark=bench.name,
            dataset=bench.dataset,
            subset=bench.subset,
            split=bench.split,
            status=status,  # type: ignore[arg-type]
            fingerprint=fp[0],
            fingerprint_parts=fp[1],
            config=config,
            data=data,
            main_score=bench.main_score,
            higher_is_better=bench.higher_is_better,
            protocol=bench.protocol,
            environment=environment(self.trainer_cfg.get("devices") if kind == "model" else 1,
                                    self.trainer_cfg.get("accelerator") if kind == "model" else "cpu"),
            created_at=utcnow(),
            **kw,
        )

    def _write(self, rec: ResultRecord, gallery: dict[str, Any] | None = None) -> None:
        path = self.store.write(rec)
        _save_gallery(path, gallery)
        label = f"{rec.benchmark}/{rec.job_id}"
        (self.summary.ok if rec.ok else self.summary.failed).append(label)

    @staticmethod
    def _eval_fields(res: Any) -> dict[str, Any]:
        return dict(
            metrics=dict(res.metrics),
            main_value=res.main_value,
            tasks=[t.model_dump(mode="json") for t in res.tasks],
            leak=res.leak.model_dump(mode="json") if res.leak is not None else None,
        )

    # --- baselines -----------------------------------------------------------
    def run_baselines(self) -> None:
        from avbench.benchmarks import BASELINES, applicability, evaluate, get_benchmark

        for name in self.suite.baselines:
            baseline = BASELINES[name]()
            jid = job_id(name, None, None)
            for bname in self.suite.benchmarks:
                bench = get_benchmark(bname)
                app = applicability(baseline, bench)
                if not app.applicable:
                    self.summary.skipped.append((f"{bname}/{jid}", app.reason or ""))
                    continue
                try:
                    data_cfg = self.eval_data_cfg(bname, None)
                except Exception as err:  # config problems are recorded, not fatal
                    self._config_error("baseline", jid, name, bench, err)
                    continue
                config = {"baseline": {"name": name, "options": dict(baseline.meta.options)},
                          "eval_data": data_cfg, "benchmark": bname}
                data = {"eval": self.data_fp(data_cfg)}
                fp = fingerprint(config | {"protocol": bench.protocol}, data, self.code)
                if not self._needs(bname, jid, fp[0]):
                    continue
                common = dict(kind="baseline", jid=jid, model=name, bench=bench, fp=fp,
                              config=config, data=data)
                try:
                    dm = self.eval_datamodule(data_cfg)
                    res = evaluate(baseline, bench, dm, progress=self.eval_progress,
                                   gallery=_gallery_size(bench))
                except Exception as err:
                    res, error = None, self._error("eval", err, "")
                else:
                    error = None if res.status == "ok" else ErrorInfo(
                        stage="eval", type="EvaluationFailed", message=res.reason or "")
                fields = self._eval_fields(res) if res is not None else {}
                timings = Timings(eval_seconds=res.seconds if res else None,
                                  eval_samples=res.n_samples if res else None,
                                  eval_samples_per_second=_rate(res.n_samples, res.seconds)
                                  if res else None)
                self._write(self._record(status="ok" if error is None else "error", error=error,
                                         paper="trivial baseline", timings=timings,
                                         model_class=type(baseline).__module__ + "."
                                         + type(baseline).__name__, **common, **fields),
                            gallery=res.gallery if res is not None and error is None else None)

    def _error(self, stage: str, err: BaseException, log_text: str) -> ErrorInfo:
        return ErrorInfo(stage=stage, type=type(err).__name__, message=str(err)[:2000],  # type: ignore[arg-type]
                         traceback="".join(traceback.format_exception(err))[-_LOG_TAIL:],
                         log=log_text)

    def _config_error(self, kind: str, jid: str, model: str, bench: Any, err: BaseException) -> None:
        log.error("%s/%s: configuration error: %s", bench.name, jid, err)
        self._write(self._record(kind=kind, jid=jid, model=model, bench=bench,
                                 fp=("config-error", {}), config={}, data={}, status="error",
                                 error=self._error("config", err, "")))

    # --- model jobs -------------------------------------------------------------
    def run_job(self, job: Job) -> None:
        from avbench.benchmarks import get_benchmark, plan

        jid = job.id
        benches = [get_benchmark(b) for b in job.benchmarks]
        try:
            model_cfg = self._resolved_cfg(
                component_config(job.model, "model", self.suite.source), _bases()[0]
            )
            model_cls = import_object(model_cfg["class_path"])
            train_cfg = self.train_data_cfg(job)
        except Exception as err:
            for b in benches:
                self._config_error("model", jid, job.model.name, b, err)
            return
        run, skipped = plan([model_cls], benches)
        for a in skipped:
            self.summary.skipped.append((f"{a.benchmark}/{jid}", a.reason or ""))
        fit_config = {
            "model": model_cfg,
            "data": train_cfg,
            "trainer": trainer_config(self.suite, job.model),
            "seed": job.seed,
            "select": self.suite.select.model_dump(),
        }
        train_fp = self.data_fp(train_cfg)
        job_fp = fingerprint(fit_config, {"train": train_fp}, self.code)[0]
        todo = []
        for _, bench in run:
            try:
                eval_cfg = self.eval_data_cfg(bench.name, job.dataset.name)
            except Exception as err:
                self._config_error("model", jid, job.model.name, bench, err)
                continue
            config = fit_config | {"eval_data": eval_cfg, "benchmark": bench.name}
            data = {"train": train_fp, "eval": self.data_fp(eval_cfg)}
            fp = fingerprint(config | {"protocol": bench.protocol}, data, self.code)
            if self._needs(bench.name, jid, fp[0]):
                todo.append((bench, eval_cfg, config, data, fp))
        if not todo:
            return

        meta = getattr(model_cls, "meta", None)
        common = dict(kind="model", jid=jid, model=job.model.name)
        extra = dict(model_class=model_cfg["class_path"], paper=getattr(meta, "paper", None),
                     train_dataset=job.dataset.name, seed=job.seed)
        work = self.store.work_dir(self.suite.name, jid)
        log_path = work / "job.log"
        wb = None
        with _job_log(log_path):
            try:
                wb = self._wandb_logger(job, fit_config)
                model, selection, timings, train_ids = self._fit(
                    job, model_cfg, train_cfg, fit_config["trainer"], job_fp, work, wb)
            except Exception as err:
                log.error("%s: fit failed:\n%s", jid, traceback.format_exc())
                stage = getattr(err, "avbench_stage", "fit")
                error = self._error(stage, err, _tail(log_path))
                for bench, _, config, data, fp in todo:
                    self._write(self._record(bench=bench, fp=fp, config=config, data=data,
                                             status="error", error=error, **common, **extra,
                                             wandb=_wandb_info(wb, self.suite)))
                _finish_wandb(wb, {}, failed=True)
                return

            final: dict[str, float] = {}
            for bench, eval_cfg, config, data, fp in todo:
                from avbench.benchmarks import evaluate

                t = timings.model_copy()
                try:
                    dm = self.eval_datamodule(eval_cfg)
                    res = evaluate(model, bench, dm, train_ids=train_ids,
                                   train_source=f"{job.dataset.name}:train",
                                   progress=self.eval_progress,
                                   gallery=_gallery_size(bench))
                except Exception as err:
                    log.error("%s on %s: evaluation raised:\n%s", jid, bench.name,
                              traceback.format_exc())
                    self._write(self._record(bench=bench, fp=fp, config=config, data=data,
                                             status="error", selection=selection, timings=t,
                                             error=self._error("eval", err, _tail(log_path)),
                                             wandb=_wandb_info(wb, self.suite), **common, **extra))
                    continue
                t.eval_seconds = res.seconds
                t.eval_samples = res.n_samples
                t.eval_samples_per_second = _rate(res.n_samples, res.seconds)
                error = None
                if res.status != "ok":
                    error = ErrorInfo(stage="eval", type="EvaluationFailed",
                                      message=res.reason or "", log=_tail(log_path))
                fields = self._eval_fields(res)
                final |= {f"{bench.name}/{k}": v for k, v in res.metrics.items()
                          if isinstance(v, float) and math.isfinite(v)}
                self._write(self._record(bench=bench, fp=fp, config=config, data=data,
                                         status="ok" if error is None else "error", error=error,
                                         selection=selection, timings=t,
                                         wandb=_wandb_info(wb, self.suite),
                                         **common, **extra, **fields),
                            gallery=res.gallery if error is None else None)
            _finish_wandb(wb, final)

    def _wandb_logger(self, job: Job, config: dict[str, Any]) -> Any:
        from avbench.runner.wandb_utils import make_logger

        return make_logger(
            self.suite, name=job.id, tags=[job.model.name, job.dataset.name, f"seed{job.seed}"],
            config=config, save_dir=self.store.root, mode=self.wandb_mode,
        )

    def _fit(self, job: Job, model_cfg: dict, train_cfg: dict, trainer_cfg: dict, job_fp: str,
             work: Path, wb: Any) -> tuple[Any, Selection, Timings, list[str] | None]:
        import json

        import torch

        from avbench.runner.checkpointing import AfterWarmupCheckpoint, warmup_epochs
        from avbench.runner.results import atomic_write_text

        AVModel, DM = _bases()
        L.seed_everything(job.seed, workers=True, verbose=False)
        model = instantiate(model_cfg, AVModel)
        dm = instantiate(train_cfg, DM)
        train_ids = _train_ids(dm)
        done = work / "fit.json"
        if done.exists():
            try:
                state = json.loads(done.read_text())
                if state.get("job_fingerprint") == job_fp and Path(state["weights"]).exists():
                    sd = torch.load(state["weights"], map_location="cpu", weights_only=False)
                    model.load_state_dict(sd["state_dict"])
                    log.info("%s: reusing the finished fit in %s", job.id, work)
                    timings = Timings.model_validate(state["timings"] | {"fit_reused": True})
                    return model, Selection.model_validate(state["selection"]), timings, train_ids
            except (OSError, ValueError, KeyError, RuntimeError) as err:
                log.warning("%s: ignoring unusable fit state %s (%s)", job.id, done, err)

        sel = self.suite.select
        ckpt_dir = work / "checkpoints"
        for old in ckpt_dir.glob("*.ckpt") if ckpt_dir.exists() else ():
            old.unlink()
        ckpt = AfterWarmupCheckpoint(dirpath=ckpt_dir, filename="best", monitor=sel.monitor,
                                     mode=sel.mode, save_top_k=1, save_last=False)
        guard = FiniteLossGuard(sel.monitor)
        kwargs = dict(trainer_cfg)
        for k in ("logger", "callbacks", "default_root_dir", "enable_checkpointing"):
            if kwargs.pop(k, None) not in (None, False, True) and k == "callbacks":
                log.warning("%s: trainer callbacks from the config are ignored by the runner",
                            job.id)
        if kwargs.get("strategy") == "ddp" and not _single_device(kwargs):
            kwargs["strategy"] = "ddp_spawn"  # in-process launch: the runner stays one program
        kwargs.setdefault("enable_progress_bar", False)
        kwargs["enable_model_summary"] = kwargs.get("enable_model_summary", False)
        trainer = L.Trainer(**kwargs, logger=wb if wb is not None else False,
                            callbacks=[ckpt, guard], default_root_dir=str(work),
                            enable_checkpointing=True)
        start = time.perf_counter()
        trainer.fit(model, datamodule=dm)
        fit_seconds = time.perf_counter() - start
        try:
            best = ckpt.best_model_path
            if best and Path(best).exists():
                sd = torch.load(best, map_location="cpu", weights_only=False)
                model.load_state_dict(sd["state_dict"])
                score = ckpt.best_model_score
                if score is None:  # ddp_spawn: the score lives in the workers' callback state
                    score = next((v.get("best_model_score") for k, v in
                                  (sd.get("callbacks") or {}).items()
                                  if "ModelCheckpoint" in str(k) and isinstance(v, dict)), None)
                selection = Selection(
                    monitor=sel.monitor, mode=sel.mode,
                    best_score=float(score) if score is not None else None,
                    best_epoch=sd.get("epoch"), best_step=sd.get("global_step"),
                    checkpoint=str(best),
                    rule=f"best {sel.monitor} ({sel.mode}) on val"
                    + (f", after {warmup_epochs(model)} warm-up epochs" if warmup_epochs(model)
                       else ""),
                )
                weights = best
            else:
                weights = str(work / "last.ckpt")
                trainer.save_checkpoint(weights, weights_only=True)
                selection = Selection(monitor=sel.monitor, mode=sel.mode, checkpoint=weights,
                                      best_epoch=trainer.current_epoch,
                                      best_step=trainer.global_step,
                                      rule=f"last weights ({sel.monitor} was never logged on val)")
                log.warning("%s: no val checkpoint; evaluating the last weights", job.id)
        except Exception as err:
            err.avbench_stage = "select"  # type: ignore[attr-defined]
            raise
        model.eval()
        n = guard.samples or None
        timings = Timings(fit_seconds=fit_seconds, train_samples=n,
                          train_samples_per_second=_rate(n, fit_seconds))
        atomic_write_text(done, json.dumps({
            "job_fingerprint": job_fp, "weights": weights,
            "selection": selection.model_dump(mode="json"),
            "timings": timings.model_dump(mode="json"),
        }, indent=1))
        return model, selection, timings, train_ids

    # --- everything ---------------------------------------------------------------
    def run(self) -> RunSummary:
        jobs = expand(self.suite)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(jobs) + (1 if self.suite.baselines else 0),
                       desc=f"suite {self.suite.name}", unit="job")
        try:
            if self.suite.parallel_jobs > 1:
                self._check_parallel(jobs)
            if self.suite.baselines:
                if bar is not None:
                    bar.set_postfix_str("baselines")
                self.run_baselines()
                if bar is not None:
                    bar.update(1)
            if self.suite.parallel_jobs > 1 and len(jobs) > 1:
                self._run_parallel(jobs, bar)
            else:
                for job in jobs:
                    if bar is not None:
                        bar.set_postfix_str(job.id)
                    self.run_job(job)
                    if bar is not None:
                        bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return self.summary

    def _check_parallel(self, jobs: Sequence[Job]) -> None:
        """``parallel_jobs > 1`` needs single-device jobs; checked before any work starts."""
        for job in jobs:
            cfg = trainer_config(self.suite, job.model)
            if not _single_device(cfg):
                raise ValueError(
                    f"parallel_jobs={self.suite.parallel_jobs} needs single-device jobs, but "
                    f"{job.id} asks for devices={cfg.get('devices')!r}; set parallel_jobs: 1 "
                    "for DDP"
                )

    def _run_parallel(self, jobs: Sequence[Job], bar: Any) -> None:
        """Fit ``jobs`` in ``suite.parallel_jobs`` spawned processes (see the module docstring)."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        import torch

        n = min(self.suite.parallel_jobs, len(jobs))
        threads = max(1, torch.get_num_threads() // n)
        options = {"overwrite": self.overwrite, "wandb_mode": self.wandb_mode}
        with ProcessPoolExecutor(
            max_workers=n, mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init, initargs=(self.suite, str(self.store.root), options, threads),
        ) as pool:
            futures = {pool.submit(_worker_run_job, job): job for job in jobs}
            if bar is not None:
                bar.set_postfix_str(f"{n} jobs at a time, {threads} thread(s) each")
            for fut in as_completed(futures):
                job = futures[fut]
                try:
                    self.summary.merge(fut.result())
                except Exception as err:  # noqa: BLE001 - a worker died (killed, out of memory)
                    log.error("%s: worker process failed: %s", job.id, err)
                    self.summary.failed.extend(
                        f"{b}/{job.id} (worker died: {type(err).__name__})" for b in job.benchmarks
                    )
                if bar is not None:
                    bar.set_postfix_str(job.id)
                    bar.update(1)


def _single_device(trainer_cfg: dict[str, Any]) -> bool:
    """Whether a trainer config runs on one device (``devices`` 1 or unset)."""
    return trainer_cfg.get("devices", 1) in (1, "1", None)


# --- worker processes (parallel_jobs > 1) ----------------------------------------------
_WORKER: Runner | None = None


def _worker_init(suite: Suite, results: str, options: dict[str, Any], threads: int) -> None:
    """Per worker: one Runner (its caches live as long as the worker) and its thread share."""
    import torch

    global _WORKER
    torch.set_num_threads(threads)
    _WORKER = Runner(suite, results, progress=False, **options)


def _worker_run_job(job: Job) -> RunSummary:
    """Run one job in this worker; return only that job's summary entries."""
    assert _WORKER is not None, "worker not initialised"
    _WORKER.summary = RunSummary()
    _WORKER.run_job(job)
    return _WORKER.summary


#: samples kept per localization result for the leaderboard's heat-map gallery
GALLERY_SAMPLES = 6


def _gallery_size(bench: Any) -> int:
    """How many gallery samples to keep: only localization benchmarks have maps to show."""
    from avbench.benchmarks.meta import LocalizationTask

    return GALLERY_SAMPLES if any(isinstance(t, LocalizationTask) for t in bench.tasks) else 0


def _save_gallery(result_path: Path, gallery: dict[str, Any] | None) -> None:
    """``<result stem>.gallery.npz`` next to the result; a stale one is removed.

    A gallery that cannot be written only costs a figure: it is logged, never fatal.
    """
    from avbench.runner.plots import gallery_path, save_gallery

    path = gallery_path(result_path)
    try:
        if gallery is None:
            path.unlink(missing_ok=True)
        else:
            save_gallery(path, gallery)
    except OSError as err:
        log.warning("could not write the gallery %s: %s", path, err)


def _rate(n: int | None, seconds: float | None) -> float | None:
    if not n or not seconds or seconds <= 0:
        return None
    return n / seconds


def _train_ids(dm: Any) -> list[str] | None:
    """Training clip ids of a datamodule (for the leak check), None when unknown."""
    getter = getattr(dm, "dataset", None)
    if getter is None:
        return None
    try:
        ds = getter("train")
    except Exception:  # noqa: BLE001 - datamodules without a train split
        return None
    recs = getattr(ds, "records", None)
    if recs is None:
        return None
    ids = [getattr(r, "id", None) for r in recs]
    return [str(i) for i in ids if i]


def _wandb_info(wb: Any, suite: Suite) -> WandbInfo | None:
    if wb is None:
        return None
    from avbench.runner.wandb_utils import run_info

    return run_info(wb, suite)


def _finish_wandb(wb: Any, final: dict[str, float], failed: bool = False) -> None:
    if wb is None:
        return
    from avbench.runner.wandb_utils import finish

    finish(wb, final, failed=failed)


def run_suite(suite: Suite, results: str | Path, **kwargs: Any) -> RunSummary:
    """Run ``suite`` into the result store at ``results``; see :class:`Runner`."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return Runner(suite, results, **kwargs).run()


__all__ = ["OVERWRITE_MODES", "RunSummary", "Runner", "instantiate", "resolve", "run_suite"]
