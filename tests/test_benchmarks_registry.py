"""Benchmark registry: required entries, pydantic validation, applicability and skip reasons;
the built-ins as YAML data (pinned dumps), register/load semantics, the task-kind registry."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from avbench.benchmarks import (
    BENCHMARKS,
    TASK_KINDS,
    BenchmarkMeta,
    GraphRecoveryTask,
    LocalizationTask,
    RetrievalTask,
    TaskSpec,
    applicability,
    get_benchmark,
    load_benchmarks,
    plan,
    register,
    register_task,
    task_kind,
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


# --- built-ins as data, the registry contract, tasks from mappings ---------------------------
FIXTURE = Path(__file__).parent / "fixtures" / "builtin_benchmarks.json"


def test_builtin_benchmarks_match_the_pinned_dumps():
    """The YAML built-ins dump exactly as the former in-code definitions (fixture made from them).

    ``lower_is_better`` is new (computed from the task specs); ``protocol`` must be
    byte-identical as JSON (it is hashed into every result's fingerprint).
    """
    expected = json.loads(FIXTURE.read_text())
    # benchmarks added since the fixture are not in it; every pinned one is unchanged
    assert set(expected) <= set(BENCHMARKS)
    assert "vggss-mismatched" in set(BENCHMARKS) - set(expected)
    for name, meta in BENCHMARKS.items():
        if name not in expected:
            continue
        dump = meta.model_dump(mode="json")
        lower = dump.pop("lower_is_better")
        assert lower == (["shd"] if name == "synthetic-graph-recovery" else []), name
        assert dump == expected[name], name
        assert json.dumps(dump["protocol"]) == json.dumps(expected[name]["protocol"]), name
        assert json.dumps(dump["tasks"]) == json.dumps(expected[name]["tasks"]), name


def test_builtins_are_yaml_files_per_dataset_family():
    from avbench.benchmarks.registry import BUILTIN_DIR

    families = {p.stem for p in BUILTIN_DIR.glob("*.yaml")}
    assert families == {b.dataset for b in BENCHMARKS.values()}
    for b in BENCHMARKS.values():
        assert b.name in (BUILTIN_DIR / f"{b.dataset}.yaml").read_text()


def test_register_is_idempotent_for_equal_metas_and_refuses_others():
    vggss = get_benchmark("vggss")
    same = BenchmarkMeta.model_validate(json.loads(vggss.model_dump_json()))
    assert register(same) is vggss and BENCHMARKS["vggss"] is vggss
    other = vggss.model_copy(update={"description": "changed"})
    with pytest.raises(KeyError, match="already registered"):
        register(other)
    assert BENCHMARKS["vggss"] is vggss


def test_load_benchmarks_from_yaml(tmp_path, monkeypatch):
    monkeypatch.setattr("avbench.benchmarks.registry.BENCHMARKS", dict(BENCHMARKS))
    path = tmp_path / "mine.yaml"
    path.write_text(
        "- name: flickr-fixed\n  dataset: flickr\n  tasks:\n"
        "    - {task: localization, threshold_rule: fixed, threshold: 0.5}\n"
        "  metrics: [ap50, auc]\n  main_score: auc\n"
    )
    (meta,) = load_benchmarks(path)
    assert get_benchmark("flickr-fixed") is meta
    assert isinstance(meta.tasks[0], LocalizationTask) and meta.tasks[0].threshold == 0.5
    assert meta.protocol["localization"]["threshold_rule"] == "fixed"
    path.write_text("name: not-a-list\n")
    with pytest.raises(ValueError, match="list"):
        load_benchmarks(path)


def test_tasks_from_mappings_and_metric_direction():
    graph = get_benchmark("synthetic-graph-recovery")
    assert isinstance(graph.tasks[0], GraphRecoveryTask)
    assert graph.lower_is_better == ("shd",) and graph.higher_is_better
    with pytest.raises(ValidationError, match="unknown task kind 'nope'"):
        BenchmarkMeta.model_validate(
            {"name": "x", "dataset": "d", "tasks": [{"task": "nope"}], "metrics": ["a"],
             "main_score": "a"})
    with pytest.raises(ValidationError, match="'task' key"):
        BenchmarkMeta.model_validate(
            {"name": "x", "dataset": "d", "tasks": [{"ks": [1]}], "metrics": ["a"],
             "main_score": "a"})
    # a main score where lower is better: derived, and a contradicting old dump is refused
    shd = BenchmarkMeta(name="x", dataset="d", tasks=(GraphRecoveryTask(),), metrics=("shd",),
                        main_score="shd")
    assert not shd.higher_is_better and shd.lower_is_better == ("shd",)
    dump = shd.model_dump(mode="json")
    assert BenchmarkMeta.model_validate(dump) == shd
    with pytest.raises(ValidationError, match="contradicts"):
        BenchmarkMeta.model_validate(dump | {"higher_is_better": True})


def test_task_registry_lookup():
    assert task_kind("retrieval") is RetrievalTask
    assert set(TASK_KINDS) >= {"localization", "segmentation", "retrieval", "discovery",
                               "graph_recovery"}
    with pytest.raises(KeyError, match="known"):
        task_kind("nope")
    with pytest.raises(KeyError, match="already registered"):
        @register_task
        class Clash(TaskSpec):  # noqa: F811 - a second class for an existing kind
            task: str = "retrieval"
            requires: tuple[str, ...] = ("embed",)
