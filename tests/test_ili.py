"""ILI (issue 15): loss terms, GRaSP wrapper, bad input, stages, checkpoint, learning on synthetic VEGAS.

The learning data are synthetic VEGAS feature files (tiny preset with 100 training
and 40 test videos) written through the session's tiny stand-ins (tests/conftest.py).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch

from avbench.benchmarks.baselines import RandomEmbeddingBaseline
from avbench.benchmarks.evaluator import evaluate
from avbench.data import VEGASDataModule
from avbench.data.datasets.features import FeatureDataset
from avbench.data.synthetic import generate
from avbench.data.synthetic.presets import get_preset
from avbench.data.synthetic.writers.feature_file import write_feature_file
from avbench.metrics.graph import GraphRecoveryMetric, as_graph
from avbench.models import REGISTRY
from avbench.models.base import check_fit_stages
from avbench.models.ili import (
    ILIEmbedding,
    lir_loss,
    proxy_triplet_loss,
    soft_label_alignment,
)
from avbench.nn.class_graph import (
    finish_weights,
    infer_class_graph,
    planted_class_graph,
    random_graph_like,
)
from avbench.runner.fit_stages import run_fit_stages, set_trainable

torch.set_num_threads(1)


# --------------------------------------------------------------------------- loss terms
def test_lir_equals_the_double_sum_over_edges_and_pairs() -> None:
    g = torch.Generator().manual_seed(0)
    b, n, d = 4, 6, 5
    soft = torch.rand(b, n, generator=g)
    graph = torch.rand(n, n, generator=g) * (torch.rand(n, n, generator=g) > 0.6)
    za = torch.nn.functional.normalize(torch.randn(b, d, generator=g), dim=1)
    zv = torch.nn.functional.normalize(torch.randn(b, d, generator=g), dim=1)
    want = 0.0
    for i in range(n):
        for j in range(n):
            pair = sum(float(soft[p, i] * soft[q, j] * (1 - za[p] @ zv[q]))
                       for p in range(b) for q in range(b)) / (b * b)
            want += float(graph[i, j]) * pair
    assert float(lir_loss(soft, graph, za, zv)) == pytest.approx(want, rel=1e-5)
    assert float(lir_loss(soft, torch.zeros(n, n), za, zv)) == 0.0


def test_proxy_triplet_hand_value_and_alignment() -> None:
    proxies = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    z = torch.tensor([[1.0, 0.0]])  # D to proxies: 0, 1, 2
    # label 0: relu(0.2 + 0 - 1) = 0, relu(0.2 + 0 - 2) = 0 -> 0
    assert float(proxy_triplet_loss(z, torch.tensor([0]), proxies, 0.2)) == 0.0
    # label 1: relu(0.2 + 1 - 0) = 1.2, relu(0.2 + 1 - 2) = 0 -> mean 0.6
    assert float(proxy_triplet_loss(z, torch.tensor([1]), proxies, 0.2)) == pytest.approx(0.6)
    logits = torch.randn(3, 4)
    for out in ("sigmoid", "softmax"):
        assert float(soft_label_alignment(logits, logits, out)) == pytest.approx(0.0, abs=1e-6)
        assert float(soft_label_alignment(logits, -logits, out)) > 0.1


# --------------------------------------------------------------------------- GRaSP wrapper
def _toy(n: int = 500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    c = rng.normal(size=n)
    b = 0.8 * a + 0.3 * rng.normal(size=n)
    d = 0.7 * b + 0.6 * c + 0.3 * rng.normal(size=n)  # collider b -> d <- c: identified
    return np.stack([a, b, c, d], 1)


def test_grasp_recovers_a_collider_deterministically() -> None:
    nodes = ["a", "b", "c", "d"]
    g1 = infer_class_graph(_toy(), nodes, normalize="none")
    g2 = infer_class_graph(_toy(), nodes, normalize="none")
    np.testing.assert_array_equal(g1.adjacency, g2.adjacency)
    a = g1.adjacency > 0
    assert a[1, 3] and not a[3, 1] and a[2, 3] and not a[3, 2]  # oriented b -> d, c -> d
    assert a[0, 1] and a[1, 0]  # a - b: undirected in the CPDAG, kept both ways
    assert not a[0, 2] and not a[2, 0]
    assert g1.info["grasp_undirected"] == 1 and g1.info["grasp_directed"] == 2
    assert g1.info["causallearn_version"] and "lambda_value" in g1.info["lambda_meaning"]
    assert g1.adjacency[1, 3] == pytest.approx(abs(np.corrcoef(_toy()[:, 1], _toy()[:, 3])[0, 1]))
    dropped = infer_class_graph(_toy(), nodes, undirected="drop").adjacency > 0
    assert not dropped[0, 1] and not dropped[1, 0] and dropped[1, 3]
    summed = infer_class_graph(_toy(), nodes)
    assert summed.adjacency.sum() == pytest.approx(1.0)


def test_softmax_collinearity_constant_and_nan_columns() -> None:
    x = _toy()
    p = np.exp(x) / np.exp(x).sum(1, keepdims=True)  # rows sum to 1: collinear
    g = infer_class_graph(p, list("abcd"))
    assert list(g.info["dropped"].values()) == ["collinear"]
    const = np.concatenate([x, np.full((len(x), 1), 0.3)], 1)
    g = infer_class_graph(const, list("abcde"))
    assert g.info["dropped"] == {"e": "constant"}
    assert not g.adjacency[4].any() and not g.adjacency[:, 4].any()
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite.*'c'"):
        infer_class_graph(bad, list("abcd"))
    with pytest.raises(ValueError, match="at least 2 samples"):
        infer_class_graph(x[:1], list("abcd"))
    empty = infer_class_graph(np.random.default_rng(1).normal(size=(300, 5)), list("abcde"))
    assert empty.info["empty"] and empty.n_entries == 0


def test_top_k_normalisation_and_random_graph_of_equal_density() -> None:
    a = np.array([[0, 3, 2, 1], [0, 0, 0, 0], [5, 0, 0, 0], [0, 0, 0, 0]], dtype=float)
    k1 = finish_weights(a, top_k=1, normalize="none")
    assert k1[0].tolist() == [0, 3, 0, 0] and k1[2, 0] == 5
    assert finish_weights(a, normalize="max").max() == 1.0
    g = infer_class_graph(_toy(), list("abcd"))
    r = random_graph_like(g, seed=3)
    assert r.n_entries == g.n_entries and r.adjacency.sum() == pytest.approx(g.adjacency.sum())
    assert np.all(np.diag(r.adjacency) == 0)


# --------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def vegas_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tiny = get_preset("tiny")
    preset = replace(tiny, counts={**tiny.counts, "vegas": {"train": 100, "test": 40}})
    root = tmp_path_factory.mktemp("vegas")
    generate("vegas", root, preset, seed=0, progress=False)
    return root


def _dm(root: Path) -> VEGASDataModule:
    return VEGASDataModule(root, source="features", batch_size=32, num_workers=0)


def _trainer(stage: Any, final: bool, callbacks: list) -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
                     **stage.trainer_kwargs())


def _train_batch(dm: VEGASDataModule) -> dict[str, torch.Tensor]:
    ds = dm.dataset("train")
    items = [ds[i] for i in range(len(ds))]
    return {"audio_feat": torch.stack([i["audio_feat"] for i in items]),
            "visual_feat": torch.stack([i["visual_feat"] for i in items]),
            "label": torch.tensor([i["label"] for i in items])}


@pytest.fixture(scope="module")
def fitted(vegas_root: Path) -> dict[str, Any]:
    """ILI fitted on the synthetic VEGAS features, with the losses and teacher weights seen on the way."""
    L.seed_everything(0, verbose=False)
    dm = _dm(vegas_root)
    dm.setup("fit")
    model = ILIEmbedding(num_classes=10, hidden_dim=128, embed_dim=32, teacher_epochs=10,
                         student_epochs=15)
    batch = _train_batch(dm)
    with torch.no_grad():
        before_t, before_s = model.teacher_losses(batch), model.student_losses(batch)
    seen: dict[str, Any] = {}

    def make(stage: Any, final: bool, callbacks: list) -> L.Trainer:
        if final:  # after the teacher stage and its graph hook
            seen["teacher"] = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("teacher")}
            seen["student_init"] = {k: v.clone() for k, v in model.state_dict().items()
                                    if k.startswith("student")}
        return _trainer(stage, final, callbacks)

    result = run_fit_stages(model, dm, make, seed=0)
    with torch.no_grad():
        after_t, after_s = model.teacher_losses(batch), model.student_losses(batch)
    return {"model": model, "dm": dm, "result": result, "seen": seen,
            "losses": (before_t, after_t, before_s, after_s)}


# --------------------------------------------------------------------------- stages
def test_stage_order_and_trainable_parts() -> None:
    model = REGISTRY["ili"](num_classes=4, hidden_dim=8, embed_dim=4)
    stages = check_fit_stages(model.configure_fit_stages(), model)
    assert [s.name for s in stages] == ["teacher", "student"]
    assert stages[0].end_hook == "fit_graph" and stages[1].end_hook is None
    flags = {n: True for n, _ in model.named_parameters()}
    set_trainable(model, stages[0], flags)
    train = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert train == {"teacher_audio", "teacher_visual"}
    set_trainable(model, stages[1], flags)
    train = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert train == {"student_audio", "student_visual", "proxies"}
    assert model.meta.capabilities == {"embed", "class_graph"}
    with pytest.raises(RuntimeError, match="no graph yet"):
        model.class_graph()


def test_teacher_frozen_in_student_stage_and_losses_fall(fitted: dict) -> None:
    model, seen = fitted["model"], fitted["seen"]
    for k, v in seen["teacher"].items():
        assert torch.equal(model.state_dict()[k], v), k
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in seen["student_init"].items())
    before_t, after_t, before_s, after_s = fitted["losses"]
    assert float(after_t["total"]) < 0.7 * float(before_t["total"])
    metric = [float(x["metric_audio"] + x["metric_visual"]) for x in (before_s, after_s)]
    assert metric[1] < 0.7 * metric[0]
    assert float(after_s["lir"]) > 0 and torch.isfinite(after_s["total"])
    assert set(after_t) == {"total", "cls_audio", "cls_visual", "align"}
    assert set(after_s) == {"total", "metric_audio", "metric_visual", "lir"}


def test_graph_is_inferred_on_training_soft_labels(fitted: dict, vegas_root: Path) -> None:
    model, dm = fitted["model"], fitted["dm"]
    cg = model.class_graph()
    assert cg["nodes"] == [f"{m}_{c}" for m in ("audio", "visual") for c in dm.classes]
    assert cg["adjacency"].sum() > 0 and cg["weights"].sum() == pytest.approx(1.0, rel=1e-5)
    info = cg["info"]
    assert info["n_samples"] == len(dm.dataset("train")) and info["lambda_value"] == 2.0
    # scored against the planted graph (mapped onto the dataset's classes) by the task's metric
    metric = GraphRecoveryMetric()
    metric.update(as_graph(cg), as_graph({"adjacency": planted_class_graph(vegas_root, dm.classes).adjacency,
                                          "nodes": cg["nodes"]}))
    scores = metric.compute()
    assert 0.0 <= float(scores["edge_f1"]) <= 1.0


def test_graph_buffer_round_trips_through_a_checkpoint(fitted: dict, tmp_path: Path) -> None:
    model, trainer = fitted["model"], fitted["result"].trainer
    path = tmp_path / "ili.ckpt"
    trainer.save_checkpoint(path)
    loaded = ILIEmbedding.load_from_checkpoint(path, map_location="cpu")
    assert torch.equal(loaded.graph, model.graph) and bool(loaded.graph_fitted)
    assert loaded.graph_nodes == model.graph_nodes
    assert json.dumps(loaded.graph_info, sort_keys=True) == json.dumps(model.graph_info, sort_keys=True)
    np.testing.assert_array_equal(loaded.class_graph()["weights"], model.class_graph()["weights"])
    small = ILIEmbedding(num_classes=2, hidden_dim=4, embed_dim=4)
    small.on_load_checkpoint(torch.load(path, map_location="cpu", weights_only=False))
    assert small.graph.shape == model.graph.shape


def test_student_beats_random_embeddings_on_map(tmp_path: Path) -> None:
    """Learning: on class-structured features (class means + noise, written in the VEGAS
    feature layout) the student's MAP through the ave/vegas evaluator beats random embeddings.
    (The tiny stand-ins' features of the 64-px tiny world are near chance for every model.)"""
    rng = np.random.default_rng(0)
    mu_a, mu_v = rng.normal(size=(10, 128)), rng.normal(size=(10, 1024))

    def split(n: int) -> dict:
        y = np.arange(n) % 10
        return {"audio": mu_a[y] + 2.0 * rng.normal(size=(n, 128)),
                "visual": mu_v[y] + 2.0 * rng.normal(size=(n, 1024)), "labels": y}

    write_feature_file(tmp_path / "f.h5", {"train": split(200), "test": split(60)},
                       class_names=[f"c{i}" for i in range(10)])
    dm = VEGASDataModule(tmp_path, source="features", features_file="f.h5", batch_size=32,
                         num_workers=0)
    L.seed_everything(0, verbose=False)
    model = ILIEmbedding(num_classes=10, hidden_dim=64, embed_dim=32, teacher_epochs=5,
                         student_epochs=10)
    run_fit_stages(model, dm, _trainer, seed=0)
    model.eval()
    ili = evaluate(model, "vegas-retrieval", dm, progress=False).metrics
    rnd = evaluate(RandomEmbeddingBaseline(dim=32), "vegas-retrieval", dm, progress=False).metrics
    assert rnd["map"] < 0.3 and ili["map"] > rnd["map"] + 0.4, (ili, rnd)
    assert model.class_graph()["adjacency"].sum() > 0


# --------------------------------------------------------------------------- bad input
class _FeatureDM:
    """The two things ``fit_graph`` reads from a datamodule: ``classes`` and ``dataset("train")``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ds = FeatureDataset(root, "f.h5", "train", val_fraction=0.0)
        self.classes = self.ds.classes

    def dataset(self, split: str) -> FeatureDataset:
        return self.ds


def _feature_dm(tmp_path: Path, labels: np.ndarray, n_classes: int) -> _FeatureDM:
    rng = np.random.default_rng(0)
    n = len(labels)
    split = {"audio": rng.normal(size=(n, 8)), "visual": rng.normal(size=(n, 12)), "labels": labels}
    write_feature_file(tmp_path / "f.h5", {"train": split, "test": split},
                       class_names=[f"c{i}" for i in range(n_classes)])
    return _FeatureDM(tmp_path)


def test_class_without_training_positive_is_isolated(tmp_path: Path) -> None:
    dm = _feature_dm(tmp_path, np.arange(60) % 3, n_classes=4)  # c3 never in train
    model = ILIEmbedding(num_classes=4, audio_dim=8, visual_dim=12, hidden_dim=8, embed_dim=4)
    with pytest.warns(UserWarning, match="without a training positive.*c3"):
        model.fit_graph(dm)
    assert model.graph_info["dropped"]["audio_c3"] == "excluded"
    assert model.graph_info["dropped"]["visual_c3"] == "excluded"
    for k in (3, 7):
        assert not model.graph[k].any() and not model.graph[:, k].any()
    assert model.graph_info["train_positives"]["c3"] == 0


def test_nan_soft_labels_and_empty_graph(tmp_path: Path) -> None:
    dm = _feature_dm(tmp_path, np.arange(60) % 3, n_classes=3)
    model = ILIEmbedding(num_classes=3, audio_dim=8, visual_dim=12, hidden_dim=8, embed_dim=4)
    batch = {"audio_feat": torch.randn(4, 8), "visual_feat": torch.randn(4, 12),
             "label": torch.tensor([0, 1, 2, 0])}
    strict = ILIEmbedding(num_classes=3, audio_dim=8, visual_dim=12, hidden_dim=8, embed_dim=4,
                          grasp_lambda=1e6, empty_graph="error")
    with pytest.raises(ValueError, match="no edge"):
        strict.fit_graph(dm)
    lenient = ILIEmbedding(num_classes=3, audio_dim=8, visual_dim=12, hidden_dim=8, embed_dim=4,
                           grasp_lambda=1e6)
    with pytest.warns(UserWarning, match="no edge"):
        lenient.fit_graph(dm)
    losses = lenient.student_losses(batch)
    assert float(losses["lir"]) == 0.0 and torch.isfinite(losses["total"])
    model.graph.fill_(0.1)  # a graph, then a diverged teacher
    with torch.no_grad():
        model.teacher_audio[1].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="not finite"):
        model.student_losses(batch)
    with pytest.raises(ValueError, match="non-finite"):
        model.fit_graph(dm)
    wrong = ILIEmbedding(num_classes=5, audio_dim=8, visual_dim=12, hidden_dim=8, embed_dim=4)
    with pytest.raises(ValueError, match="num_classes=5.*3 classes"):
        wrong.fit_graph(dm)


def test_baseline_graph_sources(tmp_path: Path, vegas_root: Path) -> None:
    dm = _dm(vegas_root)
    dm.setup("fit")
    kw = {"num_classes": 10, "hidden_dim": 16, "embed_dim": 8}
    inferred = ILIEmbedding(**kw)
    inferred.fit_graph(dm)
    rnd = ILIEmbedding(graph_source="random", **kw)
    rnd.load_state_dict(inferred.state_dict())  # the same teacher: the same inferred graph first
    rnd.fit_graph(dm)
    assert int((rnd.graph > 0).sum()) == int((inferred.graph > 0).sum())
    oracle = ILIEmbedding(graph_source="oracle", **kw)
    oracle.fit_graph(dm)
    want = planted_class_graph(vegas_root, dm.classes)
    np.testing.assert_allclose(oracle.graph.numpy(), want.adjacency, rtol=1e-6)
    none = ILIEmbedding(graph_source="none", **kw)
    none.fit_graph(dm)
    assert not none.graph.any() and none.graph_info["source"] == "none"
    with pytest.raises(FileNotFoundError, match="cooccurrence_graph.json: the oracle graph needs"):
        planted_class_graph(tmp_path, dm.classes)


# --------------------------------------------------------------------------- class count from the data
def test_num_classes_from_the_datamodule_and_checkpoint(vegas_root: Path, tmp_path: Path) -> None:
    """``num_classes=None``: the class-sized parts are sized in setup() from the datamodule,
    in place (the stage runner's requires_grad flags kept); checkpoints load without C."""
    dm = _dm(vegas_root)
    model = ILIEmbedding(hidden_dim=16, embed_dim=8, teacher_epochs=2, student_epochs=2)
    assert model.num_classes is None and model.proxies.shape == (0, 8)
    batch = _train_batch(dm)
    with pytest.raises(RuntimeError, match="class count is not known yet"):
        model.compute_losses(batch)
    proxies, head = model.proxies, model.teacher_audio[-1].weight
    set_trainable(model, model.configure_fit_stages()[0], {n: True for n, _ in model.named_parameters()})
    model.build_classes(len(dm.classes))
    assert model.proxies is proxies and model.teacher_audio[-1].weight is head  # same objects
    assert model.proxies.shape == (10, 8) and head.shape == (10, 16) and model.graph.shape == (20, 20)
    assert not model.proxies.requires_grad and head.requires_grad  # teacher stage flags kept
    with pytest.raises(ValueError, match="num_classes=10 but the data has 3"):
        model.build_classes(3)

    L.seed_everything(0, verbose=False)
    lazy = ILIEmbedding(hidden_dim=16, embed_dim=8, teacher_epochs=2, student_epochs=2)
    result = run_fit_stages(lazy, dm, _trainer, seed=0)
    assert lazy.num_classes == 10 and lazy.class_graph()["nodes"][0] == f"audio_{dm.classes[0]}"
    path = tmp_path / "lazy.ckpt"
    result.trainer.save_checkpoint(path)
    loaded = ILIEmbedding.load_from_checkpoint(path, map_location="cpu")
    assert loaded.hparams.num_classes is None and loaded.num_classes == 10
    assert torch.equal(loaded.proxies, lazy.proxies) and torch.equal(loaded.graph, lazy.graph)
    with torch.no_grad():
        lazy.eval()
        loaded.eval()
        torch.testing.assert_close(loaded.embed(batch)["audio"], lazy.embed(batch)["audio"])
    # an explicit class count that the data contradict fails at setup, before training
    wrong = ILIEmbedding(num_classes=4, hidden_dim=16, embed_dim=8, teacher_epochs=1, student_epochs=1)
    with pytest.raises(ValueError, match="num_classes=4 but the data has 10"):
        run_fit_stages(wrong, dm, _trainer, seed=0)


# --------------------------------------------------------------------------- graph recovery of the model
def test_graph_recovery_against_the_planted_graph_on_the_dataset_classes(fitted: dict,
                                                                          vegas_root: Path) -> None:
    """The task maps the world's planted graph (world-category nodes) onto the VEGAS classes
    through the class_map, keeps only edges between them, and scores the model's graph."""
    from avbench.metrics.graph import graph_recovery_scores

    model, dm = fitted["model"], fitted["dm"]
    planted = planted_class_graph(vegas_root, dm.classes)
    world = json.loads((vegas_root / "cooccurrence_graph.json").read_text())
    assert planted.n_entries < len(world["edges"]) and planted.info["n_world_edges"] == len(world["edges"])
    res = evaluate(model, "synthetic-graph-recovery", dm, progress=False)
    cg = model.class_graph()
    assert planted.n_entries > 0  # the world of the tiny preset plants 4 between these classes
    assert res.status == "ok", res.reason
    info = res.tasks[0].info
    assert "class_map" in info["mapping"] and info["n_classes"] == 10
    assert info["nodes"] == cg["nodes"]
    assert sorted(map(tuple, info["planted"])) == sorted((s, d) for s, d, _ in planted.edges())
    want = graph_recovery_scores(cg, {"adjacency": planted.adjacency > 0, "nodes": planted.nodes})
    for k in ("edge_precision", "edge_recall", "edge_f1", "shd"):
        assert res.metrics[k] == pytest.approx(want[k]), k
    assert "edge_stability" not in res.metrics and "edge_stability" in info["undefined"]


def test_no_planted_edge_between_the_dataset_classes_is_not_scorable(tmp_path: Path) -> None:
    from types import SimpleNamespace

    (tmp_path / "cooccurrence_graph.json").write_text(json.dumps(
        {"nodes": ["audio_0", "audio_1", "audio_2", "visual_0", "visual_1", "visual_2"],
         "edges": [{"src": "audio_0", "dst": "visual_2", "prob": 0.3}]}))
    (tmp_path / "avbench_synthetic.json").write_text(json.dumps({"class_map": {"x": 0, "y": 1}}))
    nodes = ["audio_x", "audio_y", "visual_x", "visual_y"]
    adj = np.zeros((4, 4), dtype=int)
    adj[0, 3] = 1
    fake = SimpleNamespace(meta=SimpleNamespace(name="g", capabilities=frozenset({"class_graph"})),
                           class_graph=lambda: {"adjacency": adj, "nodes": nodes})
    dm = SimpleNamespace(root=tmp_path, classes=["x", "y"])
    res = evaluate(fake, "synthetic-graph-recovery", dm, progress=False)
    assert res.status == "not-scorable" and "none of the 1 planted world edges" in res.reason
    # an edge between the two classes makes it scorable, in class names
    (tmp_path / "cooccurrence_graph.json").write_text(json.dumps(
        {"nodes": ["audio_0", "audio_1", "visual_0", "visual_1"],
         "edges": [{"src": "audio_0", "dst": "visual_1", "prob": 0.3}]}))
    ok = evaluate(fake, "synthetic-graph-recovery", dm, progress=False)
    assert ok.status == "ok" and ok.metrics["edge_f1"] == 1.0 and ok.metrics["shd"] == 0
    assert ok.tasks[0].info["planted"] == [["audio_x", "visual_y"]]


def test_bootstrap_graphs_give_edge_stability(vegas_root: Path) -> None:
    from avbench.nn.class_graph import bootstrap_class_graphs

    dm = _dm(vegas_root)
    dm.setup("fit")
    model = ILIEmbedding(hidden_dim=16, embed_dim=8, graph_bootstrap=3)
    model.fit_graph(dm)
    boot = model.graph_info["bootstrap"]
    assert boot["n"] == 3 and len(boot["entries"]) == 3
    x, _ = model.training_soft_labels(dm)
    again = bootstrap_class_graphs(x, model.graph_nodes, 3, seed=1)
    assert again["entries"] == boot["entries"]  # seeded: the same resamples and searches
    assert model.class_graph()["bootstrap"] == boot["entries"]
    from avbench.metrics.graph import edge_stability

    graphs = [{"nodes": model.graph_nodes, "edges": [{"src": s, "dst": d} for s, d in e]}
              for e in boot["entries"]]
    want = edge_stability(graphs)["jaccard"]
    res = evaluate(model, "synthetic-graph-recovery", dm, progress=False)
    assert res.status == "ok" and res.metrics["edge_stability"] == pytest.approx(want)
    assert 0.0 <= want <= 1.0 and res.tasks[0].info["bootstrap_n"] == 3
    with pytest.raises(ValueError, match="graph_bootstrap must be >= 0"):
        ILIEmbedding(graph_bootstrap=-1)


def test_graph_figure_per_model_row() -> None:
    from types import SimpleNamespace

    from avbench.benchmarks.tasks.base import PlotRow
    from avbench.benchmarks.tasks.graph_recovery import GraphRecoveryTask, stored_graphs

    nodes = ["audio_a", "audio_b", "visual_a", "visual_b"]

    def record(recovered: list[list[str]], f1: float) -> SimpleNamespace:
        info = {"nodes": nodes, "planted": [["audio_a", "visual_b"]], "recovered": recovered}
        return SimpleNamespace(tasks=[{"task": "graph_recovery", "info": info}], metrics={"edge_f1": f1})

    seeds = [record([["audio_a", "visual_b"], ["audio_b", "audio_a"]], 0.67),
             record([["audio_a", "visual_b"]], 1.0)]
    got = stored_graphs(seeds[0], "graph_recovery")
    assert got is not None and got[0] == nodes and got[1][0, 3] == 1 and got[2][1, 0] == 1
    rows = [PlotRow("ili", False, "C0", seeds, None),
            PlotRow("random-embedding", True, "0.5", [SimpleNamespace(tasks=[], metrics={})], None)]
    figs = GraphRecoveryTask().leaderboard_figures("toy-graph", rows)
    assert [slug for slug, _ in figs] == ["graph"]
    (ax,) = [a for a in figs[0][1].axes if a.images]
    img = ax.images[0].get_array()
    assert img.shape[:2] == (4, 4)
    assert np.allclose(img[0, 0], 1.0)  # nothing recovered: white
    assert img[1, 0].min() < 1.0 and img[1, 0].min() > img[0, 3].min()  # 1 of 2 seeds: lighter
    assert GraphRecoveryTask().leaderboard_figures("toy-graph", rows[1:]) == []


# --------------------------------------------------------------------------- VEGAS val hold-out
def test_vegas_feature_val_holdout_has_its_own_salt(vegas_root: Path) -> None:
    """The feature file's train rows were chosen by the raw split's salted hash (units >= 0.2),
    so the val hold-out uses a salt of its own: at the shipped config's fraction it holds out
    about that share of the training rows (the old salt: a single row), disjoint from test."""
    import yaml

    from avbench.configs import CONFIG_DIR
    from avbench.data.splits import FEATURES_VAL_SALT, HOLDOUT_SALT, holdout_mask

    cfg = yaml.safe_load((CONFIG_DIR / "data" / "vegas_features_synthetic.yaml").read_text())
    frac = cfg["data"]["init_args"]["val_fraction"]
    assert 0.05 <= frac <= 0.15
    dm = VEGASDataModule(vegas_root, source="features", val_fraction=frac, num_workers=0)
    ids = {s: [r.id for r in dm.dataset(s).records] for s in ("train", "val", "test")}
    stored = ids["train"] + ids["val"]
    assert len(stored) >= 100 and not set(ids["val"]) & set(ids["train"])  # raw train + val clips
    assert not set(ids["val"]) & set(ids["test"]) and not set(ids["train"]) & set(ids["test"])
    assert 0.4 * frac * len(stored) <= len(ids["val"]) <= 2.0 * frac * len(stored), len(ids["val"])
    assert sum(holdout_mask(stored, frac, salt=HOLDOUT_SALT)) == 1  # the old, shared salt
    assert sorted(ids["val"]) == sorted(i for i, h in zip(stored, holdout_mask(
        stored, frac, salt=FEATURES_VAL_SALT)) if h)


def test_constant_soft_labels_give_an_empty_graph(tmp_path: Path) -> None:
    """A teacher whose soft labels are constant (e.g. collapsed heads): every node is dropped as
    constant before GRaSP, the graph is empty, and the documented fallback applies (warn and
    train without LIR; ``empty_graph="error"`` raises) - never an exception inside causal-learn."""
    dm = _feature_dm(tmp_path, np.arange(60) % 3, n_classes=3)
    batch = {"audio_feat": torch.randn(4, 8), "visual_feat": torch.randn(4, 12),
             "label": torch.tensor([0, 1, 2, 0])}
    for mode in ("warn", "error"):
        model = ILIEmbedding(num_classes=3, audio_dim=8, visual_dim=12, hidden_dim=8, embed_dim=4,
                             empty_graph=mode)
        with torch.no_grad():
            for head in (model.teacher_audio[-1], model.teacher_visual[-1]):
                head.weight.zero_()
                head.bias.fill_(0.3)
        if mode == "error":
            with pytest.raises(ValueError, match="no edge.*constant"):
                model.fit_graph(dm)
            continue
        with pytest.warns(UserWarning, match="no edge"):
            model.fit_graph(dm)
        assert set(model.graph_info["dropped"].values()) == {"constant"}
        assert model.graph_info["empty"] and not model.graph.any()
        losses = model.student_losses(batch)
        assert float(losses["lir"]) == 0.0 and torch.isfinite(losses["total"])
