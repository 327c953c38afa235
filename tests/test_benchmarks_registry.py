"""Benchmark registry: required entries, pydantic validation, applicability and skip reasons."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from avbench.benchmarks import (
    BENCHMARKS,
    BenchmarkMeta,
    LocalizationTask,
    RetrievalTask,
    applicability,
    get_benchmark,
    plan,
    trivial_baselines,
)

REQUIRED = {
    "flickr-test": ("flickr", "test", "ap50", {"localization"}),
    "vggss": ("vggss", "test", "ap50", {"localization", "retrieval"}),
    "vggss-heard": ("vggss", "test", "ap50", {"localization"}),
    "vggss-unheard": ("vggss", "test", "ap50", {"localization"}),
    "avsbench-s4": ("avsbench", "test", "miou", {"segmentation", "localization"}),
    "avsbench-ms3": ("avsbench", "test", "miou", {"segmentation", "localization"}),
    "ave-retrieval": ("ave", "test", "map", {"retrieval"}),
    "vegas-retrieval": ("vegas", "test", "map", {"retrieval"}),
    "ego4d-discovery": ("ego4d", "test", "roc_auc", {"discovery"}),
    "ego4d-retrieval": ("ego4d", "test", "a2v_r1", {"retrieval"}),
    "synthetic-graph-recovery": ("synthetic", "train", "edge_f1", {"graph_recovery"}),
}


def fake_model(name: str, *caps: str) -> SimpleNamespace:
    return SimpleNamespace(meta=SimpleNamespace(name=name, capabilities=frozenset(caps)))


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_required_entries(name):
    b = get_benchmark(name)
    dataset, split, main, tasks = REQUIRED[name]
    assert (b.dataset, b.split, b.main_score) == (dataset, split, main)
    assert {t.task for t in b.tasks} == tasks
    assert b.main_score in b.metrics and b.higher_is_better
    assert b.reference  # cites the REFERENCE.md protocol
    # the protocol options are serialisable (recorded in every result)
    assert set(b.protocol) == tasks


def test_protocol_choices():
    loc = get_benchmark("flickr-test").primary_task
    assert (loc.threshold_rule, loc.upsample, loc.align_corners) == ("top50", "bilinear", True)
    assert get_benchmark("vggss-heard").subset == "heard"
    avs = get_benchmark("avsbench-ms3")
    assert avs.subset == "ms3" and avs.requires == ("segment", "localize")
    assert [t for t in avs.tasks if t.task == "localization"][0].gt_key == "masks"
    ave = get_benchmark("ave-retrieval").primary_task
    assert ave.compute_map and ave.relevance == "class"
    assert get_benchmark("ego4d-retrieval").primary_task.relevance == "instance"
    assert get_benchmark("ego4d-discovery").requires == ("sounding_score", "embed")


def test_roundtrip_json():
    for b in BENCHMARKS.values():
        dumped = b.model_dump_json()
        assert BenchmarkMeta.model_validate_json(dumped) == b
        assert '"requires"' in dumped and '"protocol"' in dumped


def test_validation_errors():
    with pytest.raises(ValidationError, match="main_score"):
        BenchmarkMeta(
            name="x", dataset="d", tasks=(LocalizationTask(),), metrics=("ap50",), main_score="auc"
        )
    with pytest.raises(ValidationError, match="not produced"):
        BenchmarkMeta(
            name="x", dataset="d", tasks=(LocalizationTask(),), metrics=("miou",), main_score="miou"
        )
    with pytest.raises(ValidationError):
        LocalizationTask(threshold_rule="median")
    with pytest.raises(ValidationError):
        BenchmarkMeta(
            name="Bad Name",
            dataset="d",
            tasks=(LocalizationTask(),),
            metrics=("ap50",),
            main_score="ap50",
        )
    with pytest.raises(KeyError, match="unknown benchmark"):
        get_benchmark("nope")
    with pytest.raises(ValidationError):  # frozen
        get_benchmark("vggss").name = "other"  # type: ignore[misc]
    r = RetrievalTask(pairs=(("audio", "visual"), ("text", "visual")), ks=(1,), compute_map=True)
    assert r.metric_names() == [
        "a2v_r1",
        "v2a_r1",
        "a2v_map",
        "v2a_map",
        "t2v_r1",
        "v2t_r1",
        "t2v_map",
        "v2t_map",
        "map",
    ]


def test_applicability_and_plan_with_reasons():
    loc_only = fake_model("loc-only", "localize")
    ili = fake_model("ili", "embed", "class_graph")
    a = applicability(loc_only, "ave-retrieval")
    assert not a.applicable and "embed" in a.reason and "localize" in a.reason
    assert applicability(loc_only, "avsbench-s4").capability == "localize"
    assert (
        applicability(fake_model("seg", "segment", "localize"), "avsbench-s4").capability
        == "segment"
    )
    assert applicability(ili, "ego4d-discovery").capability == "embed"
    assert applicability(ili, "synthetic-graph-recovery").applicable

    run, skipped = plan([loc_only, ili], list(BENCHMARKS))
    pairs = {(m.meta.name, b.name) for m, b in run}
    assert ("loc-only", "vggss") in pairs and ("ili", "ave-retrieval") in pairs
    assert ("ili", "vggss") not in pairs  # VGG-SS's primary task is localization
    skipped_pairs = {(s.model, s.benchmark): s.reason for s in skipped}
    assert "localize" in skipped_pairs[("ili", "vggss")]
    assert len(run) + len(skipped) == 2 * len(BENCHMARKS)


def test_trivial_baselines_applicability():
    full, center, rnd = trivial_baselines()
    assert applicability(full, "flickr-test").applicable
    assert applicability(center, "avsbench-s4").capability == "localize"
    assert applicability(rnd, "vegas-retrieval").applicable
    assert applicability(rnd, "ego4d-discovery").capability == "embed"
    assert not applicability(rnd, "flickr-test").applicable
