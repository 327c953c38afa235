"""ILI on raw clips (issue 15, must-have 2 second half): the stand-in front, `avbench fit` with a
raw-clip data config, the graph in the checkpoint, `embed`, learning, and bad input.

Data: synthetic VEGAS raw clips (tiny preset, 40 training / 20 test clips) written with the
session's tiny stand-ins (tests/conftest.py), which the front also reads.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from avbench.cli import main
from avbench.data import VEGASDataModule
from avbench.data.synthetic import generate
from avbench.data.synthetic.presets import get_preset
from avbench.models.ili import ClipFeatureFront, ILIEmbedding
from avbench.nn.weights import WeightsError
from avbench.runner.checkpointing import restore_weights
from avbench.runner.fit_stages import run_fit_stages

torch.set_num_threads(1)

SMALL = {"hidden_dim": 32, "embed_dim": 16}


@pytest.fixture(scope="module")
def vegas_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tiny = get_preset("tiny")
    preset = replace(tiny, counts={**tiny.counts, "vegas": {"train": 40, "test": 20}})
    root = tmp_path_factory.mktemp("vegas_raw")
    generate("vegas", root, preset, seed=0, progress=False)
    return root


def _dm(root: Path, batch_size: int = 16) -> VEGASDataModule:
    return VEGASDataModule(root, source="video", batch_size=batch_size, num_workers=0,
                           image_size=64, clip_seconds=2.0, cache="memory")


def _trainer(stage: Any, final: bool, callbacks: list) -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
                     **stage.trainer_kwargs())


def _train_batch(dm: VEGASDataModule) -> dict[str, Any]:
    ds = dm.dataset("train")
    items = [ds[i] for i in range(len(ds))]
    return {"audio": torch.stack([i["audio"] for i in items]),
            "image": torch.stack([i["image"] for i in items]),
            "label": torch.tensor([i["label"] for i in items])}


def test_front_reproduces_the_feature_extractors(vegas_raw: Path) -> None:
    """The front is the feature files' extractor pipeline: per-second audio embeddings and
    per-frame visual features, mean-pooled; frozen and in eval mode even under train()."""
    front = ClipFeatureFront("standins")
    assert front.dims == (128, 1024)
    wave = torch.randn(2, 1, 3 * 16000)
    frames = torch.rand(2, 3, 3, 64, 64)
    a, v = front({"audio": wave, "frames": frames})
    per_second = front.audio(wave[:, 0])
    assert per_second.shape == (2, 3, 128)
    assert torch.allclose(a, per_second.mean(1))
    assert torch.allclose(v, front.visual(frames.flatten(0, 1)).view(2, 3, -1).mean(1))
    # one image = one frame; a waveform shorter than 1 s is padded, not an error
    a1, v1 = front({"audio": wave[:, :, :8000], "image": frames[:, 0]})
    assert a1.shape == (2, 128) and torch.allclose(v1, front.visual(frames[:, 0]))
    front.train()
    assert not front.training and not any(p.requires_grad for p in front.parameters())


def test_fit_cli_on_raw_clips_checkpoint_graph_and_embed(vegas_raw: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    args = ["fit", "--config", "configs/model/ili_raw_cpu.yaml",
            "--config", "configs/data/vegas_synthetic.yaml", "--config", "configs/trainer/cpu.yaml",
            "--data.root", str(vegas_raw), "--data.num_workers", "0", "--data.cache", "false",
            "--data.image_size", "64", "--data.clip_seconds", "2.0", "--data.batch_size", "16",
            "--model.teacher_epochs", "2", "--model.student_epochs", "2",
            "--model.hidden_dim", "32", "--model.embed_dim", "16",
            "--trainer.default_root_dir", str(work), "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false"]
    assert main(args) == 0
    ckpts = sorted((work / "lightning_logs").glob("version_*/checkpoints/*.ckpt"),
                   key=lambda p: p.stat().st_mtime)
    assert ckpts, f"avbench fit wrote no checkpoint under {work}"
    ckpt = torch.load(ckpts[-1], map_location="cpu", weights_only=False)
    graph = ckpt["state_dict"]["graph"]
    assert graph.shape == (20, 20) and bool(ckpt["state_dict"]["graph_fitted"])
    assert ckpt["ili_graph"]["nodes"][0] == "audio_baby_cry"
    assert ckpt["ili_graph"]["info"]["causallearn_version"]

    model = ILIEmbedding(num_classes=None, inputs="clips", **SMALL)
    restore_weights(model, ckpts[-1])
    model.eval()
    assert torch.equal(model.graph, graph)
    batch = next(iter(_dm(vegas_raw).test_dataloader()))
    out = model.embed(batch)
    assert out["audio"].shape == (len(batch["id"]), 16) == out["visual"].shape
    assert torch.allclose(out["audio"].norm(dim=1), torch.ones(len(batch["id"])), atol=1e-5)
    assert model.class_graph()["weights"].shape == (20, 20)


def test_losses_fall_on_raw_clips_and_front_stays_frozen(vegas_raw: Path) -> None:
    L.seed_everything(0, verbose=False)
    dm = _dm(vegas_raw)
    dm.setup("fit")
    model = ILIEmbedding(num_classes=10, inputs="clips", teacher_epochs=8, student_epochs=8,
                         hidden_dim=64, embed_dim=16)
    batch = _train_batch(dm)
    front = {k: v.clone() for k, v in model.clip_front.state_dict().items()}
    with torch.no_grad():
        t0, s0 = model.teacher_losses(batch), model.student_losses(batch)
    run_fit_stages(model, dm, _trainer, seed=0)
    model.eval()
    with torch.no_grad():
        t1, s1 = model.teacher_losses(batch), model.student_losses(batch)
    assert float(t1["total"]) < 0.7 * float(t0["total"]), (t0, t1)
    metric0 = float(s0["metric_audio"] + s0["metric_visual"])
    metric1 = float(s1["metric_audio"] + s1["metric_visual"])
    assert metric1 < 0.7 * metric0, (s0, s1)
    # the front (weights and BatchNorm statistics) did not move
    for k, v in model.clip_front.state_dict().items():
        assert torch.equal(v, front[k]), k
    assert model.graph_info["train_positives"] and bool(model.graph_fitted)


def test_finetune_trains_a_student_copy_only(vegas_raw: Path) -> None:
    L.seed_everything(0, verbose=False)
    dm = _dm(vegas_raw)
    model = ILIEmbedding(num_classes=10, inputs="clips", finetune_encoders=True, teacher_epochs=1,
                         student_epochs=1, **SMALL)
    assert model.student_front is not None and model.student_front.training
    frozen = {k: v.clone() for k, v in model.clip_front.state_dict().items()}
    student = {k: v.clone() for k, v in model.student_front.state_dict().items()}
    run_fit_stages(model, dm, _trainer, seed=0)
    assert all(torch.equal(v, frozen[k]) for k, v in model.clip_front.state_dict().items())
    assert any(not torch.equal(v, student[k]) for k, v in model.student_front.state_dict().items())


def test_raw_clip_bad_input(vegas_raw: Path, tmp_path: Path) -> None:
    model = ILIEmbedding(num_classes=10, inputs="clips", **SMALL)
    with pytest.raises(KeyError, match="needs batch\\['audio'\\]"):
        model.embed({"audio_feat": torch.randn(2, 128), "visual_feat": torch.randn(2, 1024)})
    with pytest.raises(ValueError, match="stand-ins' feature sizes"):
        ILIEmbedding(inputs="clips", audio_dim=64, **SMALL)
    with pytest.raises(WeightsError):
        ILIEmbedding(inputs="clips", standins=str(tmp_path / "nowhere"), **SMALL)
    with pytest.raises(ValueError, match="inputs must be"):
        ILIEmbedding(inputs="pixels", **SMALL)  # type: ignore[arg-type]
    wrong_rate = ILIEmbedding(num_classes=10, inputs="clips", sample_rate=22050, **SMALL)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, max_epochs=1)
    with pytest.raises(ValueError, match="sample_rate 22050.*16000 Hz"):
        trainer.fit(wrong_rate, datamodule=_dm(vegas_raw))
