"""Localization with mismatched audio (``audio="mismatched"``, benchmark ``vggss-mismatched``):
the score difference tells a sound-driven map from a sound-independent (saliency) one."""

from __future__ import annotations

import json

import pytest
import torch

from avbench.benchmarks import get_benchmark
from avbench.benchmarks.batch_outputs import BatchOutputs
from avbench.benchmarks.tasks.localization import LocalizationTask

H = W = 8


def half(code: int) -> torch.Tensor:
    """One of four half-images: left, right, top, bottom [H,W]."""
    m = torch.zeros(H, W)
    [lambda: m[:, : W // 2], lambda: m[:, W // 2:], lambda: m[: H // 2], lambda: m[H // 2:]][code]().fill_(1)
    return m


def batch(n: int, seed: int = 0) -> dict:
    """Clip i's GT is half-image ``i % 4``, and its audio's first sample says which
    (neighbours always differ, so rolling the audio by one always misplaces it)."""
    g = torch.Generator().manual_seed(seed)
    codes = torch.arange(n) % 4
    audio = torch.zeros(n, 1, 16)
    audio[:, 0, 0] = codes.float()
    return {"image": torch.rand(n, 3, H, W, generator=g), "audio": audio,
            "gt_map": torch.stack([half(int(c)) for c in codes]),
            "id": [f"s{seed}c{i}" for i in range(n)]}


class SoundDriven:
    """Lights the half the audio names (with a ramp, so top-50% keeps exactly it)."""

    def localize(self, b: dict) -> torch.Tensor:
        ramp = torch.linspace(0.5, 1.0, H * W).view(H, W)
        return torch.stack([half(int(c)) * ramp for c in b["audio"][:, 0, 0]])


class Saliency:
    """Ignores the audio: the peak is where the image is brightest."""

    def localize(self, b: dict) -> torch.Tensor:
        return b["image"].mean(1)


def run(model, batches, spec=None) -> tuple[dict, dict]:
    spec = spec or LocalizationTask(audio="mismatched")
    runner = spec.make_runner("localize")
    for b in batches:
        runner.update(BatchOutputs(model, b))
    return runner.compute(), runner.info


def test_sound_driven_map_drops_saliency_map_does_not():
    batches = [batch(8, s) for s in range(3)]  # 8 % 4 != 1: clip 0 gets code 3
    res, info = run(SoundDriven(), batches)
    assert res["ap50_own"] == 1.0 and res["ap50_mismatched"] == 0.0 and res["ap50_drop"] == 1.0
    assert res["mean_ciou_drop"] > 0.5 and info["n"] == 24  # left vs top: cIoU 1/3
    res, _ = run(Saliency(), batches)
    assert res["ap50_drop"] == 0.0 and res["mean_ciou_drop"] == 0.0
    # the own-audio half equals the plain localization task on the same clips
    plain, _ = run(SoundDriven(), batches, LocalizationTask())
    assert plain["ap50"] == 1.0


def test_one_clip_batches_are_counted_not_scored():
    res, info = run(SoundDriven(), [batch(4, 0), batch(1, 1)])
    assert info["n"] == 4 and info["n_unpaired"] == 1 and res["ap50_drop"] == 1.0


def test_only_the_audio_is_rolled():
    seen = {}

    class Spy(SoundDriven):
        def localize(self, b):
            seen.setdefault("calls", []).append({k: v.clone() if torch.is_tensor(v) else v
                                                 for k, v in b.items()})
            return super().localize(b)

    b = batch(5, 0)
    run(Spy(), [b])
    other, own = seen["calls"]  # the mismatched map is computed first
    assert torch.equal(own["audio"], b["audio"])
    assert torch.equal(other["audio"], b["audio"].roll(1, 0))
    assert torch.equal(other["image"], b["image"]) and other["id"] == b["id"]


def test_masks_mode_refused_and_default_dump_unchanged():
    with pytest.raises(ValueError, match="gt_map"):
        LocalizationTask(audio="mismatched", gt_key="masks")
    assert "audio" not in LocalizationTask().model_dump(mode="json")
    bench = get_benchmark("vggss-mismatched")
    assert bench.main_score == "ap50_drop"
    assert json.loads(json.dumps(bench.model_dump(mode="json")))["tasks"][0]["audio"] == "mismatched"
