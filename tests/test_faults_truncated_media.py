"""Fault kind "truncated media" (issue 12): audio cut short of what its header declares.

``head -c 100 audio/<id>.wav`` (28 samples of a 3-s clip) used to load as a 3-s clip
tiled with period 28: libsndfile and PyAV report only the samples present, and the
loader tiles short audio as the references do. A cut wav must raise a
:class:`CorruptMediaError` naming the file (counted by ``missing="skip"``), while a
wav that is short and says so is still tiled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avbench.data import io
from avbench.data.datasets.flickr import FlickrSoundNet
from avbench.data.errors import CorruptMediaError
from avbench.data.synthetic.media import write_image, write_wav

SR = 16000


def _tone(seconds: float) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(round(seconds * SR)) / SR)).astype(np.float32)


def _cut(src: Path, dst: Path, n_bytes: int) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes()[:n_bytes])
    return dst


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
@pytest.mark.parametrize("keep", ["100 bytes", "a third"])
def test_truncated_wav_raises_naming_the_file(tmp_path: Path, subtype: str, keep: str) -> None:
    full = tmp_path / "full.wav"
    sf.write(str(full), _tone(3.0), SR, subtype=subtype)
    size = full.stat().st_size
    cut = _cut(full, tmp_path / "other" / "clip.wav", 100 if keep == "100 bytes" else size // 3)
    assert sf.info(str(cut)).frames < 3 * SR  # libsndfile silently shortens it
    for read in (lambda: io.read_audio(cut, SR, duration=3.0), lambda: io.read_audio(cut, SR),
                 lambda: io.probe(cut)):
        with pytest.raises(CorruptMediaError, match="truncated wav") as err:
            read()
        assert err.value.path == cut and str(cut) in str(err.value)
        assert "declares 48000 samples" in str(err.value)
    chunk = io.wav_data_chunk(cut)
    assert chunk is not None and chunk.declared_bytes == 3 * SR * chunk.block_align
    assert chunk.missing_seconds > 1.9


def test_valid_short_wav_is_still_tiled(tmp_path: Path) -> None:
    short = write_wav(tmp_path / "short.wav", _tone(0.5), SR)
    chunk = io.wav_data_chunk(short)
    assert chunk is not None and chunk.missing_seconds == 0.0
    assert io.probe(short).duration == pytest.approx(0.5)
    wave = io.read_audio(short, SR, duration=3.0)
    assert wave.shape == (1, SR // 2)
    tiled = io.fit_length(wave, 3 * SR)
    assert torch.equal(tiled[:, SR // 2 : SR], wave)  # repeated end to end, no error


def test_wav_with_extra_chunks_and_unknown_size_is_not_truncated(tmp_path: Path) -> None:
    full = write_wav(tmp_path / "full.wav", _tone(1.0), SR)
    raw = bytearray(full.read_bytes())
    # a LIST chunk before data: the walker skips it and still finds the data chunk
    listed = raw[:36] + b"LIST" + (4).to_bytes(4, "little") + b"INFO" + raw[36:]
    (tmp_path / "listed.wav").write_bytes(bytes(listed))
    assert io.wav_data_chunk(tmp_path / "listed.wav").missing_seconds == 0.0
    assert io.read_audio(tmp_path / "listed.wav", SR).shape == (1, SR)
    # a streaming writer's 0xFFFFFFFF data size: unknown, never called truncated
    streamed = raw[:40] + b"\xff\xff\xff\xff" + raw[44:]
    (tmp_path / "streamed.wav").write_bytes(bytes(streamed))
    assert io.wav_data_chunk(tmp_path / "streamed.wav") is None


def test_truncated_flac_is_corrupt(tmp_path: Path) -> None:
    full = tmp_path / "full.flac"
    sf.write(str(full), _tone(3.0), SR)
    cut = _cut(full, tmp_path / "cut.flac", full.stat().st_size // 3)
    with pytest.raises(CorruptMediaError) as err:
        io.read_audio(cut, SR)
    assert err.value.path == cut


def test_truncated_wav_is_counted_by_missing_skip(tmp_path: Path) -> None:
    root = tmp_path / "flickr"
    (root / "metadata").mkdir(parents=True)
    ids = ["101", "102", "103"]
    for ident in ids:
        write_image(root / "frames" / f"{ident}.jpg", np.zeros((8, 8, 3), np.uint8))
        write_wav(root / "audio" / f"{ident}.wav", _tone(3.0), SR)
    (root / "metadata" / "flickr_10k.txt").write_text("\n".join(ids) + "\n")
    bad = root / "audio" / "102.wav"
    bad.write_bytes(bad.read_bytes()[:100])

    strict = FlickrSoundNet(root, "train", val_fraction=0.0, image_size=8)
    with pytest.raises(CorruptMediaError, match="truncated wav") as err:
        strict[1]
    assert err.value.path == bad

    ds = FlickrSoundNet(root, "train", val_fraction=0.0, image_size=8, missing="skip")
    got = [ds[i]["id"] for i in range(len(ds))]
    assert got == ["101", "103", "103"]  # the cut clip is replaced by the next loadable one
    assert ds.load_failures["truncated wav"] == 1
    assert "1 truncated wav" in ds.skip_report()
