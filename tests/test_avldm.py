"""AV-LDM (Action2Sound): mel front-end, conditioning, diffusion loss, guidance, sampling,
condition dropout, retrieval helpers, errors and the two shipped configs.

Tiny pieces throughout: a random tiny ``AutoencoderKL`` saved to a temp directory (the
model loads it with ``from_pretrained`` as it loads the stand-in), a narrow random image
ResNet, a two-level UNet; clips are the real 3 s at 16 kHz.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from avbench.configs import CONFIG_DIR
from avbench.models.avldm import AVLDM, lowest_energy_index, retrieve_condition
from avbench.nn.mel import ScaledLogMel
from avbench.nn.weights import WeightsError

SR, L = 16000, 48000
TINY_UNET = {"block_out_channels": [16, 32], "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
             "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "layers_per_block": 1,
             "cross_attention_dim": 32, "attention_head_dim": 2, "norm_num_groups": 8}


def _save_autoencoder(path: Path, in_channels: int = 1, blocks: int = 3) -> Path:
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    AutoencoderKL(in_channels=in_channels, out_channels=in_channels, latent_channels=4,
                  down_block_types=["DownEncoderBlock2D"] * blocks,
                  up_block_types=["UpDecoderBlock2D"] * blocks, block_out_channels=[8] * blocks,
                  layers_per_block=1, norm_num_groups=8, mid_block_add_attention=False,
                  scaling_factor=0.5).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def ae_dir(tmp_path_factory) -> Path:
    return _save_autoencoder(tmp_path_factory.mktemp("avldm_ae") / "mel-autoencoder")


def make_model(ae_dir: Path, **kw) -> AVLDM:
    torch.manual_seed(0)
    args = {"autoencoder": str(ae_dir), "mel_scaling": "standin", "mel_frames": 188,
            "scale_factor": None, "unet": TINY_UNET, "image_width": 8, "image_layers": [1, 1, 1, 1],
            "video_frames": 2, "audio_hidden": 32, "warmup_steps": 0, "lr": 2e-3, **kw}
    return AVLDM(**args)


def make_batch(b: int = 4, seed: int = 0, cond: bool = True) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(L) / SR
    freqs = 300.0 * (1 + torch.arange(b))[:, None]
    audio = 0.3 * torch.sin(2 * math.pi * freqs * t)[:, None]  # one tone per clip
    batch = {"audio": audio, "frames": torch.rand(b, 2, 3, 32, 32, generator=g)}
    if cond:
        batch["cond_audio"] = 0.05 * torch.randn(b, 1, L, generator=g)
    return batch


# --- front-end ---------------------------------------------------------------------
def test_reference_mel_scaling_is_the_reference_db_map_and_pads_with_silence() -> None:
    front = ScaledLogMel("reference", frames=196)
    mel = torch.tensor([1e-7, 1e-5, 1e-3, 1.0, 10.0, 1e3])
    expect = ((20 * torch.log10(mel.clamp(min=1e-5)) - 20 + 100) / 100).clamp(0, 1)
    assert torch.allclose(front.scale(mel), expect, atol=1e-6)
    inside = torch.tensor([1e-3, 0.1, 1.0, 5.0])  # within the [0, 1] range: exact inverse
    assert torch.allclose(front.unscale(front.scale(inside)), inside, rtol=1e-4)
    wave = 0.1 * torch.randn(2, 1, L)
    x = front(wave)
    assert x.shape == (2, 1, 128, 196) and front.frames_of(L) == 188
    assert (x[..., 188:] == 0).all() and front.floor == 0.0  # the reference's zero padding
    standin = ScaledLogMel("standin", frames=188)
    assert standin.floor == pytest.approx((math.log(1e-5) + 4.0) / 1.5)
    with pytest.raises(ValueError, match="scaling"):
        ScaledLogMel("db")


# --- conditioning, loss -------------------------------------------------------------------
def test_shapes_tokens_and_missing_condition_equals_zero_condition(ae_dir) -> None:
    model = make_model(ae_dir).eval()
    assert model.latent_shape == (4, 32, 47) and model.num_tokens == 2 + 47
    assert model.scale_factor == 0.5  # the autoencoder config's scaling_factor
    batch = make_batch(2)
    feats = model.frame_features(batch)
    assert feats.shape == (2, 2, model.image_encoder.out_channels)
    with_cond = model.condition_tokens(feats, model.encode_audio(batch["cond_audio"]))
    zero = model.condition_tokens(feats, None)
    assert with_cond.shape == zero.shape == (2, 49, 32)
    assert (zero[:, 2:] == 0).all() and not (with_cond[:, 2:] == 0).all()
    assert torch.equal(with_cond[:, :2], zero[:, :2])  # video tokens do not see the audio
    # a batch without cond_audio trains and samples with the zero audio condition
    g = torch.Generator().manual_seed(3)
    nocond = model.compute_losses(make_batch(2, cond=False), generator=g)["total"]
    assert torch.isfinite(nocond)


def test_dropped_conditions_are_the_null_tokens(ae_dir) -> None:
    model = make_model(ae_dir).eval()
    batch = make_batch(2)
    feats = model.frame_features(batch)
    cond = model.encode_audio(batch["cond_audio"])
    keep = torch.tensor([True, False])
    tokens = model.condition_tokens(feats, cond, keep_video=keep, keep_audio=keep)
    full = model.condition_tokens(feats, cond)
    assert torch.equal(tokens[0], full[0])
    # dropped video: the features are zero, so the tokens are the linear's bias + positions
    null_video = model.video_encoder.proj.bias + model.video_encoder.pos.weight
    assert torch.allclose(tokens[1, :2], null_video, atol=1e-6)
    assert (tokens[1, 2:] == 0).all()  # dropped audio: zero tokens


def test_condition_dropout_rates(ae_dir) -> None:
    model = make_model(ae_dir, video_drop_prob=0.2, audio_drop_prob=0.3)
    n = 20000
    keep_v, keep_a = model.drop_masks(n, torch.Generator().manual_seed(0))
    # binomial sd: sqrt(.2 * .8 / n) = 0.0028, sqrt(.3 * .7 / n) = 0.0032 -> 4 sd bounds
    assert abs((~keep_v).float().mean().item() - 0.2) < 0.012
    assert abs((~keep_a).float().mean().item() - 0.3) < 0.013
    both = ((~keep_v) & (~keep_a)).float().mean().item()  # independent draws
    assert abs(both - 0.06) < 0.008
    keep_v, keep_a = make_model(ae_dir).drop_masks(n, torch.Generator().manual_seed(1))
    assert keep_a.all()  # reference: the audio condition is never dropped


def test_diffusion_loss_falls_on_a_tiny_batch(ae_dir) -> None:
    model = make_model(ae_dir)
    batch = make_batch(2)

    def fixed_loss() -> float:  # same noise, timesteps and posterior samples every time
        model.eval()
        with torch.no_grad():
            vals = [model.compute_losses(batch, generator=torch.Generator().manual_seed(s))["total"]
                    for s in range(3)]
        model.train()
        return float(torch.stack(vals).mean())

    opt = model.configure_optimizers()["optimizer"]
    assert isinstance(opt, torch.optim.AdamW)
    before = fixed_loss()
    g = torch.Generator().manual_seed(10)
    for _ in range(30):
        loss = model.compute_losses(batch, generator=g)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = fixed_loss()
    assert after < 0.6 * before, (before, after)
    # frozen parts did not move and got no gradient
    assert all(p.grad is None for p in model.autoencoder.parameters())
    assert all(p.grad is None for p in model.image_encoder.parameters())


def test_warmup_schedule_starts_near_zero_and_reaches_lr(ae_dir) -> None:
    model = make_model(ae_dir, warmup_steps=10, lr=1e-4)
    cfg = model.configure_optimizers()
    opt, sched = cfg["optimizer"], cfg["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-10) and lrs[5] == pytest.approx(0.5e-4, rel=1e-4)
    assert lrs[10] == lrs[11] == pytest.approx(1e-4)
    assert opt.param_groups[0]["weight_decay"] == 0.01


# --- guidance and sampling ----------------------------------------------------------
def test_guidance_scale_one_is_the_conditional_prediction_and_order_is_uncond_first(ae_dir) -> None:
    model = make_model(ae_dir).eval()
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, *model.latent_shape, generator=g)
    tokens = torch.randn(2, model.num_tokens, 32, generator=g)
    uncond = torch.zeros_like(tokens)
    t = torch.tensor(500)
    with torch.no_grad():
        cond = model.unet(z, t, encoder_hidden_states=tokens).sample
        unc = model.unet(z, t, encoder_hidden_states=uncond).sample
        one = model.predict_noise(z, t, tokens, uncond, 1.0)
        guided = model.predict_noise(z, t, tokens, uncond, 6.5)
    assert torch.allclose(one, cond, atol=1e-6)
    assert torch.allclose(guided, unc + 6.5 * (cond - unc), atol=1e-4)
    assert not torch.allclose(guided, cond, atol=1e-3)


@pytest.mark.parametrize("sampler", ["ddim", "dpm_solver"])
def test_generate_audio_is_three_seconds_finite_and_reproducible(ae_dir, sampler) -> None:
    model = make_model(ae_dir, sampler=sampler, griffin_lim_iters=4)
    batch = make_batch(2)

    def run(condition="batch"):
        return model.generate_audio(batch, condition=condition, steps=3,
                                    generator=torch.Generator().manual_seed(7))

    wave = run()
    assert wave.shape == (2, 3 * SR) and wave.dtype == torch.float32
    assert torch.isfinite(wave).all() and wave.abs().max() > 0
    assert torch.equal(wave, run())
    assert model.training  # restored after sampling
    explicit = run(batch["cond_audio"])  # waveforms given directly = the batch's condition
    assert torch.equal(explicit, wave)
    zero = run("zero")
    assert torch.isfinite(zero).all() and not torch.equal(zero, wave)
    assert model.make_sampler(25).timesteps[:2].tolist() == (
        [961, 921] if sampler == "ddim" else model.make_sampler(25).timesteps[:2].tolist())


def test_retrieval_and_low_ambient_helpers() -> None:
    video = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.1]])
    gallery = torch.tensor([[0.0, 1.0], [3.0, 0.1], [1.0, 1.0]])
    assert retrieve_condition(video, gallery).tolist() == [1, 0, 2]
    with pytest.raises(ValueError, match=r"\[B,D\]"):
        retrieve_condition(video, gallery[:, :1])
    waves = torch.stack([torch.full((100,), 0.5), torch.full((100,), -0.1), torch.full((100,), 0.2)])
    assert lowest_energy_index(waves) == 1 and lowest_energy_index(waves[:, None]) == 1


# --- errors -----------------------------------------------------------------------------------
def test_missing_autoencoder_dir_names_the_file(tmp_path) -> None:
    missing = tmp_path / "no_such_ae"
    with pytest.raises(WeightsError, match=str(missing / "config.json")):
        make_model(missing)
    with pytest.raises(ValueError, match="autoencoder"):
        AVLDM(autoencoder=None)


def test_truncated_autoencoder_weights_names_the_file(ae_dir, tmp_path) -> None:
    import shutil

    bad = tmp_path / "ae"
    shutil.copytree(ae_dir, bad)
    f = bad / "diffusion_pytorch_model.safetensors"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="diffusion_pytorch_model.safetensors"):
        make_model(bad)


def test_wrong_latent_channels_names_the_autoencoder_config(ae_dir) -> None:
    with pytest.raises(ValueError, match=r"latent_channels 4 .*config\.json"):
        make_model(ae_dir, unet={**TINY_UNET, "in_channels": 8})


def test_wrong_frame_count_says_which_data_option(ae_dir) -> None:
    model = make_model(ae_dir, video_frames=3)
    with pytest.raises(ValueError, match="num_frames 3"):
        model.compute_losses(make_batch(2))


# --- configs ------------------------------------------------------------------------------------
def _init_args(name: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / "model" / name).read_text())["model"]["init_args"]


def test_cpu_config_instantiates_with_a_stand_in_shaped_autoencoder(ae_dir) -> None:
    args = _init_args("avldm_cpu.yaml") | {"autoencoder": str(ae_dir), "image_pretrained": None}
    model = AVLDM(**args)
    assert model.latent_shape == (4, 32, 47) and model.video_frames == 4
    assert model.guidance_scale == 6.5 and model.video_drop_prob == 0.2 and model.sampling_steps == 25
    assert [s.max_epochs for s in model.configure_fit_stages()] == [3]


def test_paper_config_instantiates_with_the_unet_on_the_meta_device(tmp_path, monkeypatch) -> None:
    """The paper config with an SD-shaped autoencoder (3 input channels, 8x down; random,
    narrow) and no UNet/image weights file; the 860M-parameter UNet is built on the meta
    device (no memory, no time), everything else for real."""
    import diffusers

    real_unet = diffusers.UNet2DConditionModel

    def meta_unet(**kw):
        with torch.device("meta"):
            return real_unet(**kw)

    monkeypatch.setattr(diffusers, "UNet2DConditionModel", meta_unet)
    args = _init_args("avldm.yaml")
    assert args["unet"]["block_out_channels"] == [320, 640, 1280, 1280]
    ae = _save_autoencoder(tmp_path / "sd_vae", in_channels=3, blocks=4)
    args |= {"autoencoder": str(ae), "unet_pretrained": None, "image_pretrained": None}
    model = AVLDM(**args)
    assert next(model.unet.parameters()).is_meta
    assert model.latent_shape == (4, 16, 24)  # the reference's [4, 16, 24]
    assert model.num_tokens == 16 + 24 and model.scale_factor == 0.18215
    assert model.unet.config.cross_attention_dim == 768 and model.unet.config.layers_per_block == 2
    n = sum(p.numel() for p in model.unet.parameters())
    assert 855e6 < n < 866e6, n  # SD v1's UNet: 859.5M
    assert model.trainer_arguments == {"precision": "16-mixed"} and model.global_batch_size == 720
    assert [s.max_epochs for s in model.configure_fit_stages()] == [8]
