"""``avbench/configs/suites/paper.yaml`` end to end on CPU: 2 processes (DDP, gloo),
the ``small`` synthetic preset, the paper configs as shipped except for what a
2-core machine without data or GPU forces (listed in ``OVERRIDES``).

So the paper path itself runs: fp32 trainer with JSA's per-model 16-bit mixed
precision (bf16 on CPU), the global batch divided by the world size, 10-s
data windows cropped by each model's front-end (3/5/10 s), the "ezvsl"
training augmentation on native-size frames, JSA's hard image augmentation and
SpecAugment, SLAVC's 5-s test audio, every benchmark of the suite.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from avbench.data.synthetic import generate
from avbench.runner.results import ResultStore, read_result
from avbench.runner.runner import run_suite
from avbench.runner.suite import expand, load_suite

#: what differs from the shipped paper suite, and why
OVERRIDES = {
    "seeds": [0],  # one seed: the path, not the statistics
    "trainer_overrides": {
        "accelerator": "cpu", "devices": 2, "strategy": "ddp",  # no GPU: 2 CPU processes (gloo)
        "limit_train_batches": 1, "limit_val_batches": 1,  # one batch per epoch
        "num_sanity_val_steps": 0,
    },
    "baselines": ["full-image"],
}
#: per model: 2 epochs instead of 20-50 (the per-model trainer_overrides stay
#: otherwise, e.g. JSA's precision); FNAC's warm-up 1 so that VAL selection has an
#: epoch after it; JSA's k scaled to the tiny global batch (20 of 256 -> 1 of 8)
MODEL_EPOCHS = 2
MODEL_OVERRIDES = {"fnac": {"warmup_epochs": 1}, "jsa": {"reciprocal_k": 1}}
#: data: the synthetic roots, 64-px frames, a global batch of 8 (4 per process),
#: no loader workers (2 shared cores)
DATA = {"image_size": 64, "global_batch_size": 8, "num_workers": 0, "batch_size": 16}


@pytest.fixture(autouse=True)
def _no_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("paper_small")
    out = {}
    for name in ("vggsound", "flickr"):
        generate(name, base / name, "small", 0, progress=False)
        out[name] = base / name
    return out


def paper_suite_for_cpu(roots: dict[str, Path]):
    """The shipped paper suite with :data:`OVERRIDES` applied."""
    suite = load_suite("paper", OVERRIDES)
    for entry in suite.models:
        entry.trainer_overrides["max_epochs"] = MODEL_EPOCHS
        entry.overrides.update(MODEL_OVERRIDES.get(entry.name, {}))
    for entry in suite.datasets:
        entry.overrides.update(DATA | {"root": str(roots["vggsound"])})
    suite.benchmarks["vggss-unheard"].overrides.update(DATA | {"root": str(roots["vggsound"])})
    suite.benchmarks["flickr-test"].overrides.update(DATA | {"root": str(roots["flickr"])})
    return suite


@pytest.mark.slow
@pytest.mark.ddp
def test_paper_suite_runs_end_to_end_on_cpu_ddp(tmp_path, roots):
    suite = paper_suite_for_cpu(roots)
    jobs = expand(suite)
    assert len(jobs) == 5 * 2  # five models x (VGGSound-144k, heard-110)
    start = time.monotonic()
    summary = run_suite(suite, tmp_path / "results", progress=False)
    elapsed = time.monotonic() - start
    print(f"paper suite on CPU DDP (small preset): {elapsed:.0f} s")
    assert summary.exit_code == 0, summary.text()
    store = ResultStore(tmp_path / "results")
    for model in ("ezvsl", "fnac", "slavc", "lvs", "jsa"):
        for bench, dataset in (("vggss", "vggsound-144k"), ("flickr-test", "vggsound-144k"),
                               ("vggss-heard", "vggsound-heard"),
                               ("vggss-unheard", "vggsound-heard")):
            rec = read_result(store.path("paper", bench, f"{model}.{dataset}.seed0"))
            assert rec.status == "ok", (model, bench, rec.error)
            assert rec.main_value is not None
            data = rec.config["data"]["init_args"]
            assert data["train_augment"] == "ezvsl" and data["clip_seconds"] == 10.0
            assert data["global_batch_size"] == 8
            trainer = rec.config["trainer"]
            assert trainer["devices"] == 2 and trainer["strategy"] == "ddp"
            assert trainer["precision"] == ("16-mixed" if model == "jsa" else "32-true")


# --- benchmarks/perf/paper_throughput.py at tiny CPU sizes (fast) -----------------
def _throughput_module():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "perf" / "paper_throughput.py"
    spec = importlib.util.spec_from_file_location("paper_throughput", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_paper_throughput_runs_a_paper_config_on_cpu_at_tiny_sizes(tmp_path, capsys):
    pt = _throughput_module()
    out = tmp_path / "rows.json"
    assert pt.main(["--accelerator", "cpu", "--tiny", "--models", "slavc", "--world", "1",
                    "--steps", "1", "--warmup", "1", "--global-batch", "2", "--image-size", "32",
                    "--threads", "1", "--json", str(out)]) == 0
    import json

    (row,) = json.loads(out.read_text())
    assert row["model"] == "slavc" and row["world"] == 1 and row["precision"] == "32-true"
    assert row["global_batch"] == row["per_device_batch"] == 2
    assert row["audio_samples"] == 160000  # the paper data window: 10 s at 16 kHz
    assert row["samples_per_s"] > 0 and row["peak_mem_mb"] > 0
    assert "| slavc | 1 | 32-true | 2 / 2 |" in capsys.readouterr().out


def test_paper_throughput_table_reports_strong_scaling_efficiency():
    pt = _throughput_module()
    rows = [{"model": "jsa", "world": w, "precision": "16-mixed", "global_batch": 256,
             "per_device_batch": 256 // w, "samples_per_s": s, "peak_mem_mb": 1000.0}
            for w, s in ((1, 100.0), (2, 180.0), (8, 400.0))]
    text = pt.table(rows)
    assert "| jsa | 2 | 16-mixed | 256 / 128 | 180.0 | 1000 | 0.90 |" in text
    assert "| jsa | 8 | 16-mixed | 256 / 32 | 400.0 | 1000 | 0.50 |" in text
    assert pt.paper_job("jsa")[1]["precision"] == "16-mixed"
