"""The four localization baselines (EZ-VSL, FNAC, SLAVC, LVS) as LightningModules.

Per-term hand-computed values live in ``tests/test_nn_losses.py``; here:
registration, capabilities, learning on a fixed batch, loss terms logged by
name, SLAVC's momentum update, the configs, and a 2-process CPU DDP ``fit``
of every model (with the cross-rank gather checks) in one ``torchrun`` job.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from torch.utils.data import DataLoader, Dataset

from avbench.data.sample import collate
from avbench.models import REGISTRY
from avbench.models.ezvsl import EZVSL
from avbench.models.fnac import FNAC
from avbench.models.lvs import LVS
from avbench.models.slavc import SLAVC

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "avbench" / "configs" / "model"
TINY = dict(image_width=8, image_layers=(1, 1, 1, 1), audio_width=8, audio_layers=(1, 1, 1, 1))
MODELS = {
    "ezvsl": (EZVSL, dict(dim=16)),
    "fnac": (FNAC, dict(dim=16, warmup_epochs=0)),
    "slavc": (SLAVC, dict(dim=16)),
    "lvs": (LVS, {}),
}
TERMS = {
    "ezvsl": {"v2a", "a2v"},
    "fnac": {"v2a", "a2v", "fns1", "tne", "fns2"},
    "slavc": {"i2a", "a2i"},
    "lvs": {"hard_contrastive"},
}
AUDIO_SAMPLES = 4000  # 0.25 s at 16 kHz: 15 spectrogram frames


def tiny(name: str, **kw):
    cls, extra = MODELS[name]
    return cls(**TINY, **{**extra, **kw})


def fixed_batch(b: int = 8, size: int = 64, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(b, 3, size, size, generator=g),
        "audio": 0.1 * torch.randn(b, 1, AUDIO_SAMPLES, generator=g),
        "label": torch.arange(b),
        "id": [f"clip{i}" for i in range(b)],
    }


class RandomAV(Dataset):
    def __init__(self, n: int = 16, size: int = 64, seed: int = 0) -> None:
        self.batch = fixed_batch(n, size, seed)

    def __len__(self) -> int:
        return len(self.batch["id"])

    def __getitem__(self, i: int) -> dict:
        return {k: v[i] for k, v in self.batch.items()}


class RandomAVDataModule(L.LightningDataModule):
    def train_dataloader(self) -> DataLoader:
        return DataLoader(RandomAV(), batch_size=4, collate_fn=collate, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(RandomAV(seed=1), batch_size=4, collate_fn=collate)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: the 2 cores are shared, and OpenMP spinning on a
    busy machine makes 2 threads 5-10x slower than 1 on these tiny nets."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_registered_with_meta():
    for name, (cls, _) in MODELS.items():
        assert REGISTRY[name] is cls
        assert cls.meta.name == name
        assert cls.meta.capabilities == {"embed", "localize"}
        assert cls.meta.reference_code.startswith("https://github.com/")


@pytest.mark.parametrize("name", list(MODELS))
def test_loss_falls_over_30_steps(name):
    torch.manual_seed(0)
    model = tiny(name, lr=1e-3)
    batch = fixed_batch()
    opt = model.configure_optimizers()

    def eval_loss() -> dict[str, float]:
        # train mode (batch statistics; BN running stats lag after 30 steps)
        # with the same dropout mask before and after
        torch.manual_seed(123)
        with torch.no_grad():
            return {k: v.item() for k, v in model.compute_losses(batch).items()}

    before = eval_loss()
    assert set(before) == TERMS[name] | {"total"}
    for _ in range(30):
        loss = model.compute_losses(batch)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert all(torch.isfinite(torch.tensor(v)) for v in after.values())
    assert after["total"] < 0.8 * before["total"], (before, after)


@pytest.mark.parametrize("name", list(MODELS))
def test_localize_and_embed(name):
    model = tiny(name).eval()
    batch = fixed_batch(b=3)
    with torch.no_grad():
        heat = model.localize(batch)
        emb = model.embed(batch)
        ogl = model.localize_ogl(batch)
    side = 4 if name == "lvs" else 2  # 64 px at output stride 16 / 32
    assert heat.shape == ogl.shape == (3, side, side)
    assert 0.0 <= ogl.min() and ogl.max() <= 1.0
    assert set(emb) == {"audio", "visual"}
    for v in emb.values():
        assert v.shape[0] == 3
        torch.testing.assert_close(v.norm(dim=-1), torch.ones(3))


def test_every_loss_term_logged_by_name(tmp_path):
    for name in MODELS:
        model = tiny(name)
        trainer = L.Trainer(accelerator="cpu", devices=1, fast_dev_run=True, logger=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            default_root_dir=tmp_path)
        trainer.fit(model, datamodule=RandomAVDataModule())
        keys = set(trainer.callback_metrics)
        for stage in ("train", "val"):
            assert any(k.startswith(f"{stage}/loss") and "loss_" not in k for k in keys), keys
            for term in TERMS[name]:
                assert any(k.startswith(f"{stage}/loss_{term}") for k in keys), (name, term, keys)


def test_slavc_momentum_encoders():
    torch.manual_seed(0)
    model = tiny("slavc", momentum_img=0.9, momentum_aud=0.8, lr=1e-2)
    mom_params = {id(p) for n, p in model.named_parameters() if n.startswith("momentum_")}
    assert mom_params and all(not p.requires_grad for n, p in model.named_parameters()
                              if n.startswith("momentum_"))
    opt = model.configure_optimizers()
    assert not mom_params & {id(p) for g in opt.param_groups for p in g["params"]}
    batch = fixed_batch()
    # one step: online moves; the next step's update mixes momentum with the new online
    loss = model.compute_losses(batch)["total"]
    opt.zero_grad()
    loss.backward()
    opt.step()
    old_m = model.momentum_image_proj1.proj.weight.detach().clone()
    old_am = model.momentum_audio_proj2.proj.weight.detach().clone()
    online = model.image_proj1.proj.weight.detach().clone()
    online_a = model.audio_proj2.proj.weight.detach().clone()
    model.compute_losses(batch)
    torch.testing.assert_close(model.momentum_image_proj1.proj.weight, 0.9 * old_m + 0.1 * online)
    torch.testing.assert_close(model.momentum_audio_proj2.proj.weight,
                               0.8 * old_am + 0.2 * online_a)
    # validation does not update the momentum encoders
    model.eval()
    before = model.momentum_image_proj1.proj.weight.detach().clone()
    with torch.no_grad():
        model.compute_losses(batch)
    torch.testing.assert_close(model.momentum_image_proj1.proj.weight, before)


def test_fnac_dropout_only_on_image_backbone_map():
    model = tiny("fnac")
    assert model.img_dropout.p == 0.9 and model.aud_dropout.p == 0.0
    model.eval()  # no dropout at evaluation: localization is deterministic
    batch = fixed_batch(b=2)
    with torch.no_grad():
        torch.testing.assert_close(model.localize(batch), model.localize(batch))


def _config(path: Path) -> tuple[type, dict]:
    cfg = yaml.safe_load(path.read_text())["model"]
    module, cls_name = cfg["class_path"].rsplit(".", 1)
    cls = getattr(__import__(module, fromlist=[cls_name]), cls_name)
    return cls, cfg.get("init_args", {})


@pytest.mark.parametrize("name", list(MODELS))
def test_configs_build_their_model(name):
    for path in (CONFIGS / f"{name}.yaml", CONFIGS / f"{name}_cpu.yaml"):
        cls, init = _config(path)
        assert cls is MODELS[name][0]
        if path.stem == name:  # paper config: paper architecture, weights named not loaded
            assert init.get("image_arch", "resnet18") == "resnet18"
            assert "image_width" not in init and "image_layers" not in init
            continue
        model = cls(**init)
        n_params = sum(p.numel() for p in model.parameters())
        assert n_params < 3_000_000, (path, n_params)


DDP_SCRIPT = r'''
import json, sys
import lightning as L
import torch
import torch.distributed as dist

import avbench.nn.distributed as D
from avbench.nn.losses import info_nce
from test_models_baselines import MODELS, TERMS, RandomAVDataModule, tiny

out = {}
calls = []
_orig = D._GatherWithGrad.apply
D._GatherWithGrad.apply = lambda t: (calls.append(tuple(t.shape)), _orig(t))[1]

for name in MODELS:
    calls.clear()
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", fast_dev_run=True,
                        logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=sys.argv[1])
    trainer.fit(tiny(name), datamodule=RandomAVDataModule())
    out[name] = {"gathers": len(calls), "keys": sorted(trainer.callback_metrics),
                 "world": trainer.world_size}

rank = dist.get_rank()
x = torch.full((2 + rank, 3), float(rank + 1), requires_grad=True)
g, off = D.gather_with_offset(x)
w = torch.arange(g.numel(), dtype=torch.float32).view_as(g)
(g * w).sum().backward()
torch.manual_seed(0)
q_all, k_all = torch.randn(4, 5), torch.randn(4, 5)
q = q_all[2 * rank: 2 * rank + 2].clone().requires_grad_(True)
k = k_all[2 * rank: 2 * rank + 2].clone().requires_grad_(True)
loss = info_nce(q, k, 0.1, symmetric=True)
out["gather"] = {"shape": list(g.shape), "offset": off, "grad": x.grad[:, 0].tolist(),
                 "no_grad_rows": D.all_gather_no_grad(x.detach()).shape[0],
                 "loss": loss.item()}
with open(f"{sys.argv[1]}/rank{rank}.json", "w") as f:
    json.dump(out, f)
'''


@pytest.mark.ddp
def test_ddp_fit_every_model(tmp_path):
    """2-process CPU DDP (gloo) ``fit`` of every model, launched by torchrun."""
    script = tmp_path / "ddp_fit.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    for name in MODELS:
        for res in (r0, r1):
            assert res[name]["world"] == 2
            assert res[name]["gathers"] > 0, name  # negatives came from both ranks
            for term in TERMS[name]:
                assert any(k.startswith(f"train/loss_{term}") for k in res[name]["keys"])
    # gather with gradient: uneven local sizes (2 and 3 rows), exact gradients
    g0, g1 = r0["gather"], r1["gather"]
    assert g0["shape"] == g1["shape"] == [5, 3] and g0["no_grad_rows"] == 5
    assert (g0["offset"], g1["offset"]) == (0, 2)
    assert g0["grad"] == [0.0, 6.0] and g1["grad"] == [12.0, 18.0, 24.0]
    # mean of the per-rank InfoNCE equals the single-process loss on the 4 pairs
    torch.manual_seed(0)
    q_all, k_all = torch.randn(4, 5), torch.randn(4, 5)
    logits = q_all @ k_all.t() / 0.1
    t = torch.arange(4)
    full = 0.5 * (torch.nn.functional.cross_entropy(logits, t)
                  + torch.nn.functional.cross_entropy(logits.t(), t))
    assert abs(0.5 * (g0["loss"] + g1["loss"]) - full.item()) < 1e-4


@pytest.mark.parametrize("warmup", [0, 3])
def test_fnac_declares_its_warmup_as_the_selection_start_of_its_one_stage(warmup):
    from avbench.models.base import check_fit_stages

    stages = check_fit_stages(FNAC(dim=16, warmup_epochs=warmup).configure_fit_stages())
    assert len(stages) == 1 and stages[-1].select_after_epochs == warmup
    assert stages[-1].length() == {}  # the trainer config's length, as before
