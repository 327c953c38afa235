"""Suites: a model entry's ``datasets`` (the training datasets it trains on) and ``expand``."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from avbench.benchmarks import BENCHMARKS
from avbench.runner.suite import Suite, component_config, expand, load_suite


@pytest.fixture
def restore_benchmarks():
    """The registry is global: leave it as the builtin-dump tests expect it."""
    before = dict(BENCHMARKS)
    yield
    BENCHMARKS.clear()
    BENCHMARKS.update(before)


def suite_dict(**models: Any) -> dict[str, Any]:
    data = {"class_path": "x.DM"}
    return {
        "name": "s",
        "trainer": {"max_epochs": 1},
        "seeds": [0, 1],
        "models": [{"name": n, "class_path": "x.M", **kw} for n, kw in models.items()],
        "datasets": [{"name": "clips", **data, "benchmarks": ["vggss"]},
                     {"name": "feats_a", **data, "benchmarks": ["ave-retrieval"]},
                     {"name": "feats_b", **data}],
        "benchmarks": {"vggss": {"dataset": "clips"}, "ave-retrieval": {"dataset": "feats_a"},
                       "vegas-retrieval": {"dataset": "feats_b"}},
    }


def test_models_train_on_their_datasets_only():
    suite = Suite.model_validate(suite_dict(a={"datasets": ["clips"]},
                                            b={"datasets": ["feats_b", "feats_a"]}, c={}))
    jobs = expand(suite)
    assert [j.id for j in jobs] == [
        "a.clips.seed0", "a.clips.seed1",
        # suite order of the datasets, not the entry's
        "b.feats_a.seed0", "b.feats_a.seed1", "b.feats_b.seed0", "b.feats_b.seed1",
        # default: every suite dataset
        "c.clips.seed0", "c.clips.seed1", "c.feats_a.seed0", "c.feats_a.seed1",
        "c.feats_b.seed0", "c.feats_b.seed1",
    ]
    by_id = {j.id: j for j in jobs}
    assert by_id["b.feats_a.seed0"].benchmarks == ("ave-retrieval",)
    assert by_id["b.feats_b.seed1"].benchmarks == ("vggss", "ave-retrieval", "vegas-retrieval")
    assert [d.name for d in suite.datasets_for(suite.models[1])] == ["feats_a", "feats_b"]


@pytest.mark.parametrize(("datasets", "match"), [
    (["clips", "nope"], r"model a: datasets \['nope'\] are not suite datasets"),
    (["clips", "clips"], "model a: duplicate datasets"),
    ([], "at least 1 item"),
])
def test_bad_model_datasets_are_refused(datasets, match):
    with pytest.raises(ValidationError, match=match):
        Suite.model_validate(suite_dict(a={"datasets": datasets}))


def test_default_suite_jobs(restore_benchmarks):
    """The `make leaderboard` suite: the five SSL models keep their VGGSound jobs (2 seeds each);
    ILI trains on the two feature files and is scored on their own benchmarks."""
    suite = load_suite("synthetic")
    jobs = expand(suite)
    ssl = [j for j in jobs if j.model.name not in ("ili", "mc3", "denseav")]
    assert [j.id for j in ssl] == [f"{m}.vggsound.seed{s}" for m in ("ezvsl", "fnac", "slavc", "lvs", "jsa")
                                   for s in (0, 1)]
    vgg = ["vggss", "vggss-mismatched", "flickr-test", "avsbench-s4", "avsbench-ms3",
           "ave-retrieval", "vegas-retrieval", "ego4d-discovery", "ego4d-retrieval",
           "ego4d-action-retrieval", "epic-sounds-probe", "ade20k-speech-prompted",
           "ade20k-sound-prompted"]
    assert all(list(j.benchmarks) == vgg for j in ssl)
    # DenseAV: two heads on mixed speech + sound, its benchmarks and the SSL localization ones
    dense = {j.id: j for j in jobs if j.model.name == "denseav"}
    assert set(dense) == {f"denseav.mixed_speech_sound.seed{s}" for s in (0, 1)}
    assert all(j.benchmarks == ("mixed-disentanglement", "ade20k-speech-prompted",
                                "ade20k-sound-prompted", "spoken-captions-retrieval", "vggss",
                                "flickr-test") for j in dense.values())
    # the prompted benchmarks' datamodules: speech and sound layouts of the same root
    for name, kind in (("ade20k-speech-prompted", "speech"), ("ade20k-sound-prompted", "sound")):
        cfg = component_config(suite.benchmarks[name], "data", suite.source)
        assert cfg["init_args"]["kind"] == kind
    mixed = component_config(next(d for d in suite.datasets if d.name == "mixed_speech_sound"),
                             "data", suite.source)
    assert mixed["class_path"].endswith("MixedSpeechSoundDataModule")
    mc3 = {j.id: j.benchmarks for j in jobs if j.model.name == "mc3"}
    assert mc3 == {f"mc3.ego4d.seed{s}": ("ego4d-discovery", "ego4d-retrieval",
                                          "ego4d-action-retrieval", "epic-sounds-probe")
                   for s in (0, 1)}
    ili = {j.id: j.benchmarks for j in jobs if j.model.name == "ili"}
    assert ili == {
        "ili.ave15_features.seed0": ("ave-features-retrieval", "ave-graph-recovery"),
        "ili.ave15_features.seed1": ("ave-features-retrieval", "ave-graph-recovery"),
        "ili.vegas_features.seed0": ("vegas-features-retrieval", "vegas-graph-recovery"),
        "ili.vegas_features.seed1": ("vegas-features-retrieval", "vegas-graph-recovery"),
    }
    # the feature benchmarks are declared by the suite, served by the training datamodules
    for name in ("ave-features-retrieval", "vegas-graph-recovery"):
        assert name in BENCHMARKS and suite.benchmarks[name].dataset is not None
    assert BENCHMARKS["ave-graph-recovery"].lower_is_better == ("shd",)
    assert "synthetic-graph-recovery" not in suite.benchmarks
