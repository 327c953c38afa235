"""AVE/VEGAS feature files through the pretrained stand-ins (writers.features, issue 11).

The tiny ``image-resnet18`` / ``audio-resnet18`` stand-ins come from
``tests/conftest.py`` (``tiny_standins``, also ``$AVBENCH_STANDINS`` in this module).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from avbench.data.datasets.features import read_feature_split
from avbench.data.datasets.vegas import FEATURES_FILE, VEGASFeatures
from avbench.data.synthetic import generate
from avbench.data.synthetic.writers.features import (
    PROVENANCE_ATTR,
    StandinNotReadyError,
    check_standins,
)
from avbench.pretrain.card import read_card, sha256_file, write_card

#: A world the TINY stand-ins can see: large annotated objects (the pre-calibration
#: sizes, ~0.2-0.95 of the frame), no silent distractors, no off-screen sound. The tiny
#: stand-ins are near-random networks (6 steps, held-out accuracy ~chance), so their
#: pooled visual features reflect an object's colours only when it fills much of the
#: frame: on the calibrated sizes of issue 11 (median ~0.29, down to ~0.01) their visual
#: LOO accuracy is at chance (0.13, permutation p ~0.25), here 0.32-0.39 over data seeds
#: 0-2. (The default stand-ins give LOO 0.61 on the calibrated sizes.)
LEGIBLE_WORLD = {"object_area_quantiles": (0.2, 0.368, 0.575, 0.73, 0.85, 0.93, 0.95),
                 "n_distractors": (0, 0), "offscreen_rate": 0.0}


@pytest.fixture(scope="module")
def vegas_root(tmp_path_factory, tiny_standins) -> Path:
    root = tmp_path_factory.mktemp("vegas_feats")
    generate("vegas", root, "tiny", seed=0, progress=False, standins=tiny_standins,
             world=LEGIBLE_WORLD)
    return root


def _loo_nearest_centroid(x: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out nearest class centroid (cosine, after removing the mean) accuracy."""
    hits = 0
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        mu = x[keep].mean(0)
        cents = np.stack([(x[keep & (y == k)] - mu).mean(0) for k in np.unique(y[keep])])
        v = x[i] - mu
        sims = cents @ v / (np.linalg.norm(cents, axis=1) * np.linalg.norm(v) + 1e-9)
        hits += int(np.unique(y[keep])[sims.argmax()] == y[i])
    return hits / len(x)


def test_feature_file_layout_and_provenance(vegas_root: Path, tiny_standins: Path) -> None:
    import h5py

    with h5py.File(vegas_root / FEATURES_FILE, "r") as h5:
        assert sorted(h5.keys()) == ["audio_test", "audio_train", "class_names", "ids_test",
                                     "ids_train", "lab_test", "lab_train", "visual_test",
                                     "visual_train"]
        assert h5["audio_train"].dtype == np.float32 and h5["audio_train"].shape[1] == 128
        assert h5["visual_train"].dtype == np.float32 and h5["visual_train"].shape[1] == 1024
        assert h5["lab_train"].dtype == np.int64
        prov = json.loads(h5.attrs[PROVENANCE_ATTR])
    for name in ("audio-resnet18", "image-resnet18"):
        card = read_card(tiny_standins / name)
        assert prov[name]["card_sha256"] == sha256_file(tiny_standins / name / "card.json")
        assert prov[name]["weights_sha256"] == card.sha256[card.files["weights"]]
        assert prov[name]["size"] == "tiny"
    summary = json.loads((vegas_root / "avbench_synthetic.json").read_text())
    assert summary["feature_extractors"] == prov
    # the real loader reads it; visual features are post-ReLU (non-negative)
    test = VEGASFeatures(vegas_root, "test")
    assert test.audio_dim == 128 and test.visual_dim == 1024
    assert float(test[0]["visual_feat"].min()) >= 0.0


def test_features_separate_classes_better_than_chance(vegas_root: Path) -> None:
    """Leave-one-out nearest class centroid over all clips (10 classes: chance 0.1), floor
    2x chance, on the :data:`LEGIBLE_WORLD` (seed 0: audio 0.29, visual 0.32)."""
    parts = [read_feature_split(vegas_root / FEATURES_FILE, s) for s in ("train", "test")]
    y = np.concatenate([p["labels"] for p in parts])
    for key, floor in (("audio", 0.2), ("visual", 0.2)):
        x = np.concatenate([p[key] for p in parts])
        assert _loo_nearest_centroid(x, y) >= floor, key


def test_missing_standin_names_the_command_and_writes_nothing(tmp_path: Path,
                                                              tiny_standins: Path) -> None:
    partial = tmp_path / "standins"
    shutil.copytree(tiny_standins / "image-resnet18", partial / "image-resnet18")
    with pytest.raises(StandinNotReadyError,
                       match=r"avbench pretrain audio-resnet18 --out .*audio-resnet18"):
        generate("ave", tmp_path / "ave", "tiny", seed=0, progress=False, standins=partial)
    assert not any((tmp_path / "ave").iterdir())  # checked before rendering anything


def test_stale_or_changed_standin_is_refused(tmp_path: Path, tiny_standins: Path) -> None:
    copy = tmp_path / "standins"
    shutil.copytree(tiny_standins, copy)
    assert set(check_standins(copy)) == {"audio-resnet18", "image-resnet18"}
    card = read_card(copy / "audio-resnet18")
    write_card(copy / "audio-resnet18", card.model_copy(update={"code_version": "0" * 16}))
    with pytest.raises(StandinNotReadyError, match="not current.*--force"):
        check_standins(copy)
    shutil.copytree(tiny_standins / "audio-resnet18", copy / "audio-resnet18", dirs_exist_ok=True)
    weights = copy / "image-resnet18" / read_card(copy / "image-resnet18").files["weights"]
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(StandinNotReadyError, match="sha256"):
        check_standins(copy)


def test_synth_cli_error_is_one_line(tmp_path: Path, capsys) -> None:
    from avbench.cli import main

    code = main(["synth", "vegas", "--root", str(tmp_path / "v"), "--preset", "tiny",
                 "--standins", str(tmp_path / "none"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "avbench pretrain audio-resnet18 --out" in err
