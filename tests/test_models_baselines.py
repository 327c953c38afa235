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
#: the contrastive terms of each method: they must fall themselves, not just the total
CONTRASTIVE = {
    "ezvsl": ("v2a", "a2v"),
    "fnac": ("v2a", "a2v"),
    "slavc": ("i2a", "a2i"),
    "lvs": ("hard_contrastive",),
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
    # the contrastive term itself falls (a flat one would fail even if the rest fell)
    con_before = sum(before[t] for t in CONTRASTIVE[name])
    con_after = sum(after[t] for t in CONTRASTIVE[name])
    assert con_after < 0.8 * con_before, (name, before, after)


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


def _capture(modules: dict[str, torch.nn.Module]) -> tuple[dict, list]:
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(name):
        def fn(_m, args, out):
            seen[name] = (args[0].detach().clone(), out.detach().clone())
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    return seen, handles


def test_fnac_dropout_acts_on_the_image_backbone_map_in_training_only():
    """p = 0.9 dropout between the image backbone and its 1x1 projection, on the
    training forward only; the audio dropout (p = 0) sits on the pooled feature."""
    torch.manual_seed(0)
    model = tiny("fnac")
    assert model.img_dropout.p == 0.9 and model.aud_dropout.p == 0.0
    seen, handles = _capture({"backbone": model.image_encoder, "drop": model.img_dropout,
                              "proj": model.image_proj, "adrop": model.aud_dropout})
    batch = fixed_batch(b=4)
    model.train()
    with torch.no_grad():
        model.compute_losses(batch)
    fmap = seen["backbone"][1]
    d_in, d_out = seen["drop"]
    assert d_in.shape == fmap.shape and d_in.dim() == 4  # the [B,C,h,w] backbone map
    torch.testing.assert_close(d_in, fmap)
    torch.testing.assert_close(seen["proj"][0], d_out)  # the projection sees the dropped map
    kept = d_out != 0
    zero_frac = 1 - kept.float().mean().item()
    assert 0.85 < zero_frac < 0.95, zero_frac  # ~90% dropped (post-ReLU map is > 0 almost everywhere)
    torch.testing.assert_close(d_out[kept], d_in[kept] / 0.1)  # inverted-dropout scaling
    a_in, a_out = seen["adrop"]
    assert a_in.dim() == 2  # the pooled [B,C] audio feature
    torch.testing.assert_close(a_out, a_in)
    model.eval()
    with torch.no_grad():
        heat = model.localize(batch)
    d_in, d_out = seen["drop"]
    torch.testing.assert_close(d_out, d_in)  # evaluation: no dropout
    with torch.no_grad():
        torch.testing.assert_close(model.localize(batch), heat)
    for h in handles:
        h.remove()


def _detune_momentum(model) -> None:
    """Make SLAVC's momentum copies differ from the online networks (small random shift)."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.startswith("momentum_"):
                p.add_(0.05 * torch.randn_like(p))


def test_slavc_localize_uses_both_momentum_heads():
    """``(S^1 + S^2) / 2 / tau`` of the MOMENTUM encoders' own-pair maps: changing the
    online weights leaves the map unchanged, changing a momentum head changes it."""
    torch.manual_seed(0)
    model = tiny("slavc").eval()
    _detune_momentum(model)
    batch = fixed_batch(b=3)
    with torch.no_grad():
        heat = model.localize(batch)
        v1 = model.momentum_image_proj1(model.momentum_image_encoder(batch["image"]))
        v2 = model.momentum_image_proj2(model.momentum_image_encoder(batch["image"]))
        feat = model.momentum_audio_encoder(model.spectrogram(batch["audio"])).flatten(2).amax(-1)
        a1, a2 = model.momentum_audio_proj1(feat), model.momentum_audio_proj2(feat)
        want = 0.5 * (torch.einsum("bdhw,bd->bhw", v1, a1)
                      + torch.einsum("bdhw,bd->bhw", v2, a2)) / model.tau
        torch.testing.assert_close(heat, want)
        for n, p in model.named_parameters():
            if not n.startswith("momentum_"):
                p.add_(torch.randn_like(p))
        torch.testing.assert_close(model.localize(batch), heat)
        model.momentum_image_proj2.proj.weight.mul_(-1)
        assert not torch.allclose(model.localize(batch), heat)
        model.use_mom_eval = False  # the online encoders when asked
        assert not torch.allclose(model.localize(batch), heat)


def test_slavc_loss_wiring_online_images_against_momentum_audio_and_back():
    """``i2a``: online image maps x MOMENTUM audio; ``a2i``: MOMENTUM image maps x
    online audio; each ``log sum_l softmax_m(S1) softmax_l(S2)`` then CE over audios."""
    torch.manual_seed(0)
    model = tiny("slavc").eval()
    _detune_momentum(model)
    batch = fixed_batch(b=4)
    with torch.no_grad():
        got = model.compute_losses(batch)
        v1, v2 = model.visual_maps(batch["image"])
        a1, a2 = model.audio_embeddings(batch["audio"])
        v1m, v2m = model.visual_maps(batch["image"], momentum=True)
        a1m, a2m = model.audio_embeddings(batch["audio"], momentum=True)

    def loss(vs, as_, vl, al):
        s1 = torch.einsum("ndl,md->nml", vs.flatten(2), as_) / model.tau
        s2 = torch.einsum("ndl,md->nml", vl.flatten(2), al) / model.tau
        score = torch.log((s1.softmax(dim=1) * s2.softmax(dim=2)).sum(-1))
        return torch.nn.functional.cross_entropy(score, torch.arange(4))

    torch.testing.assert_close(got["i2a"], loss(v1, a1m, v2, a2m))
    torch.testing.assert_close(got["a2i"], loss(v1m, a1, v2m, a2))
    assert not torch.isclose(got["i2a"], loss(v1, a1, v2, a2))  # momentum audio matters
    torch.testing.assert_close(got["total"], got["i2a"] + got["a2i"])


def test_lvs_loss_wiring_by_hand():
    """Tri-map logits ``[pos_n, easy_nm (own pair x -99), hard_n] / 0.07`` from the
    own-pair and all-pair cosine maps, cross-entropy to column 0, written out per sample."""
    torch.manual_seed(0)
    model = tiny("lvs").eval()
    batch = fixed_batch(b=3)
    with torch.no_grad():
        got = model.compute_losses(batch)["hard_contrastive"]
        v = model.visual_map(batch["image"])
        a = model.audio_embedding(batch["audio"])
    sig = torch.sigmoid
    losses = []
    for n in range(3):
        own = torch.einsum("dhw,d->hw", v[n], a[n])
        pw = sig((own - 0.65) / 0.03)
        nw = 1 - sig((own - 0.4) / 0.03)
        row = [(pw * own).sum() / pw.sum()]
        for m in range(3):
            cross = torch.einsum("dhw,d->hw", v[n], a[m])
            w = sig((cross - 0.65) / 0.03)
            row.append((w * cross).sum() / w.sum() * (-99.0 if m == n else 1.0))
        row.append((nw * own).sum() / nw.sum())
        logits = torch.stack(row) / 0.07
        losses.append(-torch.log_softmax(logits, 0)[0])
    torch.testing.assert_close(got, torch.stack(losses).mean())


def _bn_weights(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([m.weight.detach().flatten() for m in module.modules()
                      if isinstance(m, torch.nn.BatchNorm2d)])


@pytest.mark.parametrize("name", list(MODELS))
def test_from_scratch_audio_backbone_follows_the_reference_init(name):
    """EZ-VSL ``model.py``: every BatchNorm weight of the from-scratch audio ResNet is
    N(1, 0.02) (none zero-initialised, unlike timm's default), convs Kaiming fan-out."""
    torch.manual_seed(0)
    model = MODELS[name][0](**{**MODELS[name][1]})  # full resnet18 widths
    bn = _bn_weights(model.audio_encoder)
    assert bn.min() > 0.85 and abs(bn.mean().item() - 1) < 0.01
    assert 0.01 < bn.std().item() < 0.03
    conv = model.audio_encoder.backbone.layer2[0].conv1.weight
    fan_out = conv.shape[0] * conv.shape[2] * conv.shape[3]
    assert abs(conv.std().item() - (2 / fan_out) ** 0.5) < 0.1 * (2 / fan_out) ** 0.5
    if name == "lvs":  # no ImageNet file given: the image net gets the same init
        assert _bn_weights(model.image_encoder).min() > 0.85
    if name in ("ezvsl", "fnac"):  # linear audio projection: truncated normal, std 0.01
        w = model.audio_proj.proj.weight
        assert abs(w.std().item() - 0.01) < 0.002


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
        model = cls(**init)
        n_params = sum(p.numel() for p in model.parameters())
        if path.stem == name:  # paper config: full resnet18s (11.2M each), weights named not loaded
            assert init.get("image_arch", "resnet18") == "resnet18"
            assert "image_width" not in init and "image_layers" not in init
            assert model.image_encoder.out_channels == 512 and n_params > 22_000_000
            assert model.global_batch_size in (128, 256)
        else:
            assert n_params < 3_000_000, (path, n_params)
            assert model.global_batch_size is None  # CPU configs: data batch per device


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


@pytest.mark.parametrize("name", list(MODELS))
def test_audio_resnet_stride_is_the_references(name):
    """The CPU configs' out_stride 16 is the IMAGE stride: the EZ-VSL line's audio ResNet
    keeps the reference stride 32 (layer4 halves the map); LVS's audio net runs layer4 at
    stride 1, as its image net (LVS ``model.py``)."""
    model = tiny(name) if name == "lvs" else tiny(name, out_stride=16)
    spec = torch.zeros(1, 1, 128, 96)
    f32 = model.audio_encoder(spec).shape[-2:]
    assert model.image_encoder(torch.zeros(1, 3, 64, 64)).shape[-2:] == (4, 4)
    assert f32 == ((8, 6) if name == "lvs" else (4, 3)), f32


def test_lr_scales_split_the_optimiser_into_groups():
    """``lr_scales`` multiplies the lr of the named submodules only; the stage's lr is the base."""
    from avbench.models.base import FitStage

    model = tiny("ezvsl", lr=1e-4, lr_scales={"audio_encoder": 10.0, "audio_proj": 10.0})
    opt = model.configure_optimizers()
    by_lr = {g["lr"]: {id(p) for p in g["params"]} for g in opt.param_groups}
    audio = {id(p) for n, p in model.named_parameters() if n.startswith("audio_")}
    assert by_lr == {1e-3: audio, 1e-4: {id(p) for p in model.parameters()} - audio}
    model.fit_stage = FitStage(lr=2e-4)
    assert sorted(g["lr"] for g in model.configure_optimizers().param_groups) == [2e-4, 2e-3]
    plain = tiny("ezvsl").configure_optimizers()
    assert len(plain.param_groups) == 1
    with pytest.raises(ValueError, match="lr_scales"):
        tiny("ezvsl", lr_scales={"audio_encoder": 0.0})


@pytest.mark.parametrize("name", ["ezvsl", "fnac", "slavc"])
def test_checkpoint_records_and_restores_the_audio_stride(name):
    """A checkpoint records the audio ResNet's stride; a model built at 32 that loads a
    checkpoint trained at 16 runs its audio layer4 at stride 1 (both towers for SLAVC)."""
    spec = torch.zeros(1, 1, 128, 96)
    trained16 = tiny(name, out_stride=16, audio_out_stride=16)
    saved: dict = {}
    trained16.on_save_checkpoint(saved)
    assert saved["audio_out_stride"] == 16
    model = tiny(name, out_stride=16)
    assert model.audio_encoder(spec).shape[-2:] == (4, 3)  # built at 32
    model.on_load_checkpoint(saved)
    assert model.audio_out_stride == 16
    for m in model.modules():  # SLAVC's momentum audio tower too
        if type(m).__name__ == "AudioEncoder":
            assert m(spec).shape[-2:] == (8, 6)
    unrecorded = tiny(name, out_stride=16)  # ambiguous (before the record existed): as built
    unrecorded.on_load_checkpoint({"hyper_parameters": {"out_stride": 16}})
    assert unrecorded.audio_encoder(spec).shape[-2:] == (4, 3)
    with pytest.raises(ValueError, match="audio_out_stride=32"):
        tiny(name, out_stride=16, audio_out_stride=16).on_load_checkpoint({"audio_out_stride": 32})
