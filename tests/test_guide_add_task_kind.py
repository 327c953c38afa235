"""A task kind registered from test code only ("mean audio energy") runs through the whole
stack without editing any package file: ``evaluate``, then the runner (a suite declaring the
benchmark under ``define_benchmarks:``), the result store and the leaderboard."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pytest
import torch
from test_benchmarks_evaluate import FakeDM, fake_model
from test_runner_core import TinyDataModule, suite_dict

from avbench.benchmarks import (
    BENCHMARKS,
    TASK_KINDS,
    BatchOutputs,
    BenchmarkMeta,
    TaskRunner,
    TaskSpec,
    evaluate,
    register_task,
)
from avbench.capabilities import Capability


# --- the toy kind -------------------------------------------------------------------------------
@register_task
class AudioEnergyTask(TaskSpec):
    """Mean over clips of the clip's mean squared audio sample (lower is better, for the test)."""

    task: Literal["audio_energy"] = "audio_energy"
    requires: tuple[Capability, ...] = ("embed",)
    lower_is_better: ClassVar[frozenset[str]] = frozenset({"energy"})

    def metric_names(self) -> list[str]:
        return ["energy"]

    def make_runner(self, capability: str) -> AudioEnergyRunner:
        return AudioEnergyRunner(self, capability)


class AudioEnergyRunner(TaskRunner):
    def __init__(self, spec: AudioEnergyTask, capability: str) -> None:
        super().__init__(spec, capability)
        self.per_id: dict[str, float] = {}

    def update(self, out: BatchOutputs) -> None:
        energy = out.batch["audio"].float().pow(2).flatten(1).mean(1)
        self.per_id.update(zip(out.ids(), energy.tolist()))  # de-duplicated by id

    def compute(self) -> dict[str, float]:
        self.info["n"] = len(self.per_id)
        return {"energy": sum(self.per_id.values()) / len(self.per_id)}


TOY = {"name": "toy-audio-energy", "dataset": "toy", "split": "test",
       "tasks": [{"task": "audio_energy"}], "metrics": ["energy"], "main_score": "energy",
       "description": "mean audio energy (test-only task kind)"}


@pytest.fixture(autouse=True)
def _no_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr("sys.argv", ["avbench"])


@pytest.fixture
def restore_benchmarks():
    saved = dict(BENCHMARKS)
    yield
    BENCHMARKS.clear()
    BENCHMARKS.update(saved)


def cells(line: str) -> list[str]:
    """The stripped cells of a Markdown table line."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def clip(sid: str, amplitude: float) -> dict[str, Any]:
    return {"id": sid, "audio": torch.full((1, 40), amplitude), "label": 0}


# --- (a) through evaluate -------------------------------------------------------------------------
def test_toy_kind_through_evaluate():
    assert TASK_KINDS["audio_energy"] is AudioEnergyTask
    bench = BenchmarkMeta.model_validate(TOY)
    assert isinstance(bench.tasks[0], AudioEnergyTask)
    assert bench.lower_is_better == ("energy",) and not bench.higher_is_better
    assert bench.protocol == {"audio_energy": {"task": "audio_energy", "requires": ["embed"]}}
    items = [clip("a", 1.0), clip("b", 2.0), clip("c", 3.0)]
    model = fake_model("m", {"embed"})
    res = evaluate(model, bench, FakeDM(items, batch_size=3), progress=False, gallery=6)
    assert res.status == "ok" and res.n_samples == 3
    assert res.metrics == {"energy": pytest.approx((1 + 4 + 9) / 3)}
    assert res.main_value == res.metrics["energy"] and res.lower_is_better == ["energy"]
    assert res.tasks[0].task == "audio_energy" and res.tasks[0].capability_used == "embed"
    assert res.tasks[0].info == {"n": 3}
    assert res.gallery is None  # the toy runner keeps no gallery
    # the batch size does not matter
    again = evaluate(model, bench, FakeDM(items, batch_size=1), progress=False)
    assert again.metrics == res.metrics
    # two real samples sharing an id fail the evaluation (only DDP padding is dropped)
    twice = evaluate(model, bench, FakeDM(items + [clip("c", 3.0)]), progress=False)
    assert twice.status == "failed" and "c" in twice.reason
    # applicability comes from the spec's `requires`
    skipped = evaluate(fake_model("loc", {"localize"}), bench, FakeDM(items), progress=False)
    assert skipped.status == "skipped" and "embed" in skipped.reason


# --- (b) through the runner, the store and the leaderboard ----------------------------------------
def test_toy_kind_through_runner_store_and_leaderboard(tmp_path, restore_benchmarks):
    from avbench.runner.leaderboard import write_leaderboard
    from avbench.runner.results import ResultStore, read_result
    from avbench.runner.runner import run_suite
    from avbench.runner.suite import Suite

    root = tmp_path / "data"
    root.mkdir()
    d = suite_dict(root, models=[{"name": "tiny-a", "class_path": "test_runner_core.TinyAV"}],
                   seeds=(0,), baselines=[], define_benchmarks=[TOY],
                   benchmarks={"toy-audio-energy": {"dataset": "toy"}})
    d["datasets"][0]["init_args"]["leak"] = 0
    suite = Suite.model_validate(d)
    assert "toy-audio-energy" in BENCHMARKS
    summary = run_suite(suite, tmp_path / "results", progress=False)
    assert summary.exit_code == 0 and summary.ok == ["toy-audio-energy/tiny-a.toy.seed0"]

    test_items = TinyDataModule(str(root)).dataset("test").items
    expected = sum(float(it["audio"].pow(2).mean()) for it in test_items) / len(test_items)
    store = ResultStore(tmp_path / "results")
    rec = read_result(store.path("mock", "toy-audio-energy", "tiny-a.toy.seed0"))
    assert rec.ok and rec.main_score == "energy"
    assert rec.metrics["energy"] == pytest.approx(expected, rel=1e-6)
    assert rec.lower_is_better == ["energy"] and not rec.higher_is_better
    assert rec.tasks[0]["task"] == "audio_energy" and rec.tasks[0]["info"]["n"] == len(test_items)
    assert rec.protocol == {"audio_energy": {"task": "audio_energy", "requires": ["embed"]}}

    out = tmp_path / "leaderboards"
    write_leaderboard(tmp_path / "results", out, wandb_mode="disabled")
    md = (out / "toy-audio-energy.md").read_text()
    table = [cells(line) for line in md.splitlines() if line.startswith("|")]
    assert table[0] == ["Model", "Train data", "energy ↓", "Seeds"]  # direction from the spec
    row = next(r for r in table if r[0] == "tiny-a")
    assert row == ["tiny-a", "toy", f"**{expected:.3f}**", "1/1"]  # the only row is the best
    assert "toy-audio-energy (energy" in (out / "overview.md").read_text()
    assert (out / "plots" / "toy-audio-energy_bars.png").is_file()


def test_task_modules_import_matplotlib_lazily():
    """Figure hooks import matplotlib inside the functions: no module-level import in the package
    of the evaluator (torchmetrics may still import it on its own)."""
    import ast
    from pathlib import Path

    import avbench.benchmarks as B

    for path in Path(B.__file__).parent.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "matplotlib" for n in names), path
