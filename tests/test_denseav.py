"""DenseAV (avbench/models/denseav.py): losses by hand, stages, LoRA, temperature, learning."""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from avbench.configs import CONFIG_DIR
from avbench.models.base import AVModel, check_fit_stages
from avbench.models.denseav import DenseAV, quad_mixup, splice_clips
from avbench.nn.dense_similarity import aggregate_volume, similarity_volume

TINY_AUDIO = {"hidden_size": 24, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 32, "conv_dim": [8] * 7, "conv_stride": [5, 2, 2, 2, 2, 2, 2],
              "conv_kernel": [10, 3, 3, 3, 3, 2, 2], "num_conv_pos_embeddings": 16,
              "num_conv_pos_embedding_groups": 2, "feat_extract_norm": "layer",
              "do_stable_layer_norm": True}
TINY_IMAGE = {"img_size": 32, "embed_dim": 24, "depth": 2, "num_heads": 2}


def tiny(**kw) -> DenseAV:
    torch.manual_seed(0)
    args = dict(dim=12, heads=2, image_timm_kwargs=TINY_IMAGE, audio_config=TINY_AUDIO)
    return DenseAV(**(args | kw))


def batch(b=4, seconds=1.0, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(b, 3, size, size, generator=g),
            "audio": 0.1 * torch.randn(b, 1, int(16000 * seconds), generator=g)}


def features(seed=0, b=3, k=2, c=3, t=5, h=2, w=3):
    g = torch.Generator().manual_seed(seed)
    audio = torch.randn(b, k, c, t, generator=g, dtype=torch.float64)
    image = torch.randn(b, k, c, h, w, generator=g, dtype=torch.float64)
    amask = torch.ones(b, t, dtype=torch.bool)
    amask[0, 3:] = False
    amask[2, 0] = False
    pos = torch.ones(b, t, dtype=torch.float64)
    pos[1, 1:3] = torch.tensor([0.25, 0.0], dtype=torch.float64)
    imask = torch.ones(b, 1, h, w, dtype=torch.float64)
    imask[2, 0, :, :2] = 0.0
    return {"audio": audio, "image": image, "audio_mask": amask, "pos_mask": pos,
            "image_mask": imask}


def paired_by_hand(f):
    a, v, m = f["audio"], f["image"], f["audio_mask"]
    b, k, _, t = a.shape
    h, w = v.shape[-2:]
    p = torch.zeros(b, k, h, w, t, dtype=a.dtype)
    for i, kk, y, x, tt in itertools.product(range(b), range(k), range(h), range(w), range(t)):
        p[i, kk, y, x, tt] = (a[i, kk, :, tt] @ v[i, kk, :, y, x]) * float(m[i, tt])
    return p


# --- regularisers by hand -------------------------------------------------------------
def test_each_regulariser_by_hand():
    model = tiny(silence_samples=3, nonneg_samples=7).double()
    f = features()
    torch.manual_seed(5)
    regs = model.regularisers(f)
    p = paired_by_hand(f)
    b, k, c, t = f["audio"].shape
    h, w = f["image"].shape[-2:]

    # non-negativity: the same random draws, every pair of sampled tokens, per head
    torch.manual_seed(5)
    rb, rt = torch.randint(0, b, (7,)), torch.randint(0, t, (7,))
    ry, rx = torch.randint(0, h, (7,)), torch.randint(0, w, (7,))
    vals = [min(float(f["audio"][rb[i], kk, :, rt[i]] @ f["image"][rb[j], kk, :, ry[j], rx[j]]), 0)
            ** 2 for i in range(7) for j in range(7) for kk in range(k)]
    assert float(regs["nonneg"]) == pytest.approx(sum(vals) / len(vals))

    # silence: |<v, a_silent>| over every image, head, location and the 3 silent tokens
    silent = [(0, 3), (0, 4), (2, 0)]
    vals = [abs(float(f["image"][j, kk, :, y, x] @ f["audio"][i, kk, :, tt]))
            for j in range(b) for kk in range(k) for (i, tt) in silent
            for y in range(h) for x in range(w)]
    assert float(regs["silence"]) == pytest.approx(sum(vals) / len(vals))

    # negative audio: P^2 where the clip is a spliced-in negative (weight 1 - pos)
    wgt = (1 - f["pos_mask"]) * f["audio_mask"]
    num = sum(float(p[i, kk, y, x, tt]) ** 2 * float(wgt[i, tt])
              for i, kk, y, x, tt in itertools.product(range(b), range(k), range(h), range(w),
                                                       range(t)))
    assert float(regs["neg_audio"]) == pytest.approx(num / (float(wgt.sum()) * k * h * w))

    # temporal smoothness
    assert float(regs["tv"]) == pytest.approx(float(((p[..., 1:] - p[..., :-1]) ** 2).mean()))
    # head specialisation (one pair of heads)
    assert float(regs["specialize"]) == pytest.approx(float((p[:, 0].abs() * p[:, 1].abs()).mean()))
    # mixup: P^2 outside the own quadrant (image 2, first two columns)
    outside = [float(p[2, kk, y, x, tt]) ** 2 for kk in range(k) for y in range(h)
               for x in range(2) for tt in range(t)]
    assert float(regs["mixup"]) == pytest.approx(sum(outside) / (len(outside)))
    # temperature balance: zero at the initial temperature
    assert float(regs["cal_balance"].detach()) == 0.0


def test_silence_needs_enough_silent_tokens_and_mixup_needs_a_mosaic():
    model = tiny(silence_samples=4).double()
    f = features()
    f["image_mask"] = torch.ones_like(f["image_mask"])
    regs = model.regularisers(f)  # 3 silent tokens < 4: the reference skips the term
    assert float(regs["silence"]) == 0.0 and float(regs["mixup"]) == 0.0
    one_head = tiny(heads=1).double()
    f1 = features(k=1)
    assert float(one_head.regularisers(f1)["specialize"]) == 0.0
    assert one_head.weights["specialize"] == 0.0


def test_cal_balance_and_the_clamped_inverse_temperature():
    model = tiny()
    with torch.no_grad():
        model.log_inv_temperature.fill_(math.log(0.5))
    assert float(model.inverse_temperature().detach()) == pytest.approx(0.5)
    regs = model.regularisers({k: v.float() if v.is_floating_point() else v
                               for k, v in features().items()})
    assert float(regs["cal_balance"]) == pytest.approx(math.log(2) ** 2, rel=1e-5)
    with torch.no_grad():
        model.log_inv_temperature.fill_(math.log(3.0))  # above the init: no penalty
    assert float(model.regularisers({k: v.float() if v.is_floating_point() else v
                                     for k, v in features().items()})["cal_balance"]) == 0.0
    for value, want, grad in ((10.0, 100.0, 0.0), (-10.0, 0.01, 0.0), (0.3, math.exp(0.3), None)):
        with torch.no_grad():
            model.log_inv_temperature.fill_(value)
        model.log_inv_temperature.grad = None
        w = model.inverse_temperature()
        assert float(w.detach()) == pytest.approx(want, rel=1e-6)
        w.backward()
        g = float(model.log_inv_temperature.grad)
        assert g == 0.0 if grad == 0.0 else g == pytest.approx(want, rel=1e-6)


def test_contrastive_is_symmetric_infonce_on_the_scaled_training_score():
    model = tiny().double()
    with torch.no_grad():
        model.log_inv_temperature.fill_(math.log(2.5))
    f = features()
    loss, stats = model.contrastive(f)
    s = aggregate_volume(similarity_volume(f["audio"], f["image"]), f["audio_mask"])
    target = torch.arange(3)
    want = 0.5 * (F.cross_entropy(2.5 * s, target) + F.cross_entropy(2.5 * s.t(), target))
    assert float(loss) == pytest.approx(float(want))
    assert float(stats["inv_temperature"]) == pytest.approx(2.5)


def test_total_is_nce_plus_reference_weighted_terms():
    model = tiny()
    assert model.weights == {"nonneg": 0.01, "silence": 0.01, "neg_audio": 0.01, "tv": 0.01,
                             "cal_balance": 0.1, "specialize": 0.05, "mixup": 0.1}
    assert model.mixup_prob == 0.1
    model.train()
    torch.manual_seed(1)
    losses = model.compute_losses(batch())
    assert set(losses) == {"total", "nce", *model.weights}
    want = losses["nce"] + sum(model.weights[n] * losses[n] for n in model.weights)
    assert float(losses["total"]) == pytest.approx(float(want))
    assert all(torch.isfinite(v) for v in losses.values())


# --- training-batch preparation -------------------------------------------------------------
def test_splice_by_hand():
    clip, piece = torch.ones(10), torch.full((4,), 3.0)
    out, pos = splice_clips(clip, piece, 2, 2)
    assert pos.tolist() == [1, 1, 1, 0, 0, 1, 1, 1, 1, 1]
    assert out.tolist() == [1, 1, 1, 3, 3, 1, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="cannot splice"):
        splice_clips(clip, torch.ones(10), 0, 2)


def test_quad_mixup_places_the_own_image_and_its_mask():
    images = torch.stack([torch.full((3, 4, 4), float(i)) for i in range(4)])
    mosaic, mask = quad_mixup(images, 2, [0, 1, 3], order=[1, 0, 2, 3])
    assert mosaic.shape == (3, 4, 4) and mask.shape == (1, 4, 4)
    assert mosaic[0, 2:, :2].unique().tolist() == [2.0]  # position 1: bottom left = own
    assert mask[0, 2:, :2].unique().tolist() == [1.0] and float(mask.sum()) == 4.0


def test_prepare_training_batch_masks_splices_and_mixes():
    model = tiny(mixup_prob=1.0, audio_window_prob=1.0, neg_audio_seconds=(0.3, 0.5),
                 neg_audio_easing_seconds=0.05)
    b = batch(b=4, seconds=1.0)
    torch.manual_seed(0)
    out = model.prepare_training_batch(b["image"], b["audio"].flatten(1))
    assert (out["pos_mask"] < 1).any(dim=1).all()  # every clip got a negative piece
    assert (out["audio_mask"] == 0).any(dim=1).all()  # every clip was windowed
    assert (out["wave"][out["audio_mask"] == 0] == 0).all()
    assert float(out["image_mask"].mean()) == pytest.approx(0.25)  # all four are mosaics
    model.eval()
    f = model.features(b, train=False)
    assert f["audio_mask"].all() and (f["pos_mask"] == 1).all()


def test_image_features_are_pooled_in_training_only():
    model = tiny()
    img = batch()["image"]
    model.train()
    assert model.image_features(img).shape[-2:] == (2, 2)
    model.eval()
    assert model.image_features(img).shape[-2:] == (4, 4)


# --- stages, LoRA, optimiser ----------------------------------------------------------------
def _apply(stage, model):
    for name, p in model.named_parameters():
        p.requires_grad_(stage.trains(name))
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_stage_order_and_trainable_sets():
    model = tiny()
    stages = check_fit_stages(model.configure_fit_stages(), model)
    assert [s.name for s in stages] == ["aligners", "full"]
    assert stages[0].max_steps == 3000 and stages[0].lr == 5e-5 and stages[1].lr == 5e-5
    assert stages[1].max_steps is None  # the trainer config's length
    first = _apply(stages[0], model)
    assert first and all(n.split(".")[0] in {"image_aligner", "audio_aligner", "audio_cls",
                                             "log_inv_temperature"} for n in first)
    assert any(n.startswith("image_aligner") for n in first)
    assert any(n.startswith("audio_aligner") for n in first)
    second = _apply(stages[1], model)
    names = {n for n, _ in model.named_parameters()}
    assert first < second
    assert {n for n in names if n.startswith("audio_model")} <= second
    lora = {n for n in names if ".lora_" in n}
    assert lora and lora <= second
    assert not {n for n in names if n.startswith("image_model") and ".lora_" not in n} & second


def test_lora_only_on_qkv_with_the_paper_rank():
    model = tiny()
    lora = [(n, p) for n, p in model.named_parameters() if "lora" in n]
    assert len(lora) == 2 * TINY_IMAGE["depth"]
    assert all(".attn.qkv.lora_" in n for n, _ in lora)
    a = dict(lora)["image_model.blocks.0.attn.qkv.lora_A.default.weight"]
    assert a.shape == (8, TINY_IMAGE["embed_dim"])
    qkv = model.image_model.blocks[0].attn.qkv
    assert qkv.scaling["default"] == pytest.approx(32 / 8)
    assert qkv.lora_dropout["default"].p == 0.1
    assert not hasattr(model.image_model.blocks[0].attn.proj, "lora_A")
    assert not any("lora" in n for n, _ in model.audio_model.named_parameters())


def test_optimiser_eps_warmup_and_per_parameter_clipping():
    model = tiny(warmup_steps=100)
    _apply(model.configure_fit_stages()[0], model)
    cfg = model.configure_optimizers()
    opt, sched = cfg["optimizer"], cfg["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.Adam)
    assert all(g["eps"] == 1e-7 for g in opt.param_groups)
    assert cfg["lr_scheduler"]["interval"] == "step"
    assert sched.lr_lambdas[0](0) == 0.0 and sched.lr_lambdas[0](50) == 0.5
    assert sched.lr_lambdas[0](1000) == 1.0
    for p in model.parameters():
        p.grad = torch.full_like(p, 100.0) if p.requires_grad else None
    model.configure_gradient_clipping(opt)
    norms = [float(p.grad.norm()) for p in model.parameters() if p.grad is not None]
    assert max(norms) == pytest.approx(10.0, rel=1e-4)  # each tensor on its own


# --- capabilities ----------------------------------------------------------------------
def test_capabilities_contracts():
    model = tiny().eval()
    b = batch(b=3)
    with torch.no_grad():
        heat = model.prompted_heatmap(b)
        loc = model.localize(b)
        emb = model.embed(b)
        scores = model.retrieval_scores(b)
    hm = heat["heatmap"]
    assert hm.shape[:2] == (3, 2) and hm.shape[-2:] == (4, 4)
    assert heat["time_s"].shape == (hm.shape[2],) and heat["audio_mask"].shape == (3, hm.shape[2])
    assert heat["time_s"][1] - heat["time_s"][0] == pytest.approx(9 * 320 / 16000)
    torch.testing.assert_close(loc, hm.max(1).values.mean(1))  # heads max, mean over the clip
    for v in emb.values():
        torch.testing.assert_close(v.norm(dim=-1), torch.ones(3))
    assert scores.shape == (3, 3)


def test_configs_instantiate_with_the_paper_values():
    paper = yaml.safe_load((CONFIG_DIR / "model" / "denseav.yaml").read_text())["model"]
    args = paper["init_args"]
    assert (args["dim"], args["image_lora_rank"], args["image_lora_alpha"]) == (384, 8, 32.0)
    assert (args["aligner_steps"], args["warmup_steps"], args["lr"]) == (3000, 1000, 5e-5)
    assert args["precision"] == "16-mixed" and args["image_pool"] == 2
    cpu = yaml.safe_load((CONFIG_DIR / "model" / "denseav_cpu.yaml").read_text())["model"]
    assert cpu["init_args"]["image_weights"].startswith("standins/image-vit/")
    assert cpu["init_args"]["audio_weights"] == "standins/audio-transformer"


# --- learning on tiny synthetic VGGSound --------------------------------------------------
@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory) -> dict[str, Path | float]:
    """Tiny ``image-vit`` / ``audio-transformer`` stand-ins and a tiny synthetic VGGSound."""
    from avbench.data.synthetic import generate
    from avbench.pretrain.registry import pretrain

    root = tmp_path_factory.mktemp("denseav")
    start = time.perf_counter()
    for name in ("image-vit", "audio-transformer"):
        pretrain(name, root / "standins" / name, seed=0, size="tiny", progress=False)
    seconds = time.perf_counter() - start
    generate("vggsound", root / "vggsound", "tiny", 0, progress=False)
    return {"standins": root / "standins", "data": root / "vggsound", "standin_seconds": seconds}


@pytest.mark.slow
def test_loss_falls_and_retrieval_beats_chance(tiny_world):
    from avbench.data import VGGSoundDataModule
    from avbench.runner.instantiation import instantiate

    # building both tiny stand-ins takes seconds on an idle machine (docs/pretrained.md)
    assert tiny_world["standin_seconds"] < 180
    cfg = yaml.safe_load((CONFIG_DIR / "model" / "denseav_cpu.yaml").read_text())["model"]
    cfg["init_args"] |= {"image_weights": str(tiny_world["standins"] / "image-vit" /
                                              "model.safetensors"),
                         "audio_weights": str(tiny_world["standins"] / "audio-transformer"),
                         "warmup_steps": 0, "lr": 3e-4}
    torch.manual_seed(0)
    model = instantiate(cfg, AVModel)
    dm = VGGSoundDataModule(root=str(tiny_world["data"]), train_list="vggsound_144k.txt",
                            test_set="vggss", batch_size=16, num_workers=0, image_size=64,
                            cache=False, train_augment="none", sample_rate=16000,
                            clip_seconds=3.0)
    dm.setup("fit")
    train = list(dm.train_dataloader())
    _apply(model.configure_fit_stages()[1], model)
    opt = model.configure_optimizers()["optimizer"]

    def eval_nce() -> float:
        model.eval()
        with torch.no_grad():
            return sum(float(model.compute_losses(b)["nce"]) for b in train) / len(train)

    before = eval_nce()
    for _ in range(30):  # the tiny preset has one training batch of 16 clips
        model.train()
        for b in train:
            opt.zero_grad()
            model.compute_losses(b)["total"].backward()
            opt.step()
    after = eval_nce()
    assert after < before - 0.4, (before, after)

    model.eval()
    images, audios = [], []
    with torch.no_grad():
        for b in train:
            images.append(b["image"])
            audios.append(b["audio"])
        scores = model.retrieval_scores({"image": torch.cat(images), "audio": torch.cat(audios)})
    n = scores.shape[0]
    r1_a2v = float((scores.argmax(1) == torch.arange(n)).float().mean())
    r1_v2a = float((scores.argmax(0) == torch.arange(n)).float().mean())
    print(f"nce {before:.3f} -> {after:.3f}; R@1 a2v {r1_a2v:.3f} v2a {r1_v2a:.3f} (chance {1 / n:.3f})")
    assert r1_a2v > 3 / n and r1_v2a > 3 / n, (r1_a2v, r1_v2a, n)


# --- negatives gathered across ranks ----------------------------------------------------------
def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        model = tiny().double()
        with torch.no_grad():
            model.log_inv_temperature.fill_(math.log(2.0))
        full = features(b=4)
        local = {k: v[2 * rank:2 * rank + 2].clone().requires_grad_(v.is_floating_point()
                                                                      and k in ("audio", "image"))
                 for k, v in full.items()}
        loss, _ = model.contrastive(local)
        loss.backward()
        torch.save({"loss": loss.detach(), "audio": local["audio"].grad,
                    "image": local["image"].grad}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # ~30 s: two spawned processes
@pytest.mark.ddp
def test_two_ranks_gather_negatives_equal_the_single_process_loss(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    model = tiny().double()
    with torch.no_grad():
        model.log_inv_temperature.fill_(math.log(2.0))
    full = features(b=4)
    full["audio"].requires_grad_(True)
    full["image"].requires_grad_(True)
    loss, _ = model.contrastive(full)
    loss.backward()
    # the mean over ranks of the per-rank losses is the whole batch's loss
    assert float(sum(r["loss"] for r in ranks) / 2) == pytest.approx(float(loss.detach()))
    # each rank's feature gradient is that of the SUM of the ranks' losses (gather with grad);
    # DDP's averaging of parameter gradients then gives the gradient of the mean
    for r, out in enumerate(ranks):
        rows = slice(2 * r, 2 * r + 2)
        torch.testing.assert_close(out["audio"], 2 * full["audio"].grad[rows])
        torch.testing.assert_close(out["image"], 2 * full["image"].grad[rows])
