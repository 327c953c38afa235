"""SIGTERM / SIGINT to ``avbench benchmark``: exit 128 + signal, summary printed, the job in
flight marked interrupted, nothing partial on disk, and a rerun completes every result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from test_runner_core import TinyAV, suite_dict

from avbench.runner.results import ResultStore, read_result
from avbench.runner.signals import INTERRUPTED_MARKER, RunInterrupted, interrupt_on_signals
from avbench.runner.summary import RunSummary

TESTS = Path(__file__).resolve().parent


class SlowAV(TinyAV):
    """TinyAV whose training steps take 0.25 s, so a signal lands in the middle of a fit."""

    def training_step(self, batch, batch_idx):
        time.sleep(0.25)
        return super().training_step(batch, batch_idx)


def test_handler_raises_once_and_restores_the_previous_one():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RunInterrupted) as err, interrupt_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    assert err.value.signum == signal.SIGTERM and str(err.value) == "interrupted by SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before
    s = RunSummary(interrupted_by="SIGINT", signal_number=2, failed=["x/y"])
    assert s.exit_code == 130 and s.text().startswith("INTERRUPTED by SIGINT")


def _start(tmp_path: Path, results: Path, parallel_jobs: int = 1,
           seeds: tuple[int, ...] = (0, 1)) -> subprocess.Popen:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    suite = suite_dict(data, models=[{"name": "slow", "class_path": "test_signals.SlowAV"}],
                       seeds=seeds, baselines=["center-prior"],
                       benchmarks={"vggss": {"dataset": "toy"}}, parallel_jobs=parallel_jobs,
                       trainer_overrides={"max_epochs": 4, "limit_train_batches": 2})
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(yaml.safe_dump(suite))
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=f"{TESTS}{os.pathsep}"
               + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "avbench.cli", "benchmark", "--suite", str(suite_file),
         "--results", str(results), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _interrupt_mid_job(tmp_path: Path, results: Path, sig: signal.Signals) -> tuple[int, str, str]:
    proc = _start(tmp_path, results)
    log = results / "_work" / "mock" / "slow.toy.seed0" / "job.log"
    deadline = time.monotonic() + 180
    while not log.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert log.exists(), proc.communicate()
    time.sleep(1.5)  # inside the fit (8 steps of 0.25 s)
    os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def _assert_nothing_partial(results: Path) -> None:
    leftovers = [p for p in results.rglob("*") if p.name.startswith(".") and p.is_file()]
    assert not leftovers, leftovers  # no temporary file of an atomic write
    store = ResultStore(results)
    for p in store.files():
        read_result(p)  # every stored result is complete and valid
    work = results / "_work" / "mock" / "slow.toy.seed0"
    assert not (work / "fit.json").exists()  # the fit did not finish: no fit state
    assert not list((work / "checkpoints").glob("*.ckpt")) if (work / "checkpoints").exists() else True


@pytest.mark.slow  # two subprocesses that import torch and Lightning, twice
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_job_then_rerun_completes(tmp_path, sig):
    results = tmp_path / "results"
    code, out, err = _interrupt_mid_job(tmp_path, results, sig)
    assert code == 128 + sig, (out, err)
    assert f"INTERRUPTED by {sig.name}" in out and "INTERRUPTED slow.toy.seed0" in out
    assert "ok: 1" in out  # the baseline finished before the signal
    # one line about the signal, no traceback (Lightning's own start-up chatter aside)
    assert "Traceback" not in err, err
    assert [line for line in err.splitlines() if "interrupted" in line.lower()] == [
        f"ERROR avbench.runner.runner: suite mock: interrupted by {sig.name}; rerun to "
        "complete the missing results"], err
    marker = results / "_work" / "mock" / "slow.toy.seed0" / INTERRUPTED_MARKER
    assert json.loads(marker.read_text())["signal"] == sig.name
    _assert_nothing_partial(results)
    store = ResultStore(results)
    assert not store.path("mock", "vggss", "slow.toy.seed0").exists()
    assert not store.path("mock", "vggss", "slow.toy.seed1").exists()

    # the rerun completes what is missing and clears the marker
    proc = _start(tmp_path, results)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (out, err)
    assert "resumed (interrupted before) slow.toy.seed0" in out and "up-to-date: 1" in out
    assert not marker.exists()
    for jid in ("slow.toy.seed0", "slow.toy.seed1"):
        assert read_result(store.path("mock", "vggss", jid)).ok


def _log_start(log: Path) -> float:
    """Wall-clock time (s since the epoch) of the first line of a job log."""
    first = log.read_text().splitlines()[0]
    return datetime.strptime(first[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


@pytest.mark.slow  # spawned workers import torch and Lightning
def test_sigterm_stops_parallel_workers_and_starts_no_new_job(tmp_path):
    """Three jobs on two workers: SIGTERM mid-fit interrupts the two in flight, the third
    never starts (no job log begins after the signal), and the process exits within
    seconds of the interrupted jobs recording themselves."""
    results = tmp_path / "results"
    seeds = (0, 1, 2)
    proc = _start(tmp_path, results, parallel_jobs=2, seeds=seeds)
    work = results / "_work" / "mock"
    logs = [work / f"slow.toy.seed{k}" / "job.log" for k in (0, 1)]
    deadline = time.monotonic() + 240
    while not all(p.exists() for p in logs) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(p.exists() for p in logs), proc.communicate()
    time.sleep(1.5)  # both fits take >= 2 s of training steps: neither has finished
    signalled = time.time()
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=180)
    exited = time.time()
    assert proc.returncode == 143, (out, err)
    assert "INTERRUPTED by SIGTERM" in out
    assert "INTERRUPTED slow.toy.seed0" in out and "INTERRUPTED slow.toy.seed1" in out
    assert "CANCELLED (not started) slow.toy.seed2" in out, out
    markers = [log.parent / INTERRUPTED_MARKER for log in logs]
    assert all(m.exists() for m in markers)
    # no job started after the signal
    assert not (work / "slow.toy.seed2" / "job.log").exists()
    assert all(_log_start(log) <= signalled for log in work.glob("*/job.log"))
    # the exit follows the in-flight jobs' records within seconds, and the signal within a bound
    assert exited - max(m.stat().st_mtime for m in markers) < 15, (out, err)
    assert exited - signalled < 60, (out, err)
    _assert_nothing_partial(results)
    store = ResultStore(results)
    assert not any(store.path("mock", "vggss", f"slow.toy.seed{k}").exists() for k in seeds)

    proc = _start(tmp_path, results, parallel_jobs=2, seeds=seeds)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (out, err)
    assert all(read_result(store.path("mock", "vggss", f"slow.toy.seed{k}")).ok for k in seeds)
    assert not any(m.exists() for m in markers)


def test_worker_skips_a_job_picked_up_after_the_signal(tmp_path, monkeypatch):
    """A worker whose pool was stopped returns the job as cancelled without running it."""
    import multiprocessing
    from types import SimpleNamespace

    from avbench.runner import process_pool

    ran = []
    runner = SimpleNamespace(summary=RunSummary(), run_job=ran.append)
    runner.reset_summary = lambda: setattr(runner, "summary", RunSummary())
    stop = multiprocessing.get_context("spawn").Event()
    monkeypatch.setattr(process_pool, "_WORKER", runner)
    monkeypatch.setattr(process_pool, "_STOP", stop)
    job = SimpleNamespace(id="m.d.seed0")
    assert process_pool._worker_run_job(job).cancelled == [] and ran == [job]
    stop.set()
    summary = process_pool._worker_run_job(job)
    assert summary.cancelled == ["m.d.seed0"] and ran == [job]  # not run again


def test_sequential_run_lists_the_jobs_after_the_signal_as_cancelled(tmp_path, monkeypatch):
    from avbench.runner.runner import Runner
    from avbench.runner.suite import Suite, expand

    suite = Suite.model_validate(suite_dict(tmp_path, seeds=(0, 1, 2), baselines=[]))
    jobs = [job.id for job in expand(suite)]
    runner = Runner(suite, tmp_path / "results", progress=False)
    started = []

    def run_job(job):
        started.append(job.id)
        if len(started) == 2:
            runner.summary.interrupted.append(job.id)
            raise RunInterrupted(signal.SIGTERM)

    monkeypatch.setattr(runner, "run_job", run_job)
    summary = runner.run()
    assert summary.exit_code == 143 and len(started) == 2
    assert summary.interrupted == [started[1]]
    assert started == jobs[:2] and summary.cancelled == jobs[2:] and len(jobs) > 2
    assert f"CANCELLED (not started) {jobs[-1]}" in summary.text()


def test_wandb_run_of_an_interrupted_job_is_finished_as_interrupted(tmp_path):
    """What the runner calls on a signal: the run summary says interrupted, exit code 1."""
    from types import SimpleNamespace

    from avbench.runner.wandb_utils import finish

    finished = {}
    run = SimpleNamespace(summary={}, config={"seed": 0}, dir=str(tmp_path), id="r1",
                          finish=lambda exit_code: finished.setdefault("code", exit_code))
    finish(SimpleNamespace(experiment=run), {"vggss/ap50": 0.5}, failed=True, status="interrupted")
    assert run.summary["status"] == "interrupted" and finished["code"] == 1
    payload = json.loads((tmp_path / "avbench-final.json").read_text())
    assert payload["status"] == "interrupted" and payload["metrics"] == {"vggss/ap50": 0.5}
