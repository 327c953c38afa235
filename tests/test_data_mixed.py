"""Mixed 50/50 speech + sound data (DenseAV's mixed-full): the plan, the sources recorded
per sample, one key set for both, and a DenseAV training step on a mixed batch."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from avbench.data import MixedSpeechSoundDataModule
from avbench.data.datamodules.mixed_speech_sound import MIXED_KEYS, plan_mix
from avbench.data.synthetic import generate

SR = 16000


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("mixed")
    generate("spoken_captions", base / "speech", "tiny", seed=0, progress=False)
    generate("vggsound", base / "sound", "tiny", seed=0, progress=False)
    return {"speech": base / "speech", "sound": base / "sound"}


def _module(roots: dict[str, Path], **kw) -> MixedSpeechSoundDataModule:
    args = dict(image_size=32, clip_seconds=1.0, num_workers=0, batch_size=8) | kw
    return MixedSpeechSoundDataModule(roots["speech"], roots["sound"], **args)


def test_plan_is_balanced_and_covers_both_sources() -> None:
    items = plan_mix(7, 30, 0.5, repeat=True, epoch_size=None, seed=1)
    counts = Counter(s for s, _, _ in items)
    assert counts == {"speech": 30, "sound": 30}  # every sound item once, speech cycled
    assert {i for s, i, _ in items if s == "speech"} == set(range(7))
    assert {i for s, i, _ in items if s == "sound"} == set(range(30))
    assert len({(s, i, k) for s, i, k in items}) == len(items)
    ev = plan_mix(7, 30, 0.5, repeat=False, epoch_size=None, seed=1)
    assert Counter(s for s, _, _ in ev) == {"speech": 7, "sound": 7}
    assert all(k == 0 for _, _, k in ev)
    assert Counter(s for s, _, _ in plan_mix(10, 10, 0.25, repeat=True, epoch_size=40,
                                             seed=0)) == {"speech": 10, "sound": 30}
    assert plan_mix(7, 30, 0.5, repeat=True, epoch_size=None, seed=1) == items
    with pytest.raises(ValueError, match="speech_fraction"):
        plan_mix(5, 5, 1.0, repeat=True, epoch_size=None, seed=0)
    with pytest.raises(ValueError, match="both sources"):
        plan_mix(0, 5, 0.5, repeat=True, epoch_size=None, seed=0)


def test_module_yields_both_sources_half_and_half(roots: dict[str, Path]) -> None:
    dm = _module(roots)
    seen: Counter[str] = Counter()
    ids: list[str] = []
    for batch in dm.train_dataloader():
        assert set(batch) == set(MIXED_KEYS)
        assert batch["image"].shape[1:] == (3, 32, 32)
        assert batch["audio"].shape[1:] == (1, SR) and batch["audio_mask"].shape[1:] == (SR,)
        for i, source in enumerate(batch["source"]):
            assert batch["id"][i].startswith(source + "/")
            # captions are zero-padded (mask < 1 somewhere for short ones); VGGSound is full
            if source == "sound":
                assert bool((batch["audio_mask"][i] == 1).all())
        seen.update(batch["source"])
        ids += batch["id"]
    total = sum(seen.values())
    assert set(seen) == {"speech", "sound"}
    assert abs(seen["speech"] / total - 0.5) <= 8 / total  # drop_last removes < one batch
    assert len(set(ids)) == len(ids)


def test_speech_and_sound_items_come_from_their_datasets(roots: dict[str, Path]) -> None:
    dm = _module(roots)
    mixed = dm.dataset("test")
    assert mixed.source_counts()["speech"] == mixed.source_counts()["sound"] > 0
    for i in range(len(mixed)):
        s = mixed[i]
        src, inner_id = s["id"].split("/", 1)
        assert src == s["source"]
        part = mixed.parts[src]
        j = [part.record_id(r) for r in part.records].index(inner_id)
        torch.testing.assert_close(s["audio"], part[j]["audio"])
        if src == "speech":
            assert float(s["audio_mask"].sum()) <= SR


def test_denseav_trains_on_a_mixed_batch(roots: dict[str, Path]) -> None:
    """DenseAV's training step reads image, audio and audio_mask from a mixed batch."""
    from test_denseav import tiny

    model = tiny()
    batch = next(iter(_module(roots).train_dataloader()))
    model.train()
    losses = model.compute_losses(batch)
    assert torch.isfinite(losses["total"])
    losses["total"].backward()
