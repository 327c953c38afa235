"""CCA baseline (issue 15, must-have 4): fitted on the training split only, scored by evaluate()."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from avbench.benchmarks import evaluate
from avbench.benchmarks.baselines import FITTED_BASELINES, CCABaseline, RandomEmbeddingBaseline

N_CLASSES, LATENT, DA, DV = 6, 4, 24, 40


class _Split(Dataset):
    def __init__(self, audio: np.ndarray, visual: np.ndarray, labels: np.ndarray, prefix: str) -> None:
        self.audio, self.visual = torch.from_numpy(audio).float(), torch.from_numpy(visual).float()
        self.labels, self.prefix = labels, prefix
        self.classes = [f"c{i}" for i in range(N_CLASSES)]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"id": f"{self.prefix}{i:04d}", "audio_feat": self.audio[i],
                "visual_feat": self.visual[i], "label": int(self.labels[i])}


class _PlantedDM:
    """Features with a planted linear cross-modal relation; records which splits were read."""

    def __init__(self, seed: int = 0, n: dict[str, int] | None = None) -> None:
        rng = np.random.default_rng(seed)
        means = rng.normal(0, 2.0, (N_CLASSES, LATENT))
        wa, wv = rng.normal(size=(LATENT, DA)), rng.normal(size=(LATENT, DV))
        self.splits: dict[str, _Split] = {}
        for split, count in (n or {"train": 300, "test": 120}).items():
            y = rng.integers(0, N_CLASSES, count)
            z = means[y] + rng.normal(0, 0.5, (count, LATENT))
            # each modality: a linear image of the shared latent + large independent noise
            a = z @ wa + rng.normal(0, 2.0, (count, DA))
            v = z @ wv + rng.normal(0, 2.0, (count, DV))
            self.splits[split] = _Split(a, v, y, f"{split}_")
        self.read: list[str] = []
        self.root = None

    def dataset(self, split: str) -> _Split:
        self.read.append(split)
        return self.splits[split]

    def setup(self, stage: str) -> None:
        pass

    def test_dataloader(self) -> DataLoader:
        self.read.append("test-loader")
        return DataLoader(self.splits["test"], batch_size=32, shuffle=False)


def test_cca_beats_random_on_a_planted_linear_relation() -> None:
    dm = _PlantedDM()
    cca = CCABaseline(pca_dim=16).fit(dm)
    assert dm.read == ["train"]  # fitting read the training split and nothing else
    assert cca.fit_info["n_components"] == N_CLASSES  # default min(classes, reduced dims)
    assert cca.fit_info["split"] == "train" and cca.fit_info["n_train"] == 300
    assert cca.train_ids == [f"train_{i:04d}" for i in range(300)]
    # the first canonical pair recovers the planted shared latent
    assert cca.fit_info["train_canonical_corr"][0] > 0.9
    res = evaluate(cca, "ave-retrieval", dm, progress=False, raise_errors=True, train_ids=cca.train_ids)
    rnd = evaluate(RandomEmbeddingBaseline(), "ave-retrieval", dm, progress=False, raise_errors=True)
    assert res.status == "ok" and res.n_samples == 120
    assert not res.leak.has_leak
    for key in ("a2v_map", "v2a_map", "map"):
        assert res.metrics[key] > rnd.metrics[key] + 0.25, (key, res.metrics, rnd.metrics)


def test_cca_fit_uses_training_features_only() -> None:
    """Changing the test split's features does not change the fitted model; the train split does."""
    dm = _PlantedDM(seed=1)
    emb = CCABaseline(pca_dim=16).fit(dm)
    other = _PlantedDM(seed=1)
    other.splits["test"] = _PlantedDM(seed=7).splits["test"]  # a different test split
    emb2 = CCABaseline(pca_dim=16).fit(other)
    batch = next(iter(DataLoader(dm.splits["test"], batch_size=50)))
    a, b = emb.embed(batch), emb2.embed(batch)
    torch.testing.assert_close(a["audio"], b["audio"], rtol=0, atol=0)  # deterministic, test-free
    torch.testing.assert_close(a["visual"], b["visual"], rtol=0, atol=0)
    moved = _PlantedDM(seed=1)
    moved.splits["train"] = _PlantedDM(seed=8).splits["train"]
    c = CCABaseline(pca_dim=16).fit(moved).embed(batch)
    assert not torch.allclose(a["audio"], c["audio"])


def test_cca_embed_shapes_and_errors() -> None:
    dm = _PlantedDM(n={"train": 40, "test": 10})
    with pytest.raises(RuntimeError, match="not fitted"):
        CCABaseline().embed({"audio_feat": torch.zeros(2, DA), "visual_feat": torch.zeros(2, DV)})
    cca = CCABaseline(n_components=3, pca_dim=None).fit(dm)
    out = cca.embed(next(iter(DataLoader(dm.splits["test"], batch_size=10))))
    assert out["audio"].shape == (10, 3) and out["visual"].shape == (10, 3)
    torch.testing.assert_close(out["audio"].norm(dim=1), torch.ones(10))
    assert cca.requires_fit and not RandomEmbeddingBaseline.requires_fit
    assert FITTED_BASELINES["cca"] is CCABaseline
    with pytest.raises(KeyError, match="audio_feat"):
        cca.embed({"visual_feat": torch.zeros(2, DV)})
    bad = np.ones((5, DA))
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        CCABaseline().fit_arrays(bad, np.ones((5, DV)))
    with pytest.raises(ValueError, match="at least 3"):
        CCABaseline().fit_arrays(np.ones((2, DA)), np.ones((2, DV)))
