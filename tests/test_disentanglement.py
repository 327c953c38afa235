"""Two-head disentanglement (DenseAV, REFERENCE A4): the AP matrix and the best head
assignment on hand-built activations, DenseAV's ``head_scores``, and ``evaluate`` on the tiny
mixed speech + sound test set (a planted-source reader, an untrained two-head DenseAV, a
one-head DenseAV: not scorable, EZ-VSL: not applicable)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from avbench.benchmarks import evaluate, get_benchmark
from avbench.benchmarks.tasks.disentanglement import (
    DisentanglementTask,
    best_assignment,
    head_source_ap,
)
from avbench.nn.dense_similarity import retrieval_scores


def tiny_denseav(heads: int) -> Any:
    from test_denseav import tiny

    return tiny(heads=heads)


# --- hand-built activations --------------------------------------------------------------------
def labels(n_speech: int, n_sound: int) -> torch.Tensor:
    speech = torch.tensor([True] * n_speech + [False] * n_sound)
    return torch.stack([speech, ~speech], 1)


def test_separated_heads_get_ap_one_and_the_right_permutation():
    is_source = labels(4, 4)
    speech = is_source[:, 0].float()
    # head 0 fires for sound, head 1 for speech (the swapped order must be found)
    scores = torch.stack([1.0 - speech + 0.01 * torch.arange(8), 5.0 * speech - 2.0], 1)
    ap = head_source_ap(scores, is_source)
    assert ap[0, 1] == pytest.approx(1.0) and ap[1, 0] == pytest.approx(1.0)
    assert ap[0, 0] < 0.6 and ap[1, 1] < 0.6  # each head ranks the other source last
    heads, ap_dis = best_assignment(ap)
    assert heads == [1, 0] and ap_dis == pytest.approx(1.0)


def test_best_assignment_by_hand_and_with_more_heads():
    ap = torch.tensor([[0.9, 0.8], [0.7, 0.4]])
    # (0 speech, 1 sound): .65; (1 speech, 0 sound): .75
    assert best_assignment(ap) == ([1, 0], pytest.approx(0.75))
    ap3 = torch.tensor([[0.5, 0.5], [0.9, 0.95], [0.6, 0.2]])
    # heads are distinct: head 1 cannot take both; best is 1 -> speech (.9) + 0 -> sound (.5)
    # = .7 vs 2 -> speech (.6) + 1 -> sound (.95) = .775
    assert best_assignment(ap3) == ([2, 1], pytest.approx(0.775))
    with pytest.raises(ValueError, match="cannot be assigned"):
        best_assignment(torch.tensor([[0.5, 0.5]]))


def test_entangled_heads_score_about_chance():
    g = torch.Generator().manual_seed(0)
    is_source = labels(200, 200)
    _, ap_dis = best_assignment(head_source_ap(torch.rand(400, 2, generator=g), is_source))
    assert 0.45 < ap_dis < 0.6


def test_benchmark_is_registered():
    b = get_benchmark("mixed-disentanglement")
    assert isinstance(b.primary_task, DisentanglementTask)
    assert (b.dataset, b.split, b.main_score, b.requires) == ("mixed_speech_sound", "test",
                                                              "ap_dis", ("prompted_heatmap",))
    assert b.metrics == ("ap_dis", "ap_speech", "ap_sound")


# --- DenseAV's per-head activation ----------------------------------------------------------
def test_denseav_head_scores_are_the_diagonal_of_the_per_head_retrieval_score():
    model = tiny_denseav(2).eval()
    g = torch.Generator().manual_seed(1)
    batch = {"image": torch.rand(3, 3, 32, 32, generator=g),
             "audio": 0.1 * torch.randn(3, 1, 16000, generator=g)}
    with torch.no_grad():
        out = model.prompted_heatmap(batch)
        f = model._eval_features(batch)
        per_head = retrieval_scores(f["audio"], f["image"], f["audio_mask"], per_head=True)
    assert out["head_scores"].shape == (3, 2)
    torch.testing.assert_close(out["head_scores"], torch.diagonal(per_head).T)
    # max over image tokens, masked mean over time, by hand from the heat map
    heat, m = out["heatmap"], out["audio_mask"].float()
    by_hand = (heat.flatten(3).max(-1).values * m[:, None]).sum(-1) / m.sum(-1)[:, None]
    torch.testing.assert_close(out["head_scores"], by_hand)


# --- evaluate on the tiny mixed test set ----------------------------------------------------
@pytest.fixture(scope="module")
def mixed_roots(tmp_path_factory) -> dict[str, Path]:
    from avbench.data.synthetic import generate

    root = tmp_path_factory.mktemp("mixed")
    generate("spoken_captions", root / "spoken_captions", "tiny", 0, progress=False)
    generate("vggsound", root / "vggsound", "tiny", 0, progress=False)
    return {"speech": root / "spoken_captions", "sound": root / "vggsound"}


def mixed_dm(roots: dict[str, Path]) -> Any:
    from avbench.data.datamodules.mixed_speech_sound import MixedSpeechSoundDataModule

    return MixedSpeechSoundDataModule(str(roots["speech"]), str(roots["sound"]), batch_size=8,
                                      num_workers=0, image_size=32, sample_rate=16000,
                                      clip_seconds=3.0, cache=False)


def source_reader() -> SimpleNamespace:
    """Head 0 fires for sound (plus a little audio energy), head 1 for speech (it reads the
    planted source)."""

    def prompted_heatmap(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        speech = torch.tensor([s == "speech" for s in batch["source"]], dtype=torch.float32)
        energy = batch["audio"].flatten(1).pow(2).mean(1)
        return {"head_scores": torch.stack([1.0 - speech + 1e-3 * energy, 3.0 * speech], 1)}

    return SimpleNamespace(meta=SimpleNamespace(name="source-reader",
                                                capabilities=frozenset({"prompted_heatmap"})),
                           prompted_heatmap=prompted_heatmap)


def test_planted_source_reader_scores_one(mixed_roots):
    res = evaluate(source_reader(), "mixed-disentanglement", mixed_dm(mixed_roots),
                   progress=False, raise_errors=True)
    assert res.status == "ok" and res.main_value == pytest.approx(1.0)
    info = res.tasks[0].info
    assert info["assignment"]["speech"] == 1 and info["assignment"]["sound"] == 0
    assert info["n_per_source"]["speech"] > 0 and info["n_per_source"]["sound"] > 0
    assert res.metrics["ap_speech"] == res.metrics["ap_sound"] == pytest.approx(1.0)
    assert info["ap_matrix"]["head0"]["speech"] < 0.7 and info["ap_matrix"]["head1"]["sound"] < 0.7


def test_untrained_denseav_one_head_and_ssl_models(mixed_roots):
    from avbench.benchmarks import trivial_baselines

    dm = mixed_dm(mixed_roots)
    res = evaluate(tiny_denseav(2), "mixed-disentanglement", dm, progress=False,
                   raise_errors=True)
    assert res.status == "ok" and res.tasks[0].capability_used == "prompted_heatmap"
    assert 0.0 < res.metrics["ap_speech"] <= 1.0 and 0.0 < res.metrics["ap_sound"] <= 1.0
    assert res.main_value == pytest.approx((res.metrics["ap_speech"] + res.metrics["ap_sound"]) / 2)
    assert sorted(res.tasks[0].info["assignment"].values()) == [0, 1]
    one = evaluate(tiny_denseav(1), "mixed-disentanglement", dm, progress=False)
    assert one.status == "not-scorable" and "at least 2 heads" in one.reason
    full, *_ = trivial_baselines()  # localize only, like every SSL model
    skipped = evaluate(full, "mixed-disentanglement", dm, progress=False)
    assert skipped.status == "skipped" and "prompted_heatmap" in skipped.reason
