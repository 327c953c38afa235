"""image-resnet18 and audio-resnet18 stand-ins: tiny training, cards, skipping, determinism,
feature extractors, the ``avbench pretrain`` command."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from avbench.cli import main
from avbench.nn.encoders import AudioEncoder, ImageEncoder
from avbench.nn.weights import WeightsError
from avbench.pretrain import card as card_mod
from avbench.pretrain import registry
from avbench.pretrain.card import code_version, is_current, read_card, sha256_file
from avbench.pretrain.corpus import pretraining_world
from avbench.pretrain.extractors import AudioFeatureExtractor, VisualFeatureExtractor
from avbench.pretrain.registry import STANDINS, pretrain

MINE = ["image-resnet18", "audio-resnet18"]


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    """Each of my stand-ins trained once at size tiny (seed 0)."""
    root = tmp_path_factory.mktemp("standins")
    return {name: (root / name, pretrain(name, root / name, seed=0, size="tiny", progress=False))
            for name in MINE}


@pytest.mark.parametrize("name", MINE)
def test_tiny_training_writes_weights_and_a_true_card(tiny_dirs, name):
    out, card = tiny_dirs[name]
    assert card.name == name and card.seed == 0 and card.world_seed == 0
    assert card.files == {"weights": "model.safetensors"}
    assert card.sha256 == {"model.safetensors": sha256_file(out / "model.safetensors")}
    assert card.categories == [c.name for c in pretraining_world(0).categories]
    assert card.corpus["size"] == "tiny" and card.steps > 0 and card.seconds > 0
    assert 0.0 <= card.heldout["accuracy"] <= 1.0 and card.heldout["chance"] == pytest.approx(1 / 32)
    assert card.code_version == code_version("tiny") != code_version("default")
    assert read_card(out) == card
    assert json.loads((out / "card.json").read_text())["name"] == name
    assert is_current(out, name, 0, "tiny")
    assert not is_current(out, name, 1, "tiny") and not is_current(out, name, 0, "default")
    assert not is_current(out, "other", 0, "tiny")


def test_standins_load_into_the_cpu_encoders(tiny_dirs):
    img = ImageEncoder(width=16, layers=[1, 1, 1, 1],
                       pretrained_path=str(tiny_dirs["image-resnet18"][0] / "model.safetensors"))
    aud = AudioEncoder(width=16, layers=[1, 1, 1, 1],
                       pretrained_path=str(tiny_dirs["audio-resnet18"][0] / "model.safetensors"))
    assert img(torch.rand(1, 3, 64, 64)).shape == (1, 128, 2, 2)
    assert aud(torch.rand(1, 1, 64, 96)).shape == (1, 128, 2, 3)


def test_feature_extractors(tiny_dirs, tmp_path):
    vis = VisualFeatureExtractor.from_dir(tiny_dirs["image-resnet18"][0])
    f = vis(torch.rand(3, 3, 96, 96))
    assert f.shape == (3, 1024) and bool((f >= 0).all()) and not f.requires_grad
    aud = AudioFeatureExtractor.from_dir(tiny_dirs["audio-resnet18"][0])
    e = aud(0.1 * torch.randn(2, 40000))  # 2.5 s -> 2 windows
    assert e.shape == (2, 2, 128) and bool((e >= 0).all())
    # first window = the embedding of the first second alone
    torch.testing.assert_close(aud(e.new_zeros(1, 16000) + 0.0)[0, 0],
                               aud.classifier.embed(e.new_zeros(1, 16000))[0])
    with pytest.raises(WeightsError, match="image-resnet18"):  # wrong directory
        VisualFeatureExtractor.from_dir(tiny_dirs["audio-resnet18"][0])
    # a changed weights file does not match its card
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_dirs["image-resnet18"][0], bad)
    (bad / "model.safetensors").write_bytes((bad / "model.safetensors").read_bytes()[:-10])
    with pytest.raises(WeightsError, match="sha256"):
        VisualFeatureExtractor.from_dir(bad)
    with pytest.raises(WeightsError, match="no stand-in card"):
        VisualFeatureExtractor.from_dir(tmp_path / "empty")


def test_pretrain_skips_a_current_dir_and_retrains_when_forced_stale_or_damaged(tmp_path,
                                                                              monkeypatch):
    spec = STANDINS["image-resnet18"]
    calls = []

    def counting(out, seed, size, progress):
        calls.append(out)
        return spec.train(out, seed, size, progress)

    monkeypatch.setitem(registry._REGISTRY, "image-resnet18", replace(spec, train=counting))
    out = tmp_path / "img"
    first = pretrain("image-resnet18", out, size="tiny", progress=False)
    assert pretrain("image-resnet18", out, size="tiny", progress=False) == first
    assert len(calls) == 1
    pretrain("image-resnet18", out, size="tiny", force=True, progress=False)
    assert len(calls) == 2
    # determinism: the forced retrain reproduced the weights byte for byte
    assert read_card(out).sha256 == first.sha256
    # another code version (stale card) -> retrained
    stale = read_card(out).model_copy(update={"code_version": "0" * 16})
    card_mod.write_card(out, stale)
    pretrain("image-resnet18", out, size="tiny", progress=False)
    assert len(calls) == 3 and read_card(out).code_version == code_version("tiny")
    # a truncated weights file is never accepted
    w = out / "model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])
    assert not is_current(out, "image-resnet18", 0, "tiny")
    pretrain("image-resnet18", out, size="tiny", progress=False)
    assert len(calls) == 4 and sha256_file(w) == first.sha256["model.safetensors"]


def test_audio_standin_is_deterministic_by_seed(tiny_dirs, tmp_path):
    again = pretrain("audio-resnet18", tmp_path / "a", seed=0, size="tiny", progress=False)
    assert again.sha256 == tiny_dirs["audio-resnet18"][1].sha256
    other = pretrain("audio-resnet18", tmp_path / "b", seed=1, size="tiny", progress=False)
    assert other.sha256 != again.sha256 and other.categories != again.categories


def test_unknown_standin_and_size():
    with pytest.raises(KeyError, match="image-resnet18"):
        pretrain("imagenet", "unused")
    with pytest.raises(ValueError, match="size"):
        pretrain("image-resnet18", "unused", size="huge")


def test_cli_pretrain_and_help(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["pretrain", "image-resnet18", "--out", str(out), "--size", "tiny", "--no-progress"]
    assert main(args) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("image-resnet18:") and "held-out accuracy" in line and "[trained]" in line
    assert is_current(out, "image-resnet18", 0, "tiny")
    assert main(args) == 0
    assert "current, not retrained" in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert "pretrain" in capsys.readouterr().out
    assert main(["pretrain", "nonsense", "--out", str(out)]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", MINE)
def test_heldout_accuracy_beats_chance_at_a_small_size(tmp_path, monkeypatch, name):
    """A few hundred steps on a corpus of a few hundred items learn well above chance (1/32)."""
    if name == "image-resnet18":
        from avbench.pretrain import image as mod

        sizes, small = mod.IMAGE_SIZES, replace(mod.IMAGE_SIZES["tiny"], n_train=960,
                                                n_heldout=320, steps=200, batch_size=32)
    else:
        from avbench.pretrain import audio as mod

        sizes, small = mod.AUDIO_SIZES, replace(mod.AUDIO_SIZES["tiny"], n_train=960,
                                                n_heldout=320, steps=200, batch_size=32)
    monkeypatch.setitem(sizes, "tiny", small)
    card = pretrain(name, tmp_path / name, size="tiny", progress=False)
    assert card.heldout["accuracy"] > 0.3, card.heldout


def test_pretrain_cli_bad_seed_or_out_is_one_line_exit_1(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for argv, expected in (
            (["--out", str(afile)], "is a file, not a directory"),
            (["--out", str(tmp_path / "neg"), "--seed", "-3"], "seed must be >= 0")):
        assert main(["pretrain", "image-resnet18", "--size", "tiny", "--no-progress", *argv]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("avbench pretrain: error:") and expected in err[-1], err
    assert not (tmp_path / "neg").exists()  # nothing left behind
    assert main(["pretrain", "all", "--size", "tiny", "--no-progress", "--out", str(afile)]) == 1
