"""Round trips through avbench.data.synthetic.media (encode) and avbench.data.io (decode).

Every media file is written into ``tmp_path`` by the project's own writers,
so these tests also pin down the contract between the synthetic world and the
real loaders: timestamps, colours, sample alignment, errors naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avbench.data.errors import (
    CorruptMediaError,
    EmptyAudioError,
    MediaError,
    MissingFileError,
    NoAudioStreamError,
    NoVideoStreamError,
)
from avbench.data.io import (
    fit_length,
    probe,
    read_audio,
    read_image,
    read_mask,
    read_video_frame,
    read_video_frames,
)
from avbench.data.synthetic.media import write_image, write_mask, write_mp4, write_wav

FPS = 8
SECONDS = 3
SR = 16000
SIZE = 64
# yuv420p + H.264 at crf 18 on flat colours: a few levels of error at most.
COLOUR_TOL = 6 / 255


def frame_colour(i: int) -> np.ndarray:
    """A distinct, smoothly varying solid colour per frame index."""
    return np.array([10 * i, 240 - 8 * i, 60 + 5 * i], dtype=np.uint8)


def solid_frames(n: int = FPS * SECONDS, h: int = SIZE, w: int = SIZE) -> np.ndarray:
    frames = np.empty((n, h, w, 3), dtype=np.uint8)
    for i in range(n):
        frames[i] = frame_colour(i)
    return frames


def sine(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(round(seconds * sr)) / sr)).astype(np.float32)


def peak_hz(wave: torch.Tensor, sr: int) -> float:
    x = wave.reshape(-1).double().numpy()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[spectrum.argmax()])


def assert_names_file(err: pytest.ExceptionInfo[MediaError], path: Path) -> None:
    assert err.value.path == path
    assert str(path) in str(err.value)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def av_clip(media_dir: Path) -> Path:
    """3 s, 8 fps, 64 px, one solid colour per frame; 440 Hz tone with a click at 0.5 s."""
    audio = sine(440, SECONDS, SR)
    audio[SR // 2] = 1.0
    return write_mp4(media_dir / "clip.mp4", solid_frames(), FPS, audio, SR)


@pytest.fixture(scope="module")
def faststart_clip(media_dir: Path) -> Path:
    return write_mp4(media_dir / "fast.mp4", solid_frames(), FPS, sine(440, SECONDS, SR), SR,
                     faststart=True)


# --------------------------------------------------------------------------
# video
# --------------------------------------------------------------------------
def test_middle_frame_is_the_middle_solid_colour(av_clip: Path) -> None:
    frame = read_video_frame(av_clip)
    assert frame.shape == (3, SIZE, SIZE) and frame.dtype == torch.float32
    expected = torch.from_numpy(frame_colour(FPS * SECONDS // 2)).float() / 255
    # the whole frame is that colour, not just a pixel
    assert (frame - expected[:, None, None]).abs().max() <= COLOUR_TOL


# the frame displayed at t: the last one starting at or before t (frames every 0.125 s)
@pytest.mark.parametrize("t, index", [(0.0, 0), (0.5, 4), (1.06, 8), (2.2, 17), (2.24, 17), (99.0, 23)])
def test_frame_at_time_is_the_displayed_frame(av_clip: Path, t: float, index: int) -> None:
    frame = read_video_frame(av_clip, t=t)
    expected = torch.from_numpy(frame_colour(index)).float() / 255
    assert (frame[:, SIZE // 2, SIZE // 2] - expected).abs().max() <= COLOUR_TOL


def _indices(frames: torch.Tensor) -> list[int]:
    """Recover frame indices from the red channel (10 * i)."""
    return [round(float(v) * 255 / 10) for v in frames[:, 0, SIZE // 4, SIZE // 4]]


def test_frames_at_native_fps_are_all_frames_in_order(av_clip: Path) -> None:
    frames = read_video_frames(av_clip, fps=FPS)
    assert frames.shape == (FPS * SECONDS, 3, SIZE, SIZE)
    assert _indices(frames) == list(range(FPS * SECONDS))


def test_frames_resampled_fps_pick_displayed(av_clip: Path) -> None:
    # 3 fps over 1 s: targets 0, 1/3, 2/3 s -> frames shown then start at 0, 0.25, 0.625 s
    assert _indices(read_video_frames(av_clip, fps=3, duration=1.0)) == [0, 2, 5]
    # window with start and a fixed count
    assert _indices(read_video_frames(av_clip, fps=4, start=1.0, num_frames=3)) == [8, 10, 12]
    # higher fps than the video repeats frames; past the end repeats the last frame
    assert _indices(read_video_frames(av_clip, fps=16, start=2.75, num_frames=4)) == [22, 22, 23, 23]
    assert _indices(read_video_frames(av_clip, fps=2, start=2.5, num_frames=3)) == [20, 23, 23]


def test_resize_square_and_rectangular(av_clip: Path) -> None:
    square = read_video_frame(av_clip, size=32)
    rect = read_video_frames(av_clip, fps=1, size=(24, 40))
    assert square.shape == (3, 32, 32)
    assert rect.shape == (3, 3, 24, 40)
    expected = torch.from_numpy(frame_colour(12)).float() / 255
    assert (square - expected[:, None, None]).abs().max() <= COLOUR_TOL


def test_resize_is_antialiased_bilinear(tmp_path: Path) -> None:
    # 1-px stripes averaged by antialiasing, not aliased to 0 or 1
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    img[:, ::2] = 255
    path = write_image(tmp_path / "stripes.png", img)
    small = read_image(path, size=16)
    assert small.shape == (3, 16, 16)
    assert (small - 0.5).abs().max() < 0.05


def test_odd_sizes_are_padded_to_even(tmp_path: Path) -> None:
    path = write_mp4(tmp_path / "odd.mp4", solid_frames(4, 33, 47), FPS, None, SR)
    frame = read_video_frame(path, t=0.0)
    assert frame.shape == (3, 34, 48)
    expected = torch.from_numpy(frame_colour(0)).float() / 255
    assert (frame - expected[:, None, None]).abs().max() <= COLOUR_TOL


def test_probe_reports_header(av_clip: Path) -> None:
    info = probe(av_clip)
    assert info.has_video and info.has_audio
    assert info.fps == FPS and (info.width, info.height) == (SIZE, SIZE)
    assert info.sample_rate == SR and info.channels == 1
    assert info.duration == pytest.approx(SECONDS, abs=0.05)


# --------------------------------------------------------------------------
# audio
# --------------------------------------------------------------------------
def test_mp4_audio_tone_length_and_alignment(av_clip: Path) -> None:
    wave = read_audio(av_clip, SR)
    assert wave.shape == (1, SECONDS * SR)  # encoder padding trimmed to the declared duration
    assert int(wave.abs().argmax()) == SR // 2  # the click is sample-aligned
    assert peak_hz(wave, SR) == pytest.approx(440, abs=1)


def test_mp4_audio_window_and_resample(av_clip: Path) -> None:
    window = read_audio(av_clip, SR, start=0.25, duration=0.5)
    assert window.shape == (1, SR // 2)
    assert int(window.abs().argmax()) == SR // 4  # click at 0.5 s = 0.25 s into the window
    down = read_audio(av_clip, 8000, start=1.0, duration=1.5)
    assert down.shape == (1, 12000)
    assert peak_hz(down, 8000) == pytest.approx(440, abs=1)


@pytest.mark.parametrize("sr", [16000, 44100])
def test_mp4_audio_seek_is_sample_exact(tmp_path: Path, sr: int) -> None:
    audio = sine(440, SECONDS, sr, 0.3)
    audio[round(2.3 * sr)] = 1.0
    path = write_mp4(tmp_path / "seek.mp4", None, FPS, audio, sr)
    window = read_audio(path, sr, start=2.0, duration=0.5)  # seeks inside the file
    assert window.shape == (1, sr // 2)
    assert int(window.abs().argmax()) == round(0.3 * sr)


@pytest.mark.parametrize("container", ["wav", "mp4"])
def test_44k_stereo_read_as_16k_mono(tmp_path: Path, container: str) -> None:
    sr_in, seconds = 44100, 2.0
    stereo = np.stack([sine(440, seconds, sr_in, 0.4), sine(1000, seconds, sr_in, 0.2)])
    if container == "wav":
        path = write_wav(tmp_path / "s.wav", stereo, sr_in)
    else:
        path = write_mp4(tmp_path / "s.mp4", None, FPS, stereo, sr_in)
    mono = read_audio(path, SR)
    both = read_audio(path, SR, mono=False)
    assert mono.shape == (1, int(seconds * SR))
    assert both.shape == (2, int(seconds * SR))
    torch.testing.assert_close(mono, both.mean(0, keepdim=True))  # mono = mean of channels
    assert peak_hz(mono, SR) == pytest.approx(440, abs=1)
    assert peak_hz(both[1], SR) == pytest.approx(1000, abs=1)
    # the louder 440 Hz tone keeps its amplitude through resampling (0.4 / 2 in the mean)
    mid = mono[0, SR // 2 : -SR // 2]
    assert float(mid.abs().max()) == pytest.approx(0.3, abs=0.03)


def test_wav_partial_read_is_sample_exact(tmp_path: Path) -> None:
    audio = np.zeros(2 * SR, dtype=np.float32)
    audio[12000] = 0.9
    path = write_wav(tmp_path / "click.wav", audio, SR)
    window = read_audio(path, SR, start=0.5, duration=1.0)
    assert window.shape == (1, SR)
    assert int(window.abs().argmax()) == 12000 - SR // 2
    assert float(window.max()) == pytest.approx(0.9, abs=1e-4)  # PCM_16 quantisation only
    short = read_audio(path, SR, start=1.5, duration=3.0)  # asks past the end: what exists
    assert short.shape == (1, SR // 2)


def test_wav_and_mp4_of_same_sound_agree(tmp_path: Path) -> None:
    audio = sine(440, 1.0, 22050) + sine(3000, 1.0, 22050, 0.1)
    a = read_audio(write_wav(tmp_path / "a.wav", audio, 22050), SR)
    b = read_audio(write_mp4(tmp_path / "a.mp4", None, FPS, audio, 22050), SR)
    assert a.shape == b.shape
    inner = slice(800, -800)  # ignore codec edges
    assert float((a[0, inner] - b[0, inner]).abs().max()) < 0.02


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reader",
    [
        lambda p: read_video_frame(p),
        lambda p: read_video_frames(p, fps=4),
        lambda p: read_audio(p, SR),
        lambda p: read_image(p),
        lambda p: read_mask(p),
    ],
    ids=["frame", "frames", "audio", "image", "mask"],
)
def test_missing_file(tmp_path: Path, reader) -> None:
    path = tmp_path / "nope" / "clip.mp4"
    with pytest.raises(MissingFileError) as err:
        reader(path)
    assert_names_file(err, path)
    assert isinstance(err.value, FileNotFoundError)


@pytest.mark.parametrize("suffix", [".mp4", ".wav", ".jpg", ".png"])
def test_random_bytes_are_corrupt(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    readers = {
        ".mp4": [read_video_frame, lambda p: read_video_frames(p, fps=4), lambda p: read_audio(p, SR)],
        ".wav": [lambda p: read_audio(p, SR)],
        ".jpg": [read_image],
        ".png": [read_mask],
    }[suffix]
    for reader in readers:
        with pytest.raises(CorruptMediaError) as err:
            reader(path)
        assert_names_file(err, path)


def test_truncated_mp4_is_corrupt(av_clip: Path, tmp_path: Path) -> None:
    # default muxing writes the index (moov) last: a cut file has no index
    path = tmp_path / "cut.mp4"
    path.write_bytes(av_clip.read_bytes()[: av_clip.stat().st_size // 2])
    for reader in (read_video_frame, lambda p: read_audio(p, SR)):
        with pytest.raises(CorruptMediaError) as err:
            reader(path)
        assert_names_file(err, path)


def test_truncated_faststart_mp4_is_corrupt(faststart_clip: Path, tmp_path: Path) -> None:
    # index first (YouTube-style): the file opens, but media ends early
    data = faststart_clip.read_bytes()
    path = tmp_path / "cut_fast.mp4"
    path.write_bytes(data[: int(len(data) * 0.4)])
    readers = (lambda p: read_video_frame(p, t=2.5), lambda p: read_video_frames(p, fps=FPS),
               lambda p: read_audio(p, SR))
    for reader in readers:
        with pytest.raises(CorruptMediaError, match="truncated") as err:
            reader(path)
        assert_names_file(err, path)
    # the intact first part is still readable where it exists
    assert read_video_frame(path, t=0.0).shape == (3, SIZE, SIZE)


def test_mp4_without_audio(tmp_path: Path) -> None:
    path = write_mp4(tmp_path / "silent.mp4", solid_frames(8), FPS, None, SR)
    with pytest.raises(NoAudioStreamError) as err:
        read_audio(path, SR)
    assert_names_file(err, path)
    assert read_video_frame(path).shape == (3, SIZE, SIZE)


def test_mp4_without_video(tmp_path: Path) -> None:
    path = write_mp4(tmp_path / "blind.mp4", None, FPS, sine(440, 1.0, SR), SR)
    for reader in (read_video_frame, lambda p: read_video_frames(p, fps=4)):
        with pytest.raises(NoVideoStreamError) as err:
            reader(path)
        assert_names_file(err, path)
    assert read_audio(path, SR).shape == (1, SR)


def test_zero_length_and_past_end_audio(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(EmptyAudioError) as err:
        read_audio(path, SR)
    assert_names_file(err, path)
    one_second = write_wav(tmp_path / "one.wav", sine(440, 1.0, SR), SR)
    with pytest.raises(EmptyAudioError):
        read_audio(one_second, SR, start=2.0, duration=1.0)
    mp4 = write_mp4(tmp_path / "one.mp4", None, FPS, sine(440, 1.0, SR), SR)
    with pytest.raises(EmptyAudioError):
        read_audio(mp4, SR, start=2.0, duration=1.0)


# --------------------------------------------------------------------------
# fit_length
# --------------------------------------------------------------------------
def test_fit_length_crop_and_tile_values() -> None:
    wave = torch.arange(10.0)[None]
    assert fit_length(wave, 4).tolist() == [[3.0, 4.0, 5.0, 6.0]]
    assert fit_length(wave, 5).tolist() == [[2.0, 3.0, 4.0, 5.0, 6.0]]
    assert fit_length(wave, 4, mode="start").tolist() == [[0.0, 1.0, 2.0, 3.0]]
    assert fit_length(wave, 10) is wave
    short = torch.arange(3.0)[None]
    for mode in ("center", "start", "random"):
        assert fit_length(short, 7, mode=mode).tolist() == [[0, 1, 2, 0, 1, 2, 0]]
    stereo = torch.stack([torch.arange(3.0), -torch.arange(3.0)])
    assert fit_length(stereo, 5).tolist() == [[0, 1, 2, 0, 1], [0, -1, -2, 0, -1]]


def test_fit_length_random_is_a_seeded_window() -> None:
    wave = torch.arange(100.0)[None]
    a = fit_length(wave, 10, "random", torch.Generator().manual_seed(3))
    b = fit_length(wave, 10, "random", torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    start = int(a[0, 0])
    assert a[0].tolist() == list(range(start, start + 10))
    starts = {int(fit_length(wave, 10, "random", torch.Generator().manual_seed(s))[0, 0])
              for s in range(20)}
    assert len(starts) > 5


def test_fit_length_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        fit_length(torch.zeros(1, 0), 5)
    with pytest.raises(ValueError):
        fit_length(torch.zeros(1, 10), 5, mode="middle")  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# images and masks
# --------------------------------------------------------------------------
def test_image_round_trip(tmp_path: Path) -> None:
    img = np.zeros((20, 30, 3), dtype=np.uint8)
    img[:, :15] = (200, 30, 90)
    img[:, 15:] = (10, 180, 250)
    png = read_image(write_image(tmp_path / "a.png", img))
    assert png.shape == (3, 20, 30)
    torch.testing.assert_close(png, torch.from_numpy(img).permute(2, 0, 1).float() / 255)
    jpg = read_image(write_image(tmp_path / "a.jpg", img))
    inner = jpg[:, 4:-4, [2, 3, 4, 25, 26, 27]]  # away from the colour edge
    ref = torch.from_numpy(img).permute(2, 0, 1).float()[:, 4:-4, [2, 3, 4, 25, 26, 27]] / 255
    assert (inner - ref).abs().max() < 12 / 255
    assert read_image(tmp_path / "a.png", size=(10, 15)).shape == (3, 10, 15)


def test_mask_round_trip_and_nearest_resize(tmp_path: Path) -> None:
    mask = np.zeros((8, 8), dtype=bool)
    mask[:, :4] = True
    path = write_mask(tmp_path / "m.png", mask)
    assert np.array(Image.open(path)).max() == 255  # stored 0/255
    read = read_mask(path)
    assert torch.equal(read, torch.from_numpy(mask).float())
    big = read_mask(path, size=16)
    assert set(big.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(big, torch.from_numpy(np.repeat(np.repeat(mask, 2, 0), 2, 1)).float())


def test_palette_mask_uses_indices(tmp_path: Path) -> None:
    # index 1 painted black in the palette must still be foreground
    img = Image.fromarray(np.array([[0, 1], [1, 2]], dtype=np.uint8), mode="P")
    img.putpalette([0, 0, 0] * 3)
    path = tmp_path / "p.png"
    img.save(path)
    assert read_mask(path).tolist() == [[0.0, 1.0], [1.0, 1.0]]


# --------------------------------------------------------------------------
# writers: atomicity
# --------------------------------------------------------------------------
def test_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = write_image(tmp_path / "keep.png", np.full((4, 4, 3), 7, dtype=np.uint8))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        write_image(target, np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(OSError, match="disk full"):
        write_mask(tmp_path / "new.png", np.ones((4, 4), dtype=bool))
    monkeypatch.undo()
    assert read_image(target)[0, 0, 0] == pytest.approx(7 / 255)  # old file intact
    assert not (tmp_path / "new.png").exists()
    assert sorted(os.listdir(tmp_path)) == ["keep.png"]  # no partial files left


def test_writers_leave_no_temporaries(tmp_path: Path) -> None:
    write_mp4(tmp_path / "d" / "c.mp4", solid_frames(4), FPS, sine(440, 0.5, SR), SR)
    write_wav(tmp_path / "d" / "a.wav", sine(440, 0.5, SR), SR)
    assert sorted(os.listdir(tmp_path / "d")) == ["a.wav", "c.mp4"]
    with pytest.raises(ValueError):
        write_mp4(tmp_path / "d" / "bad.mp4", None, FPS, None, SR)
    with pytest.raises(ValueError):
        write_mp4(tmp_path / "d" / "bad.mp4", solid_frames(2).astype(np.float32), FPS, None, SR)
