"""Sounding-action retrieval: relevance by verb (and verb + noun), text modality pairs,
missing modalities; numbers by hand on toy embeddings, through the one evaluation path."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

from avbench.benchmarks import evaluate
from avbench.benchmarks.meta import BenchmarkMeta
from avbench.benchmarks.registry import get_benchmark
from avbench.benchmarks.tasks.retrieval import RetrievalTask, action_groups, narration_noun
from avbench.data.sample import collate


class FakeDM:
    """setup(stage) + test_dataloader() over a list of samples."""

    def __init__(self, items: list[dict], batch_size: int = 4) -> None:
        self.items, self.batch_size = items, batch_size

    def setup(self, stage: str | None = None) -> None:
        pass

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.items, batch_size=self.batch_size, collate_fn=collate)


def embed_model(modalities: tuple[str, ...] = ("audio", "visual", "text")) -> Any:
    """A model whose embeddings are the batch's ``e_<modality>`` tensors."""
    return SimpleNamespace(
        meta=SimpleNamespace(name="toy", capabilities=frozenset({"embed"})),
        embed=lambda b: {m: b[f"e_{m}"] for m in modalities},
    )


def bench(**task: Any) -> BenchmarkMeta:
    spec = RetrievalTask(**({"ks": (1,), "compute_map": True} | task))
    return BenchmarkMeta(name="toy-retrieval", dataset="toy", tasks=(spec,),
                         metrics=tuple(spec.metric_names()), main_score="map")


def item(i: int, verb: str, text: str, a: list[float], v: list[float],
         t: list[float] | None = None) -> dict[str, Any]:
    return {"id": f"c{i}", "class_name": verb, "text": text, "e_audio": torch.tensor(a),
            "e_visual": torch.tensor(v), "e_text": torch.tensor(t if t is not None else a)}


# --- the noun heuristic and the groups ------------------------------------------------------
@pytest.mark.parametrize(("text", "verb", "noun"), [
    ("cuts the carrot with the knife", "cuts", "carrot"),
    ("picks up the cutting board", "picks", "board"),
    ("Woman X puts the card on the table", "puts", "card"),
    ("whisks the bread with the right hand", "whisks", "bread"),
    ("stands", "stands", ""),
    ("opens a drawer.", "opens", "drawer"),
])
def test_narration_noun(text, verb, noun):
    assert narration_noun(text, verb) == noun


def test_action_groups():
    verbs, texts = ["Cuts", "cuts", "washes"], ["cuts the carrot", "cuts the onion", "washes a cup"]
    assert action_groups(verbs, texts, "verb") == ["cuts", "cuts", "washes"]
    assert action_groups(verbs, texts, "verb_noun") == ["cuts|carrot", "cuts|onion", "washes|cup"]
    with pytest.raises(ValueError, match="needs batch"):
        action_groups(verbs, None, "verb_noun")


# --- metrics by hand ---------------------------------------------------------------------------
def four_clips() -> list[dict]:
    # audio and visual on the unit circle; verbs: c0, c1 cut; c2, c3 wash
    e = [[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [-1.0, 0.0]]
    return [
        item(0, "cuts", "cuts the carrot", e[0], e[0]),
        item(1, "cuts", "cuts the onion", e[1], e[1]),
        item(2, "washes", "washes the cup", e[2], e[2]),
        item(3, "washes", "washes the cup", e[3], e[3]),
    ]


def test_verb_relevance_map_by_hand():
    """Identical audio/visual embeddings; cosine rankings worked out by hand."""
    r = evaluate(embed_model(("audio", "visual")), bench(relevance="verb"), FakeDM(four_clips()),
                 progress=False, raise_errors=True)
    # query c0 (cut): sims c0 1, c2 .8, c1 0, c3 -1 -> relevant c0 (rank 1), c1 (rank 3): AP (1 + 2/3)/2
    # query c1 (cut): c1 1, c2 .6, c0 0, c3 0 (tie of c0 and c3 at ranks 3-4, one relevant)
    #   -> AP = (1 + E[2/rank of c0]) / 2 = (1 + (2/3 + 2/4)/2) / 2
    # query c2 (wash): c2 1, c0 .8, c1 .6, c3 -.8 -> AP (1 + 2/4)/2
    # query c3 (wash): c3 1, c1 0, c2 -.8, c0 -1 -> AP (1 + 2/3)/2
    aps = [(1 + 2 / 3) / 2, (1 + (2 / 3 + 2 / 4) / 2) / 2, (1 + 2 / 4) / 2, (1 + 2 / 3) / 2]
    assert r.status == "ok"
    assert r.metrics["a2v_map"] == pytest.approx(sum(aps) / 4)
    assert r.metrics["v2a_map"] == pytest.approx(sum(aps) / 4)  # symmetric here
    assert r.metrics["a2v_r1"] == 1.0  # each clip's own pair is its nearest
    assert "verb" in r.tasks[0].info["relevance"]
    # instance relevance on the same clips: only the pair counts, AP = 1 for every query
    inst = evaluate(embed_model(("audio", "visual")), bench(relevance="instance"),
                    FakeDM(four_clips()), progress=False, raise_errors=True)
    assert inst.metrics["a2v_map"] == 1.0


def test_verb_noun_splits_a_verb_group():
    clips = four_clips()  # c0/c1: cut carrot / cut onion -> different groups; c2/c3 same
    r = evaluate(embed_model(("audio", "visual")), bench(relevance="verb_noun"), FakeDM(clips),
                 progress=False, raise_errors=True)
    # c0, c1: only themselves relevant, ranked first -> AP 1; c2, c3 as in verb mode
    aps = [1.0, 1.0, (1 + 2 / 4) / 2, (1 + 2 / 3) / 2]
    assert r.metrics["a2v_map"] == pytest.approx(sum(aps) / 4)


def test_perfect_group_embeddings_score_one_and_batching_does_not_matter():
    verbs = ["cuts", "washes", "opens", "stirs"]
    items = []
    for i in range(40):
        g = i % 4
        e = torch.nn.functional.one_hot(torch.tensor(g), 4).float().tolist()
        items.append(item(i, verbs[g], f"{verbs[g]} the pot", e, e))
    res = [evaluate(embed_model(), bench(relevance="verb", modalities=("audio", "visual", "text")),
                    FakeDM(items, batch_size=b), progress=False, raise_errors=True) for b in (3, 40)]
    assert res[0].metrics == res[1].metrics  # same verb in different batches is relevant
    assert all(v == 1.0 for k, v in res[0].metrics.items()), res[0].metrics


def test_random_embeddings_near_chance():
    g = torch.Generator().manual_seed(0)
    verbs = ["cuts", "washes", "opens", "stirs"]
    items = [item(i, verbs[i % 4], "x", torch.randn(8, generator=g).tolist(),
                  torch.randn(8, generator=g).tolist()) for i in range(400)]
    r = evaluate(embed_model(("audio", "visual")), bench(relevance="verb", ks=(1, 10)),
                 FakeDM(items, batch_size=64), progress=False, raise_errors=True)
    assert r.metrics["a2v_r1"] == pytest.approx(0.25, abs=0.06)  # 100 of 400 share the verb
    assert r.metrics["map"] == pytest.approx(0.25, abs=0.04)


# --- modalities ------------------------------------------------------------------------------------
def test_text_pairs_metric_names_and_values():
    spec = RetrievalTask(modalities=("audio", "visual", "text"), ks=(1,), compute_map=True,
                         relevance="verb")
    assert spec.modality_pairs() == (("audio", "visual"), ("audio", "text"), ("visual", "text"))
    assert spec.metric_names() == [
        "a2v_r1", "v2a_r1", "a2v_map", "v2a_map", "a2t_r1", "t2a_r1", "a2t_map", "t2a_map",
        "v2t_r1", "t2v_r1", "v2t_map", "t2v_map", "map"]
    clips = four_clips()
    for c in clips:  # text = audio rotated by 180 degrees: a2t ranks the opposite clip first
        c["e_text"] = -c["e_audio"]
    r = evaluate(embed_model(), bench(relevance="verb", modalities=("audio", "visual", "text")),
                 FakeDM(clips), progress=False, raise_errors=True)
    assert r.metrics["a2v_r1"] == 1.0
    # a2t: query c0 -> nearest text is -e3 = (1, 0) (c3, wash): miss; c1 -> texts' sims
    # -(e1.ej) = 0, -1, -.6, 0 -> tie c0/c3 at rank 1 (one relevant): 0.5; c2 -> c3 (wash): hit;
    # c3 -> -e0 (c0, cut): miss
    assert r.metrics["a2t_r1"] == pytest.approx((0 + 0.5 + 1 + 0) / 4)
    assert r.metrics["t2a_r1"] == pytest.approx((0 + 0.5 + 1 + 0) / 4)


def test_missing_text_is_skipped_or_an_error():
    spec = {"relevance": "verb", "modalities": ("audio", "visual", "text")}
    av = embed_model(("audio", "visual"))
    r = evaluate(av, bench(**spec, missing_modality="skip"), FakeDM(four_clips()),
                 progress=False, raise_errors=True)
    assert r.status == "ok" and "a2v_map" in r.metrics and "a2t_map" not in r.metrics
    undefined = r.tasks[0].info["undefined"]
    assert set(undefined) == {"a2t_r1", "t2a_r1", "a2t_map", "t2a_map", "v2t_r1", "t2v_r1",
                              "v2t_map", "t2v_map"}
    assert "text" in undefined["a2t_map"]
    with pytest.raises(KeyError, match="retrieval needs 'audio' and 'text'"):
        evaluate(av, bench(**spec), FakeDM(four_clips()), progress=False, raise_errors=True)


def test_missing_verb_is_an_error():
    clips = four_clips()
    for c in clips:
        del c["class_name"]
    with pytest.raises(KeyError, match="class_name"):
        evaluate(embed_model(), bench(relevance="verb"), FakeDM(clips), progress=False,
                 raise_errors=True)


def test_one_verb_only_is_not_scorable():
    clips = four_clips()
    for c in clips:
        c["class_name"] = "cuts"
    r = evaluate(embed_model(), bench(relevance="verb"), FakeDM(clips), progress=False)
    assert r.status == "not-scorable" and "same class" in r.reason


def test_spec_validation_and_unchanged_dumps():
    with pytest.raises(ValueError, match="either pairs or modalities"):
        RetrievalTask(pairs=(("audio", "text"),), modalities=("audio", "visual"))
    with pytest.raises(ValueError, match="first letter"):
        RetrievalTask(modalities=("audio", "appearance"))
    # new options at their defaults are not dumped: old protocols (fingerprints) unchanged
    assert set(RetrievalTask().model_dump()) == {"task", "requires", "pairs", "ks",
                                                 "compute_map", "relevance", "label_key"}
    b = get_benchmark("ego4d-action-retrieval")
    assert b.primary_task.relevance == "verb" and b.main_score == "map"
    assert BenchmarkMeta.model_validate(b.model_dump(mode="json")) == b
