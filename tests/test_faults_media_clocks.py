"""Fault kind "media clocks" (issue 12): every window is placed on the container's clock.

Case 3 of the issue: an AVE mp4 whose audio stream starts 1.94 s after the video
(stream ``start_time`` > 0). The event-centred audio window used to be placed on the
audio stream's own clock, 1.94 s late, and missed a 0.5-s event (rms 0.0 instead of
about 0.14). Also: a variable-frame-rate file with a held frame, where the frame at
time t must be the one displayed at t, and a valid file with a frame held to its end
must not be reported as corrupt.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from avbench.data import io
from avbench.data.datasets.ave import AVE

SR = 16000
FPS = 10
EVENT = (5.0, 5.5)  # the sound, seconds on the container clock
AMP = 0.2  # tone amplitude: rms 0.2 / sqrt(2) = 0.141 over the event


def _write_offset_mp4(path: Path, audio_start: float, video_start: float = 0.0, seconds: float = 10.0) -> Path:
    """An mp4 whose audio/video streams' first timestamps are ``audio_start``/``video_start`` s.

    Frame k (shown from ``video_start + k / FPS``) has the grey level ``2 * k``; the
    audio is a 440-Hz tone at ``EVENT`` on the container clock, silence elsewhere.
    """
    with av.open(str(path), "w", format="mp4") as c:
        vs = c.add_stream("libx264", rate=FPS)
        vs.width = vs.height = 32
        vs.pix_fmt = "yuv420p"
        vs.time_base = Fraction(1, FPS)
        au = c.add_stream("aac", rate=SR, layout="mono")
        au.time_base = Fraction(1, SR)
        for k in range(round((seconds - video_start) * FPS)):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 2 * k, np.uint8), format="rgb24")
            frame.pts, frame.time_base = k + round(video_start * FPS), Fraction(1, FPS)
            c.mux(vs.encode(frame))
        c.mux(vs.encode(None))
        t = audio_start + np.arange(round((seconds - audio_start) * SR)) / SR
        wave = (AMP * np.sin(2 * np.pi * 440 * t) * ((t >= EVENT[0]) & (t < EVENT[1]))).astype(np.float32)
        for k in range(0, wave.size, 1024):
            frame = av.AudioFrame.from_ndarray(wave[None, k:k + 1024].copy(), format="fltp", layout="mono")
            frame.sample_rate = SR
            frame.pts, frame.time_base = k + round(audio_start * SR), Fraction(1, SR)
            c.mux(au.encode(frame))
        c.mux(au.encode(None))
    return path


def _rms(x: torch.Tensor) -> float:
    return float(x.double().pow(2).mean().sqrt())


@pytest.fixture(scope="module")
def late_audio_ave(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ave_clock") / "AVE_Dataset"
    (root / "AVE").mkdir(parents=True)
    clip = _write_offset_mp4(root / "AVE" / "LATEAUDIO01.mp4", audio_start=1.94)
    with av.open(str(clip)) as c:  # the fault is really in the file
        assert float(c.streams.audio[0].start_time * c.streams.audio[0].time_base) > 1.8
        assert c.streams.video[0].start_time == 0
    for name in ("Annotations.txt", "trainSet.txt", "valSet.txt", "testSet.txt"):
        (root / name).write_text("Clock&LATEAUDIO01&good&5&6\n")
    return root


def test_ave_event_window_holds_the_event_when_audio_starts_late(late_audio_ave: Path) -> None:
    sample = AVE(late_audio_ave, "test", sample_rate=SR, clip_seconds=3.0, image_size=32)[0]
    audio = sample["audio"][0]  # window [4, 7) s on the container clock, centred on the event [5, 6)
    assert audio.shape == (3 * SR,)
    event = audio[round(1.0 * SR) + 400:round(1.5 * SR) - 400]  # [5.0, 5.5) s, codec edges trimmed
    assert _rms(event) == pytest.approx(AMP / np.sqrt(2), rel=0.15)  # about 0.14, not 0.0
    assert _rms(audio[: SR - 800]) < 0.01 and _rms(audio[round(1.5 * SR) + 800:]) < 0.01


def test_read_audio_is_silent_before_a_late_stream_and_aligned_after(late_audio_ave: Path) -> None:
    clip = late_audio_ave / "AVE" / "LATEAUDIO01.mp4"
    head = io.read_audio(clip, SR, start=0.0, duration=1.0)
    assert head.shape == (1, SR) and float(head.abs().max()) == 0.0  # the track has not started
    whole = io.read_audio(clip, SR)  # sample i plays at i / SR
    loud = torch.nonzero(whole[0].abs() > 0.05).flatten()
    assert float(loud[0]) / SR == pytest.approx(EVENT[0], abs=0.01)
    assert float(loud[-1]) / SR == pytest.approx(EVENT[1], abs=0.01)
    window = io.read_audio(clip, SR, start=4.5, duration=1.5)
    torch.testing.assert_close(window, whole[:, round(4.5 * SR):round(6.0 * SR)], atol=2e-3, rtol=0)


def test_video_starting_late_is_placed_on_the_container_clock(tmp_path: Path) -> None:
    clip = _write_offset_mp4(tmp_path / "late_video.mp4", audio_start=0.0, video_start=0.5, seconds=3.0)
    grey = [round(float(io.read_video_frame(clip, t=t)[0].mean()) * 255) for t in (0.2, 1.0, 2.05)]
    # t = 0.2 precedes the video: first frame; t = 1.0 is frame 5 (0.5 s in); 2.05 is frame 15
    assert grey == pytest.approx([0, 10, 30], abs=3)


@pytest.fixture(scope="module")
def held_frame_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """VFR: frames every 0.1 s over [0, 1), none in [1, 2) (frame 9 is held), then every
    0.1 s over [2, 3); the last frame is held 3 s, so the file declares 5.9 s."""
    path = tmp_path_factory.mktemp("vfr") / "held.mp4"
    times = [k / 10 for k in range(10)] + [2 + k / 10 for k in range(10)]
    with av.open(str(path), "w", format="mp4") as c:
        vs = c.add_stream("libx264", rate=10)
        vs.width = vs.height = 32
        vs.pix_fmt = "yuv420p"
        vs.time_base = vs.codec_context.time_base = Fraction(1, 1000)
        packets = []
        for k, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 10 * k, np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            packets += vs.encode(frame)
        packets += vs.encode(None)
        for packet in packets:
            if packet.pts == round(times[-1] * 1000):
                packet.duration = 3000  # hold the last frame for 3 s
            c.mux(packet)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert float(s.duration * s.time_base) == pytest.approx(5.9, abs=0.01)
    return path


def _index(frame: torch.Tensor) -> int:
    return round(float(frame[0].mean()) * 255 / 10)


@pytest.mark.parametrize("t, index", [(0.0, 0), (0.95, 9), (1.5, 9), (1.99, 9), (2.0, 10), (2.55, 15)])
def test_held_frame_is_the_one_displayed(held_frame_clip: Path, t: float, index: int) -> None:
    assert _index(io.read_video_frame(held_frame_clip, t=t)) == index  # 1.5 s: held frame 9, not 10


def test_frames_over_a_gap_and_a_held_end_are_not_corrupt(held_frame_clip: Path) -> None:
    frames = io.read_video_frames(held_frame_clip, fps=2, start=0.0, num_frames=11)  # 0, 0.5, ..., 5 s
    assert [_index(f) for f in frames] == [0, 5, 9, 9, 10, 15, 19, 19, 19, 19, 19]
    assert _index(io.read_video_frame(held_frame_clip, t=5.5)) == 19  # valid file: never "truncated"
    assert _index(io.read_video_frame(held_frame_clip)) == 19  # middle of 5.9 s: the held last frame
