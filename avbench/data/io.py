"""Decoding media for every dataset loader: video frames, audio, images, masks.

Why one module: every dataset family (VGGSound, Flickr, AVSBench, AVE, VEGAS,
Ego4D) reads the same few kinds of files, and the numbers a benchmark reports
depend on *how* they are read (which frame is "the middle", how audio is
resampled and mixed, how frames are resized). Doing it once here makes those
choices identical across datasets and the synthetic world.

Conventions
-----------
* Images/frames are ``FloatTensor[3,H,W]`` (``[T,3,H,W]`` for clips), RGB in
  [0, 1]; masks are ``FloatTensor[H,W]`` in {0, 1}; audio is
  ``FloatTensor[C,L]`` (``C = 1`` with ``mono=True``) at the requested rate.
* Times are seconds from the start of the stream (the stream's own
  ``start_time`` is subtracted, so t = 0 is the first frame/sample).
* ``size`` is ``int`` (square ``size x size``, the SSL papers' 224 x 224) or
  ``(H, W)``. Resizing uses ``torch.nn.functional.interpolate`` with
  ``antialias=True`` (bilinear by default, ``interpolation="bicubic"``
  available because the EZ-VSL test transform uses bicubic) on the uint8
  image, which hits torch's fast uint8 kernel and then converts to float; the
  result is rounded to 1/255 like the source pixels. The same function resizes
  mp4 frames and jpg/png images, so a dataset read from pre-extracted frames
  and one read from the mp4 differ only by the codec. Masks use
  ``nearest-exact`` so they stay binary.
* Audio: wav/flac/ogg are read with soundfile (partial reads seek, so a 3-s
  window of a 10-s wav costs 3 s), everything else (mp4, mkv, m4a, ...) with
  PyAV; if soundfile cannot open a file PyAV is tried. Channels are mixed to
  mono by their mean, *then* resampled once with a cached
  ``torchaudio.transforms.Resample`` (sinc, Hann window, width 6, rolloff
  0.99 = ``torchaudio.functional.resample`` defaults) per (orig, new) rate
  pair. The same resampler serves both readers, so a wav and an mp4 of the
  same sound give the same waveform up to the codec. Samples are not clipped
  (AAC can overshoot 1.0 slightly; the EZ-VSL reference clips to [-1, 1] in
  its loader, models may do so).

Errors
------
Every failure raises a :class:`~avbench.data.errors.MediaError` subclass that
names the file: :class:`MissingFileError`, :class:`NoVideoStreamError`,
:class:`NoAudioStreamError`, :class:`CorruptMediaError` (cannot be opened,
decoding fails, zero decodable frames, or frames end well before the duration
the file declares - a truncated mp4 whose index survived), and
:class:`EmptyAudioError` (no samples, or a start time past the end).

Speed
-----
The perf benchmark compares the datasets to raw PyAV decoding, so per-call
overhead is kept small: one container open per call, a keyframe seek instead
of decoding from t = 0 when a start time is given, decoding stops as soon as
the last requested frame is passed, only the selected frames are converted to
RGB (one reused swscale context), multi-frame video decoding uses
``thread_type="AUTO"`` for large frames (see :data:`THREADED_MIN_PIXELS`;
single-frame reads stay unthreaded, where threading is slower), and audio is
resampled in one pass.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio
from av.video.reformatter import VideoReformatter
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from avbench.data.errors import (
    CorruptMediaError,
    EmptyAudioError,
    MediaError,
    MissingFileError,
    NoAudioStreamError,
    NoVideoStreamError,
)

__all__ = [
    "MediaInfo",
    "probe",
    "read_video_frame",
    "read_video_frames",
    "read_audio",
    "fit_length",
    "read_image",
    "read_mask",
]

Size = int | tuple[int, int] | None
Interpolation = Literal["bilinear", "bicubic"]
FitMode = Literal["center", "start", "random"]

#: Extensions read with soundfile (libsndfile); all others go through PyAV.
SOUNDFILE_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".aiff", ".aif"})

#: Frame-threaded decoding pays off only for large frames: on 128-px synthetic
#: clips the thread start-up costs more than it saves, and the datamodule's
#: workers already use the cores. 640x360 (typical VGGSound) is above this.
THREADED_MIN_PIXELS = 320 * 240

# Decoding may end this much before the declared duration before it counts as
# truncation: max(2 frame intervals, 0.5 s). Real YouTube-derived files often
# declare a little more than they hold; a truncated download loses far more.
_TRUNCATION_SLACK_FRAMES = 2.0
_TRUNCATION_SLACK_SECONDS = 0.5
# Audio decoded before a seek target so the codec's overlap is warmed up.
_AUDIO_PREROLL = 0.2


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise MissingFileError(path, "is not a regular file")
        raise MissingFileError(path)
    return path


def _size_hw(size: Size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    h, w = size
    return (int(h), int(w))


def _open(path: Path) -> av.container.InputContainer:
    """Open with PyAV, mapping its errors to typed ones naming ``path``."""
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.PermissionError as err:
        raise MediaError(path, f"permission denied: {err}") from err
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise CorruptMediaError(path, f"cannot open media ({type(err).__name__}: {err})") from err


def _uint8_to_float(images: Tensor, size: Size, interpolation: Interpolation) -> Tensor:
    """uint8 ``[N,3,H,W]`` (any memory format) -> float32 ``[N,3,h,w]`` in [0, 1].

    Resizes in uint8 first: torch's uint8 antialiased kernels are ~4x faster
    than float ones and the rounding error (< 0.5/255) is below the codec's.
    """
    hw = _size_hw(size)
    if hw is not None and tuple(images.shape[-2:]) != hw:
        images = F.interpolate(
            images.contiguous(memory_format=torch.channels_last),
            size=hw,
            mode=interpolation,
            antialias=True,
            align_corners=False,
        )
    # uint8 -> float32 through numpy: torch's CPU cast is ~4x slower here
    # (measured 47 vs 10 ms for 24 frames of 640x360).
    arr = np.ascontiguousarray(images.numpy()).astype(np.float32)
    return torch.from_numpy(arr).div_(255.0)


def _seconds(value: int | None, time_base: object) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


# --------------------------------------------------------------------------
# probing
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class MediaInfo:
    """What a file declares about itself (no decoding; values may be ``None``)."""

    path: Path
    duration: float | None
    has_video: bool
    has_audio: bool
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    num_frames: int | None = None
    sample_rate: int | None = None
    channels: int | None = None
    audio_duration: float | None = None


def probe(path: str | Path) -> MediaInfo:
    """Read the header of a media file (container metadata only, no decoding).

    Useful to place a window (e.g. the centre 3 s of a clip) before reading.
    Audio-only formats readable by soundfile are probed with soundfile.
    """
    path = _existing(path)
    if path.suffix.lower() in SOUNDFILE_EXTENSIONS:
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError):
            pass  # fall back to PyAV below
        else:
            dur = info.frames / info.samplerate if info.samplerate else None
            return MediaInfo(path, dur, False, True, sample_rate=info.samplerate,
                             channels=info.channels, audio_duration=dur)
    with _open(path) as container:
        vs = container.streams.video[0] if container.streams.video else None
        au = container.streams.audio[0] if container.streams.audio else None
        duration = container.duration / av.time_base if container.duration else None
        kw: dict[str, object] = {}
        if vs is not None:
            rate = vs.average_rate or vs.guessed_rate
            kw.update(fps=float(rate) if rate else None, width=vs.codec_context.width,
                      height=vs.codec_context.height, num_frames=vs.frames or None)
        if au is not None:
            kw.update(sample_rate=au.codec_context.sample_rate,
                      channels=au.codec_context.channels,
                      audio_duration=_seconds(au.duration, au.time_base))
        return MediaInfo(path, duration, vs is not None, au is not None, **kw)


# --------------------------------------------------------------------------
# video
# --------------------------------------------------------------------------
def _video_stream(
    container: av.container.InputContainer, path: Path, *, threaded: bool
) -> av.video.stream.VideoStream:
    """The first video stream; frame-threaded decoding if ``threaded`` and frames are large.

    Frame threading adds a pipeline delay of one frame per thread, so it slows
    down reading one frame after a seek (measured: 59 vs 49 ms for the middle
    frame of a 640x360 clip) and only helps when many frames are decoded.
    """
    if not container.streams.video:
        raise NoVideoStreamError(path)
    stream = container.streams.video[0]
    cc = stream.codec_context
    if threaded and (cc.width or 0) * (cc.height or 0) >= THREADED_MIN_PIXELS:
        stream.thread_type = "AUTO"
    return stream


def _stream_start(stream: av.stream.Stream) -> float:
    return _seconds(stream.start_time, stream.time_base) or 0.0


def _video_duration(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    dur = _seconds(stream.duration, stream.time_base)
    if dur:
        return dur
    if container.duration:
        return container.duration / av.time_base
    return None


def _frame_interval(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return 1.0 / float(rate) if rate else 0.04


def _iter_frames(
    container: av.container.InputContainer, stream: av.stream.Stream, path: Path
) -> Iterator[tuple[float, av.VideoFrame]]:
    """Decode ``stream`` yielding ``(time from stream start, frame)``."""
    start = _stream_start(stream)
    interval = _frame_interval(stream)
    count = 0
    last = None
    try:
        for frame in container.decode(stream):
            t = frame.time
            if t is None:  # no pts: extrapolate from the previous frame
                t = start + (last + interval if last is not None else count * interval)
            last = t - start
            count += 1
            yield last, frame
    except av.error.FFmpegError as err:
        raise CorruptMediaError(
            path,
            f"video decoding failed after {count} frames, truncated or corrupt "
            f"({type(err).__name__}: {err})",
        ) from err


def _seek(container: av.container.InputContainer, stream: av.stream.Stream, t: float) -> None:
    """Seek to the keyframe at or before ``t`` (seconds from stream start)."""
    target = int((t + _stream_start(stream)) / stream.time_base)
    try:
        container.seek(target, stream=stream, backward=True, any_frame=False)
    except av.error.FFmpegError:
        container.seek(0)  # unseekable: decode from the start instead


def _nearest_frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    path: Path,
    targets: list[float],
    declared: float | None,
) -> list[av.VideoFrame]:
    """For each sorted target time, the decoded frame whose timestamp is nearest.

    Decodes from the keyframe before ``targets[0]`` and stops once the last
    target is passed. Targets past the last decodable frame get the last frame
    - unless the file declares a longer duration than it decodes (truncated),
    which raises :class:`CorruptMediaError`.
    """
    if targets[0] > 2 * _frame_interval(stream):
        _seek(container, stream, targets[0])
    chosen: list[av.VideoFrame | None] = [None] * len(targets)
    i = 0
    prev: tuple[float, av.VideoFrame] | None = None
    decoded = _iter_frames(container, stream, path)
    try:
        for t, frame in decoded:
            while i < len(targets) and t >= targets[i]:
                pick = frame
                # ties go to the earlier frame: the one on screen at that time
                if prev is not None and targets[i] - prev[0] <= t - targets[i]:
                    pick = prev[1]
                chosen[i] = pick
                i += 1
            if i == len(targets):
                break
            prev = (t, frame)
    finally:
        decoded.close()  # stop the decoder before the container closes
    if prev is None and i == 0:
        raise CorruptMediaError(path, "no decodable video frames (truncated or corrupt)")
    if i < len(targets):
        assert prev is not None
        last_t, last_frame = prev
        slack = max(_TRUNCATION_SLACK_FRAMES * _frame_interval(stream), _TRUNCATION_SLACK_SECONDS)
        wanted = targets[-1] if declared is None else min(targets[-1], declared)
        if declared is not None and last_t < wanted - slack:
            raise CorruptMediaError(
                path,
                f"video frames end at {last_t:.2f}s but the file declares {declared:.2f}s "
                "(truncated or corrupt)",
            )
        for k in range(i, len(targets)):
            chosen[k] = last_frame
    return chosen  # type: ignore[return-value]


def _frames_to_tensor(frames: list[av.VideoFrame], size: Size, interpolation: Interpolation) -> Tensor:
    """Convert selected frames to float ``[T,3,H,W]``, each distinct frame once."""
    reformatter = VideoReformatter()
    cache: dict[int, np.ndarray] = {}
    arrays = []
    for frame in frames:
        key = id(frame)
        if key not in cache:
            cache[key] = reformatter.reformat(frame, format="rgb24").to_ndarray()
        arrays.append(cache[key])
    stacked = torch.from_numpy(np.stack(arrays))  # [T,H,W,3] uint8
    return _uint8_to_float(stacked.permute(0, 3, 1, 2), size, interpolation)


def read_video_frame(
    path: str | Path,
    t: float | None = None,
    size: Size = None,
    *,
    interpolation: Interpolation = "bilinear",
) -> Tensor:
    """The frame nearest to time ``t`` (default: the middle of the video).

    "Middle" is half the duration the video stream declares, the frame the SSL
    repos pre-extract as ``frames/<id>.jpg``. Returns ``FloatTensor[3,H,W]``
    RGB in [0, 1], resized to ``size`` if given. ``t`` past the end returns the
    last frame (unless the file is truncated, see module doc).
    """
    path = _existing(path)
    with _open(path) as container:
        stream = _video_stream(container, path, threaded=False)
        declared = _video_duration(container, stream)
        if t is None and declared is None:  # no duration in header: decode all
            frames = [f for _, f in _iter_frames(container, stream, path)]
            if not frames:
                raise CorruptMediaError(path, "no decodable video frames (truncated or corrupt)")
            picked = [frames[len(frames) // 2]]
        else:
            target = declared / 2 if t is None else max(float(t), 0.0)
            picked = _nearest_frames(container, stream, path, [target], declared)
        return _frames_to_tensor(picked, size, interpolation)[0]


def read_video_frames(
    path: str | Path,
    fps: float,
    start: float = 0.0,
    duration: float | None = None,
    num_frames: int | None = None,
    size: Size = None,
    *,
    interpolation: Interpolation = "bilinear",
) -> Tensor:
    """Frames sampled at ``fps``: for each ``t_k = start + k / fps`` the nearest decoded frame.

    The number of frames is ``num_frames`` if given, else every ``t_k`` below
    ``start + duration`` (``duration`` defaults to the rest of the video), so
    3 s at 8 fps gives 24 frames. Frames are repeated when ``fps`` exceeds the
    video's rate; times past the end repeat the last frame. Returns
    ``FloatTensor[T,3,H,W]`` in [0, 1].
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    path = _existing(path)
    start = max(float(start), 0.0)
    with _open(path) as container:
        stream = _video_stream(container, path, threaded=True)
        declared = _video_duration(container, stream)
        if num_frames is None:
            if duration is None:
                if declared is None:  # no duration in header: find the end by decoding
                    timed = list(_iter_frames(container, stream, path))
                    if not timed:
                        raise CorruptMediaError(path, "no decodable video frames")
                    duration = max(timed[-1][0] + _frame_interval(stream) - start, 0.0)
                    container.seek(0)
                else:
                    duration = max(declared - start, 0.0)
            num_frames = max(1, math.ceil(duration * fps - 1e-6))
        if num_frames <= 0:
            raise ValueError(f"num_frames must be positive, got {num_frames}")
        targets = [start + k / fps for k in range(num_frames)]
        picked = _nearest_frames(container, stream, path, targets, declared)
        return _frames_to_tensor(picked, size, interpolation)


# --------------------------------------------------------------------------
# audio
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _resampler(orig: int, new: int) -> torchaudio.transforms.Resample:
    """One Resample module per rate pair: its sinc kernel is built once per process."""
    return torchaudio.transforms.Resample(orig, new)


def _resample(wave: Tensor, orig: int, new: int) -> Tensor:
    if orig == new:
        return wave
    with torch.no_grad():
        return _resampler(int(orig), int(new))(wave)


_INT_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


def _audio_frame_array(frame: av.AudioFrame) -> np.ndarray:
    """Decoded audio frame -> float32 ``[C, n]`` in [-1, 1]."""
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:  # packed: [1, n*C] interleaved
        arr = arr.reshape(-1, channels).T
    if arr.dtype == np.uint8:
        return (arr.astype(np.float32) - 128.0) / 128.0
    scale = _INT_SCALE.get(arr.dtype)
    if scale is not None:
        return arr.astype(np.float32) / scale
    return arr.astype(np.float32, copy=False)


def _read_soundfile(path: Path, start: float | None, duration: float | None) -> tuple[np.ndarray, int]:
    """Raises ``sf.LibsndfileError`` if libsndfile cannot open the file (caller falls back)."""
    with sf.SoundFile(str(path)) as f:
        sr = f.samplerate
        total = f.frames
        if total <= 0:
            raise EmptyAudioError(path, "zero-length audio (0 samples)")
        first = round(start * sr) if start else 0
        if first >= total:
            raise EmptyAudioError(
                path, f"start {start:.3f}s is at or past the end of the audio ({total / sr:.3f}s)"
            )
        count = -1 if duration is None else max(round(duration * sr), 0)
        try:
            if first:
                f.seek(first)
            data = f.read(frames=count, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise CorruptMediaError(path, f"audio decoding failed: {err}") from err
    return np.ascontiguousarray(data.T), sr


def _read_pyav_audio(path: Path, start: float | None, duration: float | None) -> tuple[np.ndarray, int]:
    with _open(path) as container:
        if not container.streams.audio:
            raise NoAudioStreamError(path)
        stream = container.streams.audio[0]
        sr = stream.codec_context.sample_rate or stream.rate
        if not sr:
            raise CorruptMediaError(path, "audio stream has no sample rate")
        t0 = _stream_start(stream)
        declared = _seconds(stream.duration, stream.time_base)
        begin = max(float(start or 0.0), 0.0)
        end = None if duration is None else begin + max(float(duration), 0.0)
        if declared is not None and end is not None:
            end = min(end, declared)
        elif declared is not None:
            end = declared  # drops the AAC encoder's padding after the last sample
        if begin > _AUDIO_PREROLL:
            # Seek a little early: the first frame after a seek lacks its
            # MDCT overlap (AAC), so let the decoder warm up before ``begin``.
            _seek(container, stream, begin - _AUDIO_PREROLL)

        chunks: list[np.ndarray] = []
        first_time: float | None = None
        got = 0
        try:
            for frame in container.decode(stream):
                if first_time is None:
                    first_time = (frame.time - t0) if frame.time is not None else 0.0
                arr = _audio_frame_array(frame)
                chunks.append(arr)
                got += arr.shape[1]
                if end is not None and first_time + got / sr >= end:
                    break
        except av.error.FFmpegError as err:
            raise CorruptMediaError(
                path,
                f"audio decoding failed after {got} samples, truncated or corrupt "
                f"({type(err).__name__}: {err})",
            ) from err
    if not chunks or got == 0:
        if declared:
            raise CorruptMediaError(path, f"no decodable audio although {declared:.2f}s declared")
        raise EmptyAudioError(path, "zero-length audio (no samples decoded)")
    assert first_time is not None
    decoded_end = first_time + got / sr
    if declared is not None and end is not None and decoded_end < end - _TRUNCATION_SLACK_SECONDS:
        raise CorruptMediaError(
            path,
            f"audio ends at {decoded_end:.2f}s but the file declares {declared:.2f}s "
            "(truncated or corrupt)",
        )
    data = np.concatenate(chunks, axis=1) if len(chunks) > 1 else chunks[0]
    lo = max(round((begin - first_time) * sr), 0)
    hi = data.shape[1] if end is None else max(round((end - first_time) * sr), 0)
    if lo >= data.shape[1] or lo >= hi:
        raise EmptyAudioError(
            path, f"start {begin:.3f}s is at or past the end of the audio "
            f"({first_time + data.shape[1] / sr:.3f}s)"
        )
    return np.ascontiguousarray(data[:, lo:hi]), int(sr)


def read_audio(
    path: str | Path,
    sample_rate: int,
    start: float | None = None,
    duration: float | None = None,
    mono: bool = True,
) -> Tensor:
    """Read ``[start, start + duration)`` of a file's (first) audio track.

    Returns ``FloatTensor[1,L]`` (``[C,L]`` if ``mono=False``) at
    ``sample_rate``, with ``L = round(duration * sample_rate)`` when the file
    has that much audio, fewer samples otherwise (use :func:`fit_length`).
    Without ``start``/``duration`` the whole track is read. wav/flac/ogg go
    through soundfile, everything else (and anything soundfile rejects)
    through PyAV.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    path = _existing(path)
    data: np.ndarray | None = None
    if path.suffix.lower() in SOUNDFILE_EXTENSIONS:
        try:
            data, sr = _read_soundfile(path, start, duration)
        except (sf.LibsndfileError, RuntimeError) as sf_err:
            try:
                data, sr = _read_pyav_audio(path, start, duration)
            except CorruptMediaError as av_err:
                raise CorruptMediaError(
                    path, f"unreadable audio (soundfile: {sf_err}; PyAV: {av_err.problem})"
                ) from av_err
    if data is None:
        data, sr = _read_pyav_audio(path, start, duration)
    if data.shape[1] == 0:
        raise EmptyAudioError(path)
    wave = torch.from_numpy(data)
    if mono and wave.shape[0] > 1:
        wave = wave.mean(dim=0, keepdim=True)
    wave = _resample(wave, sr, sample_rate)
    if duration is not None:
        wave = wave[:, : max(round(duration * sample_rate), 1)]
    return wave.contiguous()


def fit_length(
    wave: Tensor,
    num_samples: int,
    mode: FitMode = "center",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Crop or tile ``wave`` (``[..., L]``) to exactly ``num_samples`` along the last axis.

    Longer input: a window at the centre (``start = (L - n) // 2``), the start,
    or a uniformly random offset (``generator`` for reproducibility). Shorter
    input: tiled (repeated end to end from its first sample) and cut, in every
    mode - what the SSL reference code does with audio shorter than its 3-s
    window (``np.tile`` then ``[:n]``), so a short clip never gets silence.
    """
    if num_samples <= 0:
        raise ValueError(f"num_samples must be positive, got {num_samples}")
    length = wave.shape[-1]
    if length == 0:
        raise ValueError("fit_length() got an empty waveform")
    if length == num_samples:
        return wave
    if length < num_samples:
        reps = math.ceil(num_samples / length)
        return wave.repeat(*([1] * (wave.dim() - 1)), reps)[..., :num_samples]
    if mode == "center":
        offset = (length - num_samples) // 2
    elif mode == "start":
        offset = 0
    elif mode == "random":
        offset = int(torch.randint(0, length - num_samples + 1, (1,), generator=generator))
    else:
        raise ValueError(f"mode must be 'center', 'start' or 'random', got {mode!r}")
    return wave[..., offset : offset + num_samples]


# --------------------------------------------------------------------------
# images and masks
# --------------------------------------------------------------------------
def _open_image(path: Path) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
        return img
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CorruptMediaError(path, f"cannot decode image ({type(err).__name__}: {err})") from err


def read_image(
    path: str | Path, size: Size = None, *, interpolation: Interpolation = "bilinear"
) -> Tensor:
    """jpg/png (anything PIL reads) -> ``FloatTensor[3,H,W]`` RGB in [0, 1], optionally resized."""
    path = _existing(path)
    with _open_image(path) as img:
        arr = np.array(img.convert("RGB"))
    chw = torch.from_numpy(arr).permute(2, 0, 1)[None]
    return _uint8_to_float(chw, size, interpolation)[0]


def read_mask(path: str | Path, size: Size = None) -> Tensor:
    """Mask png -> ``FloatTensor[H,W]`` in {0, 1}: any non-zero pixel is foreground.

    Palette ("P") images are read by palette *index* (AVSBench-style masks
    store classes as indices; converting to grey could map index 1 to black).
    RGB(A) masks count a pixel as foreground if any colour channel is non-zero
    (alpha ignored). Resizing is nearest-neighbour (``nearest-exact``: pixel
    centres), so the mask stays binary.
    """
    path = _existing(path)
    with _open_image(path) as img:
        if img.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
            arr = np.array(img.convert("RGB")).max(axis=-1)
        elif img.mode in ("LA", "PA"):
            arr = np.array(img)[..., 0]
        else:  # "1", "L", "P", "I", "I;16", "F"
            arr = np.array(img)
    mask = torch.from_numpy(arr > 0).to(torch.float32)
    hw = _size_hw(size)
    if hw is not None and tuple(mask.shape) != hw:
        mask = F.interpolate(mask[None, None], size=hw, mode="nearest-exact")[0, 0]
    return mask
