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


# --------------------------------------------------------------------------- runner row
@pytest.mark.slow  # ~20 s: writes tiny synthetic VEGAS (raw clips + feature file)
def test_runner_fits_cca_on_train_for_feature_benchmarks_only(tmp_path, monkeypatch) -> None:
    """``run_baselines`` adds a "cca" row to the feature-file benchmark (fitted on its TRAIN
    split, leak-checked, same score as evaluate() on a fresh fit) and none to the raw-clip
    benchmark, whose trivial rows keep their config (and so their fingerprint)."""
    from dataclasses import replace

    from avbench.benchmarks import BENCHMARKS
    from avbench.data import VEGASDataModule
    from avbench.data.synthetic import generate
    from avbench.data.synthetic.presets import get_preset
    from avbench.runner.results import ResultStore, read_result
    from avbench.runner.runner import Runner
    from avbench.runner.suite import load_suite

    monkeypatch.setenv("WANDB_MODE", "disabled")
    before = dict(BENCHMARKS)
    tiny = get_preset("tiny")
    root = tmp_path / "vegas"
    generate("vegas", root, replace(tiny, counts={**tiny.counts, "vegas": {"train": 40, "test": 20}}),
             seed=0, progress=False)
    try:
        suite = load_suite("synthetic", {"seeds": [0], "baselines": ["random-embedding"]})
        ili = next(m for m in suite.models if m.name == "ili")
        feats = next(d for d in suite.datasets if d.name == "vegas_features")
        feats.overrides.update(root=str(root))
        raw = suite.benchmarks["vegas-retrieval"].model_copy(update={"overrides": {
            "root": str(root), "num_workers": 0, "cache": False, "image_size": 64,
            "clip_seconds": 2.0}})
        suite = suite.model_copy(update={
            "models": [ili], "datasets": [feats],
            "benchmarks": {"vegas-features-retrieval": suite.benchmarks["vegas-features-retrieval"],
                           "vegas-retrieval": raw}})
        runner = Runner(suite, tmp_path / "results", progress=False)
        runner.run_baselines()
        store = ResultStore(tmp_path / "results")
        rec = read_result(store.path("synthetic", "vegas-features-retrieval", "baseline.cca"))
        assert rec.ok and rec.kind == "baseline" and rec.paper == "canonical correlation analysis"
        assert rec.config["baseline"]["fit_split"] == "train"
        dm = VEGASDataModule(root, source="features", batch_size=64, num_workers=0,
                             val_fraction=feats_val_fraction())
        n_train = len(dm.dataset("train"))
        assert rec.leak["n_train"] == n_train and rec.leak["n_overlap"] == 0
        assert rec.timings.train_samples == n_train and rec.timings.fit_seconds > 0
        direct = evaluate(CCABaseline().fit(dm), "vegas-features-retrieval", dm, progress=False)
        assert rec.metrics["map"] == pytest.approx(direct.metrics["map"], abs=1e-9)
        # the raw-clip benchmark: no CCA row; the trivial row as before (no fit fields)
        assert not store.path("synthetic", "vegas-retrieval", "baseline.cca").exists()
        rnd = read_result(store.path("synthetic", "vegas-retrieval", "baseline.random-embedding"))
        assert rnd.ok and "fit_split" not in rnd.config["baseline"]
        assert rnd.timings.fit_seconds is None and rnd.paper == "trivial baseline"
        # a rerun keeps both (stable fingerprints: nothing refitted)
        rerun = Runner(suite, tmp_path / "results", progress=False)
        rerun.run_baselines()
        assert not rerun.summary.ok and not rerun.summary.failed
    finally:
        BENCHMARKS.clear()
        BENCHMARKS.update(before)


def feats_val_fraction() -> float:
    """The shipped VEGAS features config's val hold-out fraction."""
    import yaml

    from avbench.configs import CONFIG_DIR

    cfg = yaml.safe_load((CONFIG_DIR / "data" / "vegas_features_synthetic.yaml").read_text())
    return float(cfg["data"]["init_args"]["val_fraction"])
