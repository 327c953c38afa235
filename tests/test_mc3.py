"""SoundingActions / MC3 (``avbench.models.mc3``): stages, every loss term by hand, gathered
negatives, capabilities, configs, and learning on the tiny synthetic Ego4D world.

The text tower is built here in a module fixture (a ``tokenizers`` WordPiece from
``avbench.pretrain.text.build_tokenizer`` + a 1-layer ``BertModel`` saved with
``save_pretrained``, well under a second) instead of ``pretrain("text-encoder", size="tiny")``,
which takes ~11 s on one core; the model loads it exactly as the stand-in
(``from_pretrained(DIR, local_files_only=True)``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from avbench.models import REGISTRY
from avbench.models.base import FitStage, check_fit_stages
from avbench.models.mc3 import SoundingActionsMC3, consensus_loss, consensus_target
from avbench.nn.weights import STANDINS_ENV, WeightsError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "avbench" / "configs"
NARRATIONS = ["cuts the carrot", "puts the cup on the table", "opens the drawer",
              "wipes the plate with a cloth", "stirs the soup", "picks up the box"]
AUDIO_SAMPLES = 8000  # 0.5 s at 16 kHz: 48 VGGish log-mel frames


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory) -> Path:
    """A tiny tokenizer + BertModel directory in the stand-in's file layout."""
    from transformers import BertConfig, BertModel

    from avbench.pretrain.text import build_tokenizer

    out = tmp_path_factory.mktemp("text-encoder")
    tok = build_tokenizer(NARRATIONS * 3)
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, hidden_size=16,
                                num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                max_position_embeddings=64))
    tok.save_pretrained(out)
    bert.save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture(scope="module")
def standins(tiny_standins: Path, text_dir: Path, tmp_path_factory) -> Path:
    """``$AVBENCH_STANDINS`` for this module: the session's tiny image/audio stand-ins plus the
    tiny text tower as ``text-encoder``, so the shipped configs' ``standins/...`` paths load."""
    root = tmp_path_factory.mktemp("mc3-standins")
    for name in ("image-resnet18", "audio-resnet18"):
        (root / name).symlink_to(tiny_standins / name)
    (root / "text-encoder").symlink_to(text_dir)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(STANDINS_ENV, str(root))
        yield root


def tiny_model(text_dir: Path, **kw) -> SoundingActionsMC3:
    torch.manual_seed(0)
    args = dict(text_encoder=str(text_dir), dim=8, image_width=8, image_layers=(1, 1, 1, 1),
                audio_width=8, audio_layers=(1, 1, 1, 1))
    return SoundingActionsMC3(**{**args, **kw})


def tiny_batch(b: int = 3, frames: int = 2, text: bool = True, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    batch = {"frames": torch.rand(b, frames, 3, 32, 32, generator=g),
             "audio": 0.1 * torch.randn(b, 1, AUDIO_SAMPLES, generator=g),
             "id": [f"clip{i}" for i in range(b)]}
    if text:
        batch["text"] = NARRATIONS[:b]
    return batch


def _ce(logits: list[list[float]], row: int, col: int) -> float:
    """-log softmax(logits[row])[col], by hand."""
    return -(logits[row][col] - math.log(sum(math.exp(x) for x in logits[row])))


def _sym_infonce(x: torch.Tensor, y: torch.Tensor, tau: float, offset: int = 0,
                 x_all: torch.Tensor | None = None, y_all: torch.Tensor | None = None) -> float:
    """sum over both directions of the mean cross-entropy to the own pair, element by element."""
    x_all = x if x_all is None else x_all
    y_all = y if y_all is None else y_all
    xy = [[float(x[i] @ y_all[j]) / tau for j in range(len(y_all))] for i in range(len(x))]
    yx = [[float(y[i] @ x_all[j]) / tau for j in range(len(x_all))] for i in range(len(y))]
    n = len(x)
    return (sum(_ce(xy, i, offset + i) for i in range(n)) / n
            + sum(_ce(yx, i, offset + i) for i in range(n)) / n)


def _consensus_by_hand(a, v_all, t_all, gv: float, gt: float) -> float:
    """||S_at - C||_F + ||S_av - C||_F with C = 2 min(((S_av+1)/2)^gv, ((S_at+1)/2)^gt) - 1."""
    sq_at = sq_av = 0.0
    for i in range(len(a)):
        for j in range(len(v_all)):
            s_av, s_at = float(a[i] @ v_all[j]), float(a[i] @ t_all[j])
            c = 2 * min(((s_av + 1) / 2) ** gv, ((s_at + 1) / 2) ** gt) - 1
            sq_at += (s_at - c) ** 2
            sq_av += (s_av - c) ** 2
    return math.sqrt(sq_at) + math.sqrt(sq_av)


# --- registration, stages ---------------------------------------------------------------
def test_registered_with_its_capabilities():
    assert REGISTRY["mc3"] is SoundingActionsMC3
    assert SoundingActionsMC3.meta.capabilities == {"embed", "sounding_score"}


def test_stages_align_then_refine_with_their_lengths(text_dir):
    model = tiny_model(text_dir)
    stages = check_fit_stages(model.configure_fit_stages(), model)
    assert [(s.name, s.max_epochs) for s in stages] == [("align", 5), ("refine", 5)]
    assert all(s.trainable is None and s.end_hook is None for s in stages)
    stages = tiny_model(text_dir, align_epochs=2, refine_epochs=3).configure_fit_stages()
    assert [(s.name, s.max_epochs) for s in stages] == [("align", 2), ("refine", 3)]
    # the align-only ablation, refine-only, and refine as long as the trainer config
    assert [s.name for s in tiny_model(text_dir, refine_epochs=0).configure_fit_stages()] == ["align"]
    assert [s.name for s in tiny_model(text_dir, align_epochs=0).configure_fit_stages()] == ["refine"]
    last = tiny_model(text_dir, refine_epochs=None).configure_fit_stages()[-1]
    assert last.name == "refine" and last.length() == {}
    with pytest.raises(ValueError, match="both be 0"):
        tiny_model(text_dir, align_epochs=0, refine_epochs=0)
    with pytest.raises(ValueError, match="text_encoder"):
        SoundingActionsMC3()


# --- losses by hand ----------------------------------------------------------------------
def test_consensus_target_and_regression_by_hand():
    s_av = torch.tensor([[0.5, -0.6], [0.2, 0.9]])
    s_at = torch.tensor([[0.8, 0.0], [-0.4, 0.9]])
    # ((0.5+1)/2)^0.5 = 0.8660 vs (0.8+1)/2 = 0.9 -> 0.8660 ; ((-0.6+1)/2)^0.5 = 0.4472 vs 0.5
    # ((0.2+1)/2)^0.5 = 0.7746 vs (1-0.4)/2 = 0.3 -> 0.3 ; (1.9/2)^0.5 = 0.9747 vs 0.95 -> 0.95
    want = torch.tensor([[math.sqrt(0.75), math.sqrt(0.2)], [0.3, 0.95]])
    assert torch.allclose(consensus_target(s_av, s_at, 0.5, 1.0), want, atol=1e-6)
    assert torch.allclose(consensus_target(s_av, None, 0.5), ((s_av + 1) / 2).sqrt())
    c = 2 * want - 1
    frob = math.sqrt(((s_at - c) ** 2).sum()) + math.sqrt(((s_av - c) ** 2).sum())
    assert consensus_loss(s_av, s_at, 0.5, 1.0).item() == pytest.approx(frob, rel=1e-5)
    mse = float(((s_at - c) ** 2).mean() + ((s_av - c) ** 2).mean())
    assert consensus_loss(s_av, s_at, 0.5, 1.0, norm="mse").item() == pytest.approx(mse, rel=1e-5)
    # where every pair agrees the target is the similarity itself: no pull
    agree = torch.tensor([[0.6]])
    assert consensus_loss(agree, agree, 1.0, 1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_every_loss_term_by_hand_on_a_tiny_batch(text_dir):
    model = tiny_model(text_dir, temperature=0.2, consensus_weight=0.5).eval()
    batch = tiny_batch()
    with torch.no_grad():
        emb = model.encode(batch)
        align = model.compute_losses(batch, refine=False)
        refine = model.compute_losses(batch, refine=True)
    v, a, t = emb["visual"], emb["audio"], emb["text"]
    for x in (v, a, t):
        assert x.shape == (3, 8) and torch.allclose(x.norm(dim=-1), torch.ones(3), atol=1e-5)
    want = {"va": _sym_infonce(v, a, 0.2), "vt": _sym_infonce(v, t, 0.2),
            "at": _sym_infonce(a, t, 0.2)}
    want["contrastive"] = (want["va"] + want["vt"] + want["at"]) / 3
    assert set(align) == {"va", "vt", "at", "contrastive", "total"}
    for k, val in want.items():
        assert align[k].item() == pytest.approx(val, rel=1e-5), k
        assert refine[k].item() == pytest.approx(val, rel=1e-5), k
    assert align["total"].item() == pytest.approx(want["contrastive"], rel=1e-5)
    cons = _consensus_by_hand(a, v, t, 0.5, 1.0)
    assert refine["consensus"].item() == pytest.approx(cons, rel=1e-5)
    assert refine["total"].item() == pytest.approx(want["contrastive"] + 0.5 * cons, rel=1e-5)
    # the running fit stage switches the consensus term on
    model.fit_stage = FitStage(name="refine")
    with torch.no_grad():
        assert "consensus" in model.compute_losses(batch)
    model.fit_stage = FitStage(name="align")
    with torch.no_grad():
        assert "consensus" not in model.compute_losses(batch)


def test_batch_without_text_trains_audio_visual_alone(text_dir):
    model = tiny_model(text_dir).eval()
    batch = tiny_batch(text=False)
    with torch.no_grad():
        emb = model.embed(batch)
        losses = model.compute_losses(batch, refine=True)
        score = model.sounding_score(batch)
    assert set(emb) == {"audio", "visual"}
    assert set(losses) == {"va", "contrastive", "total"}
    assert losses["total"].item() == pytest.approx(_sym_infonce(emb["visual"], emb["audio"], 0.2),
                                                   rel=1e-5)
    av = (emb["audio"] * emb["visual"]).sum(-1)
    assert torch.allclose(score, ((av + 1) / 2) ** 0.5, atol=1e-6)


def test_negatives_are_the_gathered_keys(text_dir, monkeypatch):
    """A fake 2-rank gather (this rank second, offset B): every InfoNCE term and the consensus
    use the other rank's rows as extra columns, the positives at ``offset + i``."""
    import avbench.models.mc3 as mc3

    calls = []

    def other_rank(t: torch.Tensor) -> torch.Tensor:  # deterministic "rank 0" rows per modality
        return F.normalize(t.detach().roll(1, dims=1) + 0.3, dim=-1)

    def fake_gather(t):
        calls.append(tuple(t.shape))
        return torch.cat([other_rank(t), t]), t.shape[0]

    monkeypatch.setattr(mc3, "gather_with_offset", fake_gather)
    model = tiny_model(text_dir).eval()
    batch = tiny_batch()
    with torch.no_grad():
        losses = model.compute_losses(batch, refine=True)
        emb = model.encode(batch)
    assert calls == [(3, 8)] * 3  # each modality gathered once
    full = {k: torch.cat([other_rank(x), x]) for k, x in emb.items()}
    v, a, t = emb["visual"], emb["audio"], emb["text"]
    want = {"va": _sym_infonce(v, a, 0.2, 3, full["visual"], full["audio"]),
            "vt": _sym_infonce(v, t, 0.2, 3, full["visual"], full["text"]),
            "at": _sym_infonce(a, t, 0.2, 3, full["audio"], full["text"])}
    for k, val in want.items():
        assert losses[k].item() == pytest.approx(val, rel=1e-5), k
    assert losses["consensus"].item() == pytest.approx(
        _consensus_by_hand(a, full["visual"], full["text"], 0.5, 1.0), rel=1e-5)
    # gather_negatives=False: local keys only
    calls.clear()
    with torch.no_grad():
        local = tiny_model(text_dir, gather_negatives=False).eval().compute_losses(batch)
    assert not calls and local["va"].item() == pytest.approx(_sym_infonce(v, a, 0.2), rel=1e-5)


# --- capabilities, text tower ------------------------------------------------------------------
def test_embed_and_sounding_score(text_dir):
    model = tiny_model(text_dir).eval()
    batch = tiny_batch(b=4)
    with torch.no_grad():
        emb = model.embed(batch)
        score = model.sounding_score(batch)
        image_only = model.embed({**batch, "frames": None, "image": batch["frames"][:, 0]})
    assert set(emb) == {"audio", "visual", "text"} and score.shape == (4,)
    av, at = ((emb["audio"] * emb[k]).sum(-1) for k in ("visual", "text"))
    want = torch.minimum(((av + 1) / 2) ** 0.5, (at + 1) / 2)
    assert torch.allclose(score, want, atol=1e-6) and (score >= 0).all() and (score <= 1).all()
    assert image_only["visual"].shape == (4, 8)  # batch["image"] works as a 1-frame video


def test_text_tower_frozen_and_loaded_strictly(text_dir, tmp_path):
    model = tiny_model(text_dir)
    assert not any(p.requires_grad for p in model.text_encoder.parameters())
    assert all(p.requires_grad for p in model.text_head.parameters())
    model.train()
    assert not model.text_encoder.training and model.video_head.training
    trainable = tiny_model(text_dir, freeze_text=False).train()
    assert trainable.text_encoder.training
    assert all(p.requires_grad for p in trainable.text_encoder.parameters())
    with pytest.raises(WeightsError, match="no config.json"):
        tiny_model(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in text_dir.iterdir():
        if f.name != "model.safetensors":
            (broken / f.name).write_bytes(f.read_bytes())
    with pytest.raises(WeightsError, match="model.safetensors"):
        tiny_model(broken)


def test_configs_build_the_model(standins):
    from avbench.runner.instantiation import import_object

    def instantiate(cfg: dict) -> SoundingActionsMC3:
        return import_object(cfg["class_path"])(**cfg["init_args"])

    def model_cfg(name: str) -> dict:
        return yaml.safe_load((CONFIGS / "model" / f"{name}.yaml").read_text())["model"]

    cpu = instantiate(model_cfg("mc3_cpu"))
    assert isinstance(cpu, SoundingActionsMC3) and cpu.dim == 256
    assert [(s.name, s.max_epochs) for s in cpu.configure_fit_stages()] == [("align", 5),
                                                                            ("refine", 5)]
    assert (cpu.temperature, cpu.consensus_weight, cpu.exponent_video) == (0.2, 0.5, 0.5)
    assert sum(p.numel() for p in cpu.parameters()) < 3_000_000
    paper = model_cfg("mc3")
    with pytest.raises(WeightsError, match="distilbert"):
        instantiate(paper)  # the paper's text encoder is a local copy the user provides
    paper["init_args"]["text_encoder"] = "standins/text-encoder"
    model = instantiate(paper)
    assert model.image_encoder.out_channels == 512 and model.audio_encoder.out_channels == 512
    assert (model.lr, model.global_batch_size, model.temperature) == (5e-5, 32, 0.2)


# --- learning -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_ego4d(tmp_path_factory) -> Path:
    from avbench.data.synthetic import generate

    root = tmp_path_factory.mktemp("ego4d_tiny")
    generate("ego4d", root, "tiny", seed=0, progress=False)
    return root


def _all_train_clips(root: Path) -> dict:
    from avbench.data import Ego4DClipsDataModule
    from avbench.data.sample import collate

    dm = Ego4DClipsDataModule(root, num_frames=2, batch_size=64, num_workers=0, cache=False,
                              sample_rate=16000, clip_seconds=2.0, image_size=64,
                              val_fraction=0.0)
    ds = dm.dataset("train")
    return collate([ds[i] for i in range(len(ds))])


def test_learns_tiny_synthetic_ego4d(standins, tiny_ego4d):
    """Align then refine on the tiny world's training clips (one full batch): every term
    falls, and audio->video retrieval on those clips beats chance and the untrained model."""
    batch = _all_train_clips(tiny_ego4d)
    n = len(batch["id"])
    assert n >= 8 and "text" in batch and batch["frames"].shape[1] == 2

    def a2v_r1(model: SoundingActionsMC3) -> float:
        model.eval()
        with torch.no_grad():
            emb = model.embed(batch)
        model.train()
        return float(((emb["audio"] @ emb["visual"].t()).argmax(1) == torch.arange(n)).float().mean())

    torch.manual_seed(0)
    # text_pool "mean": the test's text tower is untrained, and an untrained BERT's [CLS]
    # state is nearly the same for every sentence (mean cosine 0.9999; the default
    # stand-in's: 0.63), which leaves nothing for the frozen tower's head to align
    model = SoundingActionsMC3(text_encoder="standins/text-encoder", dim=32, text_pool="mean",
                               image_pretrained="standins/image-resnet18/model.safetensors",
                               image_width=16, image_layers=(1, 1, 1, 1),
                               audio_pretrained="standins/audio-resnet18/model.safetensors",
                               audio_width=16, audio_layers=(1, 1, 1, 1))
    before = a2v_r1(model)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    history: dict[str, list[float]] = {}
    for step in range(40):
        losses = model.compute_losses(batch, refine=step >= 25)
        for k, v in losses.items():
            history.setdefault(k, []).append(v.item())
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
    for term in ("va", "vt", "at"):
        assert history[term][24] < 0.7 * history[term][0], (term, history[term][::5])
    assert history["consensus"][-1] < history["consensus"][0], history["consensus"]
    after = a2v_r1(model)
    assert after >= 0.5 > 2 / n and after > before, (before, after)
    score = model.eval().sounding_score(batch)
    assert score.shape == (n,) and torch.isfinite(score).all()


@pytest.mark.slow
def test_avbench_fit_runs_both_stages_from_the_shipped_configs(standins, tiny_ego4d, tmp_path,
                                                                monkeypatch):
    import pandas as pd

    from avbench.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["avbench"])
    assert main(["fit", "--config", "configs/model/mc3_cpu.yaml",
                 "--config", "configs/data/ego4d_synthetic.yaml",
                 "--config", "configs/trainer/cpu.yaml",
                 "--data.init_args.root", str(tiny_ego4d), "--data.init_args.batch_size", "4",
                 "--data.init_args.num_workers", "0", "--data.init_args.cache", "false",
                 "--data.init_args.image_size", "64", "--data.init_args.clip_seconds", "2.0",
                 "--model.init_args.align_epochs", "1", "--model.init_args.refine_epochs", "1",
                 "--trainer.enable_progress_bar", "false",
                 "--trainer.default_root_dir", str(tmp_path)]) == 0
    # fit_stages.json lists the finished non-final stages; the final stage's checkpoint
    # records itself as running after them
    done = json.loads(next(tmp_path.rglob("fit_stages.json")).read_text())["finished"]
    assert [s["name"] for s in done] == ["align"]
    last = max(tmp_path.glob("lightning_logs/*/checkpoints/*.ckpt"), key=lambda p: p.stat().st_mtime)
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    assert ckpt["fit_stages"] == {"stage": "refine", "finished": ["align"]}
    cols = set().union(*(pd.read_csv(p).columns for p in tmp_path.rglob("metrics.csv")))
    for term in ("va", "vt", "at", "contrastive", "consensus"):
        assert f"train/loss_{term}_epoch" in cols and f"val/loss_{term}" in cols, term
    assert os.environ[STANDINS_ENV] == str(standins)


DDP_SCRIPT = r'''
import json, sys
import torch
import torch.distributed as dist
from test_mc3 import tiny_batch, tiny_model

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.set_num_threads(1)
model = tiny_model(sys.argv[2], consensus_norm="mse").eval()  # same seed: same weights
full = tiny_batch(b=4)
local = {k: (v[2 * rank: 2 * rank + 2]) for k, v in full.items()}
with torch.no_grad():
    losses = model.compute_losses(local, refine=True)
with open(f"{sys.argv[1]}/rank{rank}.json", "w") as f:
    json.dump({k: v.item() for k, v in losses.items()}, f)
dist.destroy_process_group()
'''


@pytest.mark.ddp
@pytest.mark.slow
def test_two_rank_losses_average_to_the_single_process_loss(text_dir, tmp_path):
    """2-process gloo (torchrun): with negatives gathered across ranks, the mean over ranks of
    every per-rank term equals the single-process term on the whole batch (InfoNCE: local rows
    against all columns; consensus with ``mse``: the mean over the [B, N] rows)."""
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "ddp_mc3.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(script),
                           str(tmp_path), str(text_dir)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    with torch.no_grad():
        single = tiny_model(text_dir, consensus_norm="mse").eval().compute_losses(
            tiny_batch(b=4), refine=True)
    assert set(r0) == set(single) == {"va", "vt", "at", "contrastive", "consensus", "total"}
    for k, v in single.items():
        assert 0.5 * (r0[k] + r1[k]) == pytest.approx(v.item(), rel=1e-5), k
    assert r0["va"] != pytest.approx(r1["va"])  # the ranks really held different rows
