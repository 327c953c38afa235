"""Ego4D loader regression: which frames ``num_frames`` samples.

``num_frames: 1`` (the synthetic suite's setting) must give the window's CENTRE frame
(the narration time, when the action happens), not its first frame: the first frame
is 1.5 s before the narration, when the synthetic hand is still at rest, so every clip
of a long video had the same image (ego4d-retrieval at chance, discovery below chance;
``docs/models.md``, "Ego4D discovery and retrieval"). The clips here are hand-made:
frame ``j`` is a flat grey of level ``10 + 7 j``, so a sampled frame's mean names its
index.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from avbench.data.datasets.ego4d import Ego4DClips
from avbench.data.datasets.ego4d_tables import COLUMNS
from avbench.data.synthetic.media import write_mp4

SR = 16000
FPS = 8
CLIP = 3.0
UID = "vvvv-1"
#: (narration_time, clip file seconds): a clip of exactly the window, and a longer one
CLIPS = [(5.0, 3.0), (12.0, 4.0)]


def _grey_clip(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    n = int(round(seconds * FPS))
    frames = np.zeros((n, 16, 16, 3), np.uint8)
    for j in range(n):
        frames[j] = 10 + 7 * j
    audio = 0.01 * np.random.default_rng(0).standard_normal(int(seconds * SR))
    return frames, audio.astype(np.float32)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ego4d_frames")
    rows = []
    for ind, (t, seconds) in enumerate(CLIPS):
        name = f"{UID}_narration_pass_1_{ind}"
        rows.append({
            "video_uid": UID, "video_dur": "-1", "narration_source": "narration_pass_1",
            "narration_ind": str(ind), "narration_time": repr(t), "clip_start": repr(t - 0.5),
            "clip_end": repr(t + 1.0), "clip_text": "#C C cuts the carrot", "tag_verb": "[]",
            "tag_noun": "[]", "positive": "1.0", "clip_file": f"{UID}/{name}.mp4",
            "speech": "0.0", "background_music": "0.0", "traffic_noise": "0.0",
            "wind_noise": "0.0",
        })
        frames, audio = _grey_clip(seconds)
        write_mp4(root / "ego4dsounds_224p" / UID / f"{name}.mp4", frames, FPS, audio, SR)
    with open(root / "test_clips_11k.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return root


def _frame_index(frame) -> int:
    """The hand-made frame index from a sampled frame's mean grey level."""
    return int(round((float(frame.mean()) * 255 - 10) / 7))


def _ds(root: Path, **kw) -> Ego4DClips:
    return Ego4DClips(root, "test", sample_rate=SR, clip_seconds=CLIP, image_size=16, **kw)


@pytest.mark.parametrize("clip, offset", [(0, 0), (1, 4)])  # 4-s clip: window starts at 0.5 s
def test_one_frame_is_the_window_centre(root, clip, offset):
    s = _ds(root, num_frames=1)[clip]
    assert s["frames"].shape == (1, 3, 16, 16)
    # centre of the window = 1.5 s into it = frame 12 of the window
    assert _frame_index(s["image"]) == offset + 12
    assert _frame_index(s["frames"][0]) == offset + 12


def test_num_frames_are_segment_centres(root):
    # 3 frames over 3 s: 0.5, 1.5, 2.5 s -> frames 4, 12, 20; the middle one is `image`
    s = _ds(root, num_frames=3)[0]
    assert [_frame_index(f) for f in s["frames"]] == [4, 12, 20]
    assert _frame_index(s["image"]) == 12
    # 4 frames: 0.375, 1.125, 1.875, 2.625 s -> frames 3, 9, 15, 21
    s4 = _ds(root, num_frames=4)[1]
    assert [_frame_index(f) for f in s4["frames"]] == [4 + 3, 4 + 9, 4 + 15, 4 + 21]


def test_fps_sampling_unchanged(root):
    # fps: every frame of the window from its start; the middle frame is the centre
    s = _ds(root, fps=FPS)[1]
    assert [_frame_index(f) for f in s["frames"]] == list(range(4, 4 + 24))
    assert _frame_index(s["image"]) == 4 + 12
    ds = _ds(root, fps=FPS)
    assert ds.frame_times(0.5) == (0.5, FPS, 24)
    first, fps, n = _ds(root, num_frames=1).frame_times(0.5)
    assert (first, fps, n) == (pytest.approx(2.0), pytest.approx(1 / 3), 1)
