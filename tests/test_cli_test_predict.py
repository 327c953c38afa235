"""`avbench test` scores a checkpoint through `evaluate`; `avbench predict` writes the outputs.

For every registered model, on the tiny synthetic VGGSound preset: a one-epoch
`avbench fit` makes a checkpoint; `avbench test` on it must log (CSV) and print
exactly what `avbench.benchmarks.evaluate` gives for the same weights, and
`avbench predict` must write one row per test id with the model's own outputs.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from avbench.benchmarks import evaluate
from avbench.cli import main
from avbench.configs import CONFIG_DIR
from avbench.data import VGGSoundDataModule
from avbench.models import REGISTRY, AVModel
from avbench.runner.checkpointing import restore_weights
from avbench.runner.instantiation import instantiate

#: data options of every command here (small and single-process)
DATA = {"batch_size": 8, "num_workers": 0, "image_size": 64, "cache": False,
        "train_augment": "none"}


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["avbench"])


@pytest.fixture(scope="session")
def tiny_vggsound(tmp_path_factory) -> Path:
    from avbench.data.synthetic import generate

    root = tmp_path_factory.mktemp("tiny") / "vggsound"
    generate("vggsound", root, "tiny", 0, progress=False)
    return root


def _args(name: str, root: Path, workdir: Path) -> list[str]:
    out = ["--config", f"configs/model/{name}_cpu.yaml",
           "--config", "configs/data/vggsound_synthetic.yaml",
           "--config", "configs/trainer/cpu.yaml",
           "--data.root", str(root), "--trainer.default_root_dir", str(workdir),
           "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    for k, v in DATA.items():
        out += [f"--data.{k}", str(v).lower() if isinstance(v, bool) else str(v)]
    return out


def _datamodule(root: Path) -> VGGSoundDataModule:
    cfg = yaml.safe_load((CONFIG_DIR / "data" / "vggsound_synthetic.yaml").read_text())
    kw = cfg["data"]["init_args"] | DATA | {"root": str(root)}
    return VGGSoundDataModule(**kw)


def _model(name: str, ckpt: Path) -> AVModel:
    cfg = yaml.safe_load((CONFIG_DIR / "model" / f"{name}_cpu.yaml").read_text())
    model = instantiate(cfg["model"], AVModel)
    restore_weights(model, ckpt)
    return model.eval()


#: models that train on VGGSound clips (ILI trains on feature files, MC3 and AV-LDM on narrated Ego4D
#: clips); the others than EZ-VSL run with the slow tests (~20 s each)
OTHER_DATA = {"avldm", "ili", "mc3"}
MODELS = [pytest.param(n, marks=[] if n == "ezvsl" else [pytest.mark.slow])
          for n in sorted(set(REGISTRY) - OTHER_DATA)]


@pytest.fixture(scope="module", params=MODELS)
def fitted(request, tiny_vggsound, tmp_path_factory, ensure_standins) -> tuple[str, Path, Path]:
    """(model name, checkpoint of a one-epoch `avbench fit`, its work dir)."""
    name = request.param
    config = (CONFIG_DIR / "model" / f"{name}_cpu.yaml").read_text()
    ensure_standins(*sorted(set(re.findall(r"standins/([a-z0-9-]+)", config))))
    work = tmp_path_factory.mktemp(f"fit_{name}")
    assert main(["fit", *_args(name, tiny_vggsound, work), "--trainer.max_epochs", "1"]) == 0
    ckpts = sorted((work / "lightning_logs").glob("version_*/checkpoints/*.ckpt"),
                   key=lambda p: p.stat().st_mtime)
    assert ckpts, f"avbench fit wrote no checkpoint under {work}"
    return name, ckpts[-1], work


def test_test_scores_the_checkpoint_like_evaluate(fitted, tiny_vggsound, tmp_path, capsys):
    name, ckpt, _ = fitted
    out = tmp_path / "test"
    assert main(["test", *_args(name, tiny_vggsound, out), "--ckpt_path", str(ckpt)]) == 0
    printed = capsys.readouterr().out

    expected = evaluate(_model(name, ckpt), "vggss", _datamodule(tiny_vggsound), progress=False)
    assert expected.status == "ok"
    (csv,) = (out / "lightning_logs").glob("version_*/metrics.csv")
    logged = pd.read_csv(csv).iloc[-1].dropna()
    want = {f"vggss/{k}": v for k, v in expected.metrics.items() if math.isfinite(v)}
    got = {k: float(logged[k]) for k in logged.index if k.startswith("vggss/")}
    assert set(got) == set(want)
    # the family's diagnostic runs on the same split: own vs mismatched audio
    assert {k for k in logged.index if k.startswith("vggss-mismatched/")} == {
        "vggss-mismatched/ap50_drop", "vggss-mismatched/ap50_own",
        "vggss-mismatched/ap50_mismatched", "vggss-mismatched/mean_ciou_drop"}
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-6), k
    # the table: the benchmark with its main score, and the benchmarks not run with the reason
    row = next(line for line in printed.splitlines() if line.startswith("vggss "))
    assert f"{expected.main_value:.4f}" in row and " ok " in row
    assert "synthetic-graph-recovery: needs capability class_graph" in printed
    assert "vggss-heard: needs the vggss subset 'heard'" in printed


def test_predict_writes_one_row_per_test_id(fitted, tiny_vggsound, tmp_path):
    name, ckpt, _ = fitted
    out = tmp_path / "predict"
    assert main(["predict", *_args(name, tiny_vggsound, out), "--ckpt_path", str(ckpt)]) == 0
    (path,) = (out / "predictions").glob("*.npz")
    assert path.name == f"{name}.vggss-all.npz"
    got = dict(np.load(path))

    dm = _datamodule(tiny_vggsound)
    dm.setup("test")
    model = _model(name, ckpt)
    ids: list[str] = []
    with torch.no_grad():
        first = next(iter(dm.test_dataloader()))
        want_embed = model.embed(first)
        want_map = model.localize(first)
    for batch in dm.test_dataloader():
        ids += [str(i) for i in batch["id"]]
    assert list(got["id"]) == ids and len(set(ids)) == len(ids) == len(dm.dataset("test"))
    assert {"embed_audio", "embed_visual", "localize"} <= set(got)
    for key in ("embed_audio", "embed_visual", "localize"):
        assert got[key].shape[0] == len(ids)
    # the checkpoint's weights, not the configured initialisation
    n = len(first["id"])
    np.testing.assert_allclose(got["embed_audio"][:n], want_embed["audio"].numpy(), atol=1e-5)
    np.testing.assert_allclose(got["localize"][:n], want_map.reshape(got["localize"][:n].shape)
                               .numpy(), atol=1e-5)


@pytest.mark.parametrize("dm_class, kwargs, run, not_run", [
    ("VGGSoundDataModule", {"test_set": "vggss_heard"}, ["vggss-heard"],
     ["vggss", "vggss-mismatched", "vggss-unheard"]),
    ("VGGSoundDataModule", {"test_set": "vggsound"}, [], []),
    ("AVSBenchDataModule", {"subset": "ms3"}, ["avsbench-ms3"], ["avsbench-s4"]),
    ("FlickrSoundNetDataModule", {}, ["flickr-test"], []),
    ("AVEDataModule", {}, [], ["ave-retrieval"]),  # retrieval needs embed; the prior has none
])
def test_plan_takes_the_benchmarks_of_the_datamodule_family(dm_class, kwargs, run, not_run,
                                                            tmp_path):
    import avbench.data as data
    from avbench.benchmarks import CenterPriorBaseline
    from avbench.runner.checkpoint_eval import plan_datamodule

    dm = getattr(data, dm_class)(root=tmp_path, **kwargs)
    plan = plan_datamodule(CenterPriorBaseline(), dm)
    assert plan.run == run and sorted(plan.not_run) == not_run
    assert all(plan.not_run.values())  # every benchmark not run says why
    (tmp_path / "avbench_synthetic.json").write_text("{}")  # a synthetic root adds graph recovery
    assert "synthetic-graph-recovery" in plan_datamodule(CenterPriorBaseline(), dm).not_run


def test_test_with_a_missing_frame_is_a_failed_row_without_traceback(tiny_vggsound, tmp_path,
                                                                     capsys, caplog):
    import json
    import shutil

    root = shutil.copytree(tiny_vggsound, tmp_path / "vggsound")
    first = json.loads((root / "metadata" / "vggss.json").read_text())[0]["file"]
    gone = root / "frames" / f"{first}.jpg"
    gone.unlink()
    assert main(["test", *_args("ezvsl", root, tmp_path / "test")]) == 1
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("vggss "))
    assert " failed " in row and "MissingFileError" in row and str(gone) in row
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors and all("Traceback" not in m and str(gone) in m for m in errors)


def _ezvsl_checkpoint(fitted) -> Path:
    name, ckpt, _ = fitted
    if name != "ezvsl":
        pytest.skip("the bad-checkpoint cases need one model only")
    return ckpt


@pytest.mark.parametrize("command", ["test", "fit"])
def test_a_truncated_checkpoint_is_one_line_naming_the_file(command, fitted, tiny_vggsound,
                                                            tmp_path, capsys):
    ckpt = _ezvsl_checkpoint(fitted)
    bad = tmp_path / "truncated.ckpt"
    bad.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    extra = ["--trainer.max_epochs", "1"] if command == "fit" else []
    code = main([command, *_args("ezvsl", tiny_vggsound, tmp_path / "w"), *extra,
                 "--ckpt_path", str(bad)])
    err = capsys.readouterr().err
    assert code == 1
    assert str(bad) in err and "not a complete torch.save file" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["test", "fit"])
def test_a_missing_checkpoint_is_one_line(command, fitted, tiny_vggsound, tmp_path, capsys):
    _ezvsl_checkpoint(fitted)
    gone = tmp_path / "nowhere.ckpt"
    code = main([command, *_args("ezvsl", tiny_vggsound, tmp_path / "w"), "--ckpt_path", str(gone)])
    err = capsys.readouterr().err
    assert code == 1 and f"checkpoint {str(gone)!r} does not exist" in err
    assert "Traceback" not in err


def test_a_checkpoint_of_another_model_names_the_keys(fitted, tiny_vggsound, tmp_path, capsys):
    ckpt = _ezvsl_checkpoint(fitted)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    dropped = next(iter(state["state_dict"]))
    del state["state_dict"][dropped]
    other = tmp_path / "other.ckpt"
    torch.save(state, other)
    code = main(["test", *_args("ezvsl", tiny_vggsound, tmp_path / "w"), "--ckpt_path", str(other)])
    err = capsys.readouterr().err
    assert code == 1 and str(other) in err and dropped in err and "does not fit EZVSL" in err
    assert "Traceback" not in err


def test_an_out_of_range_seed_is_a_usage_error(tiny_vggsound, tmp_path, capsys):
    code = main(["fit", *_args("ezvsl", tiny_vggsound, tmp_path / "w"), "--seed_everything", "-1"])
    err = capsys.readouterr().err
    assert code == 2 and "--seed_everything -1 is out of range" in err and "Traceback" not in err
    assert not (tmp_path / "w").exists()  # nothing trained, nothing written


def test_a_checkpoint_of_another_model_class_is_refused(fitted, tiny_vggsound, tmp_path, capsys):
    ckpt = _ezvsl_checkpoint(fitted)
    code = main(["test", *_args("lvs", tiny_vggsound, tmp_path / "w"), "--ckpt_path", str(ckpt)])
    err = capsys.readouterr().err
    assert code == 1 and "holds a EZVSL, the config names LVS" in err and "Traceback" not in err
