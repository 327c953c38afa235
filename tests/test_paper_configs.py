"""The paper configs against the table of docs/models.md ("Paper configs").

Every row (method, suite, hyperparameter, value, source) is checked on objects
instantiated the way the runner builds them: the suite's model entry (config +
overrides) and training datamodule through ``avbench.runner.instantiation``,
the merged trainer arguments through ``avbench.runner.suite.trainer_config``
and a Lightning ``Trainer`` built from them (accelerator replaced by CPU: no GPU
here). A table that omits a core recipe fact of a method fails too.
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import yaml

from avbench.configs import CONFIG_DIR
from avbench.runner.instantiation import instantiate, model_and_data_bases
from avbench.runner.suite import Suite, component_config, load_suite, trainer_config

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "models.md"
SUITES = {"paper": CONFIG_DIR / "suites" / "paper.yaml",
          "flickr10k": CONFIG_DIR / "suites" / "paper_flickr10k.yaml"}
METHODS = ("ezvsl", "fnac", "slavc", "lvs", "jsa")
#: recipe facts every method's rows must cover
REQUIRED = {
    ("paper", "trainer.max_epochs"), ("flickr10k", "trainer.max_epochs"),
    ("paper", "trainer.precision"), ("paper", "model.global_batch_size"),
    ("paper", "optimizer.class"), ("paper", "optimizer.lr"),
    ("paper", "model.spectrogram.clip_seconds"), ("paper", "data.train_augment"),
}


def table_rows() -> list[dict[str, str]]:
    """The rows of the "Paper configs" table of docs/models.md."""
    text = DOC.read_text()
    section = text.split("## Paper configs", 1)[1]
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("method", "---") or set(cells[0]) <= {"-", " "}:
            continue
        rows.append(dict(zip(("method", "suite", "key", "value", "source"), cells)))
    return rows


ROWS = table_rows()


@functools.cache
def suite(name: str) -> Suite:
    return load_suite(SUITES[name])


def entry(suite_name: str, method: str):
    return next(m for m in suite(suite_name).models if m.name == method)


@functools.cache
def model(suite_name: str, method: str):
    s = suite(suite_name)
    return instantiate(component_config(entry(suite_name, method), "model", s.source),
                       model_and_data_bases()[0])


@functools.cache
def datamodule(suite_name: str):
    s = suite(suite_name)
    return instantiate(component_config(s.datasets[0], "data", s.source),
                       model_and_data_bases()[1])


@functools.cache
def trainer(suite_name: str, method: str) -> tuple[dict[str, Any], L.Trainer]:
    kwargs = trainer_config(suite(suite_name), entry(suite_name, method))
    cpu = {**kwargs, "accelerator": "cpu", "devices": 1, "strategy": "auto", "logger": False,
           "enable_checkpointing": False, "enable_progress_bar": False,
           "enable_model_summary": False}
    return kwargs, L.Trainer(**cpu)


def attr_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def actual(row: dict[str, str]) -> Any:
    """The instantiated value the row's hyperparameter names."""
    key, suite_name, method = row["key"], row["suite"], row["method"]
    head, _, rest = key.partition(".")
    if head == "model":
        return attr_path(model(suite_name, method), rest)
    if head == "data":
        return attr_path(datamodule(suite_name), rest)
    if head == "trainer":
        kwargs, tr = trainer(suite_name, method)
        if rest == "max_epochs":
            assert tr.max_epochs == kwargs["max_epochs"]
        if rest == "precision":  # fp16 AMP is GPU-only: Lightning maps it to bf16 on CPU
            assert tr.precision == {"16-mixed": "bf16-mixed"}.get(kwargs[rest], kwargs[rest])
        return kwargs[rest]
    if head in ("optimizer", "scheduler"):
        opt = model(suite_name, method).configure_optimizers()
        if head == "scheduler":  # a bare optimiser: constant learning rate
            return "none" if isinstance(opt, torch.optim.Optimizer) else type(opt).__name__
        return type(opt).__name__ if rest == "class" else opt.param_groups[0][rest]
    if head == "batch":
        world = int(rest.split("@")[1])
        dm = datamodule(suite_name)
        plan = dm.resolve_batch_size(world, model(suite_name, method))
        dm.batch_plan = {}
        assert plan["global_batch_size"] == model(suite_name, method).global_batch_size
        return plan["per_device_batch_size"]
    raise AssertionError(f"unknown hyperparameter namespace in {key!r}")


def same(got: Any, want: Any) -> bool:
    if isinstance(got, torch.Tensor):
        return bool(torch.all(got == want))
    if isinstance(got, (tuple, list)):
        return list(got) == list(want)
    if isinstance(want, float) or isinstance(got, float):
        return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=0.0)
    return got == want


def test_the_table_covers_every_method_and_its_core_recipe():
    assert {r["method"] for r in ROWS} == set(METHODS)
    for method in METHODS:
        have = {(r["suite"], r["key"]) for r in ROWS if r["method"] == method}
        assert REQUIRED <= have, (method, REQUIRED - have)
    assert all(r["source"] for r in ROWS), "every value names its source"


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['method']}-{r['suite']}-{r['key']}")
def test_paper_config_value_matches_the_table(row):
    want = yaml.safe_load(row["value"])
    got = actual(row)
    assert same(got, want), f"{row['method']} {row['key']}: config gives {got!r}, table {want!r}"


@pytest.mark.parametrize("name", list(SUITES))
def test_every_paper_job_instantiates_model_data_and_trainer(name):
    """Every model entry of each paper suite builds with every training dataset."""
    s = suite(name)
    for m in s.models:
        assert model(name, m.name).global_batch_size in (128, 256)
        kwargs, tr = trainer(name, m.name)
        assert kwargs["accelerator"] == "gpu" and kwargs["strategy"] == "ddp"
        assert kwargs["devices"] == -1 and tr.max_epochs == kwargs["max_epochs"]
    for d in s.datasets:
        dm = instantiate(component_config(d, "data", s.source), model_and_data_bases()[1])
        assert dm.native_train_frames and dm.global_batch_size is None


def test_global_batch_must_divide_by_the_world_size():
    dm = datamodule("paper")
    with pytest.raises(ValueError, match="not divisible"):
        dm.resolve_batch_size(3, model("paper", "ezvsl"))
    dm.batch_plan = {}
