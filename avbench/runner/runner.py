"""The benchmark runner: fit every job of a suite, select on VAL, evaluate, store.

For each job (model x training dataset x seed) the runner

1. plans the benchmarks from the model's declared capabilities (inapplicable
   pairs are skipped with the reason, no file written);
2. computes each (job, benchmark) fingerprint (resolved config + data
   fingerprint + code version) and keeps the stored results that match
   (:mod:`avbench.runner.store_decisions`);
3. fits the model's stages and selects the checkpoint on VAL in the final
   stage (:mod:`avbench.runner.fitting`; trainer arguments and callbacks:
   :mod:`avbench.runner.trainers`); a finished fit, and each finished stage,
   is kept in ``<results>/_work`` so a rerun after a crash does not redo it;
4. evaluates the selected weights on every applicable benchmark through
   :func:`avbench.benchmarks.evaluate` (with the train/test leak check),
   writing one validated result per benchmark, atomically, plus the gallery
   the benchmark's tasks kept (``<job>.gallery.npz``,
   :mod:`avbench.runner.galleries`).

With ``parallel_jobs: N`` jobs run in N worker processes
(:mod:`avbench.runner.process_pool`); baselines and the summary stay in the
main process.

A job that raises (config, fit, selection or evaluation) is written as
``status="error"`` with the traceback and the tail of its log; the run goes on
and :attr:`RunSummary.exit_code` is 1. A benchmark whose main metric is
undefined on its data is written as ``status="not-scorable"`` with the reason
(a valid outcome, exit code 0). A fit that made no optimizer step is an error;
doubtful selections carry ``warnings`` (:mod:`avbench.runner.fit_checks`).

SIGTERM/SIGINT (:mod:`avbench.runner.signals`): the job in flight gets an
``interrupted.json`` marker in its work dir and its W&B run is finished with
status ``interrupted``; nothing partial is written (results, galleries and fit
state are atomic); with ``parallel_jobs`` the workers are stopped the same way;
jobs not started are listed in ``summary.cancelled`` (no new job starts after the
signal); the summary says ``interrupted_by`` and its ``exit_code`` is 128 + the signal.
A rerun completes the missing results (and reuses a finished fit).

Trivial baselines are evaluated once per benchmark (no training) and stored
like models (``kind="baseline"``); fitted baselines (CCA) are fitted on the TRAIN
split of each benchmark whose data they accept (the feature files) and stored the same way.
"""

from __future__ import annotations

import logging
import math
import os
import traceback
from pathlib import Path
from typing import Any

from avbench.runner.fitting import discard_unfinished_fit, fit_job, rate
from avbench.runner.galleries import write_gallery
from avbench.runner.instantiation import SuiteConfigs, import_object, instantiate, resolve
from avbench.runner.job_log import LOG_TAIL, job_log, log_tail
from avbench.runner.process_pool import check_parallel, run_parallel
from avbench.runner.results import (
    ErrorInfo,
    ResultRecord,
    ResultStore,
    Timings,
    WandbInfo,
    code_version,
    environment,
    fingerprint,
    utcnow,
)
from avbench.runner.signals import (
    RunInterrupted,
    clear_interrupted,
    interrupt_on_signals,
    mark_interrupted,
    was_interrupted,
)
from avbench.runner.store_decisions import OVERWRITE_MODES, Overwrite, StoreDecisions
from avbench.runner.suite import Job, Suite, expand, job_id, register_benchmarks, trainer_config
from avbench.runner.summary import RunSummary

log = logging.getLogger(__name__)

#: samples each evaluation keeps for the leaderboard's gallery (where a task keeps one)
GALLERY_SAMPLES = 6


class Runner:
    """Runs one suite into one result store (see the module docstring).

    Args:
        suite: the suite.
        results: the result store directory.
        overwrite: which stored results to recompute (:mod:`avbench.runner.store_decisions`).
        progress: a progress bar over the jobs.
        wandb_mode: W&B mode (None: ``$WANDB_MODE``, else the suite's).
        eval_progress: progress bars inside each evaluation.

    Raises:
        ValueError: an unknown overwrite mode.
    """

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
        register_benchmarks(suite.define_benchmarks)  # again: a worker process gets a copy
        self.suite = suite
        self.store = ResultStore(results)
        self.overwrite = overwrite
        self.progress = progress
        self.eval_progress = eval_progress
        self.wandb_mode = wandb_mode
        self.code = code_version()
        self.trainer_cfg = trainer_config(suite)
        self.configs = SuiteConfigs(suite)
        self.summary = RunSummary()
        self.decisions = StoreDecisions(self.store, suite.name, overwrite, self.summary)

    def reset_summary(self) -> None:
        """Start a fresh :attr:`summary` (a worker reports each job's entries alone)."""
        self.summary = RunSummary()
        self.decisions.summary = self.summary

    # --- records -------------------------------------------------------------
    def _record(self, *, kind: str, jid: str, model: str, bench: Any, fp: tuple[str, dict],
                config: dict, data: dict, status: str, **kw: Any) -> ResultRecord:
        kw.setdefault("lower_is_better", list(bench.lower_is_better))
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
        write_gallery(path, gallery)
        label = f"{rec.benchmark}/{rec.job_id}"
        if rec.status == "not-scorable":
            self.summary.not_scorable.append((label, rec.reason or ""))
        else:
            (self.summary.ok if rec.ok else self.summary.failed).append(label)

    @staticmethod
    def _outcome(res: Any, log_text: str = "") -> dict[str, Any]:
        """``status``/``error``/``reason`` of a record for an :class:`EvaluationResult`."""
        if res.status == "ok":
            return {"status": "ok", "error": None}
        if res.status == "not-scorable":
            return {"status": "not-scorable", "error": None, "reason": res.reason}
        return {"status": "error", "error": ErrorInfo(stage="eval", type="EvaluationFailed",
                                                      message=res.reason or "", log=log_text)}

    @staticmethod
    def _eval_fields(res: Any) -> dict[str, Any]:
        return dict(
            metrics=dict(res.metrics),
            main_value=res.main_value,
            lower_is_better=list(res.lower_is_better),
            tasks=[t.model_dump(mode="json") for t in res.tasks],
            leak=res.leak.model_dump(mode="json") if res.leak is not None else None,
        )

    @staticmethod
    def _error(stage: str, err: BaseException, log_text: str) -> ErrorInfo:
        return ErrorInfo(stage=stage, type=type(err).__name__, message=str(err)[:2000],  # type: ignore[arg-type]
                         traceback="".join(traceback.format_exception(err))[-LOG_TAIL:],
                         log=log_text)

    def _config_error(self, kind: str, jid: str, model: str, bench: Any, err: BaseException) -> None:
        log.error("%s/%s: configuration error: %s", bench.name, jid, err)
        self._write(self._record(kind=kind, jid=jid, model=model, bench=bench,
                                 fp=("config-error", {}), config={}, data={}, status="error",
                                 error=self._error("config", err, "")))

    # --- baselines -----------------------------------------------------------
    def run_baselines(self) -> None:
        """Evaluate the suite's baselines on every applicable benchmark.

        Trivial baselines (``suite.baselines``) need no training. Each fitted baseline of
        :data:`avbench.benchmarks.baselines.FITTED_BASELINES` (CCA) runs, in addition, on
        every benchmark whose evaluation data it accepts (``accepts_data``: CCA on the
        feature-file benchmarks), fitted on that datamodule's TRAIN split only and scored
        through the same evaluator, with the train/test leak check on its training ids.
        """
        import time

        import avbench.benchmarks as B
        from avbench.benchmarks.baselines import FITTED_BASELINES

        entries = [(name, B.BASELINES[name]) for name in self.suite.baselines]
        entries += list(FITTED_BASELINES.items())
        for name, factory in entries:
            baseline = factory()
            fitted = bool(getattr(baseline, "requires_fit", False))
            jid = job_id(name, None, None)
            for bname in self.suite.benchmarks:
                bench = B.get_benchmark(bname)
                app = B.applicability(baseline, bench)
                if not app.applicable:
                    if not fitted:  # a fitted baseline is not in the suite: no skip to report
                        self.summary.skipped.append((f"{bname}/{jid}", app.reason or ""))
                    continue
                try:
                    data_cfg = self.configs.eval_data_cfg(bname)
                except Exception as err:  # config problems are recorded, not fatal
                    self._config_error("baseline", jid, name, bench, err)
                    continue
                if fitted and not baseline.accepts_data(data_cfg):
                    continue  # not its inputs (CCA: no feature file); no row, as before
                if fitted:
                    baseline = factory()  # a fresh fit per benchmark
                config = {"baseline": {"name": name, "options": dict(baseline.meta.options)},
                          "eval_data": data_cfg, "benchmark": bname}
                if fitted:
                    config["baseline"]["fit_split"] = "train"
                data = {"eval": self.configs.data_fp(data_cfg)}
                fp = fingerprint(config | {"protocol": bench.protocol}, data, self.code)
                if not self.decisions.needs(bname, jid, fp[0]):
                    continue
                common = dict(kind="baseline", jid=jid, model=name, bench=bench, fp=fp,
                              config=config, data=data)
                fit_seconds = None
                try:
                    dm = self.configs.eval_datamodule(data_cfg)
                    train_ids = None
                    if fitted:
                        start = time.perf_counter()
                        baseline.fit(dm)
                        fit_seconds = time.perf_counter() - start
                        train_ids = baseline.train_ids
                    res = B.evaluate(baseline, bench, dm, progress=self.eval_progress,
                                     gallery=GALLERY_SAMPLES, train_ids=train_ids,
                                     train_source=f"{bname}:train" if fitted else None)
                except Exception as err:
                    res, outcome = None, {"status": "error", "error": self._error("eval", err, "")}
                else:
                    outcome = self._outcome(res)
                fields = self._eval_fields(res) if res is not None else {}
                timings = Timings(fit_seconds=fit_seconds,
                                  train_samples=len(baseline.train_ids) if fitted and fit_seconds else None,
                                  eval_seconds=res.seconds if res else None,
                                  eval_samples=res.n_samples if res else None,
                                  eval_samples_per_second=rate(res.n_samples, res.seconds)
                                  if res else None)
                self._write(self._record(paper=baseline.meta.paper, timings=timings,
                                         model_class=type(baseline).__module__ + "."
                                         + type(baseline).__name__, **outcome, **common,
                                         **fields),
                            gallery=res.gallery if outcome["status"] == "ok" else None)

    # --- model jobs -------------------------------------------------------------
    def run_job(self, job: Job) -> None:
        """Fit ``job`` when any of its results is needed, then evaluate and store them."""
        import avbench.benchmarks as B

        jid = job.id
        benches = [B.get_benchmark(b) for b in job.benchmarks]
        try:
            model_cfg = self.configs.model_cfg(job)
            model_cls = import_object(model_cfg["class_path"])
            train_cfg = self.configs.train_data_cfg(job)
        except Exception as err:
            for b in benches:
                self._config_error("model", jid, job.model.name, b, err)
            return
        run, skipped = B.plan([model_cls], benches)
        for a in skipped:
            self.summary.skipped.append((f"{a.benchmark}/{jid}", a.reason or ""))
        fit_config = {
            "model": model_cfg,
            "data": train_cfg,
            "trainer": trainer_config(self.suite, job.model),
            "seed": job.seed,
            "select": self.suite.select.model_dump(),
        }
        train_fp = self.configs.data_fp(train_cfg)
        job_fp = fingerprint(fit_config, {"train": train_fp}, self.code)[0]
        todo = []
        for _, bench in run:
            try:
                eval_cfg = self.configs.eval_data_cfg(bench.name)
            except Exception as err:
                self._config_error("model", jid, job.model.name, bench, err)
                continue
            config = fit_config | {"eval_data": eval_cfg, "benchmark": bench.name}
            data = {"train": train_fp, "eval": self.configs.data_fp(eval_cfg)}
            fp = fingerprint(config | {"protocol": bench.protocol}, data, self.code)
            if self.decisions.needs(bench.name, jid, fp[0]):
                todo.append((bench, eval_cfg, config, data, fp))
        if not todo:
            return

        meta = getattr(model_cls, "meta", None)
        common = dict(kind="model", jid=jid, model=job.model.name, model_class=model_cfg["class_path"],
                      paper=getattr(meta, "paper", None), train_dataset=job.dataset.name,
                      seed=job.seed)
        work = self.store.work_dir(self.suite.name, jid)
        if was_interrupted(work):
            log.info("%s: resuming a job a signal interrupted before", jid)
            self.summary.resumed.append(jid)
        log_path = work / "job.log"
        try:
            self._run_job_in(job, todo, common, fit_config, model_cfg, train_cfg, job_fp,
                             work, log_path)
        except RunInterrupted as sig:
            mark_interrupted(work, sig, jid)
            self.summary.interrupted.append(jid)
            raise
        clear_interrupted(work)

    def _run_job_in(self, job: Job, todo: list, common: dict[str, Any], fit_config: dict,
                    model_cfg: dict, train_cfg: dict, job_fp: str, work: Path,
                    log_path: Path) -> None:
        """Fit and evaluate one job inside its log (see :meth:`run_job`)."""
        jid = job.id
        wb = None
        with job_log(log_path):
            try:
                wb = self._wandb_logger(job, fit_config)
                fit = fit_job(job, model_cfg, train_cfg, fit_config["trainer"], self.suite.select,
                              job_fp, work, wb)
            except RunInterrupted as sig:
                log.info("%s: %s during the fit", jid, sig)
                discard_unfinished_fit(work, job_fp)
                self._finish_wandb(wb, {}, failed=True, status="interrupted")
                raise
            except Exception as err:
                log.error("%s: fit failed:\n%s", jid, traceback.format_exc())
                error = self._error(getattr(err, "avbench_stage", "fit"), err, log_tail(log_path))
                for bench, _, config, data, fp in todo:
                    self._write(self._record(bench=bench, fp=fp, config=config, data=data,
                                             status="error", error=error, **common,
                                             wandb=self._wandb_info(wb)))
                self._finish_wandb(wb, {}, failed=True)
                return

            final: dict[str, float] = {}
            try:
                self._evaluate_job(job, todo, common, fit, wb, log_path, final)
            except RunInterrupted as sig:
                log.info("%s: %s during evaluation", jid, sig)
                self._finish_wandb(wb, final, failed=True, status="interrupted")
                raise
            self._finish_wandb(wb, final)

    def _evaluate_job(self, job: Job, todo: list, common: dict[str, Any], fit: Any, wb: Any,
                      log_path: Path, final: dict[str, float]) -> None:
        """Evaluate a fitted job on every benchmark in ``todo`` and store the results."""
        import avbench.benchmarks as B

        jid = job.id
        for bench, eval_cfg, config, data, fp in todo:
            t = fit.timings.model_copy()
            written = dict(bench=bench, fp=fp, config=config, data=data,
                           selection=fit.selection, wandb=self._wandb_info(wb),
                           warnings=list(fit.selection.warnings), **common)
            try:
                dm = self.configs.eval_datamodule(eval_cfg)
                res = B.evaluate(fit.model, bench, dm, train_ids=fit.train_ids,
                                 train_source=f"{job.dataset.name}:train",
                                 progress=self.eval_progress, gallery=GALLERY_SAMPLES)
            except Exception as err:
                log.error("%s on %s: evaluation raised:\n%s", jid, bench.name,
                          traceback.format_exc())
                self._write(self._record(status="error", timings=t,
                                         error=self._error("eval", err, log_tail(log_path)),
                                         **written))
                continue
            t.eval_seconds = res.seconds
            t.eval_samples = res.n_samples
            t.eval_samples_per_second = rate(res.n_samples, res.seconds)
            outcome = self._outcome(res, log_tail(log_path))
            final |= {f"{bench.name}/{k}": v for k, v in res.metrics.items()
                      if isinstance(v, float) and math.isfinite(v)}
            self._write(self._record(timings=t, **outcome, **written,
                                     **self._eval_fields(res)),
                        gallery=res.gallery if outcome["status"] == "ok" else None)

    # --- W&B (avbench.runner.wandb_utils; None when disabled) -------------------
    def _wandb_logger(self, job: Job, config: dict[str, Any]) -> Any:
        from avbench.runner.wandb_utils import make_logger

        return make_logger(
            self.suite, name=job.id, tags=[job.model.name, job.dataset.name, f"seed{job.seed}"],
            config=config, save_dir=self.store.root, mode=self.wandb_mode,
        )

    def _wandb_info(self, wb: Any) -> WandbInfo | None:
        if wb is None:
            return None
        from avbench.runner.wandb_utils import run_info

        return run_info(wb, self.suite)

    @staticmethod
    def _finish_wandb(wb: Any, final: dict[str, float], failed: bool = False,
                      status: str | None = None) -> None:
        if wb is None:
            return
        from avbench.runner.wandb_utils import finish

        try:
            finish(wb, final, failed=failed, status=status)
        except Exception as err:  # noqa: BLE001 - W&B bookkeeping never fails a job
            log.warning("could not finish the W&B run: %s", err)

    # --- everything ---------------------------------------------------------------
    def run(self) -> RunSummary:
        """Baselines, then every job (in worker processes with ``parallel_jobs > 1``).

        SIGTERM/SIGINT stop the run (module docstring): the returned summary then has
        ``interrupted_by`` set and ``exit_code`` 128 + the signal number.
        """
        with interrupt_on_signals():
            try:
                self._run_all()
            except RunInterrupted as sig:
                log.error("suite %s: %s; rerun to complete the missing results",
                          self.suite.name, sig)
                self.summary.interrupted_by = sig.name
                self.summary.signal_number = sig.signum
        return self.summary

    def _run_all(self) -> None:
        jobs = expand(self.suite)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(jobs) + (1 if self.suite.baselines else 0),
                       desc=f"suite {self.suite.name}", unit="job")
        try:
            if self.suite.parallel_jobs > 1:
                check_parallel(self.suite, jobs)
            if self.suite.baselines:
                if bar is not None:
                    bar.set_postfix_str("baselines")
                try:
                    self.run_baselines()
                except RunInterrupted:
                    self.summary.interrupted.append("baselines")
                    self.summary.cancelled.extend(job.id for job in jobs)
                    raise
                if bar is not None:
                    bar.update(1)
            if self.suite.parallel_jobs > 1 and len(jobs) > 1:
                run_parallel(type(self), self.suite, str(self.store.root),
                             {"overwrite": self.overwrite, "wandb_mode": self.wandb_mode},
                             jobs, self.summary, bar)
            else:
                for i, job in enumerate(jobs):
                    if bar is not None:
                        bar.set_postfix_str(job.id)
                    try:
                        self.run_job(job)
                    except RunInterrupted:
                        # jobs not started are cancelled (one stopped before its work: too)
                        self.summary.cancelled.extend(
                            j.id for j in jobs[i:] if j.id not in self.summary.interrupted)
                        raise
                    if bar is not None:
                        bar.update(1)
        finally:
            if bar is not None:
                bar.close()


def run_suite(suite: Suite, results: str | Path, **kwargs: Any) -> RunSummary:
    """Run ``suite`` into the result store at ``results``; ``kwargs`` as :class:`Runner`."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return Runner(suite, results, **kwargs).run()


__all__ = [
    "GALLERY_SAMPLES",
    "OVERWRITE_MODES",
    "RunSummary",
    "Runner",
    "import_object",
    "instantiate",
    "resolve",
    "run_suite",
]
