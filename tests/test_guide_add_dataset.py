"""docs/architecture.md, "Add a dataset layout", as a test.

A new layout is three pieces, each in its own module in the package (here in
test code): a writer that renders the layout from known truth (the synthetic
world's role), an :class:`AVDataset` that parses the layout's own files, and an
:class:`AVDataModule` that picks the split. A benchmark over it is data. The
test proves the loader maps files to the right samples: a model that reads the
planted class from the audio pitch and from the frame colour retrieves every
clip's class (R@1 = 1), while random embeddings stay near chance.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from avbench.benchmarks import BASELINES, BenchmarkMeta, evaluate
from avbench.data import io
from avbench.data.datamodules.base import AVDataModule
from avbench.data.datasets.base import AVDataset
from avbench.data.errors import MissingFileError
from avbench.data.splits import holdout_mask

N_CLASSES = 4
RATE = 8000
COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], dtype=np.uint8)


# --- 1. the writer: the layout's files from planted truth ---------------------------------
def write_toyclips(root: Path, n: int, seed: int = 0) -> list[tuple[str, int]]:
    """``clips.csv`` (id,label), ``audio/<id>.wav`` (a tone whose pitch encodes the
    label), ``frames/<id>.jpg`` (a frame whose colour encodes it)."""
    rng = np.random.default_rng(seed)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "frames").mkdir(parents=True, exist_ok=True)
    rows = []
    t = np.arange(RATE) / RATE
    for i in range(n):
        label = int(rng.integers(N_CLASSES))
        clip = f"clip{i:03d}"
        tone = 0.5 * np.sin(2 * np.pi * (300 + 400 * label) * t) + 0.01 * rng.normal(size=t.size)
        sf.write(root / "audio" / f"{clip}.wav", tone.astype(np.float32), RATE)
        frame = np.broadcast_to(COLOURS[label], (32, 32, 3)).copy()
        Image.fromarray(frame).save(root / "frames" / f"{clip}.jpg", quality=95)
        rows.append((clip, label))
    with open(root / "clips.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return rows


# --- 2. the dataset: the layout's own files -> samples (DESIGN 4.1) ------------------------
class ToyClips(AVDataset):
    name = "toyclips"

    def __init__(self, root: str | Path, ids: Sequence[str] | None = None, *,
                 sample_rate: int = 16000, image_size: int = 32,
                 missing: str = "error") -> None:
        super().__init__(root, missing=missing)  # type: ignore[arg-type]
        with open(self.root / "clips.csv", newline="") as f:
            rows = [(r[0], int(r[1])) for r in csv.reader(f)]
        keep = set(ids) if ids is not None else None
        self.records = [r for r in rows if keep is None or r[0] in keep]
        self.sample_rate = sample_rate
        self.image_size = image_size
        self._finalize_records()

    def required_files(self, record: Any) -> Sequence[Path]:
        return [self.root / "audio" / f"{record[0]}.wav", self.root / "frames" / f"{record[0]}.jpg"]

    def load(self, record: Any) -> dict[str, Any]:
        clip, label = record
        audio = io.read_audio(self.root / "audio" / f"{clip}.wav", self.sample_rate)
        image = io.read_image(self.root / "frames" / f"{clip}.jpg", self.image_size,
                              interpolation=self.frame_interpolation)  # set by the datamodule
        return {"id": clip, "audio": audio, "image": image, "label": label}


# --- 3. the datamodule: which records make which split -------------------------------------
class ToyClipsDataModule(AVDataModule):
    dataset_name = "toyclips"

    def build_dataset(self, split: str) -> AVDataset:
        with open(self.root / "clips.csv", newline="") as f:
            ids = [r[0] for r in csv.reader(f)]
        held = holdout_mask(ids, 0.25)  # the one split hash of avbench
        test = [i for i, h in zip(ids, held) if h]
        wanted = test if split in ("val", "test") else [i for i, h in zip(ids, held) if not h]
        return ToyClips(self.root, wanted, sample_rate=self.sample_rate,
                        image_size=self.image_size, missing=self.missing)


class PitchAndColourModel:
    """Reads the planted class back: audio by its dominant frequency, image by its colour."""

    meta = type("Meta", (), {"name": "pitch-colour", "capabilities": frozenset({"embed"})})()

    def embed(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        spec = torch.fft.rfft(batch["audio"][:, 0]).abs()
        freq = spec.argmax(1).float() * 16000 / batch["audio"].shape[-1]
        audio_cls = ((freq - 300) / 400).round().long().clamp(0, N_CLASSES - 1)
        mean_rgb = batch["image"].mean((-2, -1))
        ref = torch.tensor(COLOURS, dtype=torch.float32) / 255
        visual_cls = torch.cdist(mean_rgb, ref).argmin(1)
        eye = torch.eye(N_CLASSES)
        return {"audio": eye[audio_cls], "visual": eye[visual_cls]}


TOY_BENCHMARK = {
    "name": "toyclips-retrieval",
    "dataset": "toyclips",
    "split": "test",
    "tasks": [{"task": "retrieval", "ks": [1], "relevance": "class"}],
    "metrics": ["a2v_r1", "v2a_r1"],
    "main_score": "a2v_r1",
}


def test_a_new_layout_is_read_by_its_loader_and_scored_by_a_benchmark_declared_as_data(tmp_path):
    rows = write_toyclips(tmp_path, 40)
    dm = ToyClipsDataModule(tmp_path, batch_size=8, num_workers=0, image_size=32)
    dm.setup("test")
    test = dm.dataset("test")
    assert 0 < len(test) < len(rows)
    sample = test[0]
    assert sample["audio"].shape == (1, 16000) and sample["image"].shape == (3, 32, 32)
    bench = BenchmarkMeta.model_validate(TOY_BENCHMARK)
    oracle = evaluate(PitchAndColourModel(), bench, dm, progress=False, raise_errors=True)
    assert oracle.status == "ok" and oracle.n_samples == len(test)
    assert oracle.metrics["a2v_r1"] == pytest.approx(1.0)
    chance = evaluate(BASELINES["random-embedding"](), bench, dm, progress=False)
    assert chance.metrics["a2v_r1"] < 0.9


def test_a_missing_file_of_the_new_layout_is_named_or_counted(tmp_path):
    write_toyclips(tmp_path, 12)
    (tmp_path / "audio" / "clip003.wav").unlink()
    with pytest.raises(MissingFileError, match="clip003.wav"):
        ToyClips(tmp_path)
    kept = ToyClips(tmp_path, missing="skip")
    assert len(kept) == 11 and kept.skipped["file does not exist"] == 1
