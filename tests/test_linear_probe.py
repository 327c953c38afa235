"""The linear-probe task (EPIC-Sounds audio classification): metrics by hand on toy
embeddings, the probe fits on the training split only, bad input, and the SSL models
on synthetic EPIC-Sounds through the one evaluation path."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import DataLoader, Dataset

from avbench.benchmarks import evaluate
from avbench.benchmarks.meta import BenchmarkMeta
from avbench.benchmarks.registry import get_benchmark
from avbench.benchmarks.tasks.linear_probe import LinearProbeTask, probe_accuracy
from avbench.configs import resolve_config
from avbench.data.sample import collate
from avbench.data.synthetic import generate


class FakeDM:
    """The datamodule surface the evaluator and the probe use: setup, <split>_dataloader,
    dataset(split), batch_size, num_workers. Records which splits were read."""

    def __init__(self, train: list[dict], val: list[dict], batch_size: int = 8) -> None:
        self.splits = {"train": train, "val": val}
        self.batch_size, self.num_workers = batch_size, 0
        self.read: list[str] = []

    def setup(self, stage: str | None = None) -> None:
        pass

    def dataset(self, split: str) -> Dataset:
        self.read.append(split)
        return self.splits[split]

    def val_dataloader(self) -> DataLoader:
        self.read.append("val")
        return DataLoader(self.splits["val"], batch_size=self.batch_size,
                          collate_fn=collate)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["train"], batch_size=self.batch_size,
                          collate_fn=collate)


def audio_model() -> Any:
    """embed -> {"audio": batch["feat"]}; reads no image (so no placeholder is needed)."""
    def embed(b: dict) -> dict:
        assert "image" in b  # the probe adds the placeholder image to audio-only batches
        return {"audio": b["feat"]}
    return SimpleNamespace(meta=SimpleNamespace(name="toy", capabilities=frozenset({"embed"})),
                           embed=embed)


def items(prefix: str, feats: np.ndarray, labels: np.ndarray) -> list[dict]:
    return [{"id": f"{prefix}{i}", "feat": torch.tensor(f, dtype=torch.float32),
             "label": int(y)} for i, (f, y) in enumerate(zip(feats, labels))]


def clusters(n: int, k: int, seed: int, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """n points in k well-separated Gaussian clusters in 8-d (centre of class c: 10 e_c)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = 10 * np.eye(k, 8)
    if flip:  # class c sits at the centre of class k-1-c
        centres = centres[::-1]
    return centres[y] + rng.normal(size=(n, 8)), y


def probe_bench(**task: Any) -> BenchmarkMeta:
    spec = LinearProbeTask(**task)
    return BenchmarkMeta(name="toy-probe", dataset="toy", split="val", tasks=(spec,),
                         metrics=("top1", "mean_class_acc"), main_score="top1")


# --- metrics by hand ------------------------------------------------------------------------------
def test_probe_accuracy_by_hand():
    y = np.array([0, 0, 0, 0, 1, 2])
    pred = np.array([0, 0, 0, 1, 1, 0])
    m = probe_accuracy(pred, y)
    assert m["top1"] == pytest.approx(4 / 6)
    assert m["mean_class_acc"] == pytest.approx((3 / 4 + 1 + 0) / 3)


def test_separable_embeddings_score_one():
    xt, yt = clusters(60, 4, seed=0)
    xv, yv = clusters(20, 4, seed=1)
    dm = FakeDM(items("t", xt, yt), items("v", xv, yv))
    r = evaluate(audio_model(), probe_bench(), dm, progress=False, raise_errors=True)
    assert r.status == "ok" and r.metrics == {"top1": 1.0, "mean_class_acc": 1.0}
    info = r.tasks[0].info
    assert info["n_fit"] == 60 and info["n"] == 20 and info["converged"]
    assert r.n_samples == 20  # the evaluated split only


def test_random_embeddings_near_chance():
    rng = np.random.default_rng(0)
    k = 5
    train = items("t", rng.normal(size=(500, 8)), np.arange(500) % k)
    val = items("v", rng.normal(size=(500, 8)), np.arange(500) % k)
    r = evaluate(audio_model(), probe_bench(), FakeDM(train, val, batch_size=64), progress=False,
                 raise_errors=True)
    assert r.metrics["top1"] == pytest.approx(1 / k, abs=0.06)
    assert r.metrics["mean_class_acc"] == pytest.approx(1 / k, abs=0.06)


def test_the_probe_is_fitted_on_train_only():
    """Val clusters are swapped relative to train: fitted on train the probe is always
    wrong; fitted on val it would be always right."""
    xt, yt = clusters(40, 2, seed=0)
    xv, yv = clusters(20, 2, seed=1, flip=True)
    dm = FakeDM(items("t", xt, yt), items("v", xv, yv))
    r = evaluate(audio_model(), probe_bench(), dm, progress=False, raise_errors=True)
    assert r.metrics["top1"] == 0.0
    assert dm.read.count("train") == 1
    # evaluating on the fit split is refused
    bad = evaluate(audio_model(), probe_bench(fit_split="val"), dm, progress=False)
    assert bad.status == "failed" and "cannot be evaluated on it" in bad.reason
    # a clip id in both splits is refused
    shared = FakeDM(items("t", xt, yt), items("t", xv, yv))
    leak = evaluate(audio_model(), probe_bench(), shared, progress=False)
    assert leak.status == "failed" and "also in the train split" in leak.reason


def test_seeded_and_deterministic():
    xt, yt = clusters(60, 3, seed=0)
    xt = xt + np.random.default_rng(5).normal(scale=6, size=xt.shape)  # overlapping classes
    xv, yv = clusters(30, 3, seed=1)
    runs = [evaluate(audio_model(), probe_bench(), FakeDM(items("t", xt, yt), items("v", xv, yv),
                                                         batch_size=b),
                     progress=False, raise_errors=True).metrics for b in (4, 30)]
    assert runs[0] == runs[1]


# --- bad input -----------------------------------------------------------------------------------
def test_class_absent_from_train_is_a_counted_skip_or_an_error():
    xt, yt = clusters(40, 2, seed=0)
    xv, yv = clusters(30, 3, seed=1)  # class 2 never in train (10 clips)
    dm = FakeDM(items("t", xt, yt), items("v", xv, yv))
    r = evaluate(audio_model(), probe_bench(), dm, progress=False, raise_errors=True)
    assert r.metrics == {"top1": 1.0, "mean_class_acc": 1.0}
    assert r.tasks[0].info["skipped"] == {"class absent from fit split": 10}
    assert r.tasks[0].info["unseen_classes"] == [2] and r.tasks[0].info["n"] == 20
    with pytest.raises(ValueError, match=r"10 evaluated clip\(s\) have classes absent"):
        evaluate(audio_model(), probe_bench(unseen_classes="error"), dm, progress=False,
                 raise_errors=True)


@pytest.mark.parametrize("where", ["train", "val"])
def test_nan_embedding_is_a_clear_error(where):
    xt, yt = clusters(20, 2, seed=0)
    xv, yv = clusters(10, 2, seed=1)
    (xt if where == "train" else xv)[3, 2] = np.nan
    dm = FakeDM(items("t", xt, yt), items("v", xv, yv))
    r = evaluate(audio_model(), probe_bench(), dm, progress=False)
    split = "train" if where == "train" else "evaluated"
    prefix = "t" if where == "train" else "v"
    assert r.status == "failed"
    assert f"non-finite embeddings for 1 clip(s) of the {split} split (e.g. '{prefix}3')" in r.reason


def test_one_training_class_is_not_scorable_and_unlabelled_is_an_error():
    xt, _ = clusters(20, 2, seed=0)
    xv, yv = clusters(10, 2, seed=1)
    one = evaluate(audio_model(), probe_bench(), FakeDM(items("t", xt, np.zeros(20)),
                                                        items("v", xv, yv)), progress=False)
    assert one.status == "not-scorable" and "1 class(es)" in one.reason
    unlabelled = evaluate(audio_model(), probe_bench(),
                          FakeDM(items("t", xt, np.full(20, -1)), items("v", xv, yv)),
                          progress=False)
    assert unlabelled.status == "failed" and "unlabelled" in unlabelled.reason


def test_benchmark_definition():
    b = get_benchmark("epic-sounds-probe")
    assert (b.dataset, b.split, b.main_score) == ("epic_sounds", "val", "top1")
    spec = b.primary_task
    assert (spec.fit_split, spec.modality, spec.C, spec.max_iter, spec.seed) == (
        "train", "audio", 1.0, 1000, 0)
    assert "no public labels" in b.description


# --- the SSL models on synthetic EPIC-Sounds ----------------------------------------------------------
@pytest.fixture(scope="module")
def epic_tiny(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("epic_sounds")
    generate("epic_sounds", root, "tiny", seed=0, progress=False)
    return root


def data_from_config(root) -> Any:
    from avbench.data import EPICSoundsDataModule

    cfg = yaml.safe_load(open(resolve_config("configs/data/epic_sounds_synthetic.yaml")))["data"]
    assert cfg["class_path"] == "avbench.data.EPICSoundsDataModule"
    args = cfg["init_args"] | {"root": str(root)}
    assert (args["sample_rate"], args["clip_seconds"]) == (16000, 3.0)
    return EPICSoundsDataModule(**args)


TINY = dict(image_width=8, image_layers=(1, 1, 1, 1), audio_width=8, audio_layers=(1, 1, 1, 1))


@pytest.mark.parametrize("name", ["ezvsl", "fnac", "slavc", "lvs"])
def test_ssl_models_run_the_probe_on_synthetic_epic_sounds(epic_tiny, name):
    from avbench.models import REGISTRY

    torch.manual_seed(0)
    extra = {"ezvsl": {"dim": 16}, "fnac": {"dim": 16}, "slavc": {"dim": 16}, "lvs": {}}[name]
    model = REGISTRY[name](**TINY, **extra).train()
    dm = data_from_config(epic_tiny)
    r = evaluate(model, "epic-sounds-probe", dm, progress=False, raise_errors=True)
    assert r.status == "ok", r.reason
    info = r.tasks[0].info
    assert info["n_fit"] == dm.num_samples("train")
    assert info["n"] + info.get("skipped", {}).get("class absent from fit split", 0) == \
        dm.num_samples("val") == r.n_samples
    assert 0.0 <= r.metrics["mean_class_acc"] <= 1.0 and 0.0 <= r.metrics["top1"] <= 1.0
    assert model.training  # the frozen model is put back in training mode afterwards
