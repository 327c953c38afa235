"""Encoding media files for the synthetic world's writers.

The synthetic world writes every dataset in its *real* on-disk layout, so the
real loaders (:mod:`avbench.data.io`) are exercised on files produced here:
mp4 (H.264 + AAC, like YouTube-derived VGGSound clips), 16-bit PCM wav (like
the pre-extracted ``audio/<id>.wav`` of the SSL repos and AVSBench), jpg/png
frames and 0/255 png masks.

Every writer is atomic (:func:`avbench.atomic_io.atomic_path`): it writes a
hidden ``.<name>.<random>.partial`` in the same directory and moves it onto
``path`` only when the file is complete, so a synthesis killed half-way never
leaves a truncated file that a later run would mistake for data. The temporary
name deliberately does not end with the media extension (globs such as
``*.mp4`` never pick up a leftover), so every encoder is given its container
format explicitly instead of guessing it from the extension.

Speed: short clips are dominated by per-file encoder set-up, not by pixels, so
the H.264 encoder runs single-threaded with ``preset=veryfast`` (synthesis
parallelises over files, not inside one); see :func:`write_mp4`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from PIL import Image

from avbench.atomic_io import atomic_path

__all__ = ["write_mp4", "write_wav", "write_image", "write_mask", "video_codec"]

# H.264 settings: crf 18 is visually lossless for flat synthetic shapes (the
# tests read a solid colour back within a few levels); "veryfast" keeps the
# per-clip cost low. Single thread: x264's thread pool start-up costs more
# than it saves on a 24-frame 128-px clip, and the writers already run one
# process per core.
_X264_OPTIONS = {"crf": "18", "preset": "veryfast", "threads": "1"}
_AAC_BITRATE_PER_CHANNEL = 96_000


_VIDEO_CODEC: str | None = None


def video_codec() -> str:
    """The video encoder used for mp4: ``libx264`` if this PyAV build has it, else ``mpeg4``."""
    global _VIDEO_CODEC
    if _VIDEO_CODEC is None:
        try:
            av.codec.Codec("libx264", "w")
            _VIDEO_CODEC = "libx264"
        except Exception:  # UnknownCodecError / FFmpegError depending on PyAV version
            _VIDEO_CODEC = "mpeg4"
    return _VIDEO_CODEC


def _even_frames(frames: np.ndarray) -> np.ndarray:
    """Pad H and W to even sizes by repeating the last row/column.

    yuv420p subsamples chroma 2x2, so H.264 needs even sizes. Padding (rather
    than cropping) keeps every written pixel, so pixel-coordinate annotations
    of the source frames stay valid; the decoded frame is then one pixel
    larger in the odd dimension. Writers should simply use even sizes.
    """
    _, h, w, _ = frames.shape
    ph, pw = h % 2, w % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    return frames


def _as_channels_first(audio: np.ndarray) -> np.ndarray:
    """[L] or [C,L] float -> contiguous float32 [C,L] with C in {1, 2}."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[0] not in (1, 2):
        raise ValueError(f"audio must be [L] or [C,L] with C in (1, 2), got shape {audio.shape}")
    return np.ascontiguousarray(audio)


def write_mp4(
    path: str | Path,
    frames: np.ndarray | None,
    fps: int,
    audio: np.ndarray | None,
    sample_rate: int,
    *,
    faststart: bool = False,
) -> Path:
    """Write an mp4 with an H.264 (yuv420p) video track and/or an AAC audio track.

    Args:
        path: destination ``.mp4`` (parent directories are created).
        frames: uint8 ``[T,H,W,3]`` RGB, or ``None`` for an audio-only mp4.
            Odd H/W are padded to even (see :func:`_even_frames`).
        fps: frame rate; frame ``i`` gets timestamp ``i / fps`` exactly
            (stream time base ``1/fps``).
        audio: float32 ``[L]`` (mono) or ``[C,L]`` (C = 1 or 2) in [-1, 1], or
            ``None`` for a video-only mp4. Audio starts at t = 0.
        sample_rate: audio sample rate (any AAC rate, e.g. 16000, 44100).
        faststart: move the ``moov`` index to the front (like YouTube
            downloads); costs a second pass over the file. Default off: the
            muxer then writes ``moov`` at the end, and a file cut short has no
            index at all.

    Returns the path. Audio-only and video-only files exist so that tests can
    check the loaders' ``NoVideoStreamError`` / ``NoAudioStreamError``.
    """
    if frames is None and audio is None:
        raise ValueError("write_mp4 needs frames, audio or both")
    if frames is not None:
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"frames must be uint8 [T,H,W,3], got {frames.dtype} {frames.shape}"
            )
        frames = _even_frames(frames)
    if audio is not None:
        audio = _as_channels_first(audio)

    options = {"movflags": "+faststart"} if faststart else {}
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4", options=options) as container:
            vstream = astream = None
            if frames is not None:
                codec = video_codec()
                vstream = container.add_stream(codec, rate=fps)
                vstream.width = int(frames.shape[2])
                vstream.height = int(frames.shape[1])
                vstream.pix_fmt = "yuv420p"
                vstream.time_base = Fraction(1, fps)
                if codec == "libx264":
                    vstream.options = dict(_X264_OPTIONS)
                else:  # mpeg4: fixed quantiser, good enough for flat colours
                    vstream.codec_context.qscale = 2
                    vstream.codec_context.thread_count = 1
            if audio is not None:
                layout = "mono" if audio.shape[0] == 1 else "stereo"
                astream = container.add_stream("aac", rate=sample_rate, layout=layout)
                astream.bit_rate = _AAC_BITRATE_PER_CHANNEL * audio.shape[0]
                astream.time_base = Fraction(1, sample_rate)
                # The default "twoloop" coder costs ~4x more time; "fast" is
                # transparent enough for synthetic tones and noise.
                astream.options = {"aac_coder": "fast"}

            if vstream is not None:
                for i, img in enumerate(frames):
                    frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                    frame.pts = i
                    # Not vstream.time_base: the muxer rewrites that when the
                    # header is written (after the first packet).
                    frame.time_base = Fraction(1, fps)
                    container.mux(vstream.encode(frame))
                container.mux(vstream.encode(None))
            if astream is not None:
                # Feed AAC-sized (1024-sample) frames ourselves: skips the
                # re-chunking resampler PyAV otherwise inserts.
                n = astream.codec_context.frame_size or 1024
                for k in range(0, audio.shape[1], n):
                    aframe = av.AudioFrame.from_ndarray(
                        np.ascontiguousarray(audio[:, k : k + n]), format="fltp", layout=layout
                    )
                    aframe.sample_rate = sample_rate
                    aframe.pts = k
                    aframe.time_base = Fraction(1, sample_rate)
                    container.mux(astream.encode(aframe))
                container.mux(astream.encode(None))
    return Path(path)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write 16-bit PCM wav (the format of pre-extracted SSL / AVSBench audio).

    ``audio`` is float ``[L]`` or ``[C,L]`` in [-1, 1]; values outside are
    clipped by libsndfile's float->int conversion. A zero-length array writes a
    valid empty wav (used to test ``EmptyAudioError``).
    """
    audio = np.asarray(audio, dtype=np.float32)
    data = audio if audio.ndim == 1 else audio.T  # soundfile wants [L, C]
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, int(sample_rate), subtype="PCM_16", format="WAV")
    return Path(path)


def _image_format(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in (".jpg", ".jpeg"):
        return "JPEG"
    if ext == ".png":
        return "PNG"
    raise ValueError(f"{path}: unsupported image extension {ext!r} (use .jpg or .png)")


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write a uint8 ``[H,W,3]`` RGB image as jpg (quality 90) or png by extension."""
    path = Path(path)
    fmt = _image_format(path)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be uint8 [H,W,3], got {image.dtype} {image.shape}")
    img = Image.fromarray(image)
    kwargs = {"quality": 90} if fmt == "JPEG" else {}
    with atomic_path(path) as tmp:
        img.save(tmp, format=fmt, **kwargs)
    return path


def write_mask(path: str | Path, mask: np.ndarray) -> Path:
    """Write a binary mask as a single-channel png with values 0/255.

    ``mask`` is bool or uint8 ``[H,W]``; any non-zero value is foreground.
    """
    path = Path(path)
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be [H,W], got shape {mask.shape}")
    img = Image.fromarray(np.where(mask > 0, 255, 0).astype(np.uint8))
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path
