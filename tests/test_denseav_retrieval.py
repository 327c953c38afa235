"""The retrieval task's ``score: model`` option (capability ``pairwise_score``): a model is
ranked by its own score matrix over the whole gallery (DenseAV's dense retrieval score), other
models fall back to the embedding cosine; numbers by hand, through the one evaluation path."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from test_denseav import tiny
from test_retrieval_groups import FakeDM

from avbench.benchmarks import evaluate
from avbench.benchmarks.meta import BenchmarkMeta
from avbench.benchmarks.registry import get_benchmark
from avbench.benchmarks.tasks.retrieval import RetrievalTask
from avbench.models.denseav import DenseAV


def bench(**task: Any) -> BenchmarkMeta:
    spec = RetrievalTask(**({"ks": (1, 2), "relevance": "instance", "score": "model"} | task))
    return BenchmarkMeta(name="toy-retrieval", dataset="toy", tasks=(spec,),
                         metrics=tuple(spec.metric_names()), main_score="a2v_r1")


def scalar_model(pairwise: bool) -> Any:
    """Scalars a (audio) and v (visual) per clip; own score ``-|a - v|`` (not a cosine:
    the cosine of 1-d embeddings is +-1 only); embeddings ``[1, 0]`` for every clip."""
    caps = {"embed"} | ({"pairwise_score"} if pairwise else set())
    ns = SimpleNamespace(meta=SimpleNamespace(name="toy", capabilities=frozenset(caps)))
    ns.embed = lambda b: {"audio": torch.tensor([[1.0, 0.0]]).expand(len(b["id"]), 2),
                          "visual": torch.tensor([[1.0, 0.0]]).expand(len(b["id"]), 2)}
    ns.pairwise_features = lambda b: {"a": b["a"], "v": b["v"]}
    ns.pairwise_score = lambda fa, fv: -(fa["a"][:, None] - fv["v"][None, :]).abs()
    return ns


def clips() -> list[dict]:
    # a2v: clip 0 (a=0) -> v: [0.1, 0.9, 2.0, 5.0]: own first; clip 1 (a=1) -> 0.9 own first;
    # clip 2 (a=3) -> nearest 2.0 (own) ; clip 3 (a=3.4) -> nearest 2.0 (clip 2), own second
    a, v = [0.0, 1.0, 3.0, 3.4], [0.1, 0.9, 2.0, 5.0]
    return [{"id": f"c{i}", "a": torch.tensor(a[i]), "v": torch.tensor(v[i])} for i in range(4)]


def test_model_score_ranks_by_the_model_matrix_across_batches():
    res = evaluate(scalar_model(True), bench(), FakeDM(clips(), batch_size=2), progress=False,
                   raise_errors=True)
    m = res.metrics
    assert m["a2v_r1"] == pytest.approx(3 / 4)
    assert m["a2v_r2"] == pytest.approx(1.0)
    # v2a: image 0 (0.1) -> a 0.0 own; 1 (0.9) -> 1.0 own; 2 (2.0) -> 3.0 (own, |1|) vs
    # 1.0 (|1.0|): a tie, expected 1/2; 3 (5.0) -> 3.4 own
    assert m["v2a_r1"] == pytest.approx(3.5 / 4)
    assert res.tasks[0].capability_used == "pairwise_score"
    assert res.tasks[0].info["score"] == "model.pairwise_score"


def test_model_without_pairwise_score_falls_back_to_the_cosine():
    res = evaluate(scalar_model(False), bench(), FakeDM(clips(), batch_size=2), progress=False,
                   raise_errors=True)
    # constant embeddings: every item tied, R@1 = 1/4 exactly (expected over tie orders)
    assert res.metrics["a2v_r1"] == pytest.approx(1 / 4)
    assert res.tasks[0].capability_used == "embed"
    assert "cosine" in res.tasks[0].info["score"]


def test_score_option_keeps_published_dumps_and_sets_requires():
    assert "score" not in RetrievalTask().model_dump()
    assert RetrievalTask().requires == ("embed",)
    spec = RetrievalTask(score="model")
    assert spec.requires == ("pairwise_score", "embed")
    assert spec.model_dump()["score"] == "model"
    with pytest.raises(ValueError, match="audio against visual"):
        RetrievalTask(score="model", modalities=("audio", "visual", "text"))
    task = get_benchmark("spoken-captions-retrieval").tasks[0]
    assert task.score == "model" and task.requires[0] == "pairwise_score"


def tiny_denseav(**kw: Any) -> DenseAV:
    return tiny(**kw).eval()


def test_denseav_pairwise_score_is_its_retrieval_score_over_the_gallery():
    model = tiny_denseav()
    g = torch.Generator().manual_seed(1)
    batch = {"image": torch.rand(5, 3, 32, 32, generator=g),
             "audio": torch.randn(5, 1, 16000, generator=g),
             "audio_mask": (torch.arange(16000) < 12000).float().expand(5, -1).clone()}
    with torch.no_grad():
        whole = model.retrieval_scores(batch)
        parts = [model.pairwise_features({k: v[s] for k, v in batch.items()})
                 for s in (slice(0, 2), slice(2, 5))]
        feats = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        scores = model.pairwise_score(feats, feats)
    torch.testing.assert_close(scores, whole)
    assert "pairwise_score" in DenseAV.meta.capabilities


@pytest.mark.parametrize(("image_agg", "time_agg"), [("max", "mean"), ("mean", "mean"),
                                                    ("max", "max")])
def test_denseav_aggregation_knobs(image_agg, time_agg):
    model = tiny_denseav(image_agg=image_agg, time_agg=time_agg)
    g = torch.Generator().manual_seed(2)
    audio, image = torch.randn(3, 2, 6, 4, generator=g), torch.randn(3, 2, 6, 2, 2, generator=g)
    mask = torch.tensor([[1, 1, 0, 1], [1, 1, 1, 1], [0, 1, 1, 0]], dtype=torch.bool)
    vol = torch.einsum("akct,vkchw->avkhwt", audio, image).flatten(3, 4)  # [A,V,K,N,T]
    red = vol.amax(3) if image_agg == "max" else vol.mean(3)  # [A,V,K,T]
    m = mask[:, None, None, :]
    if time_agg == "mean":
        per_head = (red * m).sum(-1) / m.sum(-1)
    else:
        per_head = red.masked_fill(~m, -1e9).amax(-1)
    torch.testing.assert_close(model.head_scores(audio, image, mask, per_head=True), per_head)
    torch.testing.assert_close(model.head_scores(audio, image, mask), per_head.sum(-1))
    heads_max = (vol.amax(2).amax(2) if image_agg == "max" else vol.amax(2).mean(2))  # [A,V,T]
    mm = mask[:, None, :]
    train = ((heads_max * mm).sum(-1) / mm.sum(-1) if time_agg == "mean"
             else heads_max.masked_fill(~mm, -1e9).amax(-1))
    torch.testing.assert_close(model.training_scores(audio, image, mask), train)
    paired = torch.einsum("bkct,bkchw->bkhwt", audio, image) * mask[:, None, None, None, :]
    diag = per_head[torch.arange(3), torch.arange(3)]
    torch.testing.assert_close(model._paired_head_scores(paired, mask), diag)


def test_denseav_rejects_unknown_aggregation():
    with pytest.raises(ValueError, match="image_agg"):
        tiny_denseav(image_agg="min")
