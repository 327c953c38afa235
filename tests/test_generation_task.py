"""The ``generation`` task kind: planted onsets from the world, the spec, and one end-to-end
run of an untrained tiny AV-LDM on tiny synthetic Ego4D (avbench/benchmarks/tasks/generation.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from avbench.benchmarks import BenchmarkMeta, evaluate
from avbench.benchmarks.tasks.generation import (
    APPROACH_S,
    GenerationTask,
    planted_onsets,
    read_world_truth,
)
from avbench.configs import CONFIG_DIR


def _narr(start: float, end: float, kind: str, rate: float = 2.0, sounding: bool = True):
    n = SimpleNamespace(start=start, end=end, rate_hz=rate)
    return n, SimpleNamespace(sounding=sounding, sound_kind=kind)


SCENE = {"media_start": 10.0, "media_end": 13.0, "action_start": 10.5, "action_end": 12.5,
         "sounding": True, "sound_kind": "hits"}


def test_planted_onsets_per_sound_kind_in_clip_time() -> None:
    a = 10.5 + APPROACH_S - 10.0  # act start in clip time
    length = 2.0 - 2 * APPROACH_S
    hits, src = planted_onsets(SCENE, [_narr(10.5, 12.5, "hits", rate=2.0)])
    assert src == "world" and np.allclose(hits, a + np.arange(0, length, 0.5))
    rattle, _ = planted_onsets(SCENE, [_narr(10.5, 12.5, "rattle", rate=2.0)])
    expect = (np.arange(0, 2 * 2.0 * length) + 0.5) / 4.0
    assert np.allclose(rattle, a + expect[expect < length])
    for kind in ("scrape", "pour"):
        assert np.allclose(planted_onsets(SCENE, [_narr(10.5, 12.5, kind)])[0], [a])
    # silent actions plant nothing; a neighbour's strokes inside the window count, outside not
    assert planted_onsets(SCENE, [_narr(10.5, 12.5, "none", sounding=False)])[0].size == 0
    both, _ = planted_onsets(SCENE, [_narr(8.0, 11.0, "hits", rate=1.0), _narr(14.0, 16.0, "hits")])
    assert np.allclose(both, [8.0 + APPROACH_S + 2.0 - 10.0])  # only the stroke at 10.35 s
    # no re-planned world: the clip's own action start
    own, src = planted_onsets(SCENE, None)
    assert src == "action_start" and np.allclose(own, [a])
    assert planted_onsets(dict(SCENE, sounding=False), None)[0].size == 0


def test_spec_metrics_directions_and_suite_benchmark() -> None:
    spec = GenerationTask()
    names = spec.metric_names()
    assert "FD-avbench/retrieved" in names and "FD-avbench/real" not in names
    assert not any("FAD" in n for n in names)
    assert "FD-avbench/zero" in spec.lower_is_better and "ambient_mae_db/real" in spec.lower_is_better
    assert "sync_f1/zero" not in spec.lower_is_better
    suite = yaml.safe_load((CONFIG_DIR / "suites" / "generation.yaml").read_text())
    meta = BenchmarkMeta.model_validate(suite["define_benchmarks"][0])
    assert meta.main_score == "FD-avbench/same_video" and not meta.higher_is_better
    with pytest.raises(ValueError):
        GenerationTask(conditions=("nearby",))
    from avbench.runner.suite import expand, load_suite

    jobs = expand(load_suite(CONFIG_DIR / "suites" / "generation.yaml"))
    assert [(j.model.name, j.seed, j.benchmarks) for j in jobs] == [
        ("avldm", 0, ("ego4d-generation",)), ("avldm", 1, ("ego4d-generation",))]


# --- end to end ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory) -> Path:
    from avbench.data.synthetic import generate

    root = tmp_path_factory.mktemp("ego4d_gen_tiny")
    generate("ego4d", root, "tiny", seed=0, progress=False)
    return root


def test_world_truth_matches_the_rendered_clips(tiny_world) -> None:
    truth = read_world_truth(tiny_world)
    scenes = [json.loads(x) for x in (tiny_world / "synthetic_scenes.jsonl").read_text().splitlines()]
    assert set(truth) == {s["id"] for s in scenes}
    assert {t["onset_source"] for t in truth.values()} == {"world"}
    for s in scenes:
        t = truth[s["id"]]
        assert t["ambience_db"] == s["ambience_db"]
        assert np.all((t["onsets"] >= 0) & (t["onsets"] < 3.0))
        if s["sound_kind"] in ("hits", "scrape", "pour") and s["sounding"]:  # act start planted
            a = s["action_start"] + APPROACH_S - s["media_start"]
            if 0 <= a < 3.0:
                assert np.min(np.abs(t["onsets"] - a)) < 1e-6, s["id"]
    with pytest.raises(FileNotFoundError, match="synthetic_scenes"):
        read_world_truth(tiny_world / "nowhere")


def test_a_clip_the_replanned_world_does_not_reproduce_falls_back_to_its_sidecar(
        tiny_world, tmp_path) -> None:
    import shutil

    shutil.copy(tiny_world / "avbench_synthetic.json", tmp_path / "avbench_synthetic.json")
    rows = [json.loads(x) for x in (tiny_world / "synthetic_scenes.jsonl").read_text().splitlines()]
    rows[0]["action_start"] += 0.25  # as if the writer had changed since
    (tmp_path / "synthetic_scenes.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    truth = read_world_truth(tmp_path)
    assert truth[rows[0]["id"]]["onset_source"] == "action_start"
    assert {truth[r["id"]]["onset_source"] for r in rows[1:]} == {"world"}
    assert read_world_truth(tmp_path, replan=False)[rows[1]["id"]]["onset_source"] == "action_start"


def test_untrained_tiny_avldm_runs_the_task_end_to_end(tiny_world, tmp_path, tiny_standins) -> None:
    from avbench.data import Ego4DClipsDataModule
    from avbench.models.avldm import AVLDM
    from tests.test_avldm import TINY_UNET, _save_autoencoder

    ae = _save_autoencoder(tmp_path / "mel-autoencoder")
    torch.manual_seed(0)
    model = AVLDM(autoencoder=str(ae), mel_scaling="standin", mel_frames=188, scale_factor=None,
                  unet=TINY_UNET, image_width=8, image_layers=[1, 1, 1, 1], video_frames=2,
                  audio_hidden=32, sampling_steps=2, griffin_lim_iters=2).eval()
    dm = Ego4DClipsDataModule(root=str(tiny_world), num_frames=2, with_cond_audio=True,
                              batch_size=4, num_workers=0, image_size=32)
    task = {"task": "generation", "max_clips": 4, "embedder": str(tiny_standins / "audio-resnet18")}
    bench = BenchmarkMeta.model_validate({
        "name": "tiny-generation", "dataset": "ego4d", "split": "test", "tasks": [task],
        "metrics": ["FD-avbench/same_video", "sync_f1/zero", "ambient_mae_db/low_ambient"],
        "main_score": "FD-avbench/same_video"})
    res = evaluate(model, bench, dm, progress=False, raise_errors=True, gallery=2)
    assert res.status == "ok", res.reason
    m = res.metrics
    for cond in ("same_video", "zero", "low_ambient", "other_video"):
        for name in ("FD-avbench", "sync_precision", "sync_recall", "ambient_mae_db", "ambient_db"):
            assert math.isfinite(m[f"{name}/{cond}"]), (name, cond)
        assert m[f"FD-avbench/{cond}"] > 0  # untrained noise is far from real audio
    assert "FD-avbench/retrieved" not in m and "AV-sim/zero" not in m  # no AV model given
    info = res.tasks[0].info
    assert "av_model" in info["undefined"]["AV-sim/zero"]
    assert info["generated_clips"] == 4 and info["onsets"]["real"]["n_planted"] >= 0
    # the real audio against its own world: the ambient floor is within a few dB of the plant
    assert m["ambient_mae_db/real"] < 6.0
    g = res.gallery
    assert g is not None and list(g["ids"]) and g["gen_wave"].shape == (2, 48000)
    assert g["real_wave"].shape == (2, 48000) and set(g["condition"]) == {"same_video"}
    # the gallery writer: spectrogram PNG + wavs
    from avbench.benchmarks.tasks.generation_gallery import write_generation_gallery

    files = write_generation_gallery(g, tmp_path / "plots", "tiny-generation_avldm", n_wavs=1)
    assert files[0].name == "tiny-generation_avldm_spectrograms.png"
    assert sorted(p.name for p in files[1:]) == ["tiny-generation_avldm_0_generated.wav",
                                                 "tiny-generation_avldm_0_real.wav"]
    assert all(p.stat().st_size > 0 for p in files)
    # the leaderboard hook of the spec: one spectrogram figure per row with a gallery
    from avbench.benchmarks.tasks.base import PlotRow

    rows = [PlotRow("avldm", False, "C0", [], g), PlotRow("chance", True, "C1", [], None)]
    figs = GenerationTask().leaderboard_figures("tiny-generation", rows)
    assert [slug for slug, _ in figs] == ["spectrograms_avldm"]
    from avbench.benchmarks.tasks.generation_gallery import write_generation_galleries

    wavs = write_generation_galleries(rows, "tiny-generation", tmp_path / "lb")
    assert len(wavs) == 4 and all(p.suffix == ".wav" for p in wavs)


def test_av_model_checkpoint_from_a_fit_record_and_the_reasons_without_one(tmp_path) -> None:
    from avbench.benchmarks.tasks.generation import av_model_checkpoint

    ckpt = tmp_path / "best.ckpt"
    ckpt.write_bytes(b"x")
    fit = tmp_path / "fit.json"
    fit.write_text(json.dumps({"weights": str(ckpt), "selection": {}}))
    assert av_model_checkpoint(GenerationTask(av_model_name="mc3", av_model_fit=str(fit))) == (str(ckpt), "")
    assert av_model_checkpoint(GenerationTask(av_model_name="mc3", av_model_checkpoint="a.ckpt",
                                              av_model_fit=str(fit)))[0] == "a.ckpt"
    none, why = av_model_checkpoint(GenerationTask(av_model_fit=str(fit)))
    assert none is None and "av_model_name" in why
    none, why = av_model_checkpoint(GenerationTask(av_model_name="mc3",
                                                   av_model_fit=str(tmp_path / "no.json")))
    assert none is None and "no.json does not exist" in why and "make leaderboard" in why
    fit.write_text(json.dumps({"weights": str(tmp_path / "gone.ckpt")}))
    none, why = av_model_checkpoint(GenerationTask(av_model_name="mc3", av_model_fit=str(fit)))
    assert none is None and "gone.ckpt" in why
    fit.write_text("{not json")
    none, why = av_model_checkpoint(GenerationTask(av_model_name="mc3", av_model_fit=str(fit)))
    assert none is None and "not a fit record" in why


def test_generation_suite_takes_its_av_model_from_the_default_suites_mc3() -> None:
    suite = yaml.safe_load((CONFIG_DIR / "suites" / "generation.yaml").read_text())
    task = suite["define_benchmarks"][0]["tasks"][0]
    assert task["av_model_name"] == "mc3"
    assert task["av_model_fit"] == "results/_work/synthetic/mc3.ego4d.seed0/fit.json"
    assert "retrieved" in task["conditions"]
    assert {"AV-sim/real", "AV-sim/same_video", "FD-avbench/retrieved"} <= set(
        suite["define_benchmarks"][0]["metrics"])
