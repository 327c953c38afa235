"""JointSlotSSL (JSA): every loss term against hand-computed values, the
k-reciprocal false negatives, training behaviour, capabilities, configs, DDP."""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from torch.utils.data import DataLoader, Dataset

from avbench.models.jsa import (
    JointSlotSSL,
    attention_matching,
    jsa_info_nce,
    k_reciprocal_false_negatives,
    slot_divergence,
    slot_reconstruction,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine (and under ``pytest -n 2``)
    OpenMP threads contending with other processes slow small ops many-fold."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "avbench" / "configs" / "model"

# Tiny encoders: 64 px images -> 2x2 tokens, 0.5 s audio -> 2 tokens.
TINY = dict(
    dim=32, mlp_hidden=64, image_width=8, image_layers=(1, 1, 1, 1), audio_width=8,
    audio_layers=(1, 1, 1, 1), image_grid=(2, 2), audio_tokens=2, reciprocal_k=3,
)


def _batch(b: int = 8, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(b, 3, 64, 64, generator=g),
        "audio": 0.1 * torch.randn(b, 1, 8000, generator=g),
        "label": torch.arange(b),
        "id": [f"clip{i}" for i in range(b)],
    }


def _unit(deg: list[float]) -> torch.Tensor:
    rad = torch.tensor(deg, dtype=torch.float64) * math.pi / 180
    return torch.stack([rad.cos(), rad.sin()], dim=1)


# Constructed neighbourhoods (k = 2: self + the nearest one).
# image angles: nearest 0<->1, 2<->3, 4->3 (one-directional)
# audio angles: nearest 0<->1, 2->1, 3<->4
IMG_DEG = [0.0, 10.0, 100.0, 110.0, 200.0]
AUD_DEG = [0.0, 15.0, 90.0, 200.0, 215.0]


# --- k-reciprocal false negatives ---------------------------------------------
def test_k_reciprocal_removal_on_constructed_similarities():
    mask = k_reciprocal_false_negatives(_unit(IMG_DEG), _unit(AUD_DEG), k=2)
    expected = torch.zeros(5, 5, dtype=torch.bool)
    # only 0 and 1 are neighbours of each other in BOTH modalities;
    # 2-3 are image neighbours only, 3-4 audio only, 4->3 is not reciprocal
    expected[0, 1] = expected[1, 0] = True
    assert torch.equal(mask, expected)


def test_k_reciprocal_with_k_covering_the_batch_removes_every_negative():
    mask = k_reciprocal_false_negatives(_unit(IMG_DEG), _unit(AUD_DEG), k=100)
    assert torch.equal(mask, ~torch.eye(5, dtype=torch.bool))
    with pytest.warns(UserWarning, match="ALL negatives are removed"):
        loss, _ = jsa_info_nce(_unit(IMG_DEG), _unit(AUD_DEG), tau=0.5, k=5)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)


# --- loss terms against hand computation ------------------------------------------
def _hand_info_nce(removed: set[tuple[int, int]], tau: float) -> float:
    n = len(IMG_DEG)

    def s(i: int, j: int) -> float:  # <img_i, aud_j> of unit vectors
        return math.cos(math.radians(IMG_DEG[i] - AUD_DEG[j]))

    v2a = a2v = 0.0
    for i in range(n):
        keep = [j for j in range(n) if (i, j) not in removed]
        v2a += -s(i, i) / tau + math.log(sum(math.exp(s(i, j) / tau) for j in keep))
        a2v += -s(i, i) / tau + math.log(sum(math.exp(s(j, i) / tau) for j in keep))
    return v2a / n + a2v / n


def test_info_nce_hand_computed_without_and_with_false_negatives():
    img, aud = _unit(IMG_DEG), _unit(AUD_DEG)
    loss, mask = jsa_info_nce(img, aud, tau=0.5, k=None)
    assert not mask.any()
    assert loss.item() == pytest.approx(_hand_info_nce(set(), 0.5), rel=1e-9)
    loss, mask = jsa_info_nce(img, aud, tau=0.5, k=2)
    assert loss.item() == pytest.approx(_hand_info_nce({(0, 1), (1, 0)}, 0.5), rel=1e-9)
    assert mask.sum().item() == 2


def test_slot_divergence_hand_computed():
    slots = torch.tensor([
        [[2.0, 0.0], [0.6, 0.8]],  # cos 0.6 (the 2.0 checks normalisation)
        [[1.0, 0.0], [-1.0, 0.0]],  # cos -1 -> ReLU 0
    ])
    # ordered pairs of different slots: 2 per sample, B = 2 -> (0.6 + 0.6 + 0 + 0) / 4
    assert slot_divergence(slots).item() == pytest.approx(0.3, rel=1e-6)
    assert slot_divergence(slots[:, :1]).item() == 0.0


def test_attention_matching_hand_computed_and_stop_gradient():
    a_v = torch.tensor([[0.5, 0.5]], requires_grad=True)  # audio query over image keys
    v_v = torch.tensor([[1.0, 0.0]], requires_grad=True)  # image query over image keys
    v_a = torch.tensor([[0.2, 0.8]], requires_grad=True)  # image query over audio keys
    a_a = torch.tensor([[0.4, 0.6]], requires_grad=True)  # audio query over audio keys
    loss = attention_matching(a_v, v_v, v_a, a_a)
    assert loss.item() == pytest.approx(0.25 + 0.04, rel=1e-6)
    loss.backward()
    assert v_v.grad is None and a_a.grad is None  # intra-modal targets are detached
    torch.testing.assert_close(a_v.grad, torch.tensor([[-0.5, 0.5]]))


def test_slot_reconstruction_hand_computed_and_detached_targets():
    rec_i = torch.tensor([[[1.0, 2.0]]], requires_grad=True)
    tok_i = torch.tensor([[[0.0, 0.0]]], requires_grad=True)
    rec_a = torch.tensor([[[1.0], [1.0]]], requires_grad=True)
    tok_a = torch.tensor([[[3.0], [1.0]]], requires_grad=True)
    loss = slot_reconstruction(rec_i, tok_i, rec_a, tok_a)
    assert loss.item() == pytest.approx((1 + 4) / 2 + (4 + 0) / 2)
    loss.backward()
    assert tok_i.grad is None and tok_a.grad is None


# --- the model -------------------------------------------------------------------
def test_total_is_the_reference_weighted_sum_of_named_terms():
    torch.manual_seed(0)
    m = JointSlotSSL(**TINY, mask_ratio=0.0)
    losses = m.compute_losses(_batch())
    assert {"total", "info", "recon", "div", "att"} <= set(losses)
    expected = losses["info"] + 0.1 * losses["recon"] + 0.1 * losses["div"] + 100 * losses["att"]
    torch.testing.assert_close(losses["total"], expected)
    # the model's terms are the module-level loss functions on its own outputs
    out = m(_batch(), mask=False)
    info, _ = jsa_info_nce(m.target_embedding(out.image.slots),
                           m.target_embedding(out.audio.slots), 0.03, 3)
    torch.testing.assert_close(losses["info"], info)
    att = attention_matching(out.audio.cross_attn[:, 0], out.image.attn[:, 0],
                             out.image.cross_attn[:, 0], out.audio.attn[:, 0])
    torch.testing.assert_close(losses["att"], att)


def test_warmup_trains_on_info_only():
    torch.manual_seed(0)
    m = JointSlotSSL(**TINY, warmup_epochs=1).train()
    losses = m.compute_losses(_batch())
    torch.testing.assert_close(losses["total"], losses["info"])
    m.eval()  # validation always reports the full objective
    losses = m.compute_losses(_batch())
    assert losses["total"] > losses["info"]


def test_paper_defaults():
    sig = importlib.import_module("inspect").signature(JointSlotSSL)
    d = {k: p.default for k, p in sig.parameters.items()}
    assert (d["n_target_slots"], d["n_offtarget_slots"], d["iters"]) == (1, 1, 5)
    assert (d["mask_ratio"], d["tau"], d["reciprocal_k"]) == (0.1, 0.03, 20)
    assert (d["lambda_recon"], d["lambda_div"], d["lambda_att"]) == (0.1, 0.1, 100.0)
    assert (d["optimizer"], d["lr"], d["weight_decay"]) == ("adamw", 5e-5, 0.01)
    assert d["shared_slots"] is True and d["iqr_alpha"] == 0.4


def test_loss_falls_over_30_steps_on_a_fixed_batch():
    torch.manual_seed(0)
    m = JointSlotSSL(**TINY, lr=1e-3)
    opt = m.configure_optimizers()
    assert isinstance(opt, torch.optim.AdamW)
    batch = _batch()
    totals, infos = [], []
    for _ in range(30):
        losses = m.compute_losses(batch)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        totals.append(losses["total"].item())
        infos.append(losses["info"].item())
    assert all(math.isfinite(t) for t in totals)
    assert sum(totals[-3:]) / 3 < 0.6 * sum(totals[:3]) / 3, totals
    # the contrastive (InfoNCE) term itself falls, not only the weighted rest
    assert infos[0] > 0.5  # negatives were left after the k-reciprocal removal
    assert sum(infos[-3:]) / 3 < 0.7 * sum(infos[:3]) / 3, infos


def test_masking_only_in_training():
    torch.manual_seed(0)
    m = JointSlotSSL(**{**TINY, "mask_ratio": 0.5})
    batch = _batch(4)
    m.train()
    a, b = m(batch), m(batch)
    torch.testing.assert_close(a.image_tokens, b.image_tokens)  # same tokens ...
    assert not torch.allclose(a.image.slots, b.image.slots)  # ... different masks
    e1, e2 = m.embed(batch), m.embed(batch)  # inference never masks
    torch.testing.assert_close(e1["visual"], e2["visual"])
    m.eval()
    c, d = m(batch), m(batch)
    torch.testing.assert_close(c.image.slots, d.image.slots)
    torch.testing.assert_close(c.audio.slots, d.audio.slots)


def test_localize_is_the_audio_target_query_over_image_keys_with_sharpening():
    """``localize`` = row 0 (target slot) of the LAST-iteration audio query over the
    IMAGE keys, slot-softmax with logits x ``infer_sharpening``, token-normalised;
    not the image query, not the audio keys, not the unsharpened map."""
    torch.manual_seed(0)
    m = JointSlotSSL(**{**TINY, "infer_sharpening": 0.1}).eval()
    batch = _batch(3)
    sa = m.slot_attention
    with torch.no_grad():
        heat = m.localize(batch)
        img_tok, grid = m.image_tokens(batch["image"])
        aud_tok = m.audio_tokens(batch["audio"])
        img_k, _ = sa.image.keys_values(img_tok, mask=False)
        aud_k, aud_v = sa.audio.keys_values(aud_tok, mask=False)
        aud = sa.audio.iterate(sa.initial_slots("audio"), aud_k, aud_v)  # unsharpened run
        q = aud.query[:, :1]  # the audio TARGET slot's last query

        def ca(scale: float) -> torch.Tensor:
            logits = torch.einsum("bkd,bnd->bkn", aud.query, img_k) * scale * 32**-0.5
            a = logits.softmax(dim=1)[:, :1] + sa.audio.eps
            return (a / a.sum(-1, keepdim=True))[:, 0].reshape(3, *grid)

        torch.testing.assert_close(heat, ca(0.1))
        assert not torch.allclose(heat, ca(1.0), atol=1e-4)  # sharpening is used
        assert not torch.allclose(heat, m.localize_image_query(batch), atol=1e-4)
        assert q.shape == (3, 1, 32)
    m.infer_sharpening = 1.0
    with torch.no_grad():
        torch.testing.assert_close(m.localize(batch), ca(1.0))


def test_localize_refined_and_embed():
    torch.manual_seed(0)
    m = JointSlotSSL(**{**TINY, "image_grid": (7, 7)}).eval()
    batch = {"image": torch.rand(3, 3, 224, 224), "audio": 0.1 * torch.randn(3, 1, 80000)}
    av = m.localize(batch)
    assert av.shape == (3, 7, 7)  # 7x7 map at 224 px
    torch.testing.assert_close(av.flatten(1).sum(1), torch.ones(3))  # token-normalised
    iq = m.localize_image_query(batch)
    out = m(batch)
    assert out.audio_tokens.shape[1] == 16  # 5 s -> 16 audio tokens

    def norm(x):
        x = x.flatten(1)
        x = (x - x.min(1, keepdim=True).values) / (x.max(1, keepdim=True).values
                                                   - x.min(1, keepdim=True).values)
        return x.view(-1, 7, 7)

    refined = m.localize_refined(batch)
    torch.testing.assert_close(refined, norm(0.4 * norm(av) + 0.6 * norm(iq)))
    emb = m.embed(batch)
    for key in ("audio", "visual"):
        assert emb[key].shape == (3, 32)
        torch.testing.assert_close(emb[key].norm(dim=-1), torch.ones(3))
    assert m.meta.capabilities == {"embed", "localize"}


@pytest.mark.parametrize("zero_init", [True, False])
def test_audio_backbone_batchnorm_init(zero_init):
    """Reference ``resnet.py``: every BN weight 1 (``zero_init_residual=False``), the
    paper config's ``audio_zero_init_last: false``; the default keeps timm's zero
    init of each block's last BN (the CPU configs, unchanged numbers)."""
    m = JointSlotSSL(**TINY, audio_zero_init_last=zero_init)
    bb = m.audio_encoder.backbone
    last = torch.cat([blk.bn2.weight.detach() for layer in (bb.layer1, bb.layer2, bb.layer3,
                                                            bb.layer4) for blk in layer])
    first = torch.cat([blk.bn1.weight.detach() for blk in bb.layer4])
    assert torch.all(first == 1)
    assert torch.all(last == (0.0 if zero_init else 1.0))
    assert torch.all(m.audio_proj.proj.bias == 0)


def test_hard_image_augment_only_in_training():
    torch.manual_seed(0)
    m = JointSlotSSL(**TINY, hard_image_augment=True)
    image = _batch(4)["image"]
    m.eval()
    a, _ = m.image_tokens(image)
    b, _ = m.image_tokens(image)
    torch.testing.assert_close(a, b)
    m.train()
    seen = []
    h = m.image_encoder.register_forward_hook(lambda _m, args, _o: seen.append(args[0]))
    m.image_tokens(image)
    h.remove()
    assert not torch.allclose(seen[0], image)  # the encoder saw augmented images
    assert seen[0].min() >= 0 and seen[0].max() <= 1


def test_several_target_slots_and_unshared_slots_run():
    torch.manual_seed(0)
    m = JointSlotSSL(**TINY, n_target_slots=2, n_offtarget_slots=2, shared_slots=False)
    losses = m.compute_losses(_batch())
    assert all(torch.isfinite(v) for v in losses.values())
    m.eval()
    assert m.localize(_batch(2)).shape == (2, 2, 2)
    torch.testing.assert_close(m.embed(_batch(2))["audio"].norm(dim=-1), torch.ones(2))


class _Pairs(Dataset):
    def __init__(self, n: int, seed: int) -> None:
        self.b = _batch(n, seed)

    def __len__(self) -> int:
        return len(self.b["id"])

    def __getitem__(self, i: int) -> dict:
        return {k: v[i] for k, v in self.b.items()}


class _TinyData(L.LightningDataModule):
    def train_dataloader(self) -> DataLoader:
        return DataLoader(_Pairs(16, 0), batch_size=8, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(_Pairs(8, 1), batch_size=8)


def test_every_loss_term_is_logged_by_name():
    torch.manual_seed(0)
    m = JointSlotSSL(**TINY)
    trainer = L.Trainer(accelerator="cpu", devices=1, fast_dev_run=True, logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False)
    trainer.fit(m, datamodule=_TinyData())
    logged = set(trainer.callback_metrics)
    for stage in ("train", "val"):
        assert f"{stage}/loss" in logged
        for term in ("info", "recon", "div", "att"):
            assert f"{stage}/loss_{term}" in logged, (stage, term, sorted(logged))
        assert f"{stage}/false_negatives_removed" in logged


@pytest.mark.parametrize("name", ["jsa.yaml", "jsa_cpu.yaml"])
def test_configs_instantiate(name: str):
    cfg = yaml.safe_load((CONFIGS / name).read_text())["model"]
    module, cls_name = cfg["class_path"].rsplit(".", 1)
    cls = getattr(importlib.import_module(module), cls_name)
    assert cls is JointSlotSSL
    model = cls(**cfg["init_args"])
    assert model.hparams.n_target_slots == 1 and model.hparams.n_offtarget_slots == 1
    if name == "jsa.yaml":  # paper: the centre 5 s of the 10-s data window -> 16 tokens
        with torch.no_grad():
            tokens = model.eval().audio_tokens(0.1 * torch.randn(1, 1, 160000))
        assert tokens.shape[1] == model.hparams.audio_tokens == 16


DDP_SCRIPT = textwrap.dedent(
    """
    import sys
    import lightning as L
    import torch
    import torch.distributed as dist

    sys.path.insert(0, {tests!r})
    from test_models_jsa import TINY, _TinyData
    from avbench.models.jsa import JointSlotSSL, jsa_info_nce

    class Check(L.Callback):
        def on_fit_end(self, trainer, pl_module):
            # negatives gathered with gradient + global k-reciprocal mask: the
            # rank-mean of the local losses equals the single-process loss on the
            # global batch, and so do the gradients
            rank, world = dist.get_rank(), dist.get_world_size()
            g = torch.Generator().manual_seed(0)
            img = torch.nn.functional.normalize(torch.randn(8, 4, generator=g), dim=1)
            aud = torch.nn.functional.normalize(img + 0.3 * torch.randn(8, 4, generator=g), dim=1)
            full_i, full_a = img.clone().requires_grad_(), aud.clone().requires_grad_()
            ref, ref_mask = jsa_info_nce(full_i, full_a, 0.1, k=3, gather=False)
            ref.backward()
            sl = slice(rank * 4, rank * 4 + 4)
            loc_i, loc_a = img[sl].clone().requires_grad_(), aud[sl].clone().requires_grad_()
            loss, mask = jsa_info_nce(loc_i, loc_a, 0.1, k=3)
            loss.backward()
            assert torch.equal(mask, ref_mask[sl])
            mean = loss.detach().clone()
            dist.all_reduce(mean)
            assert torch.allclose(mean / world, ref.detach(), atol=1e-6), (mean, ref)
            assert torch.allclose(loc_i.grad / world, full_i.grad[sl], atol=1e-6)
            assert torch.allclose(loc_a.grad / world, full_a.grad[sl], atol=1e-6)
            if rank == 0:
                print("DDP_OK", sorted(trainer.callback_metrics), flush=True)

    if __name__ == "__main__":
        torch.manual_seed(0)
        model = JointSlotSSL(**TINY)
        trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", fast_dev_run=True,
                            logger=False, enable_progress_bar=False,
                            enable_model_summary=False, callbacks=[Check()])
        trainer.fit(model, datamodule=_TinyData())
    """
)


@pytest.mark.ddp
def test_ddp_two_process_fit(tmp_path: Path):
    script = tmp_path / "ddp_jsa.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "DDP_OK" in proc.stdout
    assert "train/loss_att" in proc.stdout and "val/loss_info" in proc.stdout


def test_jsa_declares_its_warmup_as_the_selection_start_of_its_one_stage():
    assert JointSlotSSL(**TINY, warmup_epochs=2).configure_fit_stages()[-1].select_after_epochs == 2
    assert JointSlotSSL(**TINY).configure_fit_stages()[-1].select_after_epochs == 0
